"""`maskgit-editor IMAGE` (editor.app.main) starts, opens the image, loads a model, and quits
cleanly (worker thread stopped) when the window is closed."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from editor import app
from editor.main_window import MainWindow

pytest.importorskip("torch")


def test_main_opens_the_image_and_quits_cleanly(qapp, tmp_path):
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path))
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path))
    path = tmp_path / "in.png"
    Image.fromarray(np.full((30, 40, 3), 200, np.uint8)).save(path)
    seen = {}

    def poll() -> None:
        wins = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
        if wins and wins[0].doc.path == path and wins[0].controller.ready:
            seen["shape"] = wins[0].doc.image.shape
            seen["model"] = wins[0].controller.model_name
            timer.stop()
            wins[0].close()
            QApplication.quit()

    timer = QTimer()
    timer.timeout.connect(poll)
    timer.start(20)
    QTimer.singleShot(60_000, QApplication.quit)  # a hung start fails below, not forever
    rc = app.main([str(path), "--model", "tiny", "--device", "cpu"])
    assert rc == 0
    assert seen == {"shape": (30, 40, 3), "model": "tiny"}


def test_the_installed_qt_binding_is_usable():
    assert app.qt_binding_problem() is None
