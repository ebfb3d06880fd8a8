from __future__ import annotations

import numpy as np
import pytest
from fakes import FakeEngine
from PySide6.QtCore import QSettings

from editor.main_window import MainWindow
from editor.worker import Worker, WorkerThread


def make_window(qtbot, tmp_path, engine):
    worker = Worker(factory=lambda name, device: engine, params=lambda s: s)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(WorkerThread(worker), settings, confirm=False)
    qtbot.addWidget(win)
    win.resize(900, 700)
    win.show()
    qtbot.waitExposed(win)
    with qtbot.waitSignal(win.controller.model_changed, timeout=5000):
        win.controller.load_model("fake")
    rng = np.random.default_rng(0)
    win.doc.reset(rng.integers(0, 256, (48, 64, 3), np.uint8))
    win.canvas.actual_size()
    win.sampling.random_seed.setChecked(False)
    win.sampling.seed.setValue(5)
    return win


@pytest.fixture
def engine():
    return FakeEngine()


@pytest.fixture
def win(qtbot, tmp_path, engine):
    w = make_window(qtbot, tmp_path, engine)
    yield w
    engine.open()  # no worker step may stay blocked on the gate
    w.close()
