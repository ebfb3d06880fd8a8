"""Autosave and the files crash recovery finds (no widgets).

Every change to the undo stack restarts an idle timer (AUTOSAVE_MS, default 3 s); when it fires
(and no decode runs: `hold`), the session is captured on the GUI thread (cheap: copies of the
image and mask, patched where the document changed) and written as a project file by one
background thread, atomically, to
`<data dir>/autosave/session-<id>.maskgit` (data dir: MASKGIT_EDITOR_DATA, else the platform's
user data dir). A QLockFile next to it says the session is alive; a normal close deletes both.
After a crash or a kill the lock is stale: `orphans()` finds the file for the next start.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import platformdirs
from PySide6.QtCore import QLockFile, QObject, QRect, QTimer, Signal

from editor.state import project
from editor.state.document import Document

AUTOSAVE_MS = int(os.environ.get("MASKGIT_EDITOR_AUTOSAVE_MS", "3000"))
Pixels = tuple[np.ndarray, np.ndarray]  # copies of the image and the mask
Capture = Callable[[Pixels], project.State]


def data_dir() -> Path:
    override = os.environ.get("MASKGIT_EDITOR_DATA")
    return Path(override) if override else Path(platformdirs.user_data_dir("maskgit-editor"))


def autosave_dir() -> Path:
    return data_dir() / "autosave"


def lock_for(path: Path) -> QLockFile:
    lock = QLockFile(str(path.with_suffix(".lock")))
    lock.setStaleLockTime(0)  # stale only when its process is gone, never by age
    return lock


def orphans() -> list[Path]:
    """Autosaves whose session is not running any more (newest first)."""
    found = []
    for p in autosave_dir().glob(f"session-*{project.EXT}"):
        lock = lock_for(p)
        if lock.tryLock(0):  # the owner is gone (QLockFile checks that its pid is alive)
            lock.unlock()
            found.append(p)
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def keep_aside(path: Path) -> Path:
    """Out of the orphans' way (so it is not offered at every start), for the user to send or
    delete."""
    kept = path.with_name(f"{path.name}.damaged")
    with contextlib.suppress(OSError):
        path.replace(kept)
        path.with_suffix(".lock").unlink(missing_ok=True)
    return kept


def discard(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_suffix(".lock").unlink(missing_ok=True)


class Autosave(QObject):
    autosaved = Signal(str)  # path, after each completed autosave
    failed = Signal(str)  # the first autosave error after a success (any thread)

    def __init__(self, doc: Document, capture: Capture, parent: QObject | None = None) -> None:
        """`capture(pixels)`: the session as a project State, given copies of the image and
        mask (editor.state.project.capture)."""
        super().__init__(parent)
        self.doc, self._capture = doc, capture
        self.path = autosave_dir() / f"session-{os.getpid()}-{uuid.uuid4().hex[:8]}{project.EXT}"
        self._lock: QLockFile | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="autosave")
        self._pending: Future[None] | None = None
        self._cache: project.Cache = {}  # compressed history arrays (autosave thread only)
        self.dirty = False
        self._closed = False
        self.last_error = ""
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(AUTOSAVE_MS)
        self.timer.timeout.connect(self._due)
        self._held = False  # a decode runs: the autosave due waits for its end (hold)
        doc.undo_stack.indexChanged.connect(self._changed)
        # Copies of the image and mask from the last capture, and what changed since: the next
        # capture copies only that (a full copy of a 64 MP image stalls the GUI ~0.5 s).
        self._shadow: Pixels | None = None
        self._dirty_box: list[int] | None = None  # x0, y0, x1, y1; None: nothing changed
        self._dirty_all = True
        doc.image_changed.connect(self._touch)
        doc.mask_changed.connect(self._touch)
        doc.canvas_changed.connect(self._touch_all)

    def _changed(self, *_args: object) -> None:
        self.dirty = True
        self.timer.start()

    def _due(self) -> None:
        if not self._held:
            self.autosave()

    def hold(self, on: bool) -> None:
        """While a decode runs, an autosave that falls due waits: its capture and its write
        would take the GUI thread (and a core) from the decode's live steps. The document
        does not change meanwhile but for mask strokes; on release the idle timer runs again
        (the commit restarts it anyway)."""
        self._held = on
        if not on and self.dirty and not self.timer.isActive():
            self.timer.start()

    def _touch(self, r: QRect) -> None:
        b = [r.x(), r.y(), r.x() + r.width(), r.y() + r.height()]
        d = self._dirty_box
        self._dirty_box = b if d is None else [min(d[0], b[0]), min(d[1], b[1]),
                                               max(d[2], b[2]), max(d[3], b[3])]

    def _touch_all(self) -> None:
        self._dirty_all = True

    def _pixels(self) -> Pixels:
        """Copies of the document's image and mask for a capture, made as cheaply as is safe:
        the previous copies, patched where the document changed, once no write reads them."""
        doc = self.doc
        shadow, busy = self._shadow, self._pending is not None and not self._pending.done()
        if (busy or shadow is None or self._dirty_all
                or shadow[0].shape != doc.image.shape or shadow[1].shape != doc.mask.shape):
            shadow = (doc.image.copy(), doc.mask.copy())
        elif self._dirty_box is not None:
            h, w = doc.mask.shape
            x0, y0, x1, y1 = self._dirty_box
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
            if x0 < x1 and y0 < y1:
                shadow[0][y0:y1, x0:x1] = doc.image[y0:y1, x0:x1]
                shadow[1][y0:y1, x0:x1] = doc.mask[y0:y1, x0:x1]
        self._shadow, self._dirty_box, self._dirty_all = shadow, None, False
        return shadow

    def _locked(self) -> bool:
        """Hold the lock that says this session's autosave is alive."""
        if self._lock is not None:
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self._report(f"autosave failed: cannot create {self.path.parent}: "
                         f"{e.strerror or e}")
            return False
        self._lock = lock_for(self.path)
        if not self._lock.tryLock(0):
            self._report(f"autosave failed: cannot lock {self.path}")
            self._lock = None
            return False
        return True

    def autosave(self, force: bool = False) -> Future[None] | None:
        """Capture now and write in the background; returns the write's future."""
        if self._closed or not (self.dirty or force):
            return None
        if self.doc.undo_stack.count() == 0:
            self.dirty = False
            return None
        if not self._locked():
            return None
        self.dirty = False
        st = self._capture(self._pixels())
        self._pending = self._pool.submit(project.write, self.path, st, 1, self._cache)
        self._pending.add_done_callback(self._written)
        return self._pending

    def _written(self, fut: Future[None]) -> None:  # on the autosave thread
        e = fut.exception()
        self._report(f"autosave failed: {e}" if e else "")
        if e is None:
            self.autosaved.emit(str(self.path))  # queued to the GUI thread

    def _report(self, error: str) -> None:
        """Remember the autosave's state; a failure is announced once, not every few seconds
        (a full or read-only disk fails every time)."""
        first = bool(error) and not self.last_error
        self.last_error = error
        if first:
            self.failed.emit(error)

    def flush(self, timeout: float = 10.0) -> None:
        """Write any pending change now and wait for it (tests, and before quitting)."""
        if self.timer.isActive():
            self.timer.stop()
        fut = self.autosave()
        pending = fut or self._pending
        if pending is not None:
            pending.result(timeout)

    def abandon(self) -> None:
        """Let go of the lock and leave the file, as a process that died would (tests)."""
        if self._lock is not None:
            self._lock.unlock()
            self._lock = None

    def close(self) -> None:
        """A normal end: nothing to recover. Waits for a running write, then deletes it."""
        if self._closed:
            return
        self._closed = True
        self.timer.stop()
        with contextlib.suppress(RuntimeError, TypeError):
            self.doc.undo_stack.indexChanged.disconnect(self._changed)
        self._pool.shutdown(wait=True, cancel_futures=True)
        with contextlib.suppress(OSError):  # an unusable data folder must not stop the close
            self.path.unlink(missing_ok=True)
        self.abandon()
