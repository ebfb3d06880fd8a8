"""Generate / cancel / supersede through the real worker thread with a fake engine.

No sleeps: every wait is qtbot.waitSignal / waitUntil on a signal the code under test emits.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from fakes import FakeEngine, colour, make_window
from PySide6.QtCore import QPoint, Qt

from editor.core.geometry import core_mask


def paint_mask(win, x0=20, y0=12, x1=36, y1=28):
    m = np.zeros(win.doc.mask.shape, bool)
    m[y0:y1, x0:x1] = True
    win.doc.set_mask(m, "mask")
    return m


def record_steps(win):
    """(job id, step, the canvas preview pixel at the mask centre) for every painted step."""
    seen = []

    def on(job_id, step, total):
        img = win.canvas.preview_image()
        undecided = sum(int(m.sum()) for m in win.canvas.overlay.undecided.values())
        seen.append((job_id, step, total, img.pixelColor(28, 20).red(), undecided))

    win.controller.step_painted.connect(on)
    return seen


def wait_idle(qtbot, win, timeout=5000):
    qtbot.waitUntil(lambda: not win.controller.busy, timeout=timeout)


def test_generate_paints_every_step_and_leaves_one_undo_entry(qtbot, win, engine):
    mask = paint_mask(win)
    before = win.doc.image.copy()
    entries = win.doc.undo_stack.count()
    seen = record_steps(win)
    with qtbot.waitSignal(win.controller.candidate_changed, timeout=5000):
        win.a_generate.trigger()
    sampling = win.controller.sampling
    steps = list(range(sampling.start_step, sampling.steps))
    assert [s[1] for s in seen] == steps, "every decode step reached the canvas"
    assert [s[3] for s in seen] == [colour(5, s) for s in steps], "and was painted there"
    assert [s[4] for s in seen] == [sampling.steps - 1 - s for s in steps], "undecided tokens"
    assert len({s[0] for s in seen}) == 1
    assert win.doc.undo_stack.count() == entries + 1, "the whole generation is one undo entry"
    out = win.doc.image
    assert (out[mask] == colour(5, steps[-1])).all(), "the last step is the result"
    far = np.ones_like(mask)
    far[mask.nonzero()[0].min() - 5 : mask.nonzero()[0].max() + 6,
        mask.nonzero()[1].min() - 5 : mask.nonzero()[1].max() + 6] = False
    assert np.array_equal(out[far], before[far]), "pixels far from the mask are untouched"
    assert not win.doc.mask.any(), "the regenerated area leaves the mask"
    assert not win.canvas.previewing
    assert engine.calls[0]["thread"] is not threading.main_thread(), "decoding off the GUI thread"
    win.a_undo.trigger()
    assert np.array_equal(win.doc.image, before) and np.array_equal(win.doc.mask, mask)


@pytest.fixture
def gated():
    return FakeEngine(gated=True)


@pytest.fixture
def gwin(qtbot, tmp_path, gated):
    w = make_window(qtbot, tmp_path, gated)
    yield w
    gated.open()
    w.close()


def test_cancel_mid_decode_stops_and_leaves_the_document_as_before(qtbot, gwin, gated):
    win = gwin
    paint_mask(win)
    image, mask = win.doc.image.copy(), win.doc.mask.copy()
    entries = win.doc.undo_stack.count()
    seen = record_steps(win)
    win.a_generate.trigger()
    job_id = win.controller.job.id
    gated.release(2)
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=5000)
    assert win.canvas.previewing
    stopped = []
    # Queued: the slot runs on this (GUI) thread, where the test waits.
    win.worker_thread.worker.cancelled.connect(stopped.append, Qt.ConnectionType.QueuedConnection)
    qtbot.keyClick(win.canvas, Qt.Key.Key_Escape)  # the Cancel action
    assert not win.controller.busy
    gated.release(1)  # let the worker reach its next between-steps check
    qtbot.waitUntil(lambda: stopped == [job_id], timeout=5000)
    assert len(seen) == 2, "no step was painted after cancel"
    assert np.array_equal(win.doc.image, image) and np.array_equal(win.doc.mask, mask)
    assert win.doc.undo_stack.count() == entries
    assert not win.canvas.previewing and win.controller.candidate is None
    assert len(gated.calls) == 1


def test_a_new_job_is_not_disturbed_by_the_old_ones_steps(qtbot, gwin, gated):
    win = gwin
    m = paint_mask(win)
    entries = win.doc.undo_stack.count()
    seen = record_steps(win)
    win.a_generate.trigger()
    old = win.controller.job.id
    gated.release(1)
    qtbot.waitUntil(lambda: len(seen) == 1, timeout=5000)
    win.sampling.seed.setValue(9)
    win.a_generate.trigger()  # supersedes the running job
    new = win.controller.job.id
    assert new > old
    # A late step of the old job (as if already in flight) must be dropped, not painted.
    preview = win.canvas.preview_image()
    dropped = win.controller.dropped_steps
    worker = win.worker_thread.worker
    worker.step_ready.emit(old, 0, 3, 12, np.zeros((32, 32, 3), np.uint8), (0, 0, 32, 32),
                           np.ones((8, 8), np.float32), np.zeros((8, 8), bool))
    assert win.controller.dropped_steps == dropped + 1
    assert win.canvas.preview_image() == preview
    with qtbot.waitSignal(win.controller.candidate_changed, timeout=5000):
        gated.open()
    assert {j for j, *_ in seen[1:]} == {new}
    s = win.controller.sampling
    assert [st for _, st, *_ in seen[1:]] == list(range(s.start_step, s.steps))
    assert (win.doc.image[m] == colour(9, s.steps - 1)).all(), "the result is the new job's"
    assert win.doc.undo_stack.count() == entries + 1
    assert [c["seed"] for c in gated.calls] == [5, 9]


def test_regenerate_as_class_and_automatic_class(qtbot, win, engine):
    paint_mask(win)
    win.class_picker.search.setText("golden retr")
    win.class_picker.search.returnPressed.emit()
    assert win.class_picker.class_id() == 207
    assert "golden retriever" in win.regen_button.text()
    # Browsing with another search keeps the choice; clearing it shows the chosen row.
    picker = win.class_picker
    for text, name in (("lion", "lion"), ("cat", "tiger cat"), ("tabby", "tabby")):
        picker.search.setText(text)  # Return takes the best match, not the first by id
        picker.search.returnPressed.emit()
        assert picker.class_name() == name, text
    picker.search.setText("golden retr")
    picker.search.returnPressed.emit()
    picker.search.setText("tabby")
    assert picker.class_id() == 207
    picker.search.clear()
    assert picker.class_id() == 207
    current = picker.list.currentIndex()
    assert current.isValid() and "golden retriever" in current.data()
    assert picker.list.viewport().rect().intersects(picker.list.visualRect(current))
    with qtbot.waitSignal(win.controller.candidate_changed, timeout=5000):
        win.regen_button.click()
    assert engine.calls[-1]["class_id"] == 207
    assert win.doc.undo_stack.undoText() == "Regenerate as golden retriever"
    # Automatic: the worker asks the engine once and passes the class it chose.
    win.doc.undo_stack.undo()
    win.class_picker.set_class(None)
    with qtbot.waitSignal(win.controller.class_chosen, timeout=5000) as sig:
        win.a_generate.trigger()
    assert sig.args == [207]
    wait_idle(qtbot, win)


def test_candidates_can_be_flipped_and_regenerated(qtbot, win, engine):
    m = paint_mask(win)
    win.sampling.candidates.setValue(3)
    entries = win.doc.undo_stack.count()
    with qtbot.waitSignal(win.controller.candidate_changed, timeout=5000):
        win.a_generate.trigger()
    last = win.controller.sampling.steps - 1
    assert (win.doc.image[m] == colour(5, last, 0)).all()
    win.candidate_bar.next.click()
    assert (win.doc.image[m] == colour(5, last, 1)).all()
    assert win.doc.undo_stack.count() == entries + 1, "flipping reuses the same undo slot"
    with qtbot.waitSignal(win.controller.candidate_changed, timeout=5000,
                          check_params_cb=lambda i, n: n > 0):
        win.candidate_bar.regen_btn.click()
    assert (win.doc.image[m] == colour(6, last, 0)).all(), "regenerate: next seed"
    assert win.doc.undo_stack.count() == entries + 1
    win.candidate_bar.accept_btn.click()
    assert win.candidate_bar.isHidden()


def test_outpaint_release_fills_the_new_strip(qtbot, gwin, gated):
    win = gwin
    win.controller.feather = 0
    before = win.doc.image.copy()
    h, w = before.shape[:2]
    a = win.canvas.mapFromScene(w, h / 2)
    view = win.canvas.viewport()
    progress = []
    win.controller.advanced.connect(lambda done, total: progress.append((done, total)))
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(view, a + QPoint(40, 0))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=a + QPoint(40, 0))
    assert win.controller.busy, "releasing the edge starts the fill"
    assert win.doc.mask[:, w:].all() and not win.doc.mask[:, :w].any()
    with qtbot.waitSignal(win.controller.candidate_changed, timeout=5000):
        gated.open()
    assert not win.doc.mask.any()
    assert win.doc.undo_stack.count() == 2  # extend + outpaint
    out = win.doc.image
    assert np.array_equal(out[:, :w], before), "the old pixels are untouched"
    n = len(gated.calls)
    assert n >= 2, "a 48 px tall strip needs more than one 32 px window"
    # The progress bar runs once over the whole job, not once per window.
    steps = win.controller.sampling.steps
    assert {t for _, t in progress} == {n * steps}
    done = [d for d, _ in progress]
    assert done == sorted(done) and done[-1] == n * steps
    # Feather 0 (set above): new pixels are the last step of one of the windows, or a
    # cross-fade between two of them where they meet (one token cell wide).
    last = win.controller.sampling.steps - 1
    fills = sorted({colour(5 + k, last) for k in range(n)})
    new = out[:, w:]
    assert ((new >= fills[0]) & (new <= fills[-1])).all()
    assert np.isin(new, fills).mean() > 0.5


def test_generate_without_mask_explains_instead_of_failing(qtbot, win, engine):
    win.a_generate.trigger()
    assert win.last_error and "mask" in win.last_error[1]
    assert not win.controller.busy and engine.calls == []


def test_new_image_generates_a_whole_window_of_the_class(qtbot, win, engine):
    win.class_picker.set_class(1)
    seen = record_steps(win)
    with qtbot.waitSignal(win.controller.candidate_changed, timeout=5000):
        win.new_button.click()
    assert engine.calls[-1] == dict(kind="generate", class_id=1, seed=5)
    assert win.doc.image.shape == (32, 32, 3)
    steps = win.controller.sampling.steps
    assert [s[1] for s in seen] == list(range(steps)), "generation runs the whole schedule"
    assert (win.doc.image == colour(5, steps - 1)).all()
    assert not win.doc.mask.any()


def test_core_mask_is_what_the_worker_regenerates(win):
    m = paint_mask(win)
    (v,) = win.controller.plan()
    assert np.array_equal(core_mask(m, v), m)


def test_mask_strokes_during_a_decode_survive_and_history_waits(qtbot, gwin, gated):
    win = gwin
    m = paint_mask(win)
    win.a_generate.trigger()
    assert not win.a_undo.isEnabled(), "no undo while a decode reads the image"
    win.set_tool("brush")
    win.brush_size.setValue(4)
    view = win.canvas.viewport()
    a, b = win.canvas.mapFromScene(50, 40), win.canvas.mapFromScene(60, 40)
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(view, b)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=b)
    stroke = win.doc.mask & ~m
    assert stroke[40, 51:59].all()
    with qtbot.waitSignal(win.controller.candidate_changed, timeout=5000):
        gated.open()
    assert np.array_equal(win.doc.mask, stroke), "the new stroke stays, the generated area leaves"
    assert win.a_undo.isEnabled()


def test_outpaint_strips_are_tiled_sharply_and_inpaint_blobs_downscaled(qtbot, win):
    win.doc.reset(np.zeros((64, 400, 3), np.uint8))
    blob = np.zeros((64, 400), bool)
    blob[4:60, 40:360] = True  # needs > 4 native 32 px windows
    assert all(v.scale > 1 for v in win.controller.plan(blob))
    win.controller.fill_on_release = False
    win.controller.extend(0, 0, 40, 0)  # a 40 px strip on the right
    strip = win.controller.plan()
    assert len(strip) > 4 and all(v.scale == 1 for v in strip)
    blob = np.pad(blob, ((0, 0), (0, 40)))
    assert all(v.scale > 1 for v in win.controller.plan(blob)), "inside the old image: inpaint"


def test_the_panels_order_reaches_the_decoder(qtbot, win, engine):
    paint_mask(win)
    win.sampling.order.setCurrentText("halton")
    with qtbot.waitSignal(win.controller.candidate_changed, timeout=5000):
        win.a_generate.trigger()
    assert engine.calls[-1]["params"].order == "halton"


def test_cancelling_a_regeneration_puts_the_shown_candidate_back(qtbot, gwin, gated):
    win = gwin
    m = paint_mask(win)
    win.sampling.candidates.setValue(2)
    gated.open()
    with qtbot.waitSignal(win.controller.candidate_changed, timeout=5000,
                          check_params_cb=lambda i, n: n > 0):
        win.a_generate.trigger()
    win.candidate_bar.next.click()
    shown, entries = win.doc.image.copy(), win.doc.undo_stack.count()
    gated._open.clear()  # the regeneration waits at its first step
    assert win.controller.regenerate()
    assert win.controller.busy and win.controller.candidate is None
    assert not np.array_equal(win.doc.image[m], shown[m]), "regenerating takes it off"
    win.controller.cancel()
    assert np.array_equal(win.doc.image, shown) and win.doc.undo_stack.count() == entries
    c = win.controller.candidate
    assert c is not None and c.index == 1 and not win.candidate_bar.isHidden()
    gated.open()


def test_a_canvas_growth_beyond_the_size_limit_is_refused(qtbot, win):
    from editor.core.imageio import MAX_SIDE

    shape = win.doc.image.shape
    win.controller.extend(0, 0, MAX_SIDE, 0)
    assert win.doc.image.shape == shape and win.doc.undo_stack.count() == 0
    assert "pixels a side" in win.statusBar().currentMessage()


def test_classic_fill_inpaints_thin_strokes_at_once(qtbot, win, engine):

    before = win.doc.image.copy()
    m = np.zeros(win.doc.mask.shape, bool)
    m[20:24, 5:60] = True  # a thin stroke, a wire across the picture
    lock = np.zeros_like(m)
    lock[18:26, 50:60] = True
    win.controller.locks.set(lock)
    win.doc.set_mask(m, "stroke")
    count = win.doc.undo_stack.count()
    win.a_fill_classic.trigger()
    out, hole = win.doc.image, m & ~lock
    assert engine.calls == [], "no model involved"
    assert win.doc.undo_stack.count() == count + 1
    assert win.doc.undo_stack.text(count) == "Fill from surroundings"
    assert np.array_equal(out[~hole], before[~hole]), "only the hole changes, locks included"
    # Filled from its rows above and below: no far-off colour in the hole.
    ring = np.concatenate([before[17:20, 5:50], before[24:27, 5:50]]).reshape(-1, 3)
    assert (out[hole].astype(int).mean(0) - ring.astype(int).mean(0)).__abs__().max() < 40
    assert not win.doc.mask[hole].any() and win.doc.mask[m & lock].all()
    win.doc.undo_stack.undo()
    assert np.array_equal(win.doc.image, before)
    win.controller.locks.set(np.zeros_like(lock))
    win.doc.set_mask(np.ones_like(m), "all")
    assert not win.controller.fill_classic()
    assert win.last_error[0] == "Nothing to fill from"


def test_fill_from_surroundings_fills_a_region_on_the_worker_from_the_photo(qtbot, win, engine):
    img = np.zeros((48, 64, 3), np.uint8)
    img[:, :48] = (200, 40, 40)
    img[:, 48:] = (40, 40, 200)
    img += np.random.default_rng(1).integers(0, 20, img.shape, dtype=np.uint8)
    win.doc.reset(img)
    m = np.zeros((48, 64), bool)
    m[14:34, 14:32] = True  # a region inside the red part: shift-map, not Telea
    win.doc.set_mask(m, "region")
    count = win.doc.undo_stack.count()
    with qtbot.waitSignal(win.controller.busy_changed, timeout=20_000,
                          check_params_cb=lambda busy: not busy):
        assert win.controller.fill_classic()
        assert win.controller.busy, "a region runs on the worker thread"
    out = win.doc.image
    assert engine.calls == [], "no model involved"
    assert win.doc.undo_stack.count() == count + 1
    assert win.doc.undo_stack.text(count) == "Fill from surroundings"
    assert np.array_equal(out[~m], img[~m])
    assert out[m][:, 0].mean() > 150 and out[m][:, 2].mean() < 90, "red, from the red half"
    assert not win.doc.mask.any()
    # Cancelled, a fill leaves the picture as it was.
    win.doc.undo_stack.undo()
    win.doc.set_mask(m, "region")
    with qtbot.waitSignal(win.controller.busy_changed, timeout=20_000,
                          check_params_cb=lambda busy: not busy):
        win.controller.fill_classic()
        win.controller.cancel()
    assert np.array_equal(win.doc.image, img) and win.doc.mask[m].all()


def test_typing_in_the_class_search_never_changes_the_class(qtbot):
    from PySide6.QtTest import QTest

    from editor.ui.widgets import ClassPicker

    picker = ClassPicker()
    qtbot.addWidget(picker)
    picker.show()
    picker.set_class(291)  # lion
    picker.search.setFocus()
    QTest.keyClicks(picker.search, "hot d")  # hides the lion: the view moves its current row
    assert picker.class_name() == "lion"
    picker.search.clear()
    QTest.keyClicks(picker.search, "xyzzy")
    picker.search.returnPressed.emit()  # no match: nothing to take
    assert picker.class_name() == "lion"
