"""`maskgit-editor [IMAGE]`: start the desktop app."""

from __future__ import annotations

import argparse
import sys

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from editor.main_window import MainWindow
from editor.worker import Worker, WorkerThread


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="maskgit-editor", description="MaskGIT image editor")
    p.add_argument("image", nargs="?", help="image to open (PNG, JPEG, WebP)")
    p.add_argument("--model", default=None,
                   help="'default', 'tiny' (random weights) or a .safetensors path")
    p.add_argument("--device", default="auto", help="cpu, cuda, mps or auto")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName("MaskGIT Editor")
    app.setApplicationName("maskgit-editor")
    settings = QSettings()
    win = MainWindow(WorkerThread(Worker()), settings)
    model = args.model or str(settings.value("model", "default"))
    win.sampling.select_model(model)
    win.controller.load_model(model, args.device)
    win.show()
    if args.image:
        # After show(): a bad path then gets its message box over the window.
        QTimer.singleShot(0, lambda: win.open_path(args.image))
    else:
        QTimer.singleShot(0, win.canvas.fit)
    return int(app.exec())
