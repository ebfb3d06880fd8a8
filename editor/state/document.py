"""The document: image, mask, canvas size, and the undo stack that records every change.

Knows no widgets; the canvas and the window bind to its signals. Every change goes through a
QUndoCommand, so undo covers mask strokes, canvas extensions and generations alike. Commands
store only the changed rectangle (before and after) unless the canvas size changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRect, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from editor.core import geometry as g

Rect = tuple[int, int, int, int]  # (x0, y0, x1, y1), exclusive ends


def qrect(r: Rect) -> QRect:
    return QRect(r[0], r[1], r[2] - r[0], r[3] - r[1])


@dataclass
class Snapshot:
    image: np.ndarray
    mask: np.ndarray
    origin: tuple[int, int]  # where the opened image's top-left sits on the canvas


class Document(QObject):
    image_changed = Signal(QRect)
    mask_changed = Signal(QRect)
    canvas_changed = Signal()  # size or whole content replaced
    path_changed = Signal(str)

    def __init__(self, image: np.ndarray | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        img = image if image is not None else np.full((512, 512, 3), 255, np.uint8)
        self._image = np.ascontiguousarray(img, np.uint8)
        self._mask = np.zeros(self._image.shape[:2], bool)
        self.original = self._image.copy()
        self.origin = (0, 0)
        self.path: Path | None = None
        # The opened file's transparency and unflattened colours (the original's coordinates),
        # written back on save; None for opaque images.
        self.alpha: np.ndarray | None = None
        self.straight: np.ndarray | None = None
        self.exif: bytes | None = None  # the opened file's EXIF (orientation applied, tag removed)
        self.icc_profile: bytes | None = None  # the opened file's (RGB) ICC profile
        self._stroke_before: np.ndarray | None = None

    # ------------------------------------------------------------------ state
    @property
    def image(self) -> np.ndarray:
        return self._image

    @property
    def mask(self) -> np.ndarray:
        return self._mask

    @property
    def width(self) -> int:
        return self._image.shape[1]

    @property
    def height(self) -> int:
        return self._image.shape[0]

    @property
    def modified(self) -> bool:
        return not self.undo_stack.isClean()

    def snapshot(self) -> Snapshot:
        return Snapshot(self._image.copy(), self._mask.copy(), self.origin)

    def reset(self, image: np.ndarray, path: Path | None = None, masked: bool = False,
              alpha: np.ndarray | None = None, straight: np.ndarray | None = None,
              exif: bytes | None = None, icc_profile: bytes | None = None) -> None:
        """A new document: forget the history (opening a file, New image)."""
        self.undo_stack.clear()
        self._image = np.ascontiguousarray(image, np.uint8).copy()
        self._mask = np.full(self._image.shape[:2], masked, bool)
        self.original = self._image.copy()
        self.origin = (0, 0)
        self.path = path
        self.alpha, self.straight, self.exif = alpha, straight, exif
        self.icc_profile = icc_profile
        self.undo_stack.setClean()
        self.canvas_changed.emit()
        self.path_changed.emit(str(path) if path else "")

    def export_rgba(self) -> np.ndarray:
        """The pixels to save: (H, W, 3), or (H, W, 4) when the opened file had transparency
        (its alpha where the original sits, added canvas opaque; pixels still as opened get
        their exact unflattened colours back)."""
        if self.alpha is None:
            return self._image
        h, w = self._mask.shape
        ox, oy = self.origin
        oh, ow = self.alpha.shape
        rgb, alpha = self._image.copy(), np.full((h, w), 255, np.uint8)
        x0, y0, x1, y1 = max(ox, 0), max(oy, 0), min(ox + ow, w), min(oy + oh, h)
        if x0 < x1 and y0 < y1:
            src = (slice(y0 - oy, y1 - oy), slice(x0 - ox, x1 - ox))
            alpha[y0:y1, x0:x1] = self.alpha[src]
            if self.straight is not None:
                region = rgb[y0:y1, x0:x1]
                same = (region == self.original[src]).all(axis=2)
                region[same] = self.straight[src][same]
        return np.dstack([rgb, alpha])

    def mark_saved(self, path: Path) -> None:
        self.path = path
        self.undo_stack.setClean()
        self.path_changed.emit(str(path))

    # ------------------------------------------------------------------ mask strokes
    def begin_stroke(self) -> np.ndarray:
        """Start a live mask edit; returns the mask array the tool may draw into."""
        self._stroke_before = self._mask.copy()
        self._stroke_box: Rect | None = None
        return self._mask

    def stroke_updated(self, rect: Rect) -> None:
        self._stroke_box = g.union(self._stroke_box, rect)
        self.mask_changed.emit(qrect(rect))

    def end_stroke(self, text: str) -> bool:
        """Record the stroke as one undo entry; False (and no entry) when nothing changed."""
        before, self._stroke_before = self._stroke_before, None
        if before is None:
            return False
        box = g.changed_box(before, self._mask, self._stroke_box)
        if box is None:
            return False
        self.undo_stack.push(_Region(self, text, box, mask=(before, self._mask)))
        return True

    def cancel_stroke(self) -> None:
        if self._stroke_before is not None:
            self._mask[...] = self._stroke_before
            self._stroke_before = None
            self.mask_changed.emit(qrect((0, 0, self.width, self.height)))

    def set_mask(self, mask: np.ndarray, text: str) -> None:
        box = g.bbox(mask != self._mask)
        if box is not None:
            self.undo_stack.push(_Region(self, text, box, mask=(self._mask, mask)))

    # ------------------------------------------------------------------ results and canvas
    def apply_result(self, image: np.ndarray, rect: Rect, mask: np.ndarray, text: str) -> None:
        """One undo entry: the image inside `rect` becomes `image`'s and the mask becomes `mask`."""
        if image.shape != self._image.shape or mask.shape != self._mask.shape:
            raise ValueError("the result does not fit this document any more")
        box = g.bbox(mask != self._mask)
        r = rect if box is None else (
            min(rect[0], box[0]), min(rect[1], box[1]), max(rect[2], box[2]), max(rect[3], box[3])
        )
        self.undo_stack.push(
            _Region(self, text, r, image=(self._image, image), mask=(self._mask, mask))
        )

    def extend(self, left: int = 0, top: int = 0, right: int = 0, bottom: int = 0) -> None:
        """Grow the canvas; the new border is masked so Generate fills it."""
        if left == top == right == bottom == 0:
            return
        img, m = g.extend(self._image, self._mask, left, top, right, bottom)
        after = Snapshot(img, m, (self.origin[0] + left, self.origin[1] + top))
        self.undo_stack.push(_Canvas(self, "Extend canvas", self.snapshot(), after))

    def replace(self, image: np.ndarray, mask: np.ndarray, text: str) -> None:
        """Whole-canvas change, possibly of another size (a generated new image)."""
        after = Snapshot(image.copy(), mask.copy(), self.origin)
        self.undo_stack.push(_Canvas(self, text, self.snapshot(), after))

    # ------------------------------------------------------------------ used by the commands
    def _write(self, rect: Rect, image: np.ndarray | None, mask: np.ndarray | None) -> None:
        x0, y0, x1, y1 = rect
        if image is not None:
            self._image[y0:y1, x0:x1] = image
            self.image_changed.emit(qrect(rect))
        if mask is not None:
            self._mask[y0:y1, x0:x1] = mask
            self.mask_changed.emit(qrect(rect))

    def _restore(self, s: Snapshot) -> None:
        self._image, self._mask, self.origin = s.image.copy(), s.mask.copy(), s.origin
        self.canvas_changed.emit()


class _Region(QUndoCommand):
    def __init__(
        self,
        doc: Document,
        text: str,
        rect: Rect,
        image: tuple[np.ndarray, np.ndarray] | None = None,
        mask: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        super().__init__(text)
        self.doc, self.rect = doc, rect
        x0, y0, x1, y1 = rect

        def cut(pair: tuple[np.ndarray, np.ndarray] | None) -> tuple | None:
            return None if pair is None else tuple(a[y0:y1, x0:x1].copy() for a in pair)

        self.image, self.mask = cut(image), cut(mask)

    def redo(self) -> None:
        self.doc._write(self.rect, *(p and p[1] for p in (self.image, self.mask)))

    def undo(self) -> None:
        self.doc._write(self.rect, *(p and p[0] for p in (self.image, self.mask)))


class _Canvas(QUndoCommand):
    def __init__(self, doc: Document, text: str, before: Snapshot, after: Snapshot) -> None:
        super().__init__(text)
        self.doc, self.before, self.after = doc, before, after

    def redo(self) -> None:
        self.doc._restore(self.after)

    def undo(self) -> None:
        self.doc._restore(self.before)
