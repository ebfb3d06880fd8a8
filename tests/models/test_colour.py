"""Colour correction of decoded windows (models/colour.py)."""

from __future__ import annotations

import numpy as np
import pytest

from models.colour import match_colour


def test_undoes_a_global_affine_colour_shift():
    rng = np.random.default_rng(0)
    ref = rng.integers(40, 200, (32, 32, 3)).astype(np.uint8)
    shifted = np.clip(ref.astype(np.float32) * [0.8, 1.1, 1.0] + [20, -10, 15], 0, 255)
    known = np.ones((32, 32), bool)
    known[8:24, 8:24] = False
    out = match_colour(shifted.astype(np.uint8), ref, known)
    # The unknown box is corrected from the known ring alone.
    assert np.abs(out[~known].astype(int) - ref[~known]).mean() < 2


def test_small_known_region_leaves_window_unchanged_and_checks_shapes():
    img = np.full((16, 16, 3), 100, np.uint8)
    known = np.zeros((16, 16), bool)
    known[0, :4] = True
    assert np.array_equal(match_colour(img, img + 50, known), img)
    with pytest.raises(ValueError):
        match_colour(img, img, np.ones((8, 8), bool))


def test_gain_is_clamped_on_flat_context():
    dec = np.zeros((16, 16, 3), np.uint8)
    dec[:, 8:] = 200  # strong structure in the generated half
    ref = np.full((16, 16, 3), 90, np.uint8)  # flat known half
    known = np.zeros((16, 16), bool)
    known[:, :8] = True
    out = match_colour(dec, ref, known, max_gain=2.0)
    assert out.dtype == np.uint8 and out[:, :8].mean() == pytest.approx(90, abs=1)
