"""Gradient-domain fusion of a shift-map fill (exemplar.fuse_pieces) and its solver
(editor.core.poisson): copied pieces take their neighbours' tone, keep their texture, and keep
a structure edge the copy cut across."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from editor.core import exemplar, poisson


def lit(h: int, w: int, seed: int) -> np.ndarray:
    """A grey texture lit from the right: the same grain everywhere, in a different tone at
    every column (a copy from another column brings the wrong light)."""
    rng = np.random.default_rng(seed)
    tone = np.linspace(40, 220, w)[None, :, None] + rng.integers(-12, 13, (h, w, 1))
    return np.clip(np.broadcast_to(tone, (h, w, 3)), 0, 255).astype(np.uint8)


def box(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def tone_error(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    """Mean difference of the low band (Gaussian 3 px) over `where`: light, not grain."""
    blur = lambda x: cv2.GaussianBlur(x.astype(np.float32), (0, 0), 3)  # noqa: E731
    return float(np.abs(blur(a) - blur(b))[where].mean())


def grain(a: np.ndarray, where: np.ndarray) -> float:
    high = a.astype(np.float32) - cv2.GaussianBlur(a.astype(np.float32), (0, 0), 2)
    return float(np.abs(high)[where].mean())


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), h=st.integers(3, 40), w=st.integers(3, 40))
def test_the_solver_reaches_the_exact_solution(seed, h, w):
    rng = np.random.default_rng(seed)
    active = rng.random((h, w)) < 0.7
    wh, wv = rng.uniform(0.01, 1, (h, w - 1)), rng.uniform(0.01, 1, (h - 1, w))
    rhs = rng.normal(size=(h, w, 2)).astype(np.float32)
    x = poisson.solve(active, wh, wv, rhs, tol=1e-6, max_iter=200)
    assert not x[~active].any(), "inactive pixels are the fixed boundary"
    # The same system written out densely.
    idx = np.flatnonzero(active)
    a = np.zeros((len(idx), h * w))
    for n, k in enumerate(idx):
        y, x0 = divmod(int(k), w)
        for (dy, dx), wt in (((0, 1), wh[y, x0] if x0 < w - 1 else 0),
                             ((0, -1), wh[y, x0 - 1] if x0 else 0),
                             ((1, 0), wv[y, x0] if y < h - 1 else 0),
                             ((-1, 0), wv[y - 1, x0] if y else 0)):
            if wt:
                a[n, k] += wt
                a[n, (y + dy) * w + x0 + dx] -= wt
    exact = np.linalg.solve(a[:, idx], rhs.reshape(-1, 2)[idx]) if len(idx) else np.zeros((0, 2))
    assert np.allclose(x.reshape(-1, 2)[idx], exact, atol=1e-3 * (1 + np.abs(exact).max()))


def test_a_piece_copied_from_other_light_takes_its_neighbours_tone_and_keeps_its_grain():
    img = lit(96, 128, 1)
    hole = box(96, 128, 30, 66, 50, 80)
    ys, xs = np.nonzero(hole)
    shift = np.zeros((len(ys), 2), np.int64)
    shift[:, 1] = np.where(xs < 65, -40, 40)  # two pieces: from darker left, brighter right
    pasted = img.copy()
    pasted[ys, xs] = img[ys, xs + shift[:, 1]]
    out = exemplar.fuse_pieces(img, hole, pasted, shift, np.ones(len(ys), bool))
    assert np.array_equal(out[~hole], img[~hole])
    assert tone_error(pasted, img, hole) > 30
    assert tone_error(out, img, hole) < 6, "the light of the hole's surroundings"
    inner = box(96, 128, 36, 60, 54, 61) | box(96, 128, 36, 60, 69, 76)  # off the seams
    assert grain(out, inner) > 0.9 * grain(pasted, inner), "the copies' texture stays"


def test_a_structure_edge_the_copy_cut_across_stays_an_edge():
    img = np.full((96, 128, 3), 190, np.uint8)  # sky
    img[:, :40] = 30  # a dark wall on the left
    img = np.clip(img + np.random.default_rng(0).integers(-8, 9, (96, 128, 1)), 0, 255)
    img = img.astype(np.uint8)
    hole = box(96, 128, 30, 66, 30, 90)  # across the wall's edge
    ys, xs = np.nonzero(hole)
    shift = np.zeros((len(ys), 2), np.int64)
    shift[:, 0] = np.where(ys < 48, -30, 30)  # the same columns from above and below
    pasted = img.copy()
    pasted[ys, xs] = img[ys + shift[:, 0], xs]
    out = exemplar.fuse_pieces(img, hole, pasted, shift, np.ones(len(ys), bool))
    wall, sky = hole & (np.arange(128) < 36)[None], hole & (np.arange(128) >= 44)[None]
    assert out[wall].mean() < 45 and out[sky].mean() > 175, "no wall tone bleeds into the sky"


@pytest.mark.parametrize("max_side", [None, 64])
def test_a_fill_hands_fusion_each_copied_pixel_with_its_true_source(monkeypatch, max_side):
    """fill fuses its copies where it makes them (at 64 px: the downscaled fill, whose offset
    is carried up), told which pixel each copy came from."""
    img = lit(96, 128, 1)
    hole = box(96, 128, 24, 72, 42, 85)
    seen = []

    def spy(image, mask, out, shift, copied):
        seen.append((image.shape, copied.mean()))
        ys, xs = np.nonzero(mask)
        src = image[ys[copied] + shift[copied, 0], xs[copied] + shift[copied, 1]]
        assert np.array_equal(out[ys[copied], xs[copied]], src), "a copy is its source pixel"
        assert not mask[ys[copied] + shift[copied, 0], xs[copied] + shift[copied, 1]].any()
        fused = out.copy()
        fused[mask] = 0  # recognisable
        return fused

    monkeypatch.setattr(exemplar, "fuse_pieces", lambda image, mask, out, shift, copied: out)
    plain, _ = exemplar.fill(img, hole, max_side)
    monkeypatch.setattr(exemplar, "fuse_pieces", spy)
    out, _ = exemplar.fill(img, hole, max_side)
    assert len(seen) == 1 and seen[0][1] > 0.5, "one fusion, most of the hole copies"
    assert seen[0][0][1] == (max_side or 128)
    assert np.array_equal(out[~hole], img[~hole])
    # The fused fill (its hole set to 0, or that offset carried up) is what fill returns.
    assert plain[hole].mean() - out[hole].mean() > 30  # 68-129 levels; 0 if not fused


def beside_a_subject() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(photo, hole, the hole filled with copies of the background, their shifts): beige bokeh
    with grain, an orange subject whose edge runs down the hole's left side (the user's brush
    cut into it), the hole filled from the background to its right."""
    rng = np.random.default_rng(3)
    img = np.clip(np.array([190, 180, 140]) + rng.integers(-6, 7, (96, 128, 1)), 0, 255)
    img[8:88, :44] = (225, 105, 30)  # the subject
    img = img.astype(np.uint8)
    hole = box(96, 128, 16, 80, 44, 84)
    ys, xs = np.nonzero(hole)
    shift = np.zeros((len(ys), 2), np.int64)
    shift[:, 1] = 42
    pasted = img.copy()
    pasted[ys, xs] = img[ys, xs + 42]
    return img, hole, pasted, shift


def warmth(a: np.ndarray, where: np.ndarray) -> float:
    """Mean red less blue: the subject's orange is 195, the bokeh 50."""
    return float((a[..., 0].astype(np.float32) - a[..., 2])[where].mean())


def test_a_coloured_subject_beside_the_hole_does_not_glow_into_the_fill():
    # Its edge is a change of colour, not of light, however much of the hole's edge it makes
    # up: weighed by the step's size alone, 12 % (fusion) and 17 % (tone match) of the orange
    # spread over the whole hole (warmth 68 and 75).
    img, hole, pasted, shift = beside_a_subject()
    fused = exemplar.fuse_pieces(img, hole, pasted, shift, np.ones(int(hole.sum()), bool))
    matched = exemplar.match_boundary(pasted, hole)
    assert abs(warmth(pasted, hole) - 50) < 2
    assert warmth(fused, hole) < 55 and warmth(matched, hole) < 55
