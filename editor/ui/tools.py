"""Mask tools: brush, eraser, rectangle, lasso, select object (GrabCut), magic wand. They draw
into the document's mask with cv2 and record one undo entry per gesture. Coordinates are image
pixels (floats from the canvas)."""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, QTimer, Signal
from PySide6.QtGui import QPainterPath, QPolygonF

from editor.core import geometry as g
from editor.core.geometry import Rect
from editor.core.limits import MAX_BRUSH, MIN_BRUSH
from editor.core.selection import grabcut, grabcut_context, magic_wand
from editor.state.document import Document
from editor.state.locks import LockLayer


class Tool:
    name = "tool"
    shortcut = ""

    def __init__(self) -> None:
        self.erase = False  # this gesture removes from the mask
        self._doc: Document | None = None

    @property
    def active(self) -> bool:
        return self._doc is not None

    def press(self, doc: Document, pos: QPointF, erase: bool = False) -> None:
        self._doc, self.erase = doc, erase or self.name == "eraser"

    def move(self, pos: QPointF) -> None: ...

    def release(self, pos: QPointF) -> None:
        self._doc = None

    def cancel(self) -> None:
        if self._doc is not None:
            self._doc.cancel_stroke()
        self._doc = None

    def outline(self) -> QPainterPath | None:
        """The shape being drawn, for the canvas to show during the gesture."""
        return None

    def _stamp(self, region: Rect, draw: Callable[[np.ndarray, tuple[int, int]], None],
               show: bool = True) -> None:
        assert self._doc is not None
        stamp(self._doc, self.erase, region, draw, show)


def stamp(doc: Document, erase: bool, region: Rect,
          draw: Callable[[np.ndarray, tuple[int, int]], None], show: bool = True) -> None:
    """Let `draw(canvas uint8, (ox, oy))` paint 255s into `region`, then merge into (or, with
    `erase`, take out of) the mask of `doc`'s running stroke (`show`: see
    Document.stroke_updated). Nothing without a stroke under way: the document was replaced
    (a file opened) during the drag, and what is drawn now would have no undo entry."""
    if not doc.stroking:
        return
    x0, y0 = max(region[0], 0), max(region[1], 0)
    x1, y1 = min(region[2], doc.width), min(region[3], doc.height)
    if x0 >= x1 or y0 >= y1:
        return
    tmp = np.zeros((y1 - y0, x1 - x0), np.uint8)
    draw(tmp, (x0, y0))
    hit = tmp > 0
    m = doc.mask[y0:y1, x0:x1]
    if erase:
        m &= ~hit
    else:
        m |= hit
    doc.stroke_updated((x0, y0, x1, y1), show)


class Brush(Tool):
    name = "brush"
    shortcut = "B"

    def __init__(self, size: int = 32) -> None:
        super().__init__()
        self.size = size
        self._last: tuple[float, float] | None = None

    def set_size(self, size: int) -> None:
        self.size = int(min(max(size, MIN_BRUSH), MAX_BRUSH))

    def press(self, doc: Document, pos: QPointF, erase: bool = False) -> None:
        super().press(doc, pos, erase)
        doc.begin_stroke()
        self._last = (pos.x(), pos.y())
        self._segment(self._last, self._last)

    def move(self, pos: QPointF) -> None:
        if self._doc is None or self._last is None:
            return
        p = (pos.x(), pos.y())
        self._segment(self._last, p)
        self._last = p

    def release(self, pos: QPointF) -> None:
        if self._doc is None:
            return
        self.move(pos)
        self._doc.end_stroke("Erase mask" if self.erase else "Paint mask")
        self._last = None
        super().release(pos)

    def _segment(self, a: tuple[float, float], b: tuple[float, float]) -> None:
        r = self.size / 2
        region = (
            math.floor(min(a[0], b[0]) - r) - 1,
            math.floor(min(a[1], b[1]) - r) - 1,
            math.ceil(max(a[0], b[0]) + r) + 2,
            math.ceil(max(a[1], b[1]) + r) + 2,
        )
        # cv2 draws on integer pixel centres; shift=4 keeps 1/16 px precision of the pointer.
        s = 16

        def draw(tmp: np.ndarray, o: tuple[int, int]) -> None:
            pa = (round((a[0] - o[0] - 0.5) * s), round((a[1] - o[1] - 0.5) * s))
            pb = (round((b[0] - o[0] - 0.5) * s), round((b[1] - o[1] - 0.5) * s))
            rad = max(round(r * s), s // 2)
            cv2.circle(tmp, pa, rad, 255, -1, cv2.LINE_8, 4)
            cv2.circle(tmp, pb, rad, 255, -1, cv2.LINE_8, 4)
            if pa != pb:
                # A filled quad between the two end circles: a round-capped thick line.
                dx, dy = pb[0] - pa[0], pb[1] - pa[1]
                n = math.hypot(dx, dy)
                ox, oy = -dy / n * rad, dx / n * rad
                quad = np.array(
                    [
                        (pa[0] + ox, pa[1] + oy),
                        (pb[0] + ox, pb[1] + oy),
                        (pb[0] - ox, pb[1] - oy),
                        (pa[0] - ox, pa[1] - oy),
                    ],
                    np.int32,
                )
                cv2.fillConvexPoly(tmp, quad, 255, cv2.LINE_8, 4)

        self._stamp(region, draw)


class Eraser(Brush):
    name = "eraser"
    shortcut = "E"


class RectSelect(Tool):
    name = "rectangle"
    shortcut = "R"

    def __init__(self) -> None:
        super().__init__()
        self._a: QPointF | None = None
        self._b: QPointF | None = None

    def press(self, doc: Document, pos: QPointF, erase: bool = False) -> None:
        super().press(doc, pos, erase)
        self._a = self._b = QPointF(pos)

    def move(self, pos: QPointF) -> None:
        if self._a is not None:
            self._b = QPointF(pos)

    def outline(self) -> QPainterPath | None:
        if self._a is None or self._b is None:
            return None
        path = QPainterPath()
        path.addRect(QRectF(self._a, self._b).normalized())
        return path

    def release(self, pos: QPointF) -> None:
        if self._doc is None or self._a is None:
            return
        doc, a, b = self._doc, self._a, QPointF(pos)
        self._a = self._b = None
        x0, x1 = sorted((round(a.x()), round(b.x())))
        y0, y1 = sorted((round(a.y()), round(b.y())))
        if x1 > x0 and y1 > y0:
            doc.begin_stroke()

            def draw(tmp: np.ndarray, o: tuple[int, int]) -> None:
                tmp[max(y0 - o[1], 0) : y1 - o[1], max(x0 - o[0], 0) : x1 - o[0]] = 255

            self._stamp((x0, y0, x1, y1), draw, show=False)  # its undo entry shows it
            doc.end_stroke("Erase rectangle" if self.erase else "Select rectangle")
        super().release(pos)

    def cancel(self) -> None:
        self._a = self._b = None
        self._doc = None


class Lasso(Tool):
    name = "lasso"
    shortcut = "L"

    def __init__(self) -> None:
        super().__init__()
        self._points: list[QPointF] = []

    def press(self, doc: Document, pos: QPointF, erase: bool = False) -> None:
        super().press(doc, pos, erase)
        self._points = [QPointF(pos)]

    def move(self, pos: QPointF) -> None:
        if self._doc is not None:
            self._points.append(QPointF(pos))

    def outline(self) -> QPainterPath | None:
        if len(self._points) < 2:
            return None
        path = QPainterPath()
        path.addPolygon(QPolygonF(self._points))
        path.closeSubpath()
        return path

    def release(self, pos: QPointF) -> None:
        if self._doc is None:
            return
        doc = self._doc
        self._points.append(QPointF(pos))
        pts = np.array([(p.x(), p.y()) for p in self._points], np.float64)
        self._points = []
        if len(pts) >= 3:
            x0, y0 = np.floor(pts.min(0)).astype(int)
            x1, y1 = np.ceil(pts.max(0)).astype(int) + 1
            doc.begin_stroke()

            def draw(tmp: np.ndarray, o: tuple[int, int]) -> None:
                poly = np.round((pts - o - 0.5) * 16).astype(np.int32)
                cv2.fillPoly(tmp, [poly], 255, cv2.LINE_8, 4)

            self._stamp((int(x0), int(y0), int(x1), int(y1)), draw, show=False)
            doc.end_stroke("Erase lasso" if self.erase else "Select lasso")
        super().release(pos)

    def cancel(self) -> None:
        self._points = []
        self._doc = None


def merge(doc: Document, picked: np.ndarray, text: str, erase: bool,
          at: tuple[int, int] = (0, 0)) -> None:
    """Merge a bool mask from editor.core.selection, whose top-left lies at `at` (x, y) of
    the image (the whole image by default), as one undo entry."""
    box = g.bbox(picked)
    if box is None:
        return
    ax, ay = at
    doc.begin_stroke()

    def draw(tmp: np.ndarray, o: tuple[int, int]) -> None:
        y, x = o[1] - ay, o[0] - ax
        tmp[picked[y : y + tmp.shape[0], x : x + tmp.shape[1]]] = 255

    region = (box[0] + ax, box[1] + ay, box[2] + ax, box[3] + ay)
    stamp(doc, erase, region, draw, show=False)  # the undo entry shows it
    doc.end_stroke(("Deselect " if erase else "Select ") + text)


class Background(QObject):
    """Runs a selection off the GUI thread, one after another, and hands its result back on
    the GUI thread: GrabCut takes 0.3-0.7 s at any photo size (it works at 400 px), which the
    window spent frozen at every Select object."""

    delivered = Signal(object)  # (future, then)
    started = Signal()
    finished = Signal()  # a result was handed over (or dropped: the picture changed)

    def __init__(self) -> None:
        super().__init__()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="select")
        self.running = 0
        self.delivered.connect(self._deliver)  # queued: emitted on the pool's thread

    def run(self, fn: Callable[..., Any], *args: Any, then: Callable[[Any], None]) -> None:
        self.running += 1
        self.started.emit()
        fut = self._pool.submit(fn, *args)
        fut.add_done_callback(lambda f: self.delivered.emit((f, then)))

    def close(self) -> None:
        """No more selections (the window closes): a queued one is dropped, a running one
        ends on its own and its thread with it."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _deliver(self, item: tuple[Future[Any], Callable[[Any], None]]) -> None:
        fut, then = item
        self.running -= 1
        if fut.exception() is None:
            then(fut.result())
        self.finished.emit()


class ObjectSelect(RectSelect):
    """Drag a box around an object: GrabCut separates it from the background in the box, off
    the GUI thread; the mask joins the document's when it is ready."""

    name = "object"
    shortcut = "O"

    def __init__(self) -> None:
        super().__init__()
        self.background = Background()

    def release(self, pos: QPointF) -> None:
        if self._doc is None or self._a is None:
            return
        doc, a, erase = self._doc, self._a, self.erase
        self._a = self._b = None
        box, (cx0, cy0, cx1, cy1) = grabcut_context(
            doc.image.shape, (round(a.x()), round(a.y()), round(pos.x()), round(pos.y())))
        seen = doc.image[cy0:cy1, cx0:cx1].copy()  # all grabcut reads
        local = (box[0] - cx0, box[1] - cy0, box[2] - cx0, box[3] - cy0)
        shape = doc.image.shape

        def then(picked: np.ndarray) -> None:
            if doc.image.shape != shape or not np.array_equal(doc.image[cy0:cy1, cx0:cx1], seen):
                return  # the picture changed meanwhile: this outline is not of it
            if doc.stroking:  # a brush stroke is under way: join the mask after it
                QTimer.singleShot(30, lambda: then(picked))
                return
            merge(doc, picked, "object", erase, at=(cx0, cy0))

        self.background.run(grabcut, seen, local, then=then)
        Tool.release(self, pos)


class MagicWand(Tool):
    """Click a colour: the connected region of similar colour (within `tolerance`)."""

    name = "wand"
    shortcut = "W"

    def __init__(self, tolerance: int = 32) -> None:
        super().__init__()
        self.tolerance = tolerance

    def press(self, doc: Document, pos: QPointF, erase: bool = False) -> None:
        super().press(doc, pos, erase)
        seed = (math.floor(pos.x()), math.floor(pos.y()))
        merge(doc, magic_wand(doc.image, seed, self.tolerance), "similar colour", self.erase)


class LockBrush(Brush):
    """The lock brush: paints pixels to keep into a LockLayer; right button or Alt unlocks.
    Whole token cells are what the model keeps, so the canvas shows the locked cells."""

    name = "lock"
    shortcut = "K"

    def __init__(self, layer: LockLayer, size: int = 32) -> None:
        super().__init__(size)
        self.layer = layer

    def press(self, doc: Document, pos: QPointF, erase: bool = False) -> None:
        super().press(self.layer, pos, erase)  # type: ignore[arg-type]  # same stroke API


class KeepOutBrush(LockBrush):
    """The keep-out brush: paints pixels the photo's fills never copy (a subject that must not
    come back beside itself in an outpaint) into the KeepOutLayer; right button or Alt erases."""

    name = "keepout"
    shortcut = "X"
