"""The controller without a window: it reads the observable settings, runs jobs on the worker
thread, drops the steps of superseded jobs and commits each result as one undo entry."""

from __future__ import annotations

import numpy as np


def test_a_generation_uses_the_settings_and_is_one_undo_entry(qtbot, stack, engine):
    c = stack.controller
    c.settings.steps, c.settings.candidates, c.settings.class_id = 6, 2, 3
    m = stack.paint()
    entries = stack.doc.undo_stack.count()
    with qtbot.waitSignal(c.result_committed, timeout=10_000):
        assert c.generate()
    call = engine.calls[-1]
    assert call["class_id"] == 3 and call["seed"] == 5 and call["candidates"] == 2
    assert call["params"].steps == 6
    assert stack.doc.undo_stack.count() == entries + 1
    assert not (stack.doc.mask & m).any(), "the regenerated pixels leave the mask"
    assert not c.busy


def test_a_changed_setting_reaches_the_next_job_only(qtbot, stack, engine):
    c = stack.controller
    stack.paint()
    with qtbot.waitSignal(c.result_committed, timeout=10_000):
        c.generate()
    c.settings.seed = 11
    c.accept()
    stack.paint(0, 0, 8, 8)
    with qtbot.waitSignal(c.result_committed, timeout=10_000):
        c.generate()
    assert [k["seed"] for k in engine.calls] == [5, 11]


def test_steps_of_a_superseded_job_are_dropped(qtbot, stack, engine):
    c = stack.controller
    engine.gated = True
    stack.paint()
    c.generate()
    first = c.job.id
    c.generate()  # supersedes: the first stops at its next step
    assert c.job.id != first
    with qtbot.waitSignal(c.result_committed, timeout=10_000) as sig:
        engine.open()
    assert sig.args[0].job_id == c.results.pending.result.job_id != first


def test_nothing_to_regenerate_is_an_error_not_a_job(qtbot, stack):
    with qtbot.waitSignal(stack.controller.error) as sig:
        assert not stack.controller.generate()
    assert sig.args[0] == "Nothing to regenerate" and not stack.controller.busy


def test_fill_from_surroundings_of_a_thin_stroke_is_immediate(qtbot, stack):
    m = np.zeros(stack.doc.mask.shape, bool)
    m[20, 5:60] = True
    stack.doc.set_mask(m, "Paint mask")
    before = stack.doc.image.copy()
    assert stack.controller.fill_classic()
    assert not stack.doc.mask.any()
    assert np.array_equal(stack.doc.image[~m], before[~m])


def test_a_guided_outpaint_plans_fewer_coarser_windows(qtbot, stack):
    from editor.core import geometry as g

    c = stack.controller
    stack.doc.extend(0, 0, 0, 120)  # a canvas edge dragged down: a strip to grow
    c.settings.guidance = False
    sharp = c.plan()
    c.settings.guidance = True  # the guide brings the texture; the model its coarse change
    coarse = c.plan()
    assert len(sharp) > g.GUIDED_OUTPAINT_MAX_WINDOWS >= len(coarse)
    assert min(v.size for v in coarse) > max(v.size for v in sharp)
    c.settings.class_id = 3  # a requested class is not guided: sharp windows again
    assert c.plan() == sharp


def test_cancel_stops_a_fill_from_surroundings_without_waiting_for_shift_map(
        qtbot, stack, monkeypatch):
    """Shift-map cannot be interrupted (one C call of seconds); the job stops waiting for it,
    so Cancel, a newer job or closing the window is not held up."""
    import threading

    from editor.core import pipeline

    running, release = threading.Event(), threading.Event()

    def uninterruptible(image, todo, *args, **kwargs):
        running.set()
        release.wait(30)
        return image.copy(), (0, 0, 1, 1)

    monkeypatch.setattr(pipeline.fill, "region", uninterruptible)
    stack.paint()
    try:
        assert stack.controller.fill_classic()
        assert running.wait(10)
        with qtbot.waitSignal(stack.controller.worker.cancelled, timeout=2000):
            stack.controller.cancel()
        assert not stack.controller.busy
        assert stack.doc.undo_stack.count() == 1, "only the mask: nothing filled"
    finally:
        release.set()


def test_cancel_stops_a_generate_waiting_for_its_photo_guide(qtbot, stack, monkeypatch):
    from concurrent.futures import Future

    from editor.core import pipeline

    never: Future = Future()  # a guide still being made (shift-map, seconds)
    monkeypatch.setattr(pipeline.GUIDES, "future", lambda *a, **k: never)
    stack.controller.settings.guidance = True
    stack.paint()
    assert stack.controller.generate()
    with qtbot.waitSignal(stack.controller.worker.cancelled, timeout=2000):
        stack.controller.cancel()
    assert not stack.controller.busy
