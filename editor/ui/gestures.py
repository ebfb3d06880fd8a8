"""Mouse gestures on the canvas: a press goes to the current tool, except on or just outside
the image border, where it drags that edge (or corner) outward to outpaint; Space+drag or the
middle button pans. The canvas forwards its mouse events here; this owns the gesture state and
the items that show it (the tool's outline, the brush cursor, the new strip of an edge drag)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QMouseEvent, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsPathItem

from editor.ui import edges
from editor.ui.tools import Brush


class Gestures:
    def __init__(self, view: Any) -> None:
        """`view`: the editor.ui.canvas.Canvas (typed loosely: it imports this module)."""
        self.view = view
        self.pan_from: QPointF | None = None
        self.edge: edges.Edges | None = None  # the edges being dragged
        self.edge_extent: edges.Extent = (0, 0, 0, 0)
        self.tool_down = False
        self.outline = QGraphicsPathItem()
        self.outline.setPen(QPen(QColor(255, 255, 255), 0, Qt.PenStyle.DashLine))
        self.cursor = QGraphicsEllipseItem()
        self.cursor.setPen(QPen(QColor(255, 255, 255, 200), 0))
        self.cursor.setVisible(False)
        self.extent = QGraphicsPathItem()  # the new strip only: the photo stays untinted
        self.extent.setPen(QPen(QColor(255, 210, 0), 0, Qt.PenStyle.DashLine))
        self.extent.setBrush(QBrush(QColor(255, 210, 0, 30)))
        self.extent.setVisible(False)

    @property
    def active(self) -> bool:
        """A stroke or an edge drag is under way."""
        return self.tool_down or self.edge is not None

    def scene_pos(self, e: QMouseEvent) -> QPointF:
        v = self.view
        return v.mapToScene(e.position().toPoint()) + self._subpx(e)

    def _subpx(self, e: QMouseEvent) -> QPointF:
        v = self.view
        # mapToScene takes integer view points; keep the fraction for smooth strokes at zoom.
        pos = e.position()
        frac = pos - QPointF(pos.toPoint())
        z = v.zoom() or 1.0
        return QPointF(frac.x() / z, frac.y() / z)

    def press(self, e: QMouseEvent) -> None:
        v = self.view
        if v.space_held or e.button() == Qt.MouseButton.MiddleButton:
            self.pan_from = e.position()
            v.fitted = False  # the user placed the view: resizes leave it alone
            v.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if e.button() not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return
        edge = v.edge_at(e.position()) if e.button() == Qt.MouseButton.LeftButton else None
        if edge is not None:
            self.edge = edge
            self.edge_extent = (0, 0, 0, 0)
            return
        self.tool_down = True
        erase = e.button() == Qt.MouseButton.RightButton or bool(
            e.modifiers() & Qt.KeyboardModifier.AltModifier
        )
        v.tool.press(v.doc, self.scene_pos(e), erase)
        self.update_outline()

    def move(self, e: QMouseEvent) -> None:
        v = self.view
        if v.split_at is not None:
            v.split_at = round(e.position().x())
            v.viewport().update()
        if self.pan_from is not None:
            d = e.position() - self.pan_from
            self.pan_from = e.position()
            h, v = v.horizontalScrollBar(), v.verticalScrollBar()
            h.setValue(h.value() - round(d.x()))
            v.setValue(v.value() - round(d.y()))
            return
        pos = self.scene_pos(e)
        if self.edge is not None:
            self._drag_edge(pos)
            return
        if self.tool_down:
            v.tool.move(pos)
            self.update_outline()
        else:
            self.hover(e.position())
        self.update_cursor(pos)

    def release(self, e: QMouseEvent) -> None:
        v = self.view
        if self.pan_from is not None:
            self.pan_from = None
            if v.space_held:
                v.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            else:
                v.viewport().unsetCursor()
            return
        pos = self.scene_pos(e)
        if self.edge is not None:
            self._drag_edge(pos)
            ext, self.edge = self.edge_extent, None
            self.extent.setVisible(False)
            if any(ext):
                # Show the whole grown canvas, new strip included, if the drag is taken (the
                # canvas grows inside this emit); a refused one leaves the view alone.
                v.fit_on_growth = True
                v.extend_requested.emit(*ext)
                v.fit_on_growth = False
            return
        if self.tool_down:
            self.tool_down = False
            v.tool.release(pos)
            self.update_outline()

    def abort(self) -> None:
        v = self.view
        if self.tool_down:
            v.tool.cancel()
            self.tool_down = False
            self.update_outline()
        self.edge = None
        self.extent.setVisible(False)

    def _drag_edge(self, pos: QPointF) -> None:
        v = self.view
        assert self.edge is not None
        w, h = v.doc.width, v.doc.height
        self.edge_extent = ext = edges.extent(self.edge, pos, w, h)
        self.extent.setPath(edges.strip(ext, w, h))
        self.extent.setVisible(any(ext))

    def hover(self, view_pos: QPointF) -> None:
        v = self.view
        if v.space_held:
            return
        edge = v.edge_at(view_pos)
        shape = edges.cursor(edge)
        if shape is None:
            v.viewport().unsetCursor()
        else:
            v.viewport().setCursor(shape)
        # Outpainting is otherwise found only in Help: say what the edge does where it is.
        hint = QPointF(view_pos) if edge is not None else None
        if hint != v.edge_hint:
            v.edge_hint = hint
            v.viewport().update()

    def update_outline(self) -> None:
        v = self.view
        path = v.tool.outline()
        self.outline.setPath(path if path is not None else QPainterPath())

    def update_cursor(self, pos: QPointF | None) -> None:
        v = self.view
        if not isinstance(v.tool, Brush):
            self.cursor.setVisible(False)
            return
        r = v.tool.size / 2
        if pos is not None:
            self.cursor.setRect(QRectF(pos.x() - r, pos.y() - r, 2 * r, 2 * r))
            self.cursor.setVisible(True)
        else:
            c = self.cursor.rect().center()
            self.cursor.setRect(QRectF(c.x() - r, c.y() - r, 2 * r, 2 * r))

    def leave(self) -> None:
        v = self.view
        self.cursor.setVisible(False)
        if v.edge_hint is not None:
            v.edge_hint = None
            v.viewport().update()
