"""The canvas: the image, the mask overlay with its token grid, live decode steps, and gestures.

A QGraphicsView: the wheel zooms under the pointer, Space+drag (or the middle button) pans,
`fit()` shows the whole image. Mouse gestures go to the current tool, except presses on or just
outside the image border, which drag that edge (or corner) outward to outpaint. Holding Tab
shows the original image.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFocusEvent,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QStyleOptionGraphicsItem,
    QWidget,
)

from editor.core.geometry import Window
from editor.state.document import Document
from editor.state.imageconv import mask_to_qimage, to_qimage
from editor.ui.tools import Brush, Tool

MASK_RGBA = (255, 40, 90, 110)  # translucent pink: readable on photos, distinct from the cells
CELL_RGBA = (255, 210, 0, 70)  # token cells that will be regenerated
HANDLE_OUT, HANDLE_IN = 14, 4  # screen px outside / inside the border that grab an edge
ZOOM_MIN, ZOOM_MAX = 0.05, 32.0
FIT_MARGIN = 2 * HANDLE_OUT  # room outside the image to grab its edges after "fit"


class MaskOverlay(QGraphicsItem):
    """The mask as a translucent layer plus the token grid of the planned windows.

    Token cells are rendered once per plan into their own layer (union of all windows, so
    overlapping windows do not stack their tint) and drawn with a constant opacity.
    """

    def __init__(self) -> None:
        super().__init__()
        self._mask = QImage()
        self._cells = QImage()
        self._cells_at = QRect()  # where the cells layer sits in image pixels
        self._plan_cells: list[np.ndarray] = []
        self._windows: list[Window] = []
        self._tokens: list[int] = []
        self._rect = QRectF()
        self.show_grid = True
        self.decoding = False  # while steps are painted only the window outlines are shown
        self.undecided: dict[tuple[int, int, int], np.ndarray] = {}  # (x, y, size) -> (t, t)

    def set_size(self, w: int, h: int) -> None:
        self.prepareGeometryChange()
        self._rect = QRectF(0, 0, w, h)
        self._mask = QImage(w, h, QImage.Format.Format_ARGB32)
        self._mask.fill(Qt.GlobalColor.transparent)
        self._cells = QImage()

    def update_mask(self, mask: np.ndarray, rect: QRect) -> None:
        r = rect.intersected(QRect(0, 0, self._mask.width(), self._mask.height()))
        if r.isEmpty():
            return
        part = mask_to_qimage(mask[r.top() : r.bottom() + 1, r.left() : r.right() + 1], MASK_RGBA)
        p = QPainter(self._mask)
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        p.drawImage(r.topLeft(), part)
        p.end()
        self.update(QRectF(r))

    def set_plan(self, windows: list[Window], cells: list[np.ndarray]) -> None:
        self.prepareGeometryChange()
        self._windows = windows
        self._tokens = [c.shape[0] for c in cells]
        # Drawn on the next paint that shows it: a plan that lands while a decode is painted
        # (the mask just left for the worker) costs the GUI thread nothing.
        self._plan_cells = cells
        self._cells = QImage()
        self.update()

    def _cells_layer(self) -> QImage:
        """The highlighted cells of the plan, one solid layer (overlapping windows must not
        darken where they overlap): each window's (t, t) cell mask scaled up, no per-cell
        drawing (an outpaint plan has thousands of cells). It covers the windows only, not the
        whole image: on a 24 MP photo an image-sized layer costs ~30 ms per plan change."""
        if self._cells.isNull() and self._plan_cells:
            area = QRectF()
            for v in self._windows:
                area = area.united(QRectF(v.x, v.y, v.size, v.size))
            self._cells_at = area.intersected(self._rect).toAlignedRect()
            a = self._cells_at
            layer = QImage(max(a.width(), 1), max(a.height(), 1),
                           QImage.Format.Format_ARGB32_Premultiplied)
            layer.fill(Qt.GlobalColor.transparent)
            p = QPainter(layer)
            solid = (*CELL_RGBA[:3], 255)
            for v, c in zip(self._windows, self._plan_cells, strict=True):
                p.drawImage(QRectF(v.x - a.x(), v.y - a.y(), v.size, v.size),
                            mask_to_qimage(c, solid))
            p.end()
            self._cells = layer
        return self._cells

    def boundingRect(self) -> QRectF:
        r = QRectF(self._rect)
        for v in self._windows:
            r = r.united(QRectF(v.x, v.y, v.size, v.size))
        return r

    def paint(
        self, p: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if not self.decoding:
            p.drawImage(0, 0, self._mask)
        if not self.show_grid:
            return
        if not self.decoding and not self._cells_layer().isNull():
            p.setOpacity(CELL_RGBA[3] / 255)
            p.drawImage(self._cells_at.topLeft(), self._cells)
            p.setOpacity(1.0)
        if self.decoding:
            # Tokens the sampler has not committed yet: they fade out step by step.
            shade = QColor(20, 20, 30, 110)
            for (x, y, size), m in self.undecided.items():
                c = size / m.shape[0]
                for i, j in zip(*np.nonzero(m), strict=True):
                    p.fillRect(QRectF(x + j * c, y + i * c, c, c).intersected(self._rect), shade)
        grid = QPen(QColor(255, 255, 255, 60), 0)  # cosmetic: 1 screen px at any zoom
        frame = QPen(QColor(255, 210, 0, 200), 0, Qt.PenStyle.DashLine)
        for v, t in zip(self._windows, self._tokens, strict=True):
            if not self.decoding:
                c = v.size / t
                p.setPen(grid)
                for k in range(1, t):
                    p.drawLine(QPointF(v.x + k * c, v.y), QPointF(v.x + k * c, v.y + v.size))
                    p.drawLine(QPointF(v.x, v.y + k * c), QPointF(v.x + v.size, v.y + k * c))
            p.setPen(frame)
            p.drawRect(QRectF(v.x, v.y, v.size, v.size))


class Canvas(QGraphicsView):
    extend_requested = Signal(int, int, int, int)  # left, top, right, bottom (image pixels)
    zoom_changed = Signal(float)
    original_shown = Signal(bool)

    def __init__(self, doc: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        # Keyboard zoom keeps the view's centre; the wheel anchors on the pointer itself
        # (wheelEvent), since Qt's AnchorUnderMouse uses the last position Qt saw in its own
        # mouse handlers, which ours replace.
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setBackgroundBrush(QColor(48, 48, 52))
        self.setMouseTracking(True)
        # The scene has room around the image for edge drags; scroll bars for that room would
        # only take space. Space+drag and the middle button pan instead.
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(False)  # the main window takes dropped files

        s = self.scene()
        self._image_item = QGraphicsPixmapItem()
        self._patches: dict[tuple[int, int, int, int], QGraphicsPixmapItem] = {}
        self._previewing = False
        # Fit mode: after fit() the view keeps the whole image in view through resizes (the
        # candidates strip appearing) and canvas growth (an outpaint), until the user zooms.
        self._fitted = False
        self._fit_on_growth = False
        # Compare split: left of this viewport x the original is shown, right of it the
        # picture as it is (None: off). It follows the pointer and stays put on screen while
        # the view pans or zooms.
        self.split_at: int | None = None
        self._preview_z = 1
        self._overlay = MaskOverlay()
        self._outline = QGraphicsPathItem()
        self._outline.setPen(QPen(QColor(255, 255, 255), 0, Qt.PenStyle.DashLine))
        self._cursor = QGraphicsEllipseItem()
        self._cursor.setPen(QPen(QColor(255, 255, 255, 200), 0))
        self._cursor.setVisible(False)
        self._extent = QGraphicsPathItem()  # the new strip only: the photo stays untinted
        self._extent.setPen(QPen(QColor(255, 210, 0), 0, Qt.PenStyle.DashLine))
        self._extent.setBrush(QBrush(QColor(255, 210, 0, 30)))
        self._extent.setVisible(False)
        self._original_item = QGraphicsPixmapItem()
        self._original_item.setVisible(False)
        for z, item in enumerate(
            (self._image_item, None, self._overlay, self._outline, self._extent,
             self._original_item, self._cursor)
        ):
            if item is None:  # z 1: the live step patches
                continue
            item.setZValue(z)
            s.addItem(item)

        self.tool: Tool = Brush()
        self.step_text = ""  # "step k/T" painted over the view while a decode runs
        self.hint = ""  # what to do first, centred over an empty canvas
        self.edge_hint: QPointF | None = None  # pointer over an edge: "drag to outpaint" here
        self._pan_from: QPointF | None = None
        self._space = False
        self._edge: tuple[bool, bool, bool, bool] | None = None  # dragging l, t, r, b
        self._edge_extent = (0, 0, 0, 0)
        self._tool_down = False

        self.doc = doc
        doc.canvas_changed.connect(self._reload)
        doc.image_changed.connect(self._image_region)
        doc.mask_changed.connect(self._mask_region)
        self._reload()

    # ------------------------------------------------------------------ document binding
    def _reload(self) -> None:
        d = self.doc
        self._image_item.setPixmap(QPixmap.fromImage(to_qimage(d.image)))
        self._overlay.set_size(d.width, d.height)
        self._overlay.update_mask(d.mask, QRect(0, 0, d.width, d.height))
        self._original_item.setPixmap(QPixmap.fromImage(to_qimage(d.original)))
        self._original_item.setPos(*d.origin)
        # Room around the image to drag edges outward and to pan past the border.
        m = max(d.width, d.height)
        self.setSceneRect(QRectF(-m, -m, d.width + 2 * m, d.height + 2 * m))
        self.scene().update()
        if self._fitted or self._fit_on_growth:
            self.fit()

    def _image_region(self, rect: QRect) -> None:
        x0, y0 = rect.left(), rect.top()
        part = self.doc.image[y0 : y0 + rect.height(), x0 : x0 + rect.width()]
        pm = self._image_item.pixmap()
        p = QPainter(pm)
        p.drawImage(rect.topLeft(), to_qimage(part))
        p.end()
        self._image_item.setPixmap(pm)

    def _mask_region(self, rect: QRect) -> None:
        self._overlay.update_mask(self.doc.mask, rect)

    def set_plan(self, windows: list[Window], cells: list[np.ndarray]) -> None:
        self._overlay.set_plan(windows, cells)

    def set_grid_visible(self, on: bool) -> None:
        self._overlay.show_grid = on
        self._overlay.update()

    # ------------------------------------------------------------------ live preview
    def begin_preview(self) -> None:
        """Decode steps are shown as patches over the image until the result is applied.

        One small pixmap item per window: a step costs a window-sized upload, not a copy of the
        whole (possibly 24-megapixel) image.
        """
        self._clear_patches()
        self._overlay.undecided = {}
        self._previewing = True
        self._overlay.decoding = True
        self._overlay.update()

    def paint_preview(self, patch: QImage, rect: QRect, text: str) -> None:
        if not self._previewing:
            return
        key = (rect.x(), rect.y(), rect.width(), rect.height())
        item = self._patches.get(key)
        if item is None:
            item = QGraphicsPixmapItem()
            item.setZValue(self._preview_z)
            item.setPos(rect.x(), rect.y())
            self.scene().addItem(item)
            self._patches[key] = item
        pm = QPixmap.fromImage(patch)
        if pm.size() != rect.size():
            pm = pm.scaled(rect.size())
        item.setPixmap(pm)
        self.step_text = text
        self.viewport().update()

    def show_undecided(self, win: Window, masked: np.ndarray) -> None:
        """Shade the tokens of `win` still to be decided (Step.masked) over its patch."""
        self._overlay.undecided[(win.x, win.y, win.size)] = masked
        self._overlay.update()

    def end_preview(self) -> None:
        self._overlay.undecided = {}
        self._clear_patches()
        self._previewing = False
        self._overlay.decoding = False
        self._overlay.update()
        self.step_text = ""
        self.viewport().update()

    def _clear_patches(self) -> None:
        for item in self._patches.values():
            self.scene().removeItem(item)
        self._patches = {}

    @property
    def previewing(self) -> bool:
        return self._previewing

    def preview_image(self) -> QImage:
        """What the canvas shows of the image right now: the image under the step patches."""
        img = self._image_item.pixmap().toImage().convertToFormat(QImage.Format.Format_RGB888)
        p = QPainter(img)
        for (x, y, _w, _h), item in self._patches.items():
            p.drawPixmap(x, y, item.pixmap())
        p.end()
        return img

    def set_hint(self, text: str) -> None:
        if text != self.hint:
            self.hint = text
            self.viewport().update()

    def drawForeground(self, p: QPainter, rect: QRectF) -> None:
        split = self.split
        if split is not None and not self._original_item.isVisible():
            p.save()
            item = self._original_item
            left = QRectF(item.pos(), item.pixmap().size().toSizeF())
            left.setRight(min(left.right(), split))
            if left.width() > 0:
                p.setClipRect(left)
                p.drawPixmap(item.pos(), item.pixmap())
            p.setClipping(False)
            p.setPen(QPen(QColor(255, 255, 255, 220), 0))  # cosmetic: 1 screen px
            p.drawLine(QPointF(split, rect.top()), QPointF(split, rect.bottom()))
            p.restore()
        if self.hint:
            p.save()
            p.resetTransform()
            p.setPen(QColor(90, 90, 90))
            p.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter, self.hint)
            p.restore()
        else:
            self._draw_edge_handles(p)
        # While Tab shows the original, the badge would name a step that is not on screen.
        text = "original" if self._original_item.isVisible() else self.step_text
        if not text:
            return
        p.save()
        p.resetTransform()
        f = p.font()
        f.setPointSize(11)
        f.setBold(True)
        p.setFont(f)
        box = QRect(10, 10, 220, 26)
        p.fillRect(box, QColor(0, 0, 0, 150))
        p.setPen(QColor("white"))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        p.restore()

    def _draw_edge_handles(self, p: QPainter) -> None:
        """Small grips on the middle of each edge and on the corners (they show that the
        canvas can be dragged bigger), and the hint next to the pointer over one."""
        p.save()
        p.resetTransform()
        r = self.mapFromScene(QRectF(0, 0, self.doc.width, self.doc.height)).boundingRect()
        p.setPen(QPen(QColor(30, 30, 30, 200), 1))
        p.setBrush(QColor(255, 210, 0, 200))
        cx, cy = (r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2
        long, short = 18, 6
        for x, y, horizontal in ((cx, r.top(), True), (cx, r.bottom(), True),
                                 (r.left(), cy, False), (r.right(), cy, False)):
            w, h = (long, short) if horizontal else (short, long)
            p.drawRoundedRect(QRectF(x - w / 2, y - h / 2, w, h), 2, 2)
        for x in (r.left(), r.right()):
            for y in (r.top(), r.bottom()):
                p.drawRect(QRectF(x - short / 2, y - short / 2, short, short))
        if self.edge_hint is not None and self._edge is None:
            text = "drag outward to outpaint"
            box = QRectF(self.edge_hint.x() + 14, self.edge_hint.y() + 14,
                         p.fontMetrics().horizontalAdvance(text) + 12, 22)
            if box.right() > self.viewport().width():
                box.moveRight(self.edge_hint.x() - 8)
            if box.bottom() > self.viewport().height():
                box.moveBottom(self.edge_hint.y() - 8)
            p.fillRect(box, QColor(0, 0, 0, 170))
            p.setPen(QColor("white"))
            p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        p.restore()

    # ------------------------------------------------------------------ view
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, z: float) -> None:
        self._fitted = False
        z = min(max(z, ZOOM_MIN), ZOOM_MAX)
        self.scale(z / self.zoom(), z / self.zoom())
        self.zoom_changed.emit(self.zoom())

    def fit(self) -> None:
        """Whole image in view, with a border of FIT_MARGIN screen px so every edge can be
        grabbed for an outpaint drag."""
        vw, vh = self.viewport().width(), self.viewport().height()
        w, h = self.doc.width, self.doc.height
        z = min((vw - 2 * FIT_MARGIN) / w, (vh - 2 * FIT_MARGIN) / h)
        z = min(max(z, ZOOM_MIN), ZOOM_MAX)
        self.resetTransform()
        self.scale(z, z)
        self.centerOn(w / 2, h / 2)
        self._fitted = True
        self.zoom_changed.emit(self.zoom())

    def resizeEvent(self, e: QResizeEvent) -> None:
        super().resizeEvent(e)
        if self._fitted:
            self.fit()

    def actual_size(self) -> None:
        self._fitted = False
        self.resetTransform()
        self.centerOn(self.doc.width / 2, self.doc.height / 2)
        self.zoom_changed.emit(1.0)

    def wheelEvent(self, e: QWheelEvent) -> None:
        steps = e.angleDelta().y() / 120
        if steps:
            at = e.position().toPoint()
            before = self.mapToScene(at)
            self.set_zoom(self.zoom() * 1.25**steps)
            # Scroll so the point that was under the pointer is under it again.
            off = self.mapFromScene(before) - at
            h, v = self.horizontalScrollBar(), self.verticalScrollBar()
            h.setValue(h.value() + off.x())
            v.setValue(v.value() + off.y())
        e.accept()

    def set_brush_size(self, size: int) -> None:
        if isinstance(self.tool, Brush):
            self.tool.set_size(size)
        self._update_cursor(None)

    # ------------------------------------------------------------------ keys
    def focusNextPrevChild(self, next: bool) -> bool:
        return False  # Tab belongs to "show original", not to focus traversal

    def keyPressEvent(self, e: QKeyEvent) -> None:
        if e.key() == Qt.Key.Key_Space and not e.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
        elif e.key() == Qt.Key.Key_Tab and not e.isAutoRepeat():
            self.show_original(True)
        elif e.key() == Qt.Key.Key_Escape and (self._tool_down or self._edge):
            self._abort_gesture()
        else:
            super().keyPressEvent(e)

    def keyReleaseEvent(self, e: QKeyEvent) -> None:
        if e.key() == Qt.Key.Key_Space and not e.isAutoRepeat():
            self._space = False
            self.viewport().unsetCursor()
        elif e.key() == Qt.Key.Key_Tab and not e.isAutoRepeat():
            self.show_original(False)
        else:
            super().keyReleaseEvent(e)

    def focusOutEvent(self, e: QFocusEvent) -> None:
        # A released key is not delivered after focus moves; do not get stuck in pan / original.
        self._space = False
        self.show_original(False)
        super().focusOutEvent(e)

    def set_split(self, on: bool) -> None:
        """Compare mode: the original left of a divider that follows the pointer."""
        self.split_at = self.viewport().width() // 2 if on else None
        self.viewport().update()

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        if self.split_at is not None:  # the divider stays on screen: repaint, don't scroll it
            self.viewport().update()

    @property
    def split(self) -> float | None:
        """The divider's scene x (None: compare is off)."""
        if self.split_at is None:
            return None
        return self.mapToScene(QPoint(self.split_at, 0)).x()

    def show_original(self, on: bool) -> None:
        if self._original_item.isVisible() == on:
            return
        self._original_item.setVisible(on)
        self._overlay.setVisible(not on)
        self.viewport().update()  # the badge
        self.original_shown.emit(on)

    # ------------------------------------------------------------------ mouse
    def _scene(self, e: QMouseEvent) -> QPointF:
        return self.mapToScene(e.position().toPoint()) + self._subpx(e)

    def _subpx(self, e: QMouseEvent) -> QPointF:
        # mapToScene takes integer view points; keep the fraction for smooth strokes at zoom.
        pos = e.position()
        frac = pos - QPointF(pos.toPoint())
        z = self.zoom() or 1.0
        return QPointF(frac.x() / z, frac.y() / z)

    def edge_at(self, view_pos: QPointF) -> tuple[bool, bool, bool, bool] | None:
        """Which edges (left, top, right, bottom) a press at `view_pos` grabs, if any."""
        r = self.mapFromScene(QRectF(0, 0, self.doc.width, self.doc.height)).boundingRect()
        x, y = view_pos.x(), view_pos.y()
        left, right = r.left(), r.right() + 1
        top, bottom = r.top(), r.bottom() + 1

        def near(v: float, edge: float, outward: int) -> bool:
            d = (v - edge) * outward  # > 0 outside
            return -HANDLE_IN <= d <= HANDLE_OUT

        in_x = left - HANDLE_OUT <= x <= right + HANDLE_OUT
        in_y = top - HANDLE_OUT <= y <= bottom + HANDLE_OUT
        grab = (
            in_y and near(x, left, -1),
            in_x and near(y, top, -1),
            in_y and near(x, right, 1),
            in_x and near(y, bottom, 1),
        )
        # Inside the image only a thin band on the border grabs; deeper presses are strokes.
        return grab if any(grab) else None

    def mousePressEvent(self, e: QMouseEvent) -> None:
        if self._space or e.button() == Qt.MouseButton.MiddleButton:
            self._pan_from = e.position()
            self._fitted = False  # the user placed the view: resizes leave it alone
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if e.button() not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return
        edge = self.edge_at(e.position()) if e.button() == Qt.MouseButton.LeftButton else None
        if edge is not None:
            self._edge = edge
            self._edge_extent = (0, 0, 0, 0)
            return
        self._tool_down = True
        erase = e.button() == Qt.MouseButton.RightButton or bool(
            e.modifiers() & Qt.KeyboardModifier.AltModifier
        )
        self.tool.press(self.doc, self._scene(e), erase)
        self._update_outline()

    def mouseMoveEvent(self, e: QMouseEvent) -> None:
        if self.split_at is not None:
            self.split_at = round(e.position().x())
            self.viewport().update()
        if self._pan_from is not None:
            d = e.position() - self._pan_from
            self._pan_from = e.position()
            h, v = self.horizontalScrollBar(), self.verticalScrollBar()
            h.setValue(h.value() - round(d.x()))
            v.setValue(v.value() - round(d.y()))
            return
        pos = self._scene(e)
        if self._edge is not None:
            self._drag_edge(pos)
            return
        if self._tool_down:
            self.tool.move(pos)
            self._update_outline()
        else:
            self._hover_cursor(e.position())
        self._update_cursor(pos)

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:
        if self._pan_from is not None:
            self._pan_from = None
            if self._space:
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            else:
                self.viewport().unsetCursor()
            return
        pos = self._scene(e)
        if self._edge is not None:
            self._drag_edge(pos)
            ext, self._edge = self._edge_extent, None
            self._extent.setVisible(False)
            if any(ext):
                # Show the whole grown canvas, new strip included, if the drag is taken (the
                # canvas grows inside this emit); a refused one leaves the view alone.
                self._fit_on_growth = True
                self.extend_requested.emit(*ext)
                self._fit_on_growth = False
            return
        if self._tool_down:
            self._tool_down = False
            self.tool.release(pos)
            self._update_outline()

    def _abort_gesture(self) -> None:
        if self._tool_down:
            self.tool.cancel()
            self._tool_down = False
            self._update_outline()
        self._edge = None
        self._extent.setVisible(False)

    def _drag_edge(self, pos: QPointF) -> None:
        assert self._edge is not None
        gl, gt, gr, gb = self._edge
        w, h = self.doc.width, self.doc.height
        cap = 4 * max(w, h)  # a runaway drag must not allocate gigabytes
        ext = (
            min(max(0, round(-pos.x())), cap) if gl else 0,
            min(max(0, round(-pos.y())), cap) if gt else 0,
            min(max(0, round(pos.x() - w)), cap) if gr else 0,
            min(max(0, round(pos.y() - h)), cap) if gb else 0,
        )
        self._edge_extent = ext
        strip = QPainterPath()  # odd-even fill: the photo is a hole in the grown rectangle
        strip.addRect(QRectF(-ext[0], -ext[1], w + ext[0] + ext[2], h + ext[1] + ext[3]))
        strip.addRect(QRectF(0, 0, w, h))
        self._extent.setPath(strip)
        self._extent.setVisible(any(ext))

    def _hover_cursor(self, view_pos: QPointF) -> None:
        if self._space:
            return
        edge = self.edge_at(view_pos)
        shape = None
        if edge is not None:
            gl, gt, gr, gb = edge
            if (gl and gt) or (gr and gb):
                shape = Qt.CursorShape.SizeFDiagCursor
            elif (gr and gt) or (gl and gb):
                shape = Qt.CursorShape.SizeBDiagCursor
            elif gl or gr:
                shape = Qt.CursorShape.SizeHorCursor
            else:
                shape = Qt.CursorShape.SizeVerCursor
        if shape is None:
            self.viewport().unsetCursor()
        else:
            self.viewport().setCursor(shape)
        # Outpainting is otherwise found only in Help: say what the edge does where it is.
        hint = QPointF(view_pos) if edge is not None else None
        if hint != self.edge_hint:
            self.edge_hint = hint
            self.viewport().update()

    def _update_outline(self) -> None:
        path = self.tool.outline()
        self._outline.setPath(path if path is not None else QPainterPath())

    def _update_cursor(self, pos: QPointF | None) -> None:
        if not isinstance(self.tool, Brush):
            self._cursor.setVisible(False)
            return
        r = self.tool.size / 2
        if pos is not None:
            self._cursor.setRect(QRectF(pos.x() - r, pos.y() - r, 2 * r, 2 * r))
            self._cursor.setVisible(True)
        else:
            c = self._cursor.rect().center()
            self._cursor.setRect(QRectF(c.x() - r, c.y() - r, 2 * r, 2 * r))

    def leaveEvent(self, e: QEvent) -> None:
        self._cursor.setVisible(False)
        if self.edge_hint is not None:
            self.edge_hint = None
            self.viewport().update()
        super().leaveEvent(e)
