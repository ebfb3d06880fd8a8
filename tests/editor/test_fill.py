"""editor.core.fill: the immediate (Telea) fill of thin strokes, without Qt."""

from __future__ import annotations

import numpy as np

from editor.core import fill


def test_a_thin_stroke_is_filled_at_once_and_nothing_else_changes():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 60, 3), np.uint8)
    mask = np.zeros((40, 60), bool)
    mask[20, 5:55] = True
    assert fill.immediate(mask)
    out, (x0, y0, x1, y1) = fill.fill_thin(image, mask)
    assert np.array_equal(out[~mask], image[~mask])
    assert (x0, y0) <= (5, 20) and (x1, y1) >= (55, 21)
    assert not np.array_equal(out[mask], image[mask])


def test_regions_and_empty_masks_are_not_immediate():
    region = np.zeros((400, 400), bool)
    region[50:350, 50:350] = True
    assert not fill.immediate(region)  # too many pixels and too thick: the worker's
    assert not fill.immediate(np.zeros((10, 10), bool))
