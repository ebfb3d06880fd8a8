"""Bugs and friction found in a new user's first hour (issue 15), each pinned by a test.
Real main window, fake engine; waits are signals, never sleeps."""

from __future__ import annotations

import numpy as np
from fakes import generate, paint_mask
from PySide6.QtCore import Qt


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


def two_holes(win):
    m = np.zeros(win.doc.mask.shape, bool)
    m[:4, :4] = m[-4:, -4:] = True  # two small holes far apart: one window each
    win.doc.set_mask(m, "two holes")
    assert len(win.controller.plan()) == 2
    return m


def test_after_reroll_the_keyboard_stays_on_the_canvas_not_in_the_percent_box(qtbot, win):
    from PySide6.QtWidgets import QApplication

    paint_mask(win)
    generate(qtbot, win)
    sc = win.step_tools.scrubber
    win.activateWindow()
    win.canvas.setFocus()
    with qtbot.waitSignal(win.controller.result_committed, timeout=5000):
        qtbot.mouseClick(sc.reroll_btn, Qt.MouseButton.LeftButton)
    assert QApplication.focusWidget() is win.canvas
    value = sc.percent.value()
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_5)
    assert sc.percent.value() == value, "typing goes to the canvas, not the 20 % box"


def test_the_steps_panel_does_not_move_when_the_window_row_shows_or_hides(qtbot, win):
    sc = win.step_tools.scrubber
    paint_mask(win)
    generate(qtbot, win)
    assert not sc.window_box.isVisibleTo(sc)
    one = sc.reroll_btn.mapTo(sc, sc.reroll_btn.rect().topLeft()).y()
    two_holes(win)
    generate(qtbot, win)
    assert sc.window_box.isVisibleTo(sc)
    sc.layout().activate()
    assert sc.reroll_btn.mapTo(sc, sc.reroll_btn.rect().topLeft()).y() == one


def test_a_thumbnail_click_previews_the_candidate_and_a_second_click_accepts(qtbot, win):
    paint_mask(win)
    generate(qtbot, win, candidates=3)
    c, strip = win.controller, win.step_tools.strip
    strip.buttons[2][2].click()
    assert c.candidate is not None and c.candidate.index == 2, "shown, still pending"
    assert win.candidate_bar.isVisible()
    strip.buttons[1][2].click()
    assert c.candidate is not None and c.candidate.index == 1
    strip.buttons[1][2].click()
    assert c.candidate is None, "clicking the shown one again accepts it"


def test_a_class_chosen_yesterday_does_not_steer_todays_plain_generate(qtbot, tmp_path, engine):
    from fakes import make_window

    first = make_window(qtbot, tmp_path, engine)
    first.class_picker.set_class(207)
    first.sampling.steps.setValue(9)
    first.close()
    again = make_window(qtbot, tmp_path, engine)
    try:
        assert again.sampling.steps.value() == 9, "sampling settings are remembered"
        assert again.class_picker.class_id() is None and again.controller.class_id is None
    finally:
        again.close()


def test_every_window_of_an_outpaint_paints_its_live_steps_on_the_canvas(qtbot, win):
    shown = []

    def painted(_job, step, total):  # after the canvas got the step
        shown.append((win.canvas.previewing, win.progress_label.text(),
                      len(win.canvas.preview.patches)))

    win.controller.step_painted.connect(painted)
    win.sampling.candidates.setValue(3)
    with qtbot.waitSignal(win.controller.result_committed, timeout=5000):
        win.controller.extend(0, 0, 40, 0)
    windows = {t.split(" · ")[0] for _p, t, _n in shown}
    assert len(windows) > 1, "a multi-window edit"
    assert all(p for p, _t, _n in shown), "every step of every window is on the canvas"
    assert win.canvas.step_text == "" and not win.canvas.previewing, "the result replaces it"
    assert shown[-1][2] == len(windows), "one live patch per window, as they come"


def test_canvas_edges_show_grips_and_a_hover_hint_and_the_drag_tints_only_the_new_strip(
        qtbot, win):
    from fakes import vp
    from PySide6.QtCore import QPoint

    cv, view = win.canvas, win.canvas.viewport()
    win.doc.reset(np.full((48, 64, 3), 200, np.uint8))
    cv.actual_size()
    right = vp(win, 64, 24)
    plain = view.grab().toImage()
    grip = plain.pixelColor(right + QPoint(0, 6))
    assert grip.red() > 200 and grip.blue() < 100, "a yellow grip on the middle of the edge"
    qtbot.mouseMove(view, right + QPoint(2, 0))
    assert cv.edge_hint is not None
    assert view.cursor().shape() == Qt.CursorShape.SizeHorCursor
    shot = view.grab().toImage()
    below = shot.pixelColor(right + QPoint(19, 17))  # inside the box, left of its text
    assert below.lightness() < 60, "the hint box is drawn next to the pointer"
    qtbot.mouseMove(view, vp(win, 30, 24))
    assert cv.edge_hint is None
    # Dragging the edge: the new strip is tinted, the photo keeps its colours.
    inside = vp(win, 30, 24)
    before = view.grab().toImage().pixelColor(inside)
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=right)
    qtbot.mouseMove(view, right + QPoint(30, 0))
    during = view.grab().toImage()
    assert during.pixelColor(inside) == before
    strip = during.pixelColor(right + QPoint(15, -10))
    assert strip != plain.pixelColor(right + QPoint(15, -10)), "the new strip is tinted"
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=right + QPoint(30, 0))


def test_a_class_with_a_model_that_cannot_draw_objects_says_so_and_how_to_get_one(qtbot, win):
    note = win.class_note
    win.class_picker.set_class(207)
    assert not note.isVisibleTo(win), "the fake model is not known to be weak"
    win.controller.model_name = "default"
    win.controller.model_changed.emit("default", 128, 16)
    assert note.isVisibleTo(win)
    assert "golden retriever" in note.text()
    assert "maskgit-editor weights download imagenet-256" in note.text()
    win.class_picker.set_class(None)
    assert not note.isVisibleTo(win), "automatic: nothing to warn about"


def test_the_model_list_shows_installed_and_downloadable_models(qtbot, tmp_path, engine,
                                                                monkeypatch):
    from fakes import make_window

    monkeypatch.setenv("MASKGIT_EDITOR_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "imagenet-256.safetensors").write_bytes(b"")
    w = make_window(qtbot, tmp_path, engine)
    try:
        box = w.sampling.model
        items = {box.itemText(i): box.itemData(i) for i in range(box.count())}
        assert items["imagenet-256 (installed)"] == "imagenet-256"
        assert items["imagenet-512: download first"] == "download:imagenet-512"
        box.activated.emit(box.findData("download:imagenet-512"))
        assert w.last_error[0] == "Model not installed"
        assert "maskgit-editor weights download imagenet-512" in w.last_error[1]
        assert not str(box.currentData()).startswith("download:")
        assert w.controller.model_name == "fake", "nothing loaded, nothing downloaded"
    finally:
        w.close()


def test_an_outpaint_says_how_to_keep_the_subject_out_and_then_stops_saying_it(qtbot, win):
    messages: list[str] = []
    win.controller.message.connect(messages.append)
    with qtbot.waitSignal(win.controller.result_committed, timeout=5000):
        win.controller.extend(0, 0, 40, 0)
    assert "keep-out brush (X)" in messages[-1]
    win.a_undo.trigger()  # the strip comes back masked
    keep = np.zeros(win.doc.mask.shape, bool)
    keep[:8, :8] = True
    win.controller.keep_out.set(keep)
    with qtbot.waitSignal(win.controller.result_committed, timeout=5000):
        assert win.controller.generate("Outpaint")
    assert messages[-1].startswith("Done") and "keep-out" not in messages[-1]
