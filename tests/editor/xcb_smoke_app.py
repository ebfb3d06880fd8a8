"""The real app (editor.app.main) driven like a first-time user, for test_xcb_smoke.py.

    python tests/editor/xcb_smoke_app.py PHOTO OUT.png [START.png]

Waits for the default model, grabs the start page to START.png (when given), opens PHOTO,
selects a rectangle, generates one candidate, accepts it and saves a grab of the whole window
to OUT.png. Exit status: main()'s, or 3 when a step
never happened (the watchdog), 4 when the app reported an error.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QPointF, QTimer
from PySide6.QtWidgets import QApplication

from editor import app as editor_app
from editor.ui.main_window import MainWindow

WATCHDOG_MS = 150_000  # a hung decode must end the run, not CI's job


def main() -> int:
    photo, out = sys.argv[1], sys.argv[2]
    start = sys.argv[3] if len(sys.argv) > 3 else None
    qapp = QApplication([sys.argv[0]])
    QTimer.singleShot(WATCHDOG_MS, lambda: (print("watchdog: no result"), qapp.exit(3)))

    def window() -> MainWindow:
        return next(w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow))

    def when_ready() -> None:
        win = window()
        if not win.controller.ready:
            win.controller.model_changed.connect(lambda *_: QTimer.singleShot(0, run))
        else:
            run()

    def run() -> None:
        win = window()
        if start is not None:  # what a first start shows: the hint and the samples
            win.grab().save(start)
        if not win.open_path(photo):
            print("could not open:", win.last_error)
            qapp.exit(4)
            return
        win.sampling.candidates.setValue(1)
        win.sampling.steps.setValue(8)
        tool = win.tools["rectangle"]
        w, h = win.doc.width, win.doc.height
        tool.press(win.doc, QPointF(w * 0.3, h * 0.3))
        tool.release(QPointF(w * 0.7, h * 0.7))
        win.controller.candidate_changed.connect(done)
        win.controller.error.connect(lambda t, x: (print("error:", t, x), qapp.exit(4)))
        win.generate()

    def done(_index: int, count: int) -> None:
        if count > 0:  # out of the controller's signal before the window goes
            QTimer.singleShot(0, finish)

    def finish() -> None:
        win = window()
        win.controller.accept()
        win.canvas.fit()
        QApplication.processEvents()
        win.grab().save(out)
        print("saved", out)
        win.confirm = False  # no "save the changes?" box
        win.close()  # stops the worker
        qapp.exit(0)  # a leftover top-level (a tooltip, a box) must not keep exec() running

    QTimer.singleShot(0, when_ready)
    return editor_app.main([])


if __name__ == "__main__":
    sys.exit(main())
