"""Live strokes (a drag of the brush, eraser, lock or keep-out brush) and the undo stack they
share with every other edit.

A stroke is recorded as one undo entry when it ends. Entries can land while it is under way:
a Generate's result arriving, Ctrl+Z, a canvas extension undone, Shift+X. Recorded inside the
stroke, such an entry was lost to undo (the stroke's entry put back the mask from before it),
or the stroke's end compared masks of two canvas sizes and raised. So the stack records the
stroke so far as its own entry first, does the change, and the stroke goes on as a new one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtGui import QUndoCommand, QUndoStack

from editor.core import geometry as g
from editor.core.geometry import Rect


class Layer(Protocol):
    """What a stroke edits: the document's mask, a lock or keep-out layer."""

    @property
    def mask(self) -> np.ndarray: ...

    words: tuple[str, str]  # undo texts of a stroke that paints, and of one that only erases

    def record(self, text: str, rect: Rect, before: np.ndarray, after: np.ndarray) -> None:
        """Push the change of `rect` from `before` to `after` as one undo entry."""


class Stroke:
    """One layer's stroke state from begin to end."""

    def __init__(self, layer: Layer) -> None:
        self._layer = layer
        self._before: np.ndarray | None = None
        self._box: Rect | None = None

    @property
    def live(self) -> bool:
        return self._before is not None

    def begin(self) -> None:
        self._before, self._box = self._layer.mask.copy(), None

    def updated(self, rect: Rect) -> None:
        self._box = g.union(self._box, rect)

    def end(self, text: str | None = None) -> bool:
        """Record the stroke as one undo entry (`text`, or the layer's word for it); False (and
        no entry) when nothing changed."""
        before, self._before = self._before, None
        after = self._layer.mask
        if before is None or before.shape != after.shape:
            return False
        box = g.changed_box(before, after, self._box)
        if box is None:
            return False
        if text is None:
            x0, y0, x1, y1 = box
            grew = bool((after[y0:y1, x0:x1] & ~before[y0:y1, x0:x1]).any())
            text = self._layer.words[0 if grew else 1]
        self._layer.record(text, box, before, after)
        return True

    def cancel(self) -> bool:
        """Put the layer back as it was at begin; whether a stroke was under way."""
        before, self._before = self._before, None
        if before is not None and before.shape == self._layer.mask.shape:
            self._layer.mask[...] = before
        return before is not None

    def drop(self) -> None:
        """Forget the stroke (a new document: its history is gone)."""
        self._before = None


class UndoStack(QUndoStack):
    """A QUndoStack that records no entry inside a live stroke of its `strokes` (see the
    module's docstring)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.strokes: list[Stroke] = []
        self._settling = False

    def _outside_strokes(self, change: Callable[[], None]) -> None:
        if self._settling:
            change()
            return
        live = [s for s in self.strokes if s.live]
        self._settling = True
        try:
            for s in live:
                s.end()
            change()
        finally:
            self._settling = False
        for s in live:
            s.begin()

    def push(self, cmd: QUndoCommand) -> None:
        self._outside_strokes(lambda: QUndoStack.push(self, cmd))

    def undo(self) -> None:
        self._outside_strokes(lambda: QUndoStack.undo(self))

    def redo(self) -> None:
        self._outside_strokes(lambda: QUndoStack.redo(self))

    def setIndex(self, idx: int) -> None:
        self._outside_strokes(lambda: QUndoStack.setIndex(self, idx))
