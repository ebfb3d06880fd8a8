"""Photo guidance's guide, made while the user is still deciding (editor.core.guides).

A guided Generate starts from the hole filled by shift-map, most of its wait on a large hole.
Once a mask edit has settled (a stroke, a selection, a canvas edge dragged out, an undo), the
guide that Generate would need is started in the background; the Generate that follows finds it
made, or being made, and waits only for the rest.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Slot

from editor.core import pipeline
from editor.state.document import Document
from editor.state.locks import LockLayer

SETTLE_MS = 50  # after the last mask edit: strokes come further apart than this
# Above this the copies the guide needs (the picture and the mask) would stall the GUI thread
# for more than a frame; such pictures make their guide when Generate is pressed.
MAX_PIXELS = 4_000_000


class GuidePrefetch(QObject):
    """Starts the guide of the document's mask after each settled mask edit, when `guided()`
    says a Generate now would be guided (photo guidance on, the automatic class, no job)."""

    def __init__(self, doc: Document, locks: LockLayer, guided: Callable[[], bool],
                 candidates: Callable[[], int] = lambda: 1,
                 parent: QObject | None = None, keep_out: LockLayer | None = None) -> None:
        super().__init__(parent)
        self._doc, self._locks, self._guided = doc, locks, guided
        self._keep_out = keep_out
        self._candidates = candidates  # a batch takes turns between pipeline.guides_per_batch
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SETTLE_MS)
        self._timer.timeout.connect(self.prefetch)
        # Bound slots, not lambdas: they go with this object, before the document does.
        doc.undo_stack.indexChanged.connect(self._settle)
        locks.mask_changed.connect(self._settle)
        self.asked = 0  # guides asked for (tests and the bench read it)

    @Slot()
    def _settle(self) -> None:
        self._timer.start()

    def prefetch(self) -> None:
        doc = self._doc
        if not self._guided() or doc.width * doc.height > MAX_PIXELS or not doc.mask.any():
            return
        locked = self._locks.copy()
        todo = doc.mask & ~locked if locked is not None else doc.mask.copy()
        if todo.any():
            keep_out = self._keep_out.copy() if self._keep_out is not None else None
            pipeline.prefetch_guide(doc.image.copy(), todo, self._candidates(), keep_out)
            self.asked += 1
