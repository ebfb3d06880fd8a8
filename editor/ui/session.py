"""Project save/open for the main window, autosave, and recovery after a crash.

Autosave: every change to the undo stack restarts an idle timer (AUTOSAVE_MS, default 3 s); when
it fires, the session is captured on the GUI thread (cheap: copies of the image and mask) and
written as a project file by one background thread, atomically, to
`<data dir>/autosave/session-<id>.maskgit` (data dir: MASKGIT_EDITOR_DATA, else the platform's
user data dir). A QLockFile next to it says the session is alive; a normal close deletes both.
After a crash or a kill the lock is stale, so the next start finds the file and offers to recover
it (MASKGIT_EDITOR_RECOVER=yes|no answers the question without a dialog, for tests and scripts).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import platformdirs
from PySide6.QtCore import QLockFile, QObject, QRect, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from editor.state import project

if TYPE_CHECKING:
    from editor.ui.host import Host

AUTOSAVE_MS = int(os.environ.get("MASKGIT_EDITOR_AUTOSAVE_MS", "3000"))
PROJECT_FILTER = f"MaskGIT Editor project (*{project.EXT})"


def data_dir() -> Path:
    override = os.environ.get("MASKGIT_EDITOR_DATA")
    return Path(override) if override else Path(platformdirs.user_data_dir("maskgit-editor"))


def autosave_dir() -> Path:
    return data_dir() / "autosave"


def _lock_for(path: Path) -> QLockFile:
    lock = QLockFile(str(path.with_suffix(".lock")))
    lock.setStaleLockTime(0)  # stale only when its process is gone, never by age
    return lock


def orphans() -> list[Path]:
    """Autosaves whose session is not running any more (newest first)."""
    found = []
    for p in autosave_dir().glob(f"session-*{project.EXT}"):
        lock = _lock_for(p)
        if lock.tryLock(0):  # the owner is gone (QLockFile checks that its pid is alive)
            lock.unlock()
            found.append(p)
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


class Session(QObject):
    autosaved = Signal(str)  # path, after each completed autosave
    recovered = Signal(str)
    failed = Signal(str)  # the first autosave error after a success (any thread)

    def __init__(self, win: Host) -> None:
        super().__init__(win.window())
        self.win = win
        self.path = autosave_dir() / f"session-{os.getpid()}-{uuid.uuid4().hex[:8]}{project.EXT}"
        self._lock: QLockFile | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="autosave")
        self._pending: Future | None = None
        self._cache: project.Cache = {}  # compressed history arrays (autosave thread only)
        self._dirty = False
        self._closed = False
        self.last_error = ""
        self.failed.connect(self._show_failure)  # queued to the GUI thread: Session lives there
        # The .maskgit file the document was opened from or last saved as: Ctrl+S saves there.
        # Opening or saving an image file makes the document that file's instead.
        self.project_path: Path | None = None
        # A recovered document is a project that has no file yet: Ctrl+S asks where to save it,
        # never writes over the photo it started from (or a path a crafted autosave names).
        self.unsaved_recovery = False
        win.doc.path_changed.connect(self._forget_project)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(AUTOSAVE_MS)
        self.timer.timeout.connect(self.autosave)
        win.doc.undo_stack.indexChanged.connect(self._changed)
        # Copies of the image and mask from the last capture, and what changed since: the next
        # capture copies only that (a full copy of a 64 MP image stalls the GUI ~0.5 s).
        self._shadow: tuple[np.ndarray, np.ndarray] | None = None
        self._dirty_box: list[int] | None = None  # x0, y0, x1, y1; None: nothing changed
        self._dirty_all = True
        win.doc.image_changed.connect(self._touch)
        win.doc.mask_changed.connect(self._touch)
        win.doc.canvas_changed.connect(self._touch_all)

    # ------------------------------------------------------------------ state
    def settings(self) -> dict[str, Any]:
        """The settings a project keeps: the model's name and the observable settings."""
        c = self.win.controller
        return dict(model=c.model_name, **c.settings.to_dict())

    def apply_settings(self, st: dict[str, Any]) -> list[str]:
        """The settings from a project; returns notes for the status bar. A damaged value
        keeps the current one."""
        self.win.controller.settings.apply(st)
        # A project may come from anyone: the model it names is mentioned, never loaded (a
        # weights file runs through the model loader) nor made the startup model.
        model = str(st.get("model") or "")
        if model and model != self.win.controller.model_name:
            return [f"made with the model {Path(model).name[:80]}: choose it under Model to "
                    "use it"]
        return []

    def _touch(self, r: QRect) -> None:
        b = [r.x(), r.y(), r.x() + r.width(), r.y() + r.height()]
        d = self._dirty_box
        self._dirty_box = b if d is None else [min(d[0], b[0]), min(d[1], b[1]),
                                               max(d[2], b[2]), max(d[3], b[3])]

    def _touch_all(self) -> None:
        self._dirty_all = True

    def _pixels(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the document's image and mask for a capture, made as cheaply as is safe:
        the previous copies, patched where the document changed, once no write reads them."""
        doc = self.win.doc
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

    def capture(self) -> project.State:
        w = self.win
        return project.capture(w.doc, w.controller, self.settings(), steps=w.steps)

    def restore(self, st: project.State) -> list[str]:
        w = self.win
        w.controller.cancel()
        w.controller.accept()
        notes = project.restore(st, w.doc, w.controller, w.steps)
        notes += self.apply_settings(st.settings)
        QTimer.singleShot(0, w.canvas.fit)
        return notes

    # ------------------------------------------------------------------ project files
    def save_project(self, path: str | Path | None = None) -> bool:
        w = self.win
        if path is None:
            start = str(self.project_path
                        or (w.doc.path or Path("untitled")).with_suffix(project.EXT))
            path, _ = QFileDialog.getSaveFileName(w.window(), "Save project", start,
                                                  PROJECT_FILTER)
            if not path:
                return False
        p = Path(path)
        if p.suffix.lower() != project.EXT:
            p = p.with_suffix(project.EXT)
        try:
            project.write(p, self.capture(), compresslevel=6)
        except (OSError, ValueError) as e:
            w.show_error("Could not save", f"could not save {p.name}: {e}")
            return False
        self._became(p)
        w.statusBar().showMessage(f"Saved project {p}", 5000)
        return True

    def _became(self, p: Path) -> None:
        """The document is now the project `p`: saved, and where Ctrl+S writes."""
        self.project_path = p
        self.unsaved_recovery = False
        self.win.doc.undo_stack.setClean()
        self.win.update_title()

    @Slot(str)
    def _forget_project(self, _path: str = "") -> None:
        self.unsaved_recovery = False
        if self.project_path is not None:
            self.project_path = None
            self.win.update_title()

    def open_project(self, path: str | Path) -> bool:
        w = self.win
        # Reading is bounded (editor.state.project) but a big project still takes seconds: say so.
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            st = project.read(path)
        except project.ProjectError as e:
            w.show_error("Could not open", str(e))
            return False
        finally:
            QApplication.restoreOverrideCursor()
        notes = self.restore(st)
        self._became(Path(path))
        w.statusBar().showMessage(f"Opened project {Path(path).name}"
                                  + (f" ({'; '.join(notes)})" if notes else ""), 8000)
        return True

    # ------------------------------------------------------------------ autosave
    def _changed(self, *_args: object) -> None:
        self._dirty = True
        self.timer.start()

    def autosave(self, force: bool = False) -> Future | None:
        """Capture now and write in the background; returns the write's future."""
        if self._closed or not (self._dirty or force):
            return None
        if self.win.doc.undo_stack.count() == 0:
            self._dirty = False
            return None
        if self._lock is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                self._report(f"autosave failed: cannot create {self.path.parent}: "
                             f"{e.strerror or e}")
                return None
            self._lock = _lock_for(self.path)
            if not self._lock.tryLock(0):
                self._report(f"autosave failed: cannot lock {self.path}")
                self._lock = None
                return None
        self._dirty = False
        st = project.capture(self.win.doc, self.win.controller, self.settings(), self._pixels(),
                             self.win.steps)
        self._pending = self._pool.submit(project.write, self.path, st, 1, self._cache)
        self._pending.add_done_callback(self._written)
        return self._pending

    def _written(self, fut: Future) -> None:  # on the autosave thread
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

    @Slot(str)
    def _show_failure(self, error: str) -> None:
        self.win.statusBar().showMessage(
            f"{error[:1].upper()}{error[1:]}. Your work is not autosaved: save it as a project "
            "(File › Save Project).", 30000)

    def flush(self, timeout: float = 10.0) -> None:
        """Write any pending change now and wait for it (tests, and before quitting)."""
        if self.timer.isActive():
            self.timer.stop()
        fut = self.autosave()
        pending = fut or self._pending
        if pending is not None:
            pending.result(timeout)

    def close(self) -> None:
        """A normal end: nothing to recover. Waits for a running write, then deletes it."""
        if self._closed:
            return
        self._closed = True
        self.timer.stop()
        with contextlib.suppress(RuntimeError, TypeError):
            self.win.doc.undo_stack.indexChanged.disconnect(self._changed)
        self._pool.shutdown(wait=True, cancel_futures=True)
        with contextlib.suppress(OSError):  # an unusable data folder must not stop the close
            self.path.unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.unlock()
            self._lock = None

    # ------------------------------------------------------------------ recovery
    def offer_recovery(self) -> bool:
        """If an earlier session died with unsaved work, offer to restore it. True if restored.
        An orphan that cannot be recovered is kept aside (renamed *.damaged), never deleted
        unasked, and never stops the start (the IMAGE argument still opens)."""
        try:
            found = orphans()
        except OSError:
            return False
        if not found:
            return False
        try:
            return self._offer(found[0])
        except Exception as e:
            kept = self._keep_aside(found[0])
            self.win.statusBar().showMessage(
                f"Unsaved work from an earlier session could not be recovered ({e}); the file "
                f"is kept as {kept}", 30000)
            return False

    def _offer(self, path: Path) -> bool:
        info = project.peek(path)
        try:
            when = "autosaved " + time.strftime("%Y-%m-%d %H:%M",
                                                time.localtime(info["saved_at"]))
        except (ValueError, OverflowError, OSError):
            when = "autosaved at an unknown time"
        name = Path(info["path"]).name if info["path"] else "an untitled image"
        answer = os.environ.get("MASKGIT_EDITOR_RECOVER", "").lower()
        if answer not in ("yes", "no"):
            box = QMessageBox(QMessageBox.Icon.Question, "Recover unsaved work?",
                              f"MaskGIT Editor did not close properly. Work on {name} "
                              f"({info['index']} edits, {when}) can be recovered.",
                              QMessageBox.StandardButton.NoButton, self.win.window())
            rec = box.addButton("Recover", QMessageBox.ButtonRole.AcceptRole)
            dis = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
            box.addButton("Later", QMessageBox.ButtonRole.RejectRole)
            box.exec()
            answer = "yes" if box.clickedButton() is rec else (
                "no" if box.clickedButton() is dis else "later")
        if answer == "no":
            self._discard(path)
            return False
        if answer != "yes":
            return False
        notes = self.restore(project.read(path))
        self.unsaved_recovery = True
        self._dirty = True
        try:
            self.flush()  # our own autosave holds it now, so the old one can go
        except Exception:  # reported by _report; the orphan stays the only copy
            pass
        else:
            self._discard(path)
        self.win.statusBar().showMessage(
            "Recovered the unsaved work" + (f" ({'; '.join(notes)})" if notes else ""), 8000)
        self.recovered.emit(str(path))
        return True

    @staticmethod
    def _keep_aside(path: Path) -> Path:
        """Out of the orphans' way (so it is not offered at every start), for the user to
        send or delete."""
        kept = path.with_name(f"{path.name}.damaged")
        with contextlib.suppress(OSError):
            path.replace(kept)
            path.with_suffix(".lock").unlink(missing_ok=True)
        return kept

    @staticmethod
    def _discard(path: Path) -> None:
        path.unlink(missing_ok=True)
        path.with_suffix(".lock").unlink(missing_ok=True)
