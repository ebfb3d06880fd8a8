"""The document: image, mask, canvas size, and the undo stack that records every change.

Knows no widgets; the canvas and the window bind to its signals. Every change goes through an
`EditCommand` (a QUndoCommand around an editor.core.edits edit), so undo covers mask strokes,
canvas extensions and generations alike, and every entry serialises itself (to_dict /
from_dict) for the project file. Edits store only the changed rectangle (before and after)
unless the canvas size changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QObject, QRect, Signal
from PySide6.QtGui import QUndoCommand

from editor.core import geometry as g
from editor.core.edits import CanvasEdit, Edit, KeepOutEdit, LockEdit, Pixels, RegionEdit
from editor.core.edits import from_dict as edit_from_dict
from editor.core.geometry import Rect
from editor.state.strokes import Stroke, UndoStack


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
        self.undo_stack = UndoStack(self)
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
        self._stroke = Stroke(self)
        self.undo_stack.strokes.append(self._stroke)

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

    def pixels(self, lock: np.ndarray | None = None) -> Pixels:
        """Copies of the editable arrays (with `lock`, the lock layer's)."""
        locked = np.zeros(self._mask.shape, bool) if lock is None else lock.copy()
        return Pixels(self._image.copy(), self._mask.copy(), self.origin, locked)

    def reset(self, image: np.ndarray, path: Path | None = None, masked: bool = False,
              alpha: np.ndarray | None = None, straight: np.ndarray | None = None,
              exif: bytes | None = None, icc_profile: bytes | None = None,
              mask: np.ndarray | None = None, origin: tuple[int, int] = (0, 0),
              original: np.ndarray | None = None) -> None:
        """A new document: forget the history (opening a file, New image, a reopened project:
        its `mask`, `origin` and `original`). A stroke under way ends with the old one."""
        for stroke in self.undo_stack.strokes:
            stroke.drop()
        self.undo_stack.clear()
        self._image = np.ascontiguousarray(image, np.uint8).copy()
        self._mask = (np.full(self._image.shape[:2], masked, bool) if mask is None
                      else mask.astype(bool).copy())
        if self._mask.shape != self._image.shape[:2]:
            raise ValueError("the mask does not match the image")
        self.original = self._image.copy() if original is None else original
        self.origin = (int(origin[0]), int(origin[1]))
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

    def mark_saved(self, path: Path, clean: bool = True) -> None:
        """The document is now the file `path`; saved (`clean`) unless it changed while being
        written."""
        self.path = path
        if clean:
            self.undo_stack.setClean()
        self.path_changed.emit(str(path))

    # ------------------------------------------------------------------ mask strokes
    words = ("Paint mask", "Erase mask")  # a stroke's undo texts (strokes.Layer)

    @property
    def stroking(self) -> bool:
        """A live mask edit (begin_stroke) is under way."""
        return self._stroke.live

    def begin_stroke(self) -> np.ndarray:
        """Start a live mask edit; returns the mask array the tool may draw into."""
        self._stroke.begin()
        return self._mask

    def stroke_updated(self, rect: Rect, show: bool = True) -> None:
        """`rect` of the mask was drawn into. `show` False: a gesture that ends at once (a
        rectangle, a selected object), whose undo entry shows it; drawing a 6-megapixel
        selection twice cost the GUI thread ~30 ms more."""
        self._stroke.updated(rect)
        if show:
            self.mask_changed.emit(qrect(rect))

    def end_stroke(self, text: str) -> bool:
        """Record the stroke as one undo entry; False (and no entry) when nothing changed."""
        return self._stroke.end(text)

    def cancel_stroke(self) -> None:
        if self._stroke.cancel():
            self.mask_changed.emit(qrect((0, 0, self.width, self.height)))

    def record(self, text: str, rect: Rect, before: np.ndarray, after: np.ndarray) -> None:
        """A stroke's undo entry (strokes.Layer)."""
        self.push(RegionEdit.between(text, rect, mask=(before, after)))

    def set_mask(self, mask: np.ndarray, text: str) -> None:
        box = g.bbox(mask != self._mask)
        if box is not None:
            self.push(RegionEdit.between(text, box, mask=(self._mask, mask)))

    # ------------------------------------------------------------------ results and canvas
    def apply_result(self, image: np.ndarray, rect: Rect, mask: np.ndarray, text: str) -> None:
        """One undo entry: the image inside `rect` becomes `image`'s and the mask becomes `mask`."""
        if image.shape != self._image.shape or mask.shape != self._mask.shape:
            raise ValueError("the result does not fit this document any more")
        box = g.bbox(mask != self._mask)
        r = rect if box is None else (
            min(rect[0], box[0]), min(rect[1], box[1]), max(rect[2], box[2]), max(rect[3], box[3])
        )
        self.push(RegionEdit.between(text, r, image=(self._image, image), mask=(self._mask, mask)))

    def extend(self, left: int = 0, top: int = 0, right: int = 0, bottom: int = 0) -> None:
        """Grow the canvas; the new border is masked so Generate fills it."""
        if left == top == right == bottom == 0:
            return
        img, m = g.extend(self._image, self._mask, left, top, right, bottom)
        after = (img, m, (self.origin[0] + left, self.origin[1] + top))
        self.push(CanvasEdit("Extend canvas", self._whole(), after))

    def replace(self, image: np.ndarray, mask: np.ndarray, text: str) -> None:
        """Whole-canvas change, possibly of another size (a generated new image)."""
        self.push(CanvasEdit(text, self._whole(), (image.copy(), mask.copy(), self.origin)))

    def _whole(self) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        # The arrays themselves, not copies: the edit that takes them replaces them here with
        # copies of its "after" (_restore), so nothing writes into them again. A 12-megapixel
        # canvas extension spent ~50 ms copying them.
        return self._image, self._mask, self.origin

    # ------------------------------------------------------------------ undo entries
    def push(self, edit: RegionEdit | CanvasEdit) -> None:
        """Do `edit` as one undo entry."""
        self.undo_stack.push(EditCommand(self, edit))

    def apply_edit(self, edit: Edit, forward: bool = True) -> None:
        """Redo (forward) or undo `edit` here: EditCommand's work."""
        if isinstance(edit, RegionEdit):
            edit.check(self._mask.shape)
            self._write(edit.rect, *edit.side(forward))
        elif isinstance(edit, CanvasEdit):
            image, mask, origin = edit.after if forward else edit.before
            self._restore(Snapshot(image, mask, origin))
        else:
            raise TypeError(f"a document does not apply {type(edit).__name__}")

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


class EditTarget(Protocol):
    def apply_edit(self, edit: Any, forward: bool = True) -> None: ...


class EditCommand(QUndoCommand):
    """One undo entry: an editor.core.edits edit done to its target (the document, or the lock
    or keep-out layer for their edits)."""

    def __init__(self, target: EditTarget, edit: Edit) -> None:
        super().__init__(edit.text)
        self.target, self.edit = target, edit

    def redo(self) -> None:
        self.target.apply_edit(self.edit, True)

    def undo(self) -> None:
        self.target.apply_edit(self.edit, False)

    def to_dict(self) -> dict[str, Any]:
        return self.edit.to_dict()

    @classmethod
    def from_dict(cls, d: dict[str, Any], doc: Document, locks: EditTarget | None,
                  keep_out: EditTarget | None = None) -> EditCommand:
        """An entry read back (a project file); raises ValueError for one it cannot be."""
        edit = edit_from_dict(d)
        if isinstance(edit, LockEdit):
            layer = keep_out if isinstance(edit, KeepOutEdit) else locks
            if layer is None:
                raise ValueError(f"a {edit.kind} entry without its layer")
            return cls(layer, edit)
        return cls(doc, edit)
