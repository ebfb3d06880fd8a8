"""The state layer without a window: a Document, a Controller on a worker thread serving the
fake engine, and the Steps, as the main window composes them (no widget anywhere)."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import FakeEngine

from editor.state.controller import Controller
from editor.state.document import Document
from editor.state.steps import Steps
from editor.state.worker import Worker, WorkerThread


class Stack:
    def __init__(self, engine: FakeEngine) -> None:
        worker = Worker(factory=lambda name, device: engine, params=lambda s: s, colour=None)
        self.thread = WorkerThread(worker)
        rng = np.random.default_rng(0)
        self.doc = Document(rng.integers(0, 256, (48, 64, 3), np.uint8))
        self.controller = Controller(self.doc, worker)
        self.steps = Steps(self.controller)
        s = self.controller.settings
        s.random_seed, s.seed, s.guidance = False, 5, False

    def paint(self, x0: int = 20, y0: int = 12, x1: int = 36, y1: int = 28) -> np.ndarray:
        m = np.zeros(self.doc.mask.shape, bool)
        m[y0:y1, x0:x1] = True
        self.doc.set_mask(m, "Paint mask")
        return m


@pytest.fixture
def stack(qtbot, engine):
    s = Stack(engine)
    with qtbot.waitSignal(s.controller.model_changed, timeout=5000):
        s.controller.load_model("fake")
    yield s
    engine.open()
    s.controller.cancel()
    assert s.thread.close(10_000)
