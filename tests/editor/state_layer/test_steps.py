"""The step tools' state without a window: the history of the last decode, scrubbing, branching
and re-rolling, and the history coming back when undo / redo reach its entry."""

from __future__ import annotations


def _generate(qtbot, stack, steps: int = 8) -> None:
    stack.controller.settings.steps = steps
    stack.controller.settings.candidates = 2
    stack.paint()
    with qtbot.waitSignal(stack.controller.result_committed, timeout=10_000):
        assert stack.controller.generate()


def test_a_decode_leaves_its_history(qtbot, stack):
    _generate(qtbot, stack)
    s = stack.steps
    assert s.current and s.history is not None and s.history.candidates == 2
    assert len(s.steps) == 8 - 2  # edits start at step 2
    assert s.record().done


def test_scrubbing_shows_a_step_and_the_newest_is_the_document(qtbot, stack):
    _generate(qtbot, stack)
    s = stack.steps
    with qtbot.waitSignal(s.shown) as sig:
        s.show(1)
    assert sig.args[0].step == 3 and sig.args[1:] == [1, 6]
    with qtbot.waitSignal(s.shown) as sig:
        s.show(99)
    assert sig.args[0] is None, "the newest step of a finished decode is the document"


def test_branch_continues_from_a_step_with_a_new_seed(qtbot, stack, engine):
    _generate(qtbot, stack)
    entries = stack.doc.undo_stack.count()
    with qtbot.waitSignal(stack.controller.result_committed, timeout=10_000):
        assert stack.steps.branch(2, seed=42)
    call = engine.calls[-1]
    assert call["kind"] == "branch" and call["step"] == 4 and call["seed"] == 42
    # The branch replaces the result it came from: still one entry for the decode.
    assert stack.doc.undo_stack.count() == entries
    assert [r[0].step for r in stack.steps.steps][:3] == [2, 3, 4], "the past is shared"


def test_reroll_decodes_only_the_weakest_tokens(qtbot, stack, engine):
    _generate(qtbot, stack)
    region = stack.steps.region
    with qtbot.waitSignal(stack.controller.result_committed, timeout=10_000):
        assert stack.steps.reroll(0.25, seed=9)
    chosen = engine.calls[-1]["mask"]
    assert 0 < chosen.sum() <= max(round(region.sum() * 0.25), 1)
    assert not (chosen & ~region).any()


def test_undo_and_redo_bring_the_history_back(qtbot, stack):
    _generate(qtbot, stack)
    history = stack.steps.history
    stack.controller.accept()
    stack.paint(0, 0, 8, 8)  # an edit on top
    assert not stack.steps.current
    stack.doc.undo_stack.undo()
    assert stack.steps.current and stack.steps.history is history
    stack.doc.undo_stack.undo()
    assert not stack.steps.current
    stack.doc.undo_stack.redo()
    assert stack.steps.current and stack.steps.history is history
