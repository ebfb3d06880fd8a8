"""Document and its undo entries, without a window: every change is one EditCommand, undo and
redo restore it exactly, and every entry serialises itself."""

from __future__ import annotations

import numpy as np

from editor.core.edits import Pixels
from editor.state.document import Document, EditCommand


def _doc() -> Document:
    return Document(np.random.default_rng(1).integers(0, 256, (20, 30, 3), np.uint8))


def test_a_stroke_is_one_undo_entry_that_undo_and_redo_restore(qtbot):
    doc = _doc()
    mask = doc.begin_stroke()
    with qtbot.waitSignal(doc.mask_changed):
        mask[2:5, 3:9] = True
        doc.stroke_updated((3, 2, 9, 5))
    assert doc.end_stroke("Paint mask")
    assert doc.undo_stack.count() == 1 and doc.mask.sum() == 18
    doc.undo_stack.undo()
    assert not doc.mask.any()
    doc.undo_stack.redo()
    assert doc.mask[2:5, 3:9].all() and doc.mask.sum() == 18


def test_a_stroke_that_changes_nothing_records_nothing():
    doc = _doc()
    doc.begin_stroke()
    assert not doc.end_stroke("Paint mask")
    assert doc.undo_stack.count() == 0


def test_extend_grows_the_canvas_masked_and_undo_shrinks_it(qtbot):
    doc = _doc()
    before = doc.image.copy()
    with qtbot.waitSignal(doc.canvas_changed):
        doc.extend(left=4, bottom=6)
    assert doc.image.shape == (26, 34, 3) and doc.origin == (4, 0)
    assert doc.mask[:, :4].all() and doc.mask[20:].all() and not doc.mask[:20, 4:].any()
    doc.undo_stack.undo()
    assert np.array_equal(doc.image, before) and doc.origin == (0, 0)


def test_edits_after_a_canvas_change_never_reach_the_state_before_it(qtbot):
    doc = _doc()
    before, mask = doc.image.copy(), doc.mask.copy()
    for change in (lambda: doc.extend(right=3), lambda: doc.replace(
            np.full((20, 30, 3), 7, np.uint8), np.zeros((20, 30), bool), "New image")):
        change()
        img = doc.image.copy()
        img[:] = 200
        doc.apply_result(img, (0, 0, doc.width, doc.height), np.ones(doc.mask.shape, bool),
                         "Generate")  # writes into the document's arrays in place
        doc.undo_stack.undo()
        doc.undo_stack.undo()
        assert np.array_equal(doc.image, before) and np.array_equal(doc.mask, mask)


def test_every_entry_serialises_itself_and_replays_to_the_same_state():
    doc = _doc()
    doc.set_mask(np.ones(doc.mask.shape, bool), "Mask everything")
    doc.extend(right=5)
    img = doc.image.copy()
    img[1:4, 1:4] = 9
    doc.apply_result(img, (1, 1, 4, 4), np.zeros(doc.mask.shape, bool), "Generate")
    saved = [doc.undo_stack.command(i).to_dict() for i in range(doc.undo_stack.count())]
    assert [d["type"] for d in saved] == ["region", "canvas", "region"]

    other = Document(np.zeros((20, 30, 3), np.uint8))
    other.reset(_doc().image)
    for d in saved:
        other.undo_stack.push(EditCommand.from_dict(d, other, None))
    assert other.pixels().same(doc.pixels())
    # Walking back with the edits alone (what the project file does) reaches the start.
    px = doc.pixels()
    for d in reversed(saved):
        from editor.core.edits import from_dict

        from_dict(d).apply(px, forward=False)
    assert px.same(Pixels(_doc().image, np.zeros((20, 30), bool), (0, 0),
                          np.zeros((20, 30), bool)))


def _paint(doc: Document, y0: int, y1: int, x0: int, x1: int) -> None:
    """A dab of a stroke under way: drawn into the mask as the tools do."""
    doc.mask[y0:y1, x0:x1] = True
    doc.stroke_updated((x0, y0, x1, y1))


def test_an_entry_landing_during_a_stroke_is_recorded_after_the_stroke_so_far():
    """A Generate's result (or Shift+X, Fill...) arriving while the button is held: undoing
    everything gives the opened photo back, with no stroke pixel left over."""
    doc = _doc()
    doc.begin_stroke()
    _paint(doc, 2, 5, 3, 9)
    result = doc.image.copy()
    result[10:15, 10:20] = 0
    doc.apply_result(result, (10, 10, 20, 15), doc.mask.copy(), "Generate")
    assert doc.stroking, "the stroke goes on"
    _paint(doc, 6, 8, 3, 9)
    assert doc.end_stroke("Paint mask")
    assert [doc.undo_stack.text(i) for i in range(3)] == ["Paint mask", "Generate", "Paint mask"]
    while doc.undo_stack.canUndo():
        doc.undo_stack.undo()
    assert not doc.mask.any() and np.array_equal(doc.image, doc.original)


def test_undo_during_a_stroke_takes_back_the_stroke_so_far_and_the_stroke_goes_on():
    doc = _doc()
    m = np.zeros(doc.mask.shape, bool)
    m[0:2, 0:2] = True
    doc.set_mask(m, "Select rectangle")
    doc.begin_stroke()
    _paint(doc, 5, 9, 5, 9)
    doc.undo_stack.undo()  # Ctrl+Z with the button held
    assert doc.mask.sum() == 4 and doc.stroking
    _paint(doc, 12, 14, 12, 14)
    assert doc.end_stroke("Paint mask")
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert not doc.mask.any()


def test_a_stroke_across_a_canvas_change_is_recorded_on_each_side_of_it():
    doc = _doc()
    doc.extend(right=10)
    doc.begin_stroke()
    _paint(doc, 2, 5, 32, 38)  # in the added strip
    doc.undo_stack.undo()  # the extension undone with the button held: the canvas shrinks
    assert doc.mask.shape == (20, 30) and doc.stroking
    _paint(doc, 2, 5, 3, 9)
    assert doc.end_stroke("Paint mask")
    assert doc.mask[2:5, 3:9].all() and doc.mask.sum() == 18
    doc.undo_stack.undo()
    assert not doc.mask.any()


def test_a_new_document_ends_the_stroke_under_way():
    doc = _doc()
    doc.begin_stroke()
    _paint(doc, 2, 5, 3, 9)
    doc.reset(np.zeros((40, 50, 3), np.uint8))  # a file opened with the button held
    assert not doc.stroking
    assert not doc.end_stroke("Paint mask") and doc.undo_stack.count() == 0
