"""Bugs and friction found in a new user's first hour (issue 15), each pinned by a test.
Real main window, fake engine; waits are signals, never sleeps."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt


def paint_mask(win, x0=20, y0=12, x1=36, y1=28):
    m = np.zeros(win.doc.mask.shape, bool)
    m[y0:y1, x0:x1] = True
    win.doc.set_mask(m, "mask")
    return m


def generate(qtbot, win, candidates=1):
    win.sampling.candidates.setValue(candidates)
    with qtbot.waitSignal(win.controller.result_committed, timeout=5000):
        win.a_generate.trigger()


def reroll(qtbot, win):
    with qtbot.waitSignal(win.controller.result_committed, timeout=5000):
        win.step_tools.scrubber.reroll_btn.click()


def test_regenerate_after_a_reroll_then_discard_gives_the_mask_back(qtbot, win, engine):
    paint_mask(win)
    generate(qtbot, win, candidates=2)
    reroll(qtbot, win)
    c = win.controller
    assert c.candidate is not None
    win.doc.undo_stack.undo()  # what the regeneration starts from
    mask_then, image_then = win.doc.mask.copy(), win.doc.image.copy()
    win.doc.undo_stack.redo()
    n = len(engine.calls)
    with qtbot.waitSignal(c.result_committed, timeout=5000):
        qtbot.keyClick(win.canvas, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert len(engine.calls) == n + 1
    again, first = engine.calls[-1], engine.calls[-2]
    assert again["mask"].any() and np.array_equal(again["mask"], first["mask"]), \
        "the same weakest tokens are re-rolled with a new seed"
    assert np.array_equal(again["tokens"], first["tokens"]) and again["seed"] != first["seed"]
    assert win.step_tools.steps.history.steps
    before = win.doc.undo_stack.index()
    win.candidate_bar.discard_btn.click()
    assert win.doc.undo_stack.index() == before - 1 and c.candidate is None
    assert np.array_equal(win.doc.mask, mask_then) and np.array_equal(win.doc.image, image_then)
