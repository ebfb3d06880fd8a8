"""`maskgit-editor [IMAGE]`: start the desktop app."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from types import TracebackType

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from editor.core.device import device
from editor.state.worker import Worker, WorkerThread
from editor.ui.main_window import MainWindow


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="maskgit-editor", description="MaskGIT image editor")
    p.add_argument("image", nargs="?", help="image to open (PNG, JPEG, WebP)")
    p.add_argument("--model", default=None,
                   help="'default', 'tiny' (random weights) or a .safetensors path")
    p.add_argument("--device", type=device, default="auto", help="cpu, cuda, mps or auto")
    return p.parse_args(argv)


def qt_binding_problem() -> str | None:
    """A reason the installed PySide6 cannot run this app, or None.

    PySide6 6.12.0 on CPython 3.11 drops a reference to None on every call of a method that
    returns nothing; after a few thousand such calls the interpreter aborts ("deallocating
    None"). Better to say so at start than to crash in the middle of someone's edit.
    """
    from PySide6 import __version__
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(64):
        probe.setObjectName("probe")
    if sys.getrefcount(None) < before - 32:
        return (
            f"PySide6 {__version__} has a reference-counting bug on Python "
            f"{sys.version_info.major}.{sys.version_info.minor} that crashes the app after a "
            "few thousand Qt calls. Install another version, e.g.\n"
            "    pip install 'PySide6-Essentials<6.12'"
        )
    return None


def _report_unexpected_errors(win: MainWindow) -> None:
    """A bug in a GUI-thread slot must not pass silently or lose work: show it, autosave now,
    keep running."""

    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        traceback.print_exception(kind, value, tb)
        try:
            win.session.autosave(force=True)
            saved = ("Your work is autosaved" if not win.session.last_error
                     else f"Your work is NOT autosaved ({win.session.last_error})")
            win.show_error("Unexpected error", f"{kind.__name__}: {value}\n\n{saved}; saving "
                           "it now as a project (File > Save Project) is wise.")
        except Exception:  # the hook itself must never raise
            traceback.print_exc()

    sys.excepthook = hook


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    problem = qt_binding_problem()
    if problem:
        print(f"maskgit-editor: error: {problem}", file=sys.stderr)
        return 1
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName("MaskGIT Editor")
    app.setApplicationName("maskgit-editor")
    settings = QSettings()
    win = MainWindow(WorkerThread(Worker()), settings)
    model = args.model or str(settings.value("model", "default"))
    win.sampling.select_model(model)
    startup = {"pending": True}

    def fall_back(title: str, _text: str) -> None:
        # A remembered model that is gone or broken must not leave the app without one. (The
        # controller's signals arrive on the GUI thread; the worker's would not.)
        if (startup.pop("pending", False) and title == "Model not loaded"
                and model != "default" and not win.controller.ready):
            win.controller.load_model("default", args.device)

    win.controller.error.connect(fall_back)
    win.controller.model_changed.connect(lambda *_: startup.pop("pending", None))
    win.controller.load_model(model, args.device)
    win.show()
    _report_unexpected_errors(win)

    def start() -> None:
        # After show(): the recovery question and a bad path's message appear over the window.
        if win.session.offer_recovery():
            return
        if args.image:
            win.open_path(args.image)
        else:
            win.canvas.fit()

    QTimer.singleShot(0, start)
    rc = int(app.exec())
    if not win.worker_stopped:
        # The worker is stuck in a call that cannot be interrupted; destroying its running
        # QThread would abort with a core dump, so leave without running destructors.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    return rc
