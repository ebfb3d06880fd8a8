"""The canvas's edge handles: which edges a press grabs, the cursor over them, how far a drag
grows the canvas, and the grips drawn on the border (outpainting by dragging an edge)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen

HANDLE_OUT, HANDLE_IN = 14, 4  # screen px outside / inside the border that grab an edge
Edges = tuple[bool, bool, bool, bool]  # left, top, right, bottom
Extent = tuple[int, int, int, int]  # px added left, top, right, bottom


def edge_at(r: QRect, view_pos: QPointF) -> Edges | None:
    """Which edges of the image (at `r` in the viewport) a press at `view_pos` grabs, if any."""
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


def cursor(edge: Edges | None) -> Qt.CursorShape | None:
    if edge is None:
        return None
    gl, gt, gr, gb = edge
    if (gl and gt) or (gr and gb):
        return Qt.CursorShape.SizeFDiagCursor
    if (gr and gt) or (gl and gb):
        return Qt.CursorShape.SizeBDiagCursor
    if gl or gr:
        return Qt.CursorShape.SizeHorCursor
    return Qt.CursorShape.SizeVerCursor


def extent(edge: Edges, pos: QPointF, w: int, h: int) -> Extent:
    """How far a drag of `edge` to scene point `pos` grows a w x h canvas."""
    gl, gt, gr, gb = edge
    cap = 4 * max(w, h)  # a runaway drag must not allocate gigabytes
    return (
        min(max(0, round(-pos.x())), cap) if gl else 0,
        min(max(0, round(-pos.y())), cap) if gt else 0,
        min(max(0, round(pos.x() - w)), cap) if gr else 0,
        min(max(0, round(pos.y() - h)), cap) if gb else 0,
    )


def strip(ext: Extent, w: int, h: int) -> QPainterPath:
    """The new strip only (odd-even fill: the photo is a hole in the grown rectangle)."""
    path = QPainterPath()
    path.addRect(QRectF(-ext[0], -ext[1], w + ext[0] + ext[2], h + ext[1] + ext[3]))
    path.addRect(QRectF(0, 0, w, h))
    return path


def draw_handles(p: QPainter, r: QRect, hint: QPointF | None, viewport: QSize) -> None:
    """Small grips on the middle of each edge and on the corners (they show that the canvas
    can be dragged bigger), and the hint next to the pointer over one (`hint`)."""
    p.save()
    p.resetTransform()
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
    if hint is not None:
        text = "drag outward to outpaint"
        box = QRectF(hint.x() + 14, hint.y() + 14,
                     p.fontMetrics().horizontalAdvance(text) + 12, 22)
        if box.right() > viewport.width():
            box.moveRight(hint.x() - 8)
        if box.bottom() > viewport.height():
            box.moveBottom(hint.y() - 8)
        p.fillRect(box, QColor(0, 0, 0, 170))
        p.setPen(QColor("white"))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
    p.restore()
