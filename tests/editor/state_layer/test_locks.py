"""The lock and keep-out layers without a window: their strokes are undo entries of the
document's stack, they follow canvas extensions, a generation never regenerates a locked cell,
and its job carries the keep-out to the fills."""

from __future__ import annotations

import numpy as np
import pytest

from editor.core.edits import LockEdit
from editor.state.document import Document
from editor.state.locks import KeepOutLayer, LockLayer


def test_a_lock_is_an_undo_entry_of_the_document(qtbot):
    doc = Document(np.zeros((16, 16, 3), np.uint8))
    locks = LockLayer(doc)
    want = np.zeros((16, 16), bool)
    want[4:8, 4:8] = True
    with qtbot.waitSignal(locks.mask_changed):
        locks.set(want)
    assert doc.undo_stack.count() == 1 and np.array_equal(locks.mask, want)
    assert doc.undo_stack.command(0).to_dict()["type"] == "lock"
    doc.undo_stack.undo()
    assert not locks.any()
    doc.undo_stack.redo()
    assert np.array_equal(locks.mask, want)


def test_the_lock_follows_an_extension_and_its_undo():
    doc = Document(np.zeros((16, 16, 3), np.uint8))
    locks = LockLayer(doc)
    want = np.zeros((16, 16), bool)
    want[0:2, 0:2] = True
    locks.set(want)
    doc.extend(left=3, top=1)
    assert locks.mask.shape == (17, 19) and locks.mask[1:3, 3:5].all() and locks.mask.sum() == 4
    doc.undo_stack.undo()
    assert np.array_equal(locks.mask, want)


def test_locked_cells_are_kept_out_of_a_generation(qtbot, stack):
    m = stack.paint()
    locked = np.zeros_like(m)
    locked[12:20, 20:28] = True
    stack.controller.locks.set(locked)
    before = stack.doc.image.copy()
    with qtbot.waitSignal(stack.controller.candidate_changed, timeout=10_000):
        assert stack.controller.generate()
    assert np.array_equal(stack.controller.candidate.job.locked, locked)
    assert np.array_equal(stack.doc.image[locked], before[locked]), "locked pixels kept"
    assert not np.array_equal(stack.doc.image[m & ~locked], before[m & ~locked])


def test_the_keep_out_is_a_layer_of_its_own_with_its_own_undo_entries(qtbot):
    doc = Document(np.zeros((16, 16, 3), np.uint8))
    locks, keep = LockLayer(doc), KeepOutLayer(doc)
    want = np.zeros((16, 16), bool)
    want[0:2, 0:2] = True
    keep.set(want)
    assert not locks.any() and doc.undo_stack.command(0).to_dict()["type"] == "keepout"
    assert doc.undo_stack.text(0) == "Keep out"
    with pytest.raises(TypeError):
        keep.apply_edit(LockEdit("Lock", (0, 0, 2, 2), want[:2, :2], want[:2, :2]))
    doc.extend(left=3, top=1)
    assert keep.mask.shape == (17, 19) and keep.mask[1:3, 3:5].all() and keep.mask.sum() == 4
    doc.undo_stack.undo()
    assert np.array_equal(keep.mask, want)
    doc.undo_stack.undo()
    assert not keep.any() and keep.copy() is None


def test_a_generation_and_a_fill_carry_the_keep_out(qtbot, stack):
    stack.paint()
    keep = np.zeros(stack.doc.mask.shape, bool)
    keep[:8, :8] = True
    stack.controller.keep_out.set(keep)
    with qtbot.waitSignal(stack.controller.candidate_changed, timeout=10_000):
        assert stack.controller.generate()
    assert np.array_equal(stack.controller.candidate.job.keep_out, keep)


def test_a_keep_out_stroke_across_a_mask_edit_is_recorded_before_it():
    """Shift+X pressed while the keep-out brush is held: the keep-out so far is its own entry,
    and undoing everything clears both layers."""
    doc = Document(np.zeros((16, 16, 3), np.uint8))
    keep = KeepOutLayer(doc)
    keep.begin_stroke()
    keep.mask[2:6, 2:6] = True
    keep.stroke_updated((2, 2, 6, 6))
    m = np.zeros((16, 16), bool)
    m[10:12, 10:12] = True
    doc.set_mask(m, "Select rectangle")
    keep.mask[8:9, 2:6] = True
    keep.stroke_updated((2, 8, 6, 9))
    assert keep.end_stroke("Paint mask")
    assert [doc.undo_stack.text(i) for i in range(3)] == ["Keep out", "Select rectangle",
                                                          "Keep out"]
    while doc.undo_stack.canUndo():
        doc.undo_stack.undo()
    assert not keep.any() and not doc.mask.any()
