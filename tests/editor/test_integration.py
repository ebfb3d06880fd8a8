"""End to end with the real tiny random-weight model: GUI thread -> worker thread -> Engine."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from editor.core import jobs
from editor.core.geometry import MAX_FEATHER
from editor.state.worker import Worker, WorkerThread
from editor.ui.main_window import MainWindow

pytest.importorskip("torch")


def test_schedules_and_orders_agree_with_the_sampler():
    from models.sampler import ORDERS, SCHEDULES

    assert tuple(jobs.SCHEDULES) == tuple(SCHEDULES)
    assert tuple(jobs.ORDERS) == tuple(ORDERS)


def test_sampling_defaults_agree_with_the_engine():
    from dataclasses import asdict

    from models.engine import SamplingParams

    # Photo guidance off is the engine's plain decode; on, it only sets the two guidance fields.
    assert jobs.Sampling(guidance=False).engine_fields() == asdict(SamplingParams())
    on = jobs.Sampling().engine_fields()
    assert {k: v for k, v in on.items() if k not in ("remask", "prior")} == {
        k: v for k, v in asdict(SamplingParams()).items() if k not in ("remask", "prior")}
    assert SamplingParams(**on).remask == jobs.PHOTO_REMASK


def test_inpaint_with_the_tiny_model_through_the_worker(qtbot, tmp_path):
    win = MainWindow(WorkerThread(Worker()),
                     QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                     confirm=False)
    qtbot.addWidget(win)
    try:
        frozen = gc.get_freeze_count()
        with qtbot.waitSignal(win.controller.model_changed, timeout=60_000) as loaded:
            win.controller.load_model("tiny", "cpu")
        assert loaded.args == ["tiny", 32, 8]
        rng = np.random.default_rng(1)
        image = rng.integers(0, 256, (40, 56, 3), np.uint8)
        win.doc.reset(image)
        mask = np.zeros((40, 56), bool)
        mask[10:22, 14:30] = True
        win.doc.set_mask(mask, "mask")
        win.class_picker.set_class(3)
        steps = []
        win.controller.step_painted.connect(lambda j, s, t: steps.append((s, t)))
        with qtbot.waitSignal(win.controller.candidate_changed, timeout=60_000):
            win.a_generate.trigger()
        assert win.last_error is None
        assert steps == [(s, 12) for s in range(2, 12)]
        out = win.doc.image
        assert not np.array_equal(out[mask], image[mask]), "the masked pixels were regenerated"
        far = np.ones_like(mask)
        far[10 - MAX_FEATHER : 22 + MAX_FEATHER, 14 - MAX_FEATHER : 30 + MAX_FEATHER] = False
        assert np.array_equal(out[far], image[far])
        assert win.doc.undo_stack.count() == 2  # the mask, the generation
        # What loading made is out of the cycle collector's reach (models.memory): a full
        # collection no longer walks it, holding the GIL mid-decode.
        assert gc.get_freeze_count() > frozen
    finally:
        win.close()
