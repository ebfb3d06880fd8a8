"""The results store without a window: a commit makes a candidate pending, undo parks it, a
redo that reaches its entry makes it pending again, a failed regeneration puts it back, and
it serialises itself for the project file."""

from __future__ import annotations

import numpy as np

from editor.core.pipeline import guides_per_batch


def _generate(qtbot, stack, candidates: int = 3) -> None:
    stack.controller.settings.candidates = candidates
    stack.paint()
    with qtbot.waitSignal(stack.controller.candidate_changed, timeout=10_000) as sig:
        assert stack.controller.generate()
    assert sig.args == [0, candidates]


def test_commit_undo_redo_and_accept(qtbot, stack):
    results, stack_ = stack.controller.results, stack.doc.undo_stack
    _generate(qtbot, stack)
    pending = results.pending
    assert pending is not None and pending.undo_index == stack_.index()
    assert pending.entry is stack_.command(stack_.index() - 1)
    with qtbot.waitSignal(results.pending_changed) as sig:
        stack_.undo()
    assert sig.args == [-1, 0] and results.pending is None
    with qtbot.waitSignal(results.pending_changed) as sig:
        stack_.redo()
    assert sig.args == [0, 3] and results.pending is pending
    results.accept()
    assert results.pending is None
    stack_.undo()
    stack_.redo()
    assert results.pending is None, "an accepted candidate never comes back"


def test_another_candidate_takes_the_same_undo_slot(qtbot, stack):
    _generate(qtbot, stack)
    slot = stack.doc.undo_stack.index()
    first = stack.doc.image.copy()
    stack.controller.show_candidate(2)
    assert stack.controller.results.pending.index == 2
    assert stack.doc.undo_stack.index() == slot
    assert not np.array_equal(stack.doc.image, first)


def test_a_cancelled_regeneration_puts_the_candidate_back(qtbot, stack, engine):
    _generate(qtbot, stack)
    results = stack.controller.results
    pending = results.pending
    engine.gated = True  # the regeneration waits for a step that never comes
    assert stack.controller.regenerate()
    assert results.pending is None and stack.controller.busy
    with qtbot.waitSignal(results.pending_changed) as sig:
        stack.controller.cancel()
    assert sig.args == [pending.index, 3] and results.pending is pending


def test_the_pending_candidates_serialise_and_come_back(qtbot, stack):
    _generate(qtbot, stack)
    results = stack.controller.results
    saved = results.pending_to_dict(stack.doc.undo_stack.index())
    assert saved is not None and len(saved["crops"]) == 3
    assert results.pending_to_dict(0) is None, "only the entry that committed them"
    results.forget_pending()
    assert results.pending is None
    with qtbot.waitSignal(results.pending_changed):
        results.restore_pending(saved)
    assert results.pending.index == 0 and len(results.pending.result.images) == 3


def test_histories_are_kept_per_undo_entry_and_batches_newest_first(qtbot, stack):
    _generate(qtbot, stack, candidates=2)
    results = stack.controller.results
    first = stack.doc.undo_stack.index()
    assert results.kept(first) is not None and len(results.batches) == 1
    results.accept()
    _generate(qtbot, stack, candidates=2)
    assert len(results.batches) == 2
    assert results.batches[0].job_id > results.batches[1].job_id
    stack.doc.reset(np.zeros((10, 10, 3), np.uint8))
    assert results.batches == [] and results.kept(first) is None


def test_regenerate_asks_for_the_next_guides_and_a_project_keeps_them(qtbot, stack):
    c = stack.controller
    _generate(qtbot, stack)
    assert c.results.pending.job.first_guide == 0
    with qtbot.waitSignal(c.result_committed, timeout=10_000):
        assert c.regenerate()
    job = c.results.pending.job
    assert job.first_guide == guides_per_batch(3) > 1, "the guides after the first batch's"
    saved = c.results.pending_to_dict(stack.doc.undo_stack.index())
    c.results.forget_pending()
    with qtbot.waitSignal(c.results.pending_changed):
        c.results.restore_pending(saved)
    assert c.results.pending.job.first_guide == job.first_guide
