"""What a Generate costs the GUI thread (issue 18: no stall over one 60 Hz frame): a step's
progress schedules a paint and never paints at once, the undecided tokens are drawn as one image
per window, the token grid is drawn from a cache, Generate reuses the plan the overlay already
made, an autosave falling due mid-decode waits for its end, a lock or keep-out brush dab
converts only its own rectangle. bench/gui_stall.py measures the stalls themselves; these tests
pin the mechanisms, so they fail on the code that stalled.
"""

from __future__ import annotations

import sys

import numpy as np
from PySide6.QtCore import QEvent, QObject, QRectF
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QStyleOptionGraphicsItem

from editor.core import geometry as g
from editor.ui.overlays import SHADE_RGBA, GridLines, MaskOverlay


class Paints(QObject):
    """Counts the paint events a widget receives."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
        if ev.type() == QEvent.Type.Paint:
            self.count += 1
        return False


def mask(win, x0: int = 10, y0: int = 10, x1: int = 40, y1: int = 30) -> np.ndarray:
    m = np.zeros(win.doc.mask.shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_a_step_of_progress_schedules_the_bar_and_never_paints_it_at_once(qtbot, win):
    bar = win.progress_bar
    bar.setVisible(True)
    qtbot.waitExposed(bar)
    paints = Paints()
    bar.installEventFilter(paints)
    for done in range(1, 5):  # what the controller's `advanced` does at every step
        win.controller.advanced.emit(done, 12)
    # QProgressBar.setValue repaints synchronously: 3-4 ms of the GUI thread per step.
    assert paints.count == 0
    assert (bar.minimum(), bar.maximum(), bar.value()) == (0, 12, 4)
    with qtbot.waitSignal(win.controller.busy_changed, timeout=10_000):
        win.controller.busy_changed.emit(True)  # the start of a decode resets it, as quietly
    assert paints.count == 0 and bar.value() == 0
    bar.removeEventFilter(paints)


def test_undecided_tokens_are_shaded_exactly_from_one_image_per_window(qtbot):
    overlay = MaskOverlay()
    overlay.set_size(64, 48)
    win = g.Window(0, 0, 32, 32, 4, (0, 0, 32, 32))
    overlay.set_plan([win], [np.zeros((4, 4), bool)])
    overlay.decoding = True
    undecided = np.zeros((4, 4), bool)
    undecided[1, 2] = undecided[3, 0] = True
    overlay.set_undecided(win, undecided)

    class Recording(QPainter):
        fills = 0

        def fillRect(self, *args):  # one call per cell: the old, slow way
            Recording.fills += 1
            super().fillRect(*args)

    img = QImage(64, 48, QImage.Format.Format_ARGB32_Premultiplied)
    img.fill(QColor(255, 255, 255))
    p = Recording(img)
    overlay.paint(p, QStyleOptionGraphicsItem())
    p.end()
    assert Recording.fills == 0
    shaded = np.array([[img.pixelColor(x, y) != QColor(255, 255, 255) for x in range(64)]
                       for y in range(48)])
    want = np.zeros((48, 64), bool)
    want[8:16, 16:24] = want[24:32, 0:8] = True
    frame = np.zeros_like(want)  # the dashed window outline
    frame[0:33, [0, 32]] = frame[[0, 32], 0:33] = True
    assert np.array_equal(shaded & ~frame, want & ~frame)
    a = SHADE_RGBA[3] / 255
    c = img.pixelColor(20, 12)
    assert abs(c.red() - round(SHADE_RGBA[0] * a + 255 * (1 - a))) <= 2
    overlay.clear_undecided()
    assert overlay.undecided == {}


def test_the_token_grid_is_drawn_once_per_plan_not_at_every_paint(qtbot, tmp_path, monkeypatch):
    from fakes import FakeEngine, make_window

    drawn = []
    paint = GridLines.paint
    # Before the items exist: PySide looks an item's Python paint up once.
    monkeypatch.setattr(GridLines, "paint", lambda self, p, *a: (drawn.append(1),
                                                                 paint(self, p, *a)))
    win = make_window(qtbot, tmp_path, FakeEngine())
    with qtbot.waitSignal(win.controller.plan_changed, timeout=5000):
        win.doc.set_mask(mask(win), "mask")
    viewport = win.canvas.viewport()
    viewport.repaint()
    n = len(drawn)
    assert n >= 1
    for _ in range(3):
        viewport.repaint()
    win.canvas.begin_preview()  # a decode hides the grid, and its end shows it again
    viewport.repaint()
    win.canvas.end_preview()
    viewport.repaint()
    assert len(drawn) == n, "the grid was drawn again without a change of plan or zoom"
    with qtbot.waitSignal(win.controller.plan_changed, timeout=5000):
        win.doc.set_mask(mask(win, 0, 0, 60, 44), "mask")
    viewport.repaint()
    assert len(drawn) > n
    assert win.canvas.overlay.grid.boundingRect().contains(QRectF(0, 0, 60, 44))
    win.close()


def test_generate_reuses_the_plan_the_overlay_made(qtbot, win, monkeypatch):
    import editor.state.controller as controller

    calls = []
    plan = g.plan
    monkeypatch.setattr(controller.g, "plan", lambda *a, **k: (calls.append(1), plan(*a, **k))[1])
    c = win.controller
    with qtbot.waitSignal(c.plan_changed, timeout=5000) as planned:
        win.doc.set_mask(mask(win), "mask")
    assert len(calls) == 1
    with qtbot.waitSignal(c.result_committed, timeout=10_000):
        assert c.generate()
    assert len(calls) == 1, "the click planned again"
    assert c.candidate.job.windows == planned.args[0]
    c.accept()
    with qtbot.waitSignal(c.plan_changed, timeout=5000) as planned:
        win.doc.set_mask(mask(win, 0, 0, 64, 48), "mask")
    locked = np.ones(win.doc.mask.shape, bool)
    locked[30:40, 40:50] = False
    c.locks.set(locked)  # a lock changes what Generate regenerates: planned again
    want = c._plan(win.doc.mask)
    assert want != planned.args[0]
    with qtbot.waitSignal(c.result_committed, timeout=10_000):
        assert c.generate()
    assert c.candidate.job.windows == want


def test_an_autosave_falling_due_mid_decode_waits_for_its_end(qtbot, tmp_path):
    from fakes import FakeEngine, make_window

    engine = FakeEngine(gated=True)
    w = make_window(qtbot, tmp_path, engine)
    saver = w.session.autosaver
    saver.timer.setInterval(1)
    saved = []
    saver.autosaved.connect(saved.append)
    w.doc.set_mask(mask(w), "mask")
    w.controller.generate()
    assert w.controller.busy and saver.dirty
    saver.timer.timeout.emit()  # falls due while the decode runs: nothing captured
    assert saver.dirty and saver._pending is None
    with qtbot.waitSignal(saver.autosaved, timeout=10_000):
        engine.open()  # the decode ends, its result is committed, the autosave follows
    assert not w.controller.busy and saved
    w.close()


def test_the_worker_thread_hands_the_gil_to_the_gui_thread_within_a_ms(win):
    assert sys.getswitchinterval() <= 0.001


def test_a_lock_or_keep_out_dab_converts_only_its_rectangle(qtbot, monkeypatch):
    from PySide6.QtCore import QRect

    import editor.ui.overlays as overlays
    from editor.state.imageconv import mask_to_qimage

    overlay = overlays.LockOverlay(overlays.KEEP_OUT_RGBA, cells=False)
    layer = np.zeros((300, 400), bool)
    layer[10:60, 10:60] = True
    overlay.set_locked(layer)
    converted: list[tuple[int, ...]] = []

    def counted(mask: np.ndarray, rgba: tuple[int, int, int, int]) -> QImage:
        converted.append(mask.shape)
        return mask_to_qimage(mask, rgba)

    monkeypatch.setattr(overlays, "mask_to_qimage", counted)
    layer[100:120, 200:230] = True  # a dab
    overlay.set_locked(layer, QRect(200, 100, 30, 20))
    layer[20:30, 20:30] = False  # an erasing dab
    overlay.set_locked(layer, QRect(20, 20, 10, 10))
    assert converted == [(20, 30), (10, 10)]
    assert overlay._img == mask_to_qimage(layer, overlays.KEEP_OUT_RGBA)


def test_a_mask_becomes_its_colour_where_set_and_transparent_elsewhere():
    from editor.state.imageconv import mask_to_qimage

    mask = np.zeros((5, 7), bool)
    mask[1:3, 2:6] = True
    img = mask_to_qimage(mask, (255, 40, 90, 110))
    assert (img.width(), img.height()) == (7, 5)
    for y, x in np.ndindex(mask.shape):
        c = img.pixelColor(x, y)
        want = (255, 40, 90, 110) if mask[y, x] else (0, 0, 0, 0)
        assert (c.red(), c.green(), c.blue(), c.alpha()) == want


def test_a_thumbnail_keeps_the_patch_aspect_and_colours(qtbot):
    from editor.ui.candidates import THUMB, thumbnail

    class Rec:
        patch = np.zeros((3000, 560, 3), np.uint8)

    Rec.patch[:1500] = (200, 30, 30)  # red top half, blue bottom half
    Rec.patch[1500:] = (30, 30, 200)
    img = thumbnail(Rec()).toImage()  # type: ignore[arg-type]
    assert img.height() == THUMB and abs(img.width() - round(THUMB * 560 / 3000)) <= 1
    top, bottom = img.pixelColor(img.width() // 2, 5), img.pixelColor(img.width() // 2, THUMB - 5)
    assert (top.red(), top.blue()) == (200, 30) and (bottom.red(), bottom.blue()) == (30, 200)


def test_a_rectangle_selection_is_drawn_once_and_shows(qtbot, win, monkeypatch):
    from fakes import drag, vp

    import editor.ui.overlays as overlays

    calls: list[tuple[int, ...]] = []
    real = overlays.mask_to_qimage
    monkeypatch.setattr(overlays, "mask_to_qimage",
                        lambda m, rgba: calls.append(m.shape) or real(m, rgba))
    win.tool_actions["rectangle"].trigger()
    drag(qtbot, win, vp(win, 10, 8), vp(win, 30, 20))
    assert win.doc.mask[8:20, 10:30].all()
    assert calls == [(12, 20)], "once, by the undo entry (not again by the live stroke)"
    shown = win.canvas.overlay._mask
    assert shown.pixelColor(15, 10).alpha() > 0 and shown.pixelColor(40, 30).alpha() == 0
