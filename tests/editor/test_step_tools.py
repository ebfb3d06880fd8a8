"""The step tools in the real main window with the fake engine: candidates strip, step scrubber,
branch from a step, heatmap, re-roll, lock brush. Waits are signals, never sleeps."""

from __future__ import annotations

import numpy as np
from fakes import colour, drag, generate, paint_mask, vp

from editor.core import geometry as g


def centre(win, img=None):
    img = win.canvas.preview_image() if img is None else img
    return img.pixelColor(28, 20).red()


def test_candidates_are_one_batched_decode_live_and_clicks_show_then_accept(qtbot, win, engine):
    paint_mask(win)
    strip = win.step_tools.strip
    live = []
    win.step_tools.steps.live.connect(lambda _j, _k, recs: live.append(len(recs)))
    generate(qtbot, win, candidates=4)
    assert len(engine.calls) == 1 and engine.calls[0]["candidates"] == 4, "one batched decode"
    s = win.controller.sampling
    assert live == [4] * (s.steps - s.start_step), "every step updated all 4 thumbnails"
    assert [(b, c) for b, c, _ in strip.buttons] == [(0, i) for i in range(4)]
    last = s.steps - 1
    strip.buttons[2][2].click()
    assert centre(win, win.canvas.preview_image()) == colour(5, last, 2)
    assert win.controller.candidate.index == 2, "a click shows the candidate"
    strip.buttons[2][2].click()
    assert win.controller.candidate is None, "a second click on it accepts it"
    # A second generation: the first batch stays in the strip as earlier candidates.
    paint_mask(win)
    generate(qtbot, win, candidates=2)
    assert [(b, c) for b, c, _ in strip.buttons] == [(0, 0), (0, 1)] + [(1, i) for i in range(4)]
    n = win.doc.undo_stack.count()
    strip.buttons[2 + 3][2].click()  # earlier batch, candidate 4: put back
    assert centre(win) == colour(5, last, 3)
    assert win.doc.undo_stack.count() == n + 1
    win.doc.reset(np.zeros((48, 64, 3), np.uint8))
    assert strip.buttons == [] and not win.step_tools.steps.batches, "gone with the document"


def test_tab_compares_right_after_picking_a_candidate(qtbot, win):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    paint_mask(win)
    generate(qtbot, win, candidates=2)
    win.activateWindow()
    win.canvas.setFocus()
    with qtbot.waitSignal(win.controller.result_committed, timeout=5000):
        qtbot.mouseClick(win.candidate_bar.regen_btn, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(win.step_tools.strip.buttons[1][2], Qt.MouseButton.LeftButton)
    assert win.controller.candidate.index == 1, "the click shows candidate 2"
    assert QApplication.focusWidget() is win.canvas, "clicks on results keep the keyboard"
    with qtbot.waitSignal(win.canvas.original_shown, check_params_cb=lambda on: on):
        qtbot.keyPress(win.canvas, Qt.Key.Key_Tab)


def test_scrubber_shows_every_step_and_the_result_at_the_end(qtbot, win):
    paint_mask(win)
    generate(qtbot, win)
    sc, s = win.step_tools.scrubber, win.controller.sampling
    n = s.steps - s.start_step
    assert sc.slider.maximum() == n - 1 and sc.slider.value() == n - 1
    assert not win.canvas.previewing, "the newest step is the document itself"
    for k in range(n):
        sc.slider.setValue(k)
        assert centre(win) == colour(5, s.start_step + k)
        if k < n - 1:
            assert win.canvas.previewing and str(s.start_step + k + 1) in win.canvas.step_text
    assert not win.canvas.previewing
    sc.slider.setValue(1)
    win.a_undo.trigger()  # the result goes: scrubbing ends
    assert not win.canvas.previewing and not win.step_tools.steps.current


def test_branch_from_a_step_shares_the_steps_before_it(qtbot, win, engine):
    paint_mask(win)
    generate(qtbot, win)
    steps = win.step_tools.steps
    first = [r[0] for r in steps.history.steps]
    entries = win.doc.undo_stack.count()
    sc = win.step_tools.scrubber
    k = 3
    sc.slider.setValue(k)
    sc.temperature.setValue(1.5)
    with qtbot.waitSignal(win.controller.result_committed, timeout=5000):
        sc.branch_btn.click()
    call = engine.calls[-1]
    assert call["kind"] == "branch" and call["step"] == first[k].step
    assert call["temperature"] == 1.5 and call["seed"] != 5
    again = [r[0] for r in steps.history.steps]
    assert [r.step for r in again] == [r.step for r in first]
    for a, b in zip(again[: k + 1], first[: k + 1], strict=True):
        assert np.array_equal(a.patch, b.patch) and np.array_equal(a.tokens, b.tokens)
    for a, b in zip(again[k + 1 :], first[k + 1 :], strict=True):
        assert not np.array_equal(a.patch, b.patch)
    assert win.doc.undo_stack.count() == entries, "the branch replaced the result it came from"
    assert centre(win) == colour(call["seed"], first[-1].step)


def test_heatmap_and_reroll_of_the_weakest_tokens(qtbot, win, engine):
    paint_mask(win)
    generate(qtbot, win)
    tools, steps = win.step_tools, win.step_tools.steps
    tools.scrubber.heatmap.setChecked(True)
    assert tools.heat.isVisible() and tools.heat._conf is not None
    last = steps.history.last()
    assert np.array_equal(tools.heat._conf, last.confidence)
    region = steps.region.copy()
    tools.scrubber.percent.setValue(25)
    with qtbot.waitSignal(win.controller.result_committed, timeout=5000):
        tools.scrubber.reroll_btn.click()
    call = engine.calls[-1]
    chosen = call["mask"]
    assert chosen.sum() == round(region.sum() * 0.25) and not (chosen & ~region).any()
    conf = last.confidence[region]
    assert conf.max() >= last.confidence[chosen].max()
    assert last.confidence[chosen].max() <= np.sort(conf)[chosen.sum() - 1], "the weakest ones"
    assert np.array_equal(call["tokens"], last.tokens), "every other token is the result's"
    assert np.array_equal(steps.region, region), "a re-roll keeps the edited region"


def test_lock_brush_is_undoable_and_locked_cells_are_never_masked(qtbot, win, engine):
    win.set_tool("lock")
    win.brush_size.setValue(6)
    drag(qtbot, win, vp(win, 22, 20), vp(win, 30, 20))
    locks = win.controller.locks
    assert locks.mask[20, 22:30].all() and not win.doc.mask.any()
    assert win.doc.undo_stack.undoText() == "Lock"
    win.a_undo.trigger()
    assert not locks.any()
    win.a_redo.trigger()
    assert locks.mask[20, 22:30].all()
    mask = paint_mask(win)  # covers the locked pixels and more
    before = win.doc.image.copy()
    win.controller.update_plan()
    generate(qtbot, win)
    (w,) = win.controller.plan(mask)
    cells = g.token_mask(locks.mask, w, 0)
    assert cells.any() and not (engine.calls[-1]["mask"] & cells).any()
    keep = g.cell_pixels(cells, w, mask.shape)
    assert np.array_equal(win.doc.image[keep], before[keep]), "locked cells: bit-identical"
    assert not np.array_equal(win.doc.image[mask & ~keep], before[mask & ~keep])


def test_step_tools_work_on_each_window_of_a_multi_window_edit(qtbot, win, engine):
    m = np.zeros(win.doc.mask.shape, bool)
    m[:4, :4] = m[-4:, -4:] = True  # two small holes far apart: one window each
    win.doc.set_mask(m, "two holes")
    windows = win.controller.plan()
    assert len(windows) == 2
    generate(qtbot, win)
    steps, sc = win.step_tools.steps, win.step_tools.scrubber
    assert [h.window for h in steps.chain] == windows
    assert steps.window_index == 1 and steps.history is steps.chain[1]
    assert sc.window_box.isVisibleTo(sc) and sc.window_box.value() == 2
    assert sc.branch_btn.isEnabled() and sc.reroll_btn.isEnabled()
    sc.window_box.setValue(1)  # the first window: its own steps, scrubbed on the canvas
    assert steps.history is steps.chain[0]
    sc.slider.setValue(0)
    assert win.canvas.previewing
    other = win.doc.image[-4:, -4:].copy()
    # Re-rolling window 1 decodes only its weakest cells, over the picture as it is.
    with qtbot.waitSignal(win.controller.result_committed, timeout=5000):
        sc.reroll_btn.click()
    call = engine.calls[-1]
    assert call["tokens"] is not None and call["mask"].any()
    assert np.array_equal(win.doc.image[-4:, -4:], other), "the other window's pixels stay"
    # Branching a window of several keeps the other windows' results (no undo of the edit).
    win.doc.set_mask(m, "two holes again")
    generate(qtbot, win)
    count = win.doc.undo_stack.count()
    sc.window_box.setValue(1)
    sc.slider.setValue(1)  # an earlier step of window 1: something left to decode
    other = win.doc.image[-4:, -4:].copy()
    with qtbot.waitSignal(win.controller.result_committed, timeout=5000):
        sc.branch_btn.click()
    call = engine.calls[-1]
    assert call["kind"] == "branch" and call["step"] == steps.history.steps[1][0].step
    assert win.doc.undo_stack.count() == count + 1
    assert np.array_equal(win.doc.image[-4:, -4:], other)


def test_multi_window_candidates_live_in_the_strip_and_clicks_show_then_accept(qtbot, win, engine):
    m = np.zeros(win.doc.mask.shape, bool)
    m[:4, :4] = m[-4:, -4:] = True  # two small holes far apart: one window each
    win.doc.set_mask(m, "two holes")
    n = len(win.controller.plan())
    assert n > 1
    live = []
    win.step_tools.steps.live.connect(lambda _j, _k, recs: live.append(len(recs)))
    generate(qtbot, win, candidates=3)
    assert [c["candidates"] for c in engine.calls] == [3] * n, "one batch per window"
    s = win.controller.sampling
    assert live == [3] * (n * (s.steps - s.start_step)), "all 3 thumbnails, every step"
    strip = win.step_tools.strip
    assert [(b, c) for b, c, _ in strip.buttons] == [(0, i) for i in range(3)]
    last = s.steps - 1
    options = {c: {colour(5 + k, last, c) for k in range(n)} for c in range(3)}
    assert win.doc.image[0, 0, 0] in options[0]
    strip.buttons[2][2].click()
    assert win.doc.image[0, 0, 0] in options[2] and win.doc.image[-1, -1, 0] in options[2]
    strip.buttons[2][2].click()
    assert win.controller.candidate is None, "clicking the shown thumbnail accepts it"


def test_scrubbing_during_a_decode_holds_the_chosen_step(qtbot, tmp_path):
    from fakes import FakeEngine, make_window

    gated = FakeEngine(gated=True)
    win = make_window(qtbot, tmp_path, gated)
    try:
        paint_mask(win)
        sc, s = win.step_tools.scrubber, win.controller.sampling
        win.sampling.candidates.setValue(1)
        win.a_generate.trigger()
        gated.release(3)
        qtbot.waitUntil(lambda: sc.slider.maximum() == 2, timeout=5000)
        assert sc.following and sc.slider.value() == 2
        sc.slider.setValue(0)  # back to the first step while the decode runs
        assert centre(win) == colour(5, s.start_step)
        gated.release(1)
        qtbot.waitUntil(lambda: sc.slider.maximum() == 3, timeout=5000)
        assert sc.slider.value() == 0 and centre(win) == colour(5, s.start_step), "held"
        sc.slider.setValue(3)  # the newest step: follow the decode again
        gated.release(1)
        qtbot.waitUntil(lambda: sc.slider.maximum() == 4, timeout=5000)
        assert sc.following and centre(win) == colour(5, s.start_step + 4)
        sc.slider.setValue(1)  # scrubbed back when the decode ends: the result is shown
        with qtbot.waitSignal(win.controller.result_committed, timeout=5000):
            gated.open()
        assert not win.canvas.previewing and sc.following
    finally:
        gated.open()
        win.close()


def test_a_new_decode_is_followed_even_when_scrubbed_back(qtbot, win):
    paint_mask(win)
    generate(qtbot, win)
    win.step_tools.scrubber.slider.setValue(1)
    assert win.canvas.previewing
    win.doc.set_mask(np.ones(win.doc.mask.shape, bool), "all")  # multi-window: no history
    seen = []
    win.controller.step_painted.connect(lambda _j, step, _t: seen.append((step, centre(win))))
    generate(qtbot, win)
    assert seen and all(c == colour(5, step) for step, c in seen), "every live step painted"


def test_vary_redecodes_a_random_share_of_the_masked_tokens_from_the_picture(qtbot, win, engine):
    m = paint_mask(win)  # 16 x 16 px = 4 x 4 cells of 4 px
    v = win.controller.plan()[0]
    region = g.token_mask(g.core_mask(m, v), v, ring=0)
    before = win.doc.image.copy()
    count = win.doc.undo_stack.count()
    win.step_tools.scrubber.percent.setValue(50)
    with qtbot.waitSignal(win.controller.result_committed, timeout=5000):
        win.a_vary.trigger()
    call = engine.calls[-1]
    assert call["tokens"] is None, "the picture as it is gets encoded"
    chosen = call["mask"]
    assert chosen.sum() == round(region.sum() * 0.5) and not (chosen & ~region).any()
    assert win.doc.undo_stack.count() == count + 1
    assert win.doc.undo_stack.text(count) == "Vary 50 %"
    changed = (win.doc.image != before).any(2)
    near = g.alpha(g.cell_pixels(chosen, v, m.shape) & m, win.controller.feather) > 0
    assert changed.any() and not (changed & ~near).any(), "chosen cells (and the feather) only"
    assert not win.doc.mask.any(), "like Generate, the varied pixels leave the mask"
    paint_mask(win)  # another seed, other cells
    with qtbot.waitSignal(win.controller.result_committed, timeout=5000):
        win.step_tools.vary(0.5, seed=99)
    assert not np.array_equal(engine.calls[-1]["mask"], chosen)


def test_vary_never_touches_locked_cells_and_refuses_multi_window_masks(qtbot, win, engine):
    m = paint_mask(win)
    lock = np.zeros_like(m)
    lock[12:20, 20:28] = True  # the top-left 2 x 2 cells of the masked box
    win.controller.locks.set(lock)
    v = win.controller.plan()[0]
    with qtbot.waitSignal(win.controller.result_committed, timeout=5000):
        assert win.step_tools.vary(1.0, seed=1)
    chosen = engine.calls[-1]["mask"]
    assert chosen.any() and not (chosen & g.token_mask(lock, v, 0)).any()
    two = np.zeros_like(m)
    two[:4, :4] = two[-4:, -4:] = True
    win.doc.set_mask(two, "two holes")
    n = len(engine.calls)
    assert not win.step_tools.vary(0.5)
    assert win.last_error and "one window" in win.last_error[1] and len(engine.calls) == n


def test_candidate_keys_step_accept_and_regenerate(qtbot, win, engine):
    from PySide6.QtCore import Qt

    paint_mask(win)
    generate(qtbot, win, candidates=3)
    c = win.controller
    win.activateWindow()
    win.canvas.setFocus()
    qtbot.keyClick(win.canvas, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    assert c.candidate.index == 1
    qtbot.keyClick(win.canvas, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    qtbot.keyClick(win.canvas, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    assert c.candidate.index == 2, "stops at the last"
    last = win.controller.sampling.steps - 1
    assert centre(win, win.canvas.preview_image()) == colour(5, last, 2)
    n = len(engine.calls)
    with qtbot.waitSignal(c.result_committed, timeout=5000):
        qtbot.keyClick(win.canvas, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert len(engine.calls) == n + 1 and engine.calls[-1]["seed"] != engine.calls[-2]["seed"]
    qtbot.keyClick(win.canvas, Qt.Key.Key_Return)
    assert c.candidate is None, "Return accepts"


def test_return_in_the_class_search_picks_a_class_and_accepts_nothing(qtbot, win):
    from PySide6.QtCore import Qt

    paint_mask(win)
    generate(qtbot, win, candidates=2)
    assert win.controller.candidate is not None
    win.activateWindow()
    search = win.class_picker.search
    search.setFocus()
    qtbot.keyClicks(search, "goldfish")
    qtbot.keyClick(search, Qt.Key.Key_Return)
    assert win.class_picker.class_id() == 1
    assert win.controller.candidate is not None, "Return went to the search, not to Accept"


def test_vary_button_follows_the_plan(qtbot, win):
    button = win.step_tools.scrubber.vary_btn
    assert not button.isEnabled(), "no mask, nothing to vary"
    with qtbot.waitSignal(win.controller.plan_changed, timeout=2000):
        paint_mask(win)
    assert button.isEnabled()
    two = np.zeros(win.doc.mask.shape, bool)
    two[:4, :4] = two[-4:, -4:] = True
    with qtbot.waitSignal(win.controller.plan_changed, timeout=2000):
        win.doc.set_mask(two, "two holes")
    assert not button.isEnabled(), "several windows: Vary would refuse"


def test_undo_and_redo_bring_back_the_history_of_the_decode_they_reach(qtbot, win, engine):
    m = np.zeros(win.doc.mask.shape, bool)
    m[:4, :4] = m[-4:, -4:] = True  # two windows
    win.doc.set_mask(m, "two holes")
    generate(qtbot, win)
    steps, sc = win.step_tools.steps, win.step_tools.scrubber
    outpaint = steps.chain
    assert len(outpaint) == 2
    steps.select_window(0)
    with qtbot.waitSignal(win.controller.result_committed, timeout=5000):
        sc.reroll_btn.click()
    assert len(steps.chain) == 1 and not sc.window_box.isVisibleTo(sc)
    reroll = steps.chain
    win.doc.undo_stack.undo()  # back to the two-window result: its history, window 1 chosen
    assert steps.chain is outpaint and steps.window_index == 0 and steps.current
    assert sc.window_box.isVisibleTo(sc) and sc.branch_btn.isEnabled()
    win.doc.undo_stack.undo()  # before any decode: the panel says its result is gone
    assert not steps.current and "since undone" in sc.label.text()
    win.doc.undo_stack.redo()
    win.doc.undo_stack.redo()
    assert steps.chain is reroll and steps.current
    # A new entry at the same index is another state: the old history does not come back.
    win.doc.undo_stack.undo()
    win.doc.set_mask(~m, "another mask")
    win.doc.undo_stack.undo()
    win.doc.undo_stack.redo()
    assert steps.chain is outpaint and not steps.current


def test_a_cancelled_decode_leaves_no_live_row_in_the_strip(qtbot, tmp_path):
    from fakes import FakeEngine, make_window

    gated = FakeEngine(gated=True)
    win = make_window(qtbot, tmp_path, gated)
    try:
        paint_mask(win)
        s = win.controller.sampling
        gated.release(s.steps - s.start_step)  # exactly the first decode's steps
        generate(qtbot, win, candidates=2)
        strip = win.step_tools.strip
        done = [(b, c) for b, c, _ in strip.buttons]
        paint_mask(win)
        win.a_generate.trigger()
        gated.release(1)
        qtbot.waitUntil(lambda: bool(strip.live_buttons), timeout=5000)
        win.controller.cancel()
        assert not strip.live_buttons
        assert [(b, c) for b, c, _ in strip.buttons] == done
    finally:
        gated.open()
        win.close()


def test_an_undone_result_under_a_new_edit_is_not_current(qtbot, win, engine):
    paint_mask(win)
    generate(qtbot, win)
    steps, sc = win.step_tools.steps, win.step_tools.scrubber
    assert steps.current
    win.doc.undo_stack.undo()
    paint_mask(win)  # a new entry where the result was
    assert not steps.current and not sc.reroll_btn.isEnabled()
    assert "since undone" in sc.label.text()
    n = len(engine.calls)
    assert not steps.reroll(0.2) and len(engine.calls) == n


def test_scrubbing_an_undone_result_ends_at_the_next_edit(qtbot, win):
    paint_mask(win)
    generate(qtbot, win)
    win.doc.undo_stack.undo()
    sc = win.step_tools.scrubber
    sc.slider.setValue(1)
    sc.slider.setValue(sc.slider.maximum())  # the undone result's last step, as a preview
    assert win.canvas.previewing
    paint_mask(win, 2, 2, 10, 10)
    assert not win.canvas.previewing, "the canvas shows the document again"


def test_redo_makes_an_undone_result_pending_again(qtbot, win):
    m = paint_mask(win)
    generate(qtbot, win, candidates=3)
    c = win.controller
    win.doc.undo_stack.undo()
    assert c.candidate is None
    win.doc.undo_stack.redo()
    assert c.candidate is not None and c.candidate.index == 0
    win.candidate_bar.next.click()  # flipping works again
    assert c.candidate.index == 1 and win.step_tools.steps.current
    assert (win.doc.image[m] == colour(5, c.sampling.steps - 1, 1)).all()


def test_an_undone_outpaint_disables_what_needs_its_canvas(qtbot, win):
    win.controller.extend(0, 0, 24, 0)  # the fake engine fills it at once
    qtbot.waitUntil(lambda: not win.controller.busy, timeout=5000)
    steps, sc, strip = win.step_tools.steps, win.step_tools.scrubber, win.step_tools.strip
    assert steps.fits() and sc.branch_btn.isEnabled()
    assert len(steps.chain) > 1 and sc.window_box.isVisibleTo(sc)
    win.doc.undo_stack.undo()
    win.doc.undo_stack.undo()  # the canvas before the extension
    assert not steps.fits() and steps.steps == [] and not sc.branch_btn.isEnabled()
    assert not sc.window_box.isVisibleTo(sc)
    assert "changed size" in sc.label.text()
    assert strip.buttons and not any(btn.isEnabled() for _, _, btn in strip.buttons)


def test_an_edit_while_scrubbed_puts_the_slider_back_on_the_result(qtbot, win):
    paint_mask(win)
    generate(qtbot, win)
    sc = win.step_tools.scrubber
    sc.slider.setValue(2)
    assert win.canvas.previewing
    win.controller.locks.set(np.ones(win.doc.mask.shape, bool))  # an edit (a lock) on top
    assert not win.canvas.previewing
    assert sc.slider.value() == sc.slider.maximum() and "(result, since" in sc.label.text()


def test_the_strip_marks_only_the_pending_candidate(qtbot, win):
    paint_mask(win)
    generate(qtbot, win, candidates=2)
    paint_mask(win)
    generate(qtbot, win, candidates=2)
    strip = win.step_tools.strip

    def marked():
        return [(b, c) for b, c, btn in strip.buttons if btn.isChecked()]

    assert marked() == [(0, 0)]
    assert not any(btn.isCheckable() for b, _, btn in strip.buttons if b > 0)
    win.candidate_bar.discard_btn.click()
    assert marked() == [], "nothing pending, nothing marked"


def test_undoing_an_outpaint_with_locked_cells_is_clean(qtbot, win):
    lock = np.zeros(win.doc.mask.shape, bool)
    lock[5:10, 5:10] = True
    win.controller.locks.set(lock)
    win.controller.extend(0, 0, 40, 0)
    qtbot.waitUntil(lambda: not win.controller.busy, timeout=5000)
    win.doc.undo_stack.undo()
    win.doc.undo_stack.undo()  # the canvas and its lock layer shrink back
    assert win.doc.width == 64 and np.array_equal(win.controller.locks.mask, lock)


def test_each_step_is_painted_once(qtbot, win):
    """One live-preview path: a step reaches the canvas once (through the Steps), though the
    worker reports it twice (records for the step tools, step_ready for the progress)."""
    painted = []
    paint = win.canvas.paint_preview
    win.canvas.paint_preview = lambda patch, rect, text: (painted.append(text),
                                                          paint(patch, rect, text))
    paint_mask(win)
    generate(qtbot, win, candidates=2)
    s = win.controller.sampling
    assert painted == [f"step {k + 1}/{s.steps}" for k in range(s.start_step, s.steps)]


def test_keep_out_brush_and_keeping_the_mask_out_paint_the_keep_out_layer(qtbot, win, engine):
    win.set_tool("keepout")
    win.brush_size.setValue(6)
    drag(qtbot, win, vp(win, 22, 20), vp(win, 30, 20))
    keep = win.controller.keep_out
    assert keep.mask[20, 22:30].all() and not win.doc.mask.any()
    assert not win.controller.locks.any()
    assert win.doc.undo_stack.undoText() == "Keep out"
    shown = win.step_tools.keep_out._img  # the amber overlay, made at the first dab
    assert shown.pixelColor(25, 20).alpha() > 0 and shown.pixelColor(25, 40).alpha() == 0
    win.a_undo.trigger()
    assert not keep.any()
    mask = paint_mask(win)
    win.a_keep_out.trigger()  # the mask joins the keep-out and is cleared
    assert np.array_equal(keep.mask, mask) and not win.doc.mask.any()
    win.a_undo.trigger()
    assert np.array_equal(win.doc.mask, mask)
    win.a_keep_out.trigger()
    assert np.array_equal(keep.mask, mask)
    win.a_clear.trigger()
    win.a_keep_out.trigger()  # nothing masked: says so, changes nothing
    assert "Nothing masked" in win.statusBar().currentMessage()
    assert np.array_equal(keep.mask, mask)
    win.a_clear_keep_out.trigger()
    assert not keep.any() and win.doc.undo_stack.undoText() == "Clear keep-out"
    win.a_clear_keep_out.trigger()
    assert "Nothing is kept out" in win.statusBar().currentMessage()
