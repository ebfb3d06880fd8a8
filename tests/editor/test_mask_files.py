"""File › Import Mask / Export Mask: a PNG of the canvas size, white = regenerate (the CLI's
--masks rule); import is one undo step and a file that does not fit changes nothing."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtWidgets import QFileDialog

from editor.core import imageio


def blocks(h: int, w: int, cell: int = 4, seed: int = 0) -> np.ndarray:
    """A random mask made of cell x cell blocks, so scaling by 2 keeps it exact."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((-(-h // cell), -(-w // cell))) < 0.4
    return np.kron(coarse, np.ones((cell, cell), bool))[:h, :w]


def test_export_then_import_round_trips_the_mask(qtbot, win, tmp_path):
    m = blocks(*win.doc.mask.shape, cell=1)
    win.doc.set_mask(m, "mask")
    path = tmp_path / "m.png"
    assert win.export_mask(path)
    with Image.open(path) as im:
        assert im.size == (64, 48)
        px = np.asarray(im.convert("L"))
    assert set(np.unique(px)) <= {0, 255} and np.array_equal(px == 255, m)
    win.set_whole_mask(False)
    assert not win.doc.mask.any()
    assert win.import_mask(path)
    assert np.array_equal(win.doc.mask, m)
    assert win.last_error is None


def test_import_is_one_undo_step(qtbot, win, tmp_path):
    before = blocks(48, 64, seed=1)
    win.doc.set_mask(before, "mask")
    path = tmp_path / "other.png"
    Image.fromarray(blocks(48, 64, seed=2).astype(np.uint8) * 255).save(path)
    count = win.doc.undo_stack.count()
    assert win.import_mask(path)
    assert win.doc.undo_stack.count() == count + 1
    assert win.doc.undo_stack.undoText() == "Import mask"
    win.a_undo.trigger()
    assert np.array_equal(win.doc.mask, before)
    win.a_redo.trigger()
    assert np.array_equal(win.doc.mask, blocks(48, 64, seed=2))


def test_a_mask_of_the_same_aspect_ratio_is_scaled(qtbot, win, tmp_path):
    m = blocks(48, 64)
    for name, scale in (("big.png", 2), ("small.png", 0.5)):
        path = tmp_path / name
        h, w = int(48 * scale), int(64 * scale)
        big = np.kron(m, np.ones((2, 2), bool)) if scale == 2 else m[::2, ::2]
        assert big.shape == (h, w)
        Image.fromarray(big.astype(np.uint8) * 255).save(path)
        win.set_whole_mask(False)
        assert win.import_mask(path)
        want = m if scale == 2 else np.kron(m[::2, ::2], np.ones((2, 2), bool))
        assert np.array_equal(win.doc.mask, want), name
    # Within 1 %: 65 x 48 is 1.6 % wider and refused, 129 x 96 is 0.8 % and scaled.
    Image.new("L", (129, 96), 255).save(tmp_path / "near.png")
    assert win.import_mask(tmp_path / "near.png") and win.doc.mask.all()


def test_a_mask_of_another_shape_or_a_garbage_file_is_refused(qtbot, win, tmp_path):
    m = blocks(48, 64)
    win.doc.set_mask(m, "mask")
    count = win.doc.undo_stack.count()
    Image.new("L", (64, 64), 255).save(tmp_path / "square.png")
    Image.new("L", (65, 48), 255).save(tmp_path / "wider.png")
    (tmp_path / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\nnot a mask at all")
    (tmp_path / "notes.txt").write_text("hello")
    for name, sizes in (("square.png", ("64 × 64", "64 × 48")),
                        ("wider.png", ("65 × 48", "64 × 48")),
                        ("garbage.png", ()), ("notes.txt", ()), ("missing.png", ())):
        win.last_error = None
        assert not win.import_mask(tmp_path / name), name
        title, text = win.last_error
        assert title == "Could not import the mask" and name in text
        assert all(s in text for s in sizes), text
        assert np.array_equal(win.doc.mask, m) and win.doc.undo_stack.count() == count


def test_the_file_menu_entries_go_through_the_dialogs(qtbot, win, tmp_path, monkeypatch):
    names = [a.text() for a in win.menuBar().actions()[0].menu().actions()]
    assert "&Import Mask…" in names and "E&xport Mask…" in names
    m = blocks(48, 64, seed=3)
    win.doc.set_mask(m, "mask")
    path = tmp_path / "via-dialog"  # no suffix: .png is added
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), ""))
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda *a, **k: (str(path.with_suffix(".png")), ""))
    win.a_export_mask.trigger()
    win.set_whole_mask(False)
    win.a_import_mask.trigger()
    assert np.array_equal(win.doc.mask, m)
    assert not win.export_mask(tmp_path / "m.jpg")
    assert ".jpg" in win.last_error[1] and not (tmp_path / "m.jpg").exists()


def test_load_mask_reads_white_opaque_pixels_as_masked(tmp_path):
    rgba = np.zeros((4, 3, 4), np.uint8)
    rgba[0] = (255, 255, 255, 255)  # white: masked
    rgba[1] = (255, 255, 255, 0)  # transparent white: kept
    rgba[2] = (200, 200, 200, 255)  # light grey: masked
    rgba[3] = (90, 90, 90, 255)  # dark grey: kept
    Image.fromarray(rgba).save(tmp_path / "m.png")
    got = imageio.load_mask(tmp_path / "m.png")
    assert got.tolist() == [[True] * 3, [False] * 3, [True] * 3, [False] * 3]
