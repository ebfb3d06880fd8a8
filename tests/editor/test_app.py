"""`maskgit-editor IMAGE` (editor.app.main) starts, opens the image, loads a model, and quits
cleanly (worker thread stopped) when the window is closed.

Runs in a subprocess: app.main() runs QApplication.exec(), after which Qt treats the
application as closing, which would disturb the tests that follow in this process.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from editor import app

pytest.importorskip("torch")

DRIVER = r"""
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from editor import app
from editor.ui.main_window import MainWindow

qapp = QApplication([])
seen = []

def poll():
    wins = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
    if wins and wins[0].doc.path is not None and wins[0].controller.ready:
        w = wins[0]
        seen.append((w.doc.image.shape, w.controller.model_name, w.isVisible()))
        timer.stop()
        w.close()
        QApplication.quit()

timer = QTimer()
timer.timeout.connect(poll)
timer.start(20)
QTimer.singleShot(60_000, QApplication.quit)
rc = app.main(sys.argv[1:])
print("SEEN", seen, "RC", rc)
sys.exit(rc)
"""


def test_main_opens_the_image_and_quits_cleanly(tmp_path):
    path = tmp_path / "in.png"
    Image.fromarray(np.full((30, 40, 3), 200, np.uint8)).save(path)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "cfg"),
               HOME=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", DRIVER, str(path), "--model", "tiny",
                        "--device", "cpu"], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "SEEN [((30, 40, 3), 'tiny', True)] RC 0" in r.stdout
    assert "Destroyed while thread" not in r.stderr


def test_the_installed_qt_binding_is_usable():
    assert app.qt_binding_problem() is None
