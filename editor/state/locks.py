"""The lock layer: pixels the user painted to keep. Every token cell holding a locked pixel is a
known token in any later regeneration (never masked, not even by the dilation ring), and its
pixels are composited back bit for bit (geometry.token_mask / locked_pixels).

The keep-out layer (KeepOutLayer, the same painting): pixels the photo's fills never copy (a
subject that must not come back beside itself in an outpaint; see exemplar.fill).

A QObject beside the Document rather than inside it: it has the Document's stroke API
(begin_stroke / stroke_updated / end_stroke / cancel_stroke / mask), so the brush tools draw
into it unchanged, and its strokes go on the Document's undo stack, so undo is one history.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QRect, Signal

from editor.core import geometry as g
from editor.core.edits import Edit, KeepOutEdit, LockEdit, shift_lock
from editor.core.geometry import Rect
from editor.state.document import Document, EditCommand, qrect
from editor.state.strokes import Stroke


class LockLayer(QObject):
    mask_changed = Signal(QRect)  # same name as Document's: the tools call stroke_updated
    edit_type: type[LockEdit] = LockEdit
    words = ("Lock", "Unlock")  # undo texts of a stroke that paints, and one that erases

    def __init__(self, doc: Document, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self._locked = np.zeros(doc.mask.shape, bool)
        self._origin = doc.origin
        self._stroke = Stroke(self)
        doc.undo_stack.strokes.append(self._stroke)
        doc.canvas_changed.connect(self._on_canvas)

    # The stroke API of Document, so Brush/Eraser/RectSelect/Lasso can draw into the lock.
    @property
    def mask(self) -> np.ndarray:
        return self._locked

    @property
    def width(self) -> int:
        return self._locked.shape[1]

    @property
    def height(self) -> int:
        return self._locked.shape[0]

    def any(self) -> bool:
        return bool(self._locked.any())

    def copy(self) -> np.ndarray | None:
        """The layer for a Job: None when it is empty."""
        return self._locked.copy() if self._locked.any() else None

    @property
    def stroking(self) -> bool:
        return self._stroke.live

    def begin_stroke(self) -> np.ndarray:
        self._stroke.begin()
        return self._locked

    def stroke_updated(self, rect: Rect, show: bool = True) -> None:
        self._stroke.updated(rect)
        if show:
            self.mask_changed.emit(qrect(rect))

    def end_stroke(self, text: str) -> bool:
        text = text.replace("Paint mask", self.words[0]).replace("Erase mask", self.words[1])
        return self._stroke.end(text)

    def cancel_stroke(self) -> None:
        if self._stroke.cancel():
            self.mask_changed.emit(QRect(0, 0, self.width, self.height))

    def record(self, text: str, rect: Rect, before: np.ndarray, after: np.ndarray) -> None:
        """A stroke's undo entry (strokes.Layer)."""
        self._push(text, rect, before, after)

    def set(self, locked: np.ndarray, text: str | None = None) -> None:
        """Replace the whole layer as one undo entry (tests, "lock the last result")."""
        box = g.bbox(locked != self._locked)
        if box is not None:
            self._push(text or self.words[0], box, self._locked, locked)

    def load(self, locked: np.ndarray | None) -> None:
        """Replace the whole lock without an undo entry (a reopened project's state)."""
        shape = self.doc.mask.shape
        if locked is not None and locked.shape != shape:
            raise ValueError(f"the {self.words[0].lower()} layer does not fit the document")
        self._locked = np.zeros(shape, bool) if locked is None else locked.astype(bool)
        self._origin = self.doc.origin
        self.mask_changed.emit(QRect(0, 0, shape[1], shape[0]))

    def _push(self, text: str, rect: Rect, before: np.ndarray, after: np.ndarray) -> None:
        x0, y0, x1, y1 = rect
        edit = self.edit_type(text, rect, before[y0:y1, x0:x1].copy(),
                              after[y0:y1, x0:x1].copy())
        self.doc.undo_stack.push(EditCommand(self, edit))

    def apply_edit(self, edit: Edit, forward: bool = True) -> None:
        """Redo (forward) or undo this layer's edit: EditCommand's work."""
        if type(edit) is not self.edit_type:
            raise TypeError(f"a {type(self).__name__} does not apply {type(edit).__name__}")
        edit.check(self._locked.shape)
        self._write(edit.rect, edit.after if forward else edit.before)

    def _write(self, rect: Rect, part: np.ndarray) -> None:
        x0, y0, x1, y1 = rect
        self._locked[y0:y1, x0:x1] = part
        self.mask_changed.emit(qrect(rect))

    def _on_canvas(self) -> None:
        """Follow canvas changes: a new document clears the lock, an extension (or its undo)
        shifts it by the change of origin."""
        shape, origin = self.doc.mask.shape, self.doc.origin
        if self.doc.undo_stack.count() and self._locked.any():
            dx, dy = origin[0] - self._origin[0], origin[1] - self._origin[1]
            new = shift_lock(self._locked, shape, dx, dy)
        else:
            new = np.zeros(shape, bool)
        self._locked, self._origin = new, origin
        self.mask_changed.emit(QRect(0, 0, shape[1], shape[0]))


class KeepOutLayer(LockLayer):
    """Pixels the photo's fills never copy, painted with the keep-out brush."""

    edit_type = KeepOutEdit
    words = ("Keep out", "Let in")
