"""A session's project files (save, open) and recovery after a crash, with their dialogs.

The autosave itself is editor.state.autosave: after a crash or a kill its file is an orphan,
and the next start offers to recover it (MASKGIT_EDITOR_RECOVER=yes|no answers the question
without a dialog, for tests and scripts).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal, SignalInstance, Slot
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from editor.state import project
from editor.state.autosave import (  # noqa: F401 (where tests and the app find them)
    AUTOSAVE_MS,
    Autosave,
    autosave_dir,
    data_dir,
    discard,
    keep_aside,
    orphans,
)
from editor.ui.unfrozen import run_unfrozen

if TYPE_CHECKING:
    from editor.ui.host import Host

PROJECT_FILTER = f"MaskGIT Editor project (*{project.EXT})"


class Session(QObject):
    recovered = Signal(str)

    def __init__(self, win: Host) -> None:
        super().__init__(win.window())
        self.win = win
        self.autosaver = Autosave(win.doc, self._capture, self)
        # Queued to the GUI thread: the failure comes from the autosave thread.
        self.autosaver.failed.connect(self._show_failure)
        win.controller.busy_changed.connect(self.autosaver.hold)
        # The .maskgit file the document was opened from or last saved as: Ctrl+S saves there.
        # Opening or saving an image file makes the document that file's instead.
        self.project_path: Path | None = None
        # A recovered document is a project that has no file yet: Ctrl+S asks where to save it,
        # never writes over the photo it started from (or a path a crafted autosave names).
        self.unsaved_recovery = False
        win.doc.path_changed.connect(self._forget_project)

    # ------------------------------------------------------------------ the autosave
    @property
    def path(self) -> Path:
        """This session's autosave file."""
        return self.autosaver.path

    @path.setter
    def path(self, p: Path) -> None:
        self.autosaver.path = p

    @property
    def timer(self) -> QTimer:
        return self.autosaver.timer

    @property
    def last_error(self) -> str:
        return self.autosaver.last_error

    @property
    def autosaved(self) -> SignalInstance:
        return self.autosaver.autosaved

    @property
    def failed(self) -> SignalInstance:
        return self.autosaver.failed

    def autosave(self, force: bool = False) -> Future[None] | None:
        return self.autosaver.autosave(force)

    def flush(self, timeout: float = 10.0) -> None:
        self.autosaver.flush(timeout)

    def close(self) -> None:
        """A normal end: nothing to recover."""
        self.autosaver.close()

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

    def capture(self) -> project.State:
        w = self.win
        return project.capture(w.doc, w.controller, self.settings(), steps=w.steps)

    def _capture(self, pixels: tuple[Any, Any]) -> project.State:
        w = self.win
        return project.capture(w.doc, w.controller, self.settings(), pixels, w.steps)

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
        # zlib level 1: a 12-megapixel photo's project in 1.7-1.9 s instead of 2.3-2.7 s at level
        # 6, 3 % larger (photos hardly compress); written off the GUI thread (ui.unfrozen).
        index, st = w.doc.undo_stack.index(), self.capture()
        w.statusBar().showMessage(f"Saving project {p.name}…")
        try:
            run_unfrozen(lambda: project.write(p, st, compresslevel=1))
        except (OSError, ValueError) as e:
            w.show_error("Could not save", f"could not save {p.name}: {e}")
            return False
        self._became(p, clean=w.doc.undo_stack.index() == index)
        w.statusBar().showMessage(f"Saved project {p}", 5000)
        return True

    def _became(self, p: Path, clean: bool = True) -> None:
        """The document is now the project `p`: saved (unless it changed while being written:
        a decode's result, say), and where Ctrl+S writes."""
        self.project_path = p
        self.unsaved_recovery = False
        if clean:
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
            st = run_unfrozen(lambda: project.read(path))  # the window keeps painting
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

    @Slot(str)
    def _show_failure(self, error: str) -> None:
        self.win.statusBar().showMessage(
            f"{error[:1].upper()}{error[1:]}. Your work is not autosaved: save it as a project "
            "(File › Save Project).", 30000)

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
            kept = keep_aside(found[0])
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
            discard(path)
            return False
        if answer != "yes":
            return False
        notes = self.restore(project.read(path))
        self.unsaved_recovery = True
        self.autosaver.dirty = True
        try:
            self.flush()  # our own autosave holds it now, so the old one can go
        except Exception:  # reported by _report; the orphan stays the only copy
            pass
        else:
            discard(path)
        self.win.statusBar().showMessage(
            "Recovered the unsaved work" + (f" ({'; '.join(notes)})" if notes else ""), 8000)
        self.recovered.emit(str(path))
        return True
