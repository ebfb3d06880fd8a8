"""Colour correction of decoded windows (models/colour.py)."""

from __future__ import annotations

import numpy as np
import pytest

from models.colour import fill_smooth, harmonize, match_colour


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


def test_fill_smooth_keeps_known_values_and_interpolates_a_ramp_across_a_hole():
    ramp = np.tile(np.linspace(0, 100, 64, dtype=np.float32), (64, 1))[..., None]
    known = np.ones((64, 64), bool)
    known[16:48, 16:48] = False
    out = fill_smooth(ramp, known)
    assert np.array_equal(out[known], ramp[known])
    # A membrane through a linear ramp's boundary is close to the ramp itself.
    assert np.abs(out[~known] - ramp[~known]).mean() < 3
    # Far from every known pixel the fill is still a blend of them, never outside their range.
    assert out.min() >= 0 and out.max() <= 100


def test_harmonize_takes_the_boundary_colours_into_the_hole():
    rng = np.random.default_rng(1)
    h = w = 64
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # The reference: flat colours with a texture; the decoded window: the same texture under a
    # colour error that varies across the window, which no global affine fit can remove.
    ref = np.array([120, 90, 60], np.float32) + rng.normal(0, 6, (h, w, 1)).astype(np.float32)
    error = np.stack([40 * (xx / w), -30 * (yy / h), 25 * (xx / w) * (yy / h)], -1)
    dec = np.clip(ref + error, 0, 255).astype(np.uint8)
    ref8 = np.clip(ref, 0, 255).astype(np.uint8)
    known = np.ones((h, w), bool)
    known[20:44, 20:44] = False
    out = harmonize(dec, ref8, known)
    assert np.array_equal(out[known], ref8[known])
    before = np.abs(dec[~known].astype(int) - ref8[~known]).mean()
    after = np.abs(out[~known].astype(int) - ref8[~known]).mean()
    assert after < 0.25 * before
