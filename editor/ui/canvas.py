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
    QColor,
    QFocusEvent,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPen,
    QPixmap,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QStyleOptionGraphicsItem,
    QWidget,
)

from editor.core.geometry import Window, bbox
from editor.state.document import Document
from editor.state.imageconv import to_qimage
from editor.ui import edges
from editor.ui.edges import HANDLE_OUT
from editor.ui.gestures import Gestures
from editor.ui.overlays import MaskOverlay
from editor.ui.preview import Preview
from editor.ui.tools import Brush, Tool

ZOOM_MIN, ZOOM_MAX = 0.05, 32.0
FIT_MARGIN = 2 * HANDLE_OUT  # room outside the image to grab its edges after "fit"
BADGE = QRect(10, 10, 220, 26)  # the step badge, in viewport pixels


class ImageItem(QGraphicsItem):
    """The document's picture, kept as an image updated in place. A QGraphicsPixmapItem's
    pixmap is shared with whoever reads it, so painting a changed region into it copied the
    whole picture first: 33-40 ms of the GUI thread for a 13-megapixel canvas at every result,
    candidate flip and undo, against about 1 ms for the region itself now."""

    def __init__(self) -> None:
        super().__init__()
        self._img = QImage()

    def set_image(self, image: QImage) -> None:
        self.prepareGeometryChange()
        # The screen's own format: painting needs no conversion at every repaint.
        self._img = image.convertToFormat(QImage.Format.Format_RGB32)
        self.update()

    def paste(self, at: QPoint, part: QImage) -> None:
        p = QPainter(self._img)
        p.drawImage(at, part)
        p.end()
        self.update(QRectF(QPointF(at), part.size().toSizeF()))

    def image(self) -> QImage:
        return self._img

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self._img.width(), self._img.height())

    def paint(self, p: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        p.drawImage(0, 0, self._img)


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

        self._build_items()
        # Fit mode: after fit() the view keeps the whole image in view through resizes (the
        # candidates strip appearing) and canvas growth (an outpaint), until the user zooms.
        self.fitted = False
        self.fit_on_growth = False
        # Compare split: left of this viewport x the original is shown, right of it the
        # picture as it is (None: off). It follows the pointer and stays put on screen while
        # the view pans or zooms.
        self.split_at: int | None = None
        self.tool: Tool = Brush()
        self.hint = ""  # what to do first, centred over an empty canvas
        self.edge_hint: QPointF | None = None  # pointer over an edge: "drag to outpaint" here
        self.space_held = False  # Space+drag pans

        self.doc = doc
        doc.canvas_changed.connect(self._reload)
        doc.image_changed.connect(self._image_region)
        doc.mask_changed.connect(self._mask_region)
        self._reload()

    def _build_items(self) -> None:
        s = self.scene()
        self._image_item = ImageItem()
        self.overlay = MaskOverlay()
        self.gestures = g = Gestures(self)  # mouse: tool strokes, edge drags, panning
        self._original_item = QGraphicsPixmapItem()
        self._original_item.setVisible(False)
        for z, item in enumerate(
            (self._image_item, None, self.overlay, g.outline, g.extent, self._original_item,
             g.cursor)
        ):
            if item is None:  # z 1: the live step patches
                continue
            item.setZValue(z)
            s.addItem(item)
        self.preview = Preview(s, self.overlay)  # z 1: the live step patches

    # ------------------------------------------------------------------ document binding
    def _reload(self) -> None:
        d = self.doc
        self._image_item.set_image(to_qimage(d.image))
        self.overlay.set_size(d.width, d.height)  # transparent: only the mask's box to draw
        box = bbox(d.mask)
        if box is not None:  # an outpaint's new strip: not the whole canvas
            self.overlay.update_mask(d.mask, QRect(box[0], box[1], box[2] - box[0],
                                                   box[3] - box[1]))
        self._original_item.setPixmap(QPixmap.fromImage(to_qimage(d.original)))
        self._original_item.setPos(*d.origin)
        # Room around the image to drag edges outward and to pan past the border.
        m = max(d.width, d.height)
        self.setSceneRect(QRectF(-m, -m, d.width + 2 * m, d.height + 2 * m))
        self.scene().update()
        if self.fitted:
            self.fit()
        elif self.fit_on_growth:
            self.fit(zoom_in=False)

    def _image_region(self, rect: QRect) -> None:
        x0, y0 = rect.left(), rect.top()
        part = self.doc.image[y0 : y0 + rect.height(), x0 : x0 + rect.width()]
        self._image_item.paste(rect.topLeft(), to_qimage(part))

    def _mask_region(self, rect: QRect) -> None:
        self.overlay.update_mask(self.doc.mask, rect)

    def set_plan(self, windows: list[Window], cells: list[np.ndarray]) -> None:
        self.overlay.set_plan(windows, cells)

    def set_grid_visible(self, on: bool) -> None:
        self.overlay.show_grid = on
        self.overlay.update()

    # ------------------------------------------------------------------ live preview
    def begin_preview(self) -> None:
        """Decode steps are shown as patches over the image until the result is applied."""
        self.preview.begin()

    def paint_preview(self, patch: QImage, rect: QRect, text: str) -> None:
        # The patch's item schedules its own region; of the rest only the step badge changes
        # (a whole-viewport update repainted every item and panel of the view at every step).
        if self.preview.paint(patch, rect, text):
            self.viewport().update(BADGE)

    def show_undecided(self, win: Window, masked: np.ndarray) -> None:
        self.preview.show_undecided(win, masked)

    def end_preview(self) -> None:
        self.preview.end()
        self.viewport().update()

    @property
    def previewing(self) -> bool:
        return self.preview.active

    @property
    def step_text(self) -> str:
        return self.preview.step_text

    def preview_image(self) -> QImage:
        """What the canvas shows of the image right now: the image under the step patches."""
        return self.preview.over(self._image_item.image())

    @property
    def showing_original(self) -> bool:
        """Tab is held: the original is shown over the picture."""
        return self._original_item.isVisible()

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
            r = self.mapFromScene(QRectF(0, 0, self.doc.width, self.doc.height)).boundingRect()
            hint = self.edge_hint if self.gestures.edge is None else None
            edges.draw_handles(p, r, hint, self.viewport().size())
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
        box = BADGE
        p.fillRect(box, QColor(0, 0, 0, 150))
        p.setPen(QColor("white"))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        p.restore()

    # ------------------------------------------------------------------ view
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, z: float) -> None:
        self.fitted = False
        z = min(max(z, ZOOM_MIN), ZOOM_MAX)
        self.scale(z / self.zoom(), z / self.zoom())
        self.zoom_changed.emit(self.zoom())

    def fit(self, zoom_in: bool = True) -> None:
        """Whole image in view, with a border of FIT_MARGIN screen px so every edge can be
        grabbed for an outpaint drag. `zoom_in` False (a canvas grown by an edge drag): zoom
        out as far as the grown canvas needs, never in, so the view does not jump when it
        still fits; the view then stays as the user set it rather than in fit mode."""
        vw, vh = self.viewport().width(), self.viewport().height()
        w, h = self.doc.width, self.doc.height
        z = min((vw - 2 * FIT_MARGIN) / w, (vh - 2 * FIT_MARGIN) / h)
        if not zoom_in:
            z = min(z, self.zoom())
        z = min(max(z, ZOOM_MIN), ZOOM_MAX)
        self.resetTransform()
        self.scale(z, z)
        self.centerOn(w / 2, h / 2)
        self.fitted = zoom_in
        self.zoom_changed.emit(self.zoom())

    def resizeEvent(self, e: QResizeEvent) -> None:
        super().resizeEvent(e)
        if self.fitted:
            self.fit()

    def actual_size(self) -> None:
        self.fitted = False
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
        self.gestures.update_cursor(None)

    # ------------------------------------------------------------------ keys
    def focusNextPrevChild(self, next: bool) -> bool:
        return False  # Tab belongs to "show original", not to focus traversal

    def keyPressEvent(self, e: QKeyEvent) -> None:
        if e.key() == Qt.Key.Key_Space and not e.isAutoRepeat():
            self.space_held = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
        elif e.key() == Qt.Key.Key_Tab and not e.isAutoRepeat():
            self.show_original(True)
        elif e.key() == Qt.Key.Key_Escape and self.gestures.active:
            self.gestures.abort()
        else:
            super().keyPressEvent(e)

    def keyReleaseEvent(self, e: QKeyEvent) -> None:
        if e.key() == Qt.Key.Key_Space and not e.isAutoRepeat():
            self.space_held = False
            self.viewport().unsetCursor()
        elif e.key() == Qt.Key.Key_Tab and not e.isAutoRepeat():
            self.show_original(False)
        else:
            super().keyReleaseEvent(e)

    def focusOutEvent(self, e: QFocusEvent) -> None:
        # A released key is not delivered after focus moves; do not get stuck in pan / original.
        self.space_held = False
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
        self.overlay.setVisible(not on)
        self.viewport().update()  # the badge
        self.original_shown.emit(on)

    # ------------------------------------------------------------------ mouse
    def edge_at(self, view_pos: QPointF) -> edges.Edges | None:
        """Which edges (left, top, right, bottom) a press at `view_pos` grabs, if any."""
        r = self.mapFromScene(QRectF(0, 0, self.doc.width, self.doc.height)).boundingRect()
        return edges.edge_at(r, view_pos)

    def mousePressEvent(self, e: QMouseEvent) -> None:
        self.gestures.press(e)

    def mouseMoveEvent(self, e: QMouseEvent) -> None:
        self.gestures.move(e)

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:
        self.gestures.release(e)

    def leaveEvent(self, e: QEvent) -> None:
        self.gestures.leave()
        super().leaveEvent(e)
