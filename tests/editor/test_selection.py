"""GrabCut object selection and the magic wand (editor.core.selection), Qt-free."""

from __future__ import annotations

import cv2
import numpy as np

from editor.core.selection import grabcut, magic_wand, subject


def disc_on_grass(h: int = 120, w: int = 160, centre: tuple[int, int] = (80, 60),
                  radius: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """(photo, disc): a red disc (an object, a subject) on textured green grass."""
    rng = np.random.default_rng(0)
    img = np.empty((h, w, 3), np.uint8)
    img[...] = (40, 120, 60)  # green grass...
    img += rng.integers(0, 30, (h, w, 3), np.uint8)  # ...with texture
    disc = np.zeros((h, w), np.uint8)
    cv2.circle(disc, centre, radius, 1, -1)
    img[disc > 0] = np.array((220, 60, 50)) + rng.integers(0, 20, (int(disc.sum()), 3))
    return img, disc > 0


def test_grabcut_takes_the_object_inside_the_box_and_nothing_outside():
    img, disc = disc_on_grass()
    m = grabcut(img, (40, 20, 120, 100))
    iou = (m & disc).sum() / (m | disc).sum()
    assert iou > 0.9
    assert not m[:, :40].any() and not m[:, 120:].any()


def test_grabcut_scales_a_big_box_down_and_the_mask_back_up():
    img, disc = disc_on_grass()
    big = cv2.resize(img, (1280, 960), interpolation=cv2.INTER_NEAREST)
    want = cv2.resize(disc.astype(np.uint8), (1280, 960), interpolation=cv2.INTER_NEAREST) > 0
    m = grabcut(big, (320, 160, 960, 800))
    assert m.shape == want.shape
    assert (m & want).sum() / (m | want).sum() > 0.85


def test_grabcut_on_a_tiny_or_flat_box_selects_nothing():
    img, _ = disc_on_grass()
    assert not grabcut(img, (10, 10, 11, 40)).any()
    flat = np.full((50, 50, 3), 128, np.uint8)
    m = grabcut(flat, (0, 0, 50, 50))
    assert m.shape == (50, 50)


def test_the_wand_fills_the_connected_colour_within_the_tolerance():
    img = np.zeros((40, 60, 3), np.uint8)
    img[:, :30] = (200, 50, 50)
    img[:, 30:] = (210, 60, 40)  # within 12 of the left half's colour
    img[10:20, 40:50] = (0, 0, 255)  # a blue island in the right half
    loose = magic_wand(img, (5, 5), 12)
    assert loose.sum() == 40 * 60 - 100 and not loose[10:20, 40:50].any()
    tight = magic_wand(img, (5, 5), 5)
    assert tight.sum() == 40 * 30
    assert magic_wand(img, (45, 15), 0).sum() == 100
    assert not magic_wand(img, (99, 5), 10).any()  # a seed outside the image


def test_the_wand_compares_with_the_seed_so_a_gradient_does_not_leak():
    ramp = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 10, 0).repeat(3, 2)
    m = magic_wand(ramp, (0, 5), 20)
    assert m[:, :21].all() and not m[:, 22:].any()


# ---------------------------------------------------------------- the tools in the window
def test_select_object_drag_masks_the_object_as_one_undo_entry(win, qtbot):
    from fakes import drag, vp
    from PySide6.QtCore import Qt

    img, disc = disc_on_grass()
    win.doc.reset(img)
    win.canvas.actual_size()
    win.tool_actions["object"].trigger()
    assert win.tool_actions["object"].shortcut().toString() == "O"
    before = win.doc.undo_stack.count()
    background = win.selecting
    with qtbot.waitSignal(background.finished, timeout=10_000):
        drag(qtbot, win, vp(win, 40, 20), vp(win, 120, 100))
    m = win.doc.mask
    assert (m & disc).sum() / (m | disc).sum() > 0.9
    assert win.doc.undo_stack.count() == before + 1
    assert win.doc.undo_stack.undoText() == "Select object"
    win.doc.undo_stack.undo()
    assert not win.doc.mask.any()
    # The right button takes the object out of a mask again.
    win.doc.set_mask(np.ones_like(disc), "all")
    with qtbot.waitSignal(background.finished, timeout=10_000):
        drag(qtbot, win, vp(win, 40, 20), vp(win, 120, 100), button=Qt.MouseButton.RightButton)
    assert (win.doc.mask & disc).sum() < 0.1 * disc.sum()


def test_select_object_runs_off_the_gui_thread_and_waits_for_a_brush_stroke(win, qtbot,
                                                                          monkeypatch):
    import threading

    from fakes import drag, vp

    import editor.ui.tools as tools

    img, disc = disc_on_grass()
    win.doc.reset(img)
    win.canvas.actual_size()
    release, threads, real = threading.Event(), [], tools.grabcut

    def held(image, box):  # GrabCut, held until the brush stroke below has begun
        threads.append(threading.current_thread())
        assert release.wait(10)
        return real(image, box)

    monkeypatch.setattr(tools, "grabcut", held)
    background = win.selecting
    win.tool_actions["object"].trigger()
    drag(qtbot, win, vp(win, 40, 20), vp(win, 120, 100))
    assert background.running == 1 and not win.doc.mask.any(), "the window did not wait"
    assert win.statusBar().currentMessage() == "Selecting the object…"
    stroke = win.doc.begin_stroke()  # the user paints meanwhile
    stroke[0:4, 0:4] = True
    with qtbot.waitSignal(background.finished, timeout=10_000):
        release.set()
    assert threads[0] is not threading.main_thread()
    assert win.statusBar().currentMessage() == ""
    assert not win.doc.mask[disc].any(), "not merged into a stroke under way"
    win.doc.end_stroke("Paint mask")
    qtbot.waitUntil(lambda: win.doc.undo_stack.undoText() == "Select object", timeout=5000)
    m = win.doc.mask
    assert (m & disc).sum() / disc.sum() > 0.9 and m[0:4, 0:4].all()


def test_an_object_outline_of_a_picture_that_changed_meanwhile_is_dropped(win, qtbot,
                                                                        monkeypatch):
    import threading

    from fakes import drag, vp

    import editor.ui.tools as tools

    img, _disc = disc_on_grass()
    win.doc.reset(img)
    win.canvas.actual_size()
    release, real, outlines = threading.Event(), tools.grabcut, []

    def held(image, box):
        assert release.wait(10)
        outlines.append(real(image, box))
        return outlines[-1]

    monkeypatch.setattr(tools, "grabcut", held)
    background = win.selecting
    win.tool_actions["object"].trigger()
    drag(qtbot, win, vp(win, 40, 20), vp(win, 120, 100))
    win.doc.reset(255 - img)  # another picture opened while GrabCut ran
    count = win.doc.undo_stack.count()
    with qtbot.waitSignal(background.finished, timeout=10_000):
        release.set()
    assert outlines[0].any(), "GrabCut found the disc..."
    assert not win.doc.mask.any() and win.doc.undo_stack.count() == count, "...of the old one"


def test_magic_wand_click_uses_the_toolbar_tolerance_as_one_undo_entry(win, qtbot):
    from fakes import vp
    from PySide6.QtCore import Qt

    img = np.zeros((48, 64, 3), np.uint8)
    img[:, :32] = (200, 50, 50)
    img[:, 32:] = (215, 50, 50)
    win.doc.reset(img)
    win.canvas.actual_size()
    win.tool_actions["wand"].trigger()
    assert win.tool_actions["wand"].shortcut().toString() == "W"
    assert win.tolerance.isEnabled()
    win.tolerance.setValue(10)
    before = win.doc.undo_stack.count()
    qtbot.mouseClick(win.canvas.viewport(), Qt.MouseButton.LeftButton, pos=vp(win, 5.5, 5.5))
    assert win.doc.mask[:, :32].all() and not win.doc.mask[:, 32:].any()
    assert win.doc.undo_stack.count() == before + 1
    win.doc.undo_stack.undo()
    win.tolerance.setValue(20)
    qtbot.mouseClick(win.canvas.viewport(), Qt.MouseButton.LeftButton, pos=vp(win, 5.5, 5.5))
    assert win.doc.mask.all()
    assert win.doc.undo_stack.count() == before + 1


def test_the_help_lists_both_selection_tools():
    from editor.ui.help import HELP

    keys = dict(HELP)
    assert "GrabCut" in keys["O"] and "magic wand" in keys["W"]


def test_closing_the_window_leaves_no_selection_thread(win, qtbot):
    import threading

    from fakes import drag, vp

    img, _ = disc_on_grass()
    win.doc.reset(img)
    win.canvas.actual_size()
    win.tool_actions["object"].trigger()
    with qtbot.waitSignal(win.selecting.finished, timeout=10_000):
        drag(qtbot, win, vp(win, 40, 20), vp(win, 120, 100))
    threads = [t for t in threading.enumerate() if t.name.startswith("select")]
    assert threads, "the selection ran on its thread"
    win.close()
    for t in threads:
        t.join(5)
    assert not any(t.is_alive() for t in threads)


def test_subject_finds_what_stands_inside_the_frame_without_a_box():
    img, disc = disc_on_grass()
    m = subject(img)
    assert m.shape == disc.shape
    assert (m & disc).sum() / (m | disc).sum() > 0.85
    big = cv2.resize(img, (640, 480), interpolation=cv2.INTER_NEAREST)  # cut at SUBJECT_SIDE
    want = cv2.resize(disc.astype(np.uint8), (640, 480), interpolation=cv2.INTER_NEAREST) > 0
    m = subject(big)
    assert m.shape == want.shape and (m & want).sum() / (m | want).sum() > 0.85


def test_subject_of_a_flat_picture_is_a_mask_of_its_size():
    m = subject(np.full((40, 60, 3), 128, np.uint8))
    assert m.shape == (40, 60) and m.dtype == bool


def test_the_same_picture_gives_the_same_cut_whatever_drew_random_numbers_before():
    img, _ = disc_on_grass()
    img = cv2.GaussianBlur(img, (0, 0), 3)  # soft edges: where k-means' start shows
    first = subject(img), grabcut(img, (30, 10, 130, 110))
    cv2.randu(np.zeros((64, 64), np.float32), 0, 1)  # OpenCV's generator moved on
    again = subject(img), grabcut(img, (30, 10, 130, 110))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
