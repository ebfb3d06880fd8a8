"""Real gestures on the canvas viewport: brush strokes, undo, outpaint edge drags, tools."""

from __future__ import annotations

import numpy as np
from fakes import drag, vp
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt


def test_brush_stroke_changes_the_mask_and_undo_restores_it(qtbot, win):
    win.set_tool("brush")
    win.brush_size.setValue(6)
    assert not win.doc.mask.any()
    drag(qtbot, win, vp(win, 10, 20), vp(win, 40, 20))
    m = win.doc.mask.copy()
    assert m[20, 10:40].all(), "the stroke covers its path"
    assert not m[:14].any() and not m[27:].any(), "and nothing far from it"
    assert win.doc.undo_stack.count() == 1, "one stroke, one undo entry"
    win.a_undo.trigger()
    assert not win.doc.mask.any()
    win.a_redo.trigger()
    assert np.array_equal(win.doc.mask, m)


def test_right_button_and_eraser_remove_from_the_mask(qtbot, win):
    win.doc.set_mask(np.ones((48, 64), bool), "all")
    win.set_tool("brush")
    win.brush_size.setValue(4)
    drag(qtbot, win, vp(win, 5, 5), vp(win, 30, 5), Qt.MouseButton.RightButton)
    assert not win.doc.mask[5, 6:29].any()
    win.set_tool("eraser")
    drag(qtbot, win, vp(win, 5, 30), vp(win, 30, 30))
    assert not win.doc.mask[30, 6:29].any()
    assert win.doc.mask[15:25].all()


def test_brackets_resize_the_brush(qtbot, win):
    win.set_tool("brush")
    before = win.tools["brush"].size
    qtbot.keyClick(win.canvas, Qt.Key.Key_BracketRight)
    assert win.tools["brush"].size > before
    qtbot.keyClick(win.canvas, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(win.canvas, Qt.Key.Key_BracketLeft)
    assert win.tools["brush"].size < before


def test_rectangle_and_lasso_select(qtbot, win):
    win.set_tool("rectangle")
    drag(qtbot, win, vp(win, 10, 10), vp(win, 30, 20))
    expect = np.zeros((48, 64), bool)
    expect[10:20, 10:30] = True
    assert np.array_equal(win.doc.mask, expect)
    win.set_tool("lasso")
    view = win.canvas.viewport()
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=vp(win, 40, 30))
    for p in [(60, 30), (60, 45), (40, 45)]:
        qtbot.mouseMove(view, vp(win, *p))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=vp(win, 40, 45))
    assert win.doc.mask[32:43, 42:58].all()
    assert win.doc.undo_stack.count() == 2


def test_dragging_the_right_edge_grows_the_canvas_and_masks_exactly_the_new_strip(qtbot, win):
    win.controller.fill_on_release = False
    before = win.doc.image.copy()
    h, w = before.shape[:2]
    assert win.canvas.zoom() == 1.0
    a = vp(win, w, h / 2)
    drag(qtbot, win, a, a + QPoint(100, 0))
    assert win.doc.image.shape == (h, w + 100, 3)
    expect = np.zeros((h, w + 100), bool)
    expect[:, w:] = True
    assert np.array_equal(win.doc.mask, expect)
    assert np.array_equal(win.doc.image[:, :w], before), "the old pixels stay where they were"
    win.a_undo.trigger()
    assert win.doc.image.shape == before.shape and not win.doc.mask.any()


def test_an_outpaint_drag_zooms_out_as_far_as_the_grown_canvas_needs_and_never_in(qtbot, win):
    win.controller.fill_on_release = False
    cv = win.canvas
    h, w = win.doc.height, win.doc.width
    assert cv.zoom() == 1.0  # a small photo at actual size in a big view
    a = vp(win, w, h / 2)
    drag(qtbot, win, a, a + QPoint(40, 0))
    assert win.doc.width == w + 40
    assert cv.zoom() == 1.0, "the grown canvas still fits: no jump"
    view = cv.viewport().rect()
    while win.doc.width <= view.width():  # a drag grows by at most 4x: drag again
        a = vp(win, win.doc.width, h / 2)
        drag(qtbot, win, a, a + QPoint(view.width(), 0))
    seen = cv.mapToScene(view).boundingRect()
    assert cv.zoom() < 1.0 and seen.contains(QRectF(0, 0, win.doc.width, win.doc.height))


def test_dragging_a_corner_grows_two_sides(qtbot, win):
    win.controller.fill_on_release = False
    h, w = win.doc.height, win.doc.width
    a = vp(win, 0, 0)
    drag(qtbot, win, a, a - QPoint(20, 10))
    assert (win.doc.height, win.doc.width) == (h + 10, w + 20)
    assert win.doc.origin == (20, 10)
    m = win.doc.mask
    assert not m[10:, 20:].any() and m[:10].all() and m[:, :20].all()


def test_tab_shows_the_original_while_held(qtbot, win):
    win.canvas.setFocus()
    qtbot.keyPress(win.canvas, Qt.Key.Key_Tab)
    assert win.canvas.showing_original
    qtbot.keyRelease(win.canvas, Qt.Key.Key_Tab)
    assert not win.canvas.showing_original


def test_wheel_zooms_about_the_pointer(qtbot, win):
    from PySide6.QtCore import QPointF as P
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    win.canvas.set_zoom(8.0)  # the scene overflows the view: there is room to keep the point
    for x, y, notches in ((40, 30, 1), (10, 40, 3), (55, 8, -2)):
        win.canvas.centerOn(x + 3, y - 2)
        z = win.canvas.zoom()
        pos = P(vp(win, x, y))
        ev = QWheelEvent(pos, win.canvas.viewport().mapToGlobal(pos), QPoint(),
                         QPoint(0, 120 * notches), Qt.MouseButton.NoButton,
                         Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(win.canvas.viewport(), ev)
        assert (win.canvas.zoom() > z) == (notches > 0)
        under = win.canvas.mapToScene(pos.toPoint())
        assert abs(under.x() - x) <= 0.25 and abs(under.y() - y) <= 0.25, (x, y, under)


def test_after_fit_every_edge_can_still_be_grabbed(qtbot, win):
    win.controller.fill_on_release = False
    win.canvas.fit()
    h, w = win.doc.height, win.doc.width
    view = win.canvas.viewport().rect()
    for x, y in [(0, h / 2), (w, h / 2), (w / 2, 0), (w / 2, h)]:
        p = vp(win, x, y)
        assert view.adjusted(4, 4, -4, -4).contains(p), "the border is inside the view"
        assert win.canvas.edge_at(QPointF(p)) is not None
    a = vp(win, w, h / 2) + QPoint(6, 0)  # a few pixels outside the right edge
    drag(qtbot, win, a, a + QPoint(60, 0))
    assert win.doc.width > w and win.doc.height == h


def test_a_fitted_view_stays_fitted_through_resizes_and_outpaints_until_the_user_zooms(qtbot, win):
    cv = win.canvas
    cv.fit()
    z, w = cv.zoom(), cv.viewport().width()
    win.resize(win.width() - 200, win.height() - 150)  # e.g. the candidates strip appearing
    qtbot.waitUntil(lambda: cv.viewport().width() < w, timeout=2000)
    assert cv.zoom() < z
    win.controller.fill_on_release = False
    win.controller.extend(0, 0, 64, 0)  # the canvas grows: all of it stays in view
    seen = cv.mapToScene(cv.viewport().rect()).boundingRect()
    assert seen.contains(QRectF(0, 0, win.doc.width, win.doc.height))
    cv.set_zoom(cv.zoom() * 2)  # the user zooms: resizes leave the view alone
    z = cv.zoom()
    w = cv.viewport().width()
    win.resize(win.width() + 200, win.height() + 150)
    qtbot.waitUntil(lambda: cv.viewport().width() > w, timeout=2000)
    assert cv.zoom() == z


def test_a_refused_outpaint_drag_leaves_the_zoom_alone(qtbot, win):
    cv = win.canvas
    cv.set_zoom(cv.zoom() * 1.5)
    z = cv.zoom()
    w, h = win.doc.width, win.doc.height
    cv.centerOn(w, h / 2)
    a = cv.mapFromScene(w, h / 2)
    view = cv.viewport()
    win.controller.job = object()  # busy: extend() refuses the drag and says so
    try:
        qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=a)
        qtbot.mouseMove(view, a + QPoint(40, 0))
        qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=a + QPoint(40, 0))
    finally:
        win.controller.job = None
    assert win.doc.width == 64 and cv.zoom() == z
    w = cv.viewport().width()
    win.resize(win.width() - 100, win.height())
    qtbot.waitUntil(lambda: cv.viewport().width() < w, timeout=2000)
    assert cv.zoom() == z


def test_grow_and_shrink_the_mask(qtbot, win):
    from editor.core.masks import MASK_STEP

    m = np.zeros(win.doc.mask.shape, bool)
    m[20:28, 20:30] = True
    m[:, -3:] = True  # a strip on the border stays on the border
    win.doc.set_mask(m, "mask")
    win.a_grow.trigger()
    grown = win.doc.mask
    assert grown[20 - MASK_STEP, 24] and not grown[20 - MASK_STEP - 1, 24] and (grown >= m).all()
    win.a_shrink.trigger()
    assert np.array_equal(win.doc.mask[m], m[m]) and win.doc.mask[:, -1].all()
    win.doc.undo_stack.undo()
    win.doc.undo_stack.undo()
    assert np.array_equal(win.doc.mask, m)


def test_compare_split_shows_the_original_left_of_the_divider(qtbot, win):
    cv, doc = win.canvas, win.doc
    cv.set_zoom(6.0)
    cv.centerOn(32, 24)
    original = doc.original.copy()
    doc.apply_result(np.zeros_like(doc.image), (0, 0, doc.width, doc.height), doc.mask, "black")
    win.a_split.trigger()
    assert cv.split is not None
    cv.split_at = cv.mapFromScene(QPointF(32, 24)).x()  # the pointer's place
    cv.viewport().update()

    def shown(x, y):
        img = cv.viewport().grab().toImage()
        pt = cv.mapFromScene(QPointF(x + 0.5, y + 0.5))
        c = img.pixelColor(pt.x(), pt.y())
        return np.array([c.red(), c.green(), c.blue()])

    assert np.abs(shown(28, 20) - original[20, 28]).max() <= 2, "left: the original"
    assert np.abs(shown(36, 20)).max() <= 2, "right: the picture as it is"
    win.a_split.trigger()
    assert cv.split is None and np.abs(shown(28, 20)).max() <= 2


def test_the_compare_divider_follows_the_pointer_and_stays_on_screen_when_panning(qtbot, win):
    cv = win.canvas
    cv.set_zoom(6.0)
    win.a_split.trigger()
    view = cv.viewport()
    qtbot.mouseMove(view, QPoint(120, 100))
    assert cv.split_at == 120
    before = cv.split
    cv.horizontalScrollBar().setValue(cv.horizontalScrollBar().value() + 60)
    assert cv.split_at == 120 and cv.split != before, "same screen place, other scene x"


def test_a_file_opened_while_the_brush_is_held_ends_the_stroke(qtbot, win, tmp_path):
    """Ctrl+O with the mouse button down: the rest of the drag paints nothing into the new
    photo, where it would have no undo entry, and nothing raises."""
    from PIL import Image

    other = tmp_path / "other.png"
    Image.fromarray(np.full((40, 50, 3), 90, np.uint8)).save(other)
    win.set_tool("brush")
    win.brush_size.setValue(6)
    view = win.canvas.viewport()
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=vp(win, 10, 20))
    qtbot.mouseMove(view, vp(win, 30, 20))
    assert win.open_path(other)
    qtbot.mouseMove(view, vp(win, 20, 25))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=vp(win, 20, 25))
    assert win.doc.mask.shape == (40, 50) and not win.doc.mask.any()
    assert win.doc.undo_stack.count() == 0
