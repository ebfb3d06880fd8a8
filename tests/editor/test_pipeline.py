"""editor.pipeline with the fake engine: successive windows see earlier results; big masks are
decoded downscaled; nothing beyond the feather changes."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import FakeEngine, colour
from hypothesis import given, settings
from hypothesis import strategies as st

from editor.core import geometry as g
from editor.core.jobs import Job, Sampling
from editor.core.pipeline import Stopped, run_job


class Recorder(FakeEngine):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[np.ndarray] = []

    def edit_many(self, image, token_mask, class_id, params, seed=0, candidates=1, tokens=None):
        self.inputs.append(image.copy())
        yield from super().edit_many(image, token_mask, class_id, params, seed, candidates)


def job(image, mask, engine, max_windows, min_context=g.MIN_CONTEXT, **kw) -> Job:
    wins = g.plan(mask, engine.window, engine.tokens_per_side, max_windows, 0.0, min_context)
    return Job("edit", image, mask, wins, kw.pop("class_id", 1), Sampling(steps=4), 0, **kw)


def test_each_window_is_conditioned_on_the_ones_before():
    eng = Recorder()
    image = np.zeros((32, 200, 3), np.uint8)
    mask = np.zeros((32, 200), bool)
    mask[:, 120:] = True  # an outpaint strip wider than one window
    j = job(image, mask, eng, g.OUTPAINT_MAX_WINDOWS, min_context=0.0)
    assert len(j.windows) >= 2 and all(v.scale == 1 for v in j.windows)
    out = run_job(eng, j, Sampling(steps=4)).images[0]
    first = j.windows[0]
    # The second window overlaps the first one's result and must have been given it as input.
    second = j.windows[1]
    assert max(first.x, second.x) < min(first.x + first.size, second.x + second.size)
    fill = colour(0, 3)
    core = first.core
    overlap_done = slice(max(core[0], second.x), min(core[2], second.x + second.size))
    assert mask[:, overlap_done].any(), "some of the second window was decoded by the first"
    seen = eng.inputs[1][:, overlap_done.start - second.x : overlap_done.stop - second.x]
    assert (seen[mask[:, overlap_done]] == fill).all()
    assert (out[mask] != 0).all() and (out[:, : 120 - 4] == 0).all()


def test_a_window_masks_all_it_sees_of_the_hole_not_only_its_core():
    # A fresh outpaint strip is grey: a window that took the grey beyond its core as context
    # (or, inpainting, the object being removed) would draw grey; it must regenerate it too.
    eng = Recorder()
    image = np.full((32, 200, 3), 50, np.uint8)
    mask = np.zeros((32, 200), bool)
    mask[:, 120:] = True
    image[mask] = 127
    j = job(image, mask, eng, g.OUTPAINT_MAX_WINDOWS, min_context=0.0)
    seen = []

    def fix(decoded, reference, known):
        seen.append(known.copy())
        return decoded

    run_job(eng, j, Sampling(steps=4), colour_fix=fix)
    first = j.windows[0]
    beyond = mask.copy()
    x0, y0, x1, y1 = first.core
    beyond[y0:y1, x0:x1] = False
    square = g.crop(beyond.astype(np.uint8), first.x, first.y, first.size).astype(bool)
    assert square.any(), "the first window sees hole pixels another window composites"
    cells = eng.calls[0]["mask"]
    assert np.array_equal(cells, g.token_mask(mask, first))
    assert not seen[0][square].any(), "grey pixels are never colour references"


def test_candidates_of_a_multi_window_edit_chain_their_own_windows_in_one_batch_each():
    eng = Recorder()
    image = np.zeros((32, 200, 3), np.uint8)
    mask = np.zeros((32, 200), bool)
    mask[:, 120:] = True
    j = job(image, mask, eng, g.OUTPAINT_MAX_WINDOWS, min_context=0.0, candidates=3, feather=0)
    live: list[tuple[int, int]] = []
    res = run_job(eng, j, Sampling(steps=4), on_records=lambda k, recs: live.append((k, len(recs))))
    n = len(j.windows)
    assert n >= 2 and len(res.images) == 3
    # One decode per window, every candidate in it; live records for all 3 at every step.
    assert [c["candidates"] for c in eng.calls] == [3] * n
    assert live == [(k, 3) for k in range(n) for _ in range(4 - 2)]
    # Window 0 starts from the one shared picture; window 1 from each candidate's own.
    assert eng.inputs[0].ndim == 3 and eng.inputs[1].shape[0] == 3
    first, second = j.windows[0], j.windows[1]
    lo, hi = max(first.core[0], second.x), min(first.core[2], second.x + second.size)
    for c in range(3):
        seen = eng.inputs[1][c][:, lo - second.x : hi - second.x]
        assert (seen[mask[:, lo:hi]] == colour(0, 3, c)).all(), "candidate c's own window 0"
    for c, out in enumerate(res.images):
        x0, _, x1, _ = first.core
        x1 -= 4  # the next window cross-fades over one token cell (4 px here)
        assert (out[:, x0:x1][mask[:, x0:x1]] == colour(0, 3, c)).all()
    assert (res.images[0][mask] != res.images[1][mask]).any()
    # Windows update the candidates' pictures in place, never the job's image or each other's.
    assert (image == 0).all() and (j.image == 0).all()
    assert not any(np.shares_memory(a, b) for i, a in enumerate(res.images)
                   for b in [j.image, *res.images[i + 1:]])
    one = run_job(eng, job(image, mask, eng, g.OUTPAINT_MAX_WINDOWS, min_context=0.0),
                  Sampling(steps=4))
    assert (image == 0).all() and not np.shares_memory(one.images[0], image)


def test_a_big_blob_is_decoded_downscaled_and_composited_at_full_size():
    eng = FakeEngine()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (200, 200, 3), np.uint8)
    mask = np.zeros((200, 200), bool)
    mask[20:180, 30:170] = True
    j = job(image, mask, eng, 1)
    (v,) = j.windows
    assert v.scale > 1
    out = run_job(eng, j, Sampling(steps=4)).images[0]
    assert (out[mask] == colour(0, 3)).all()
    far = ~g.alpha(mask, j.feather).astype(bool)
    assert np.array_equal(out[far], image[far])


def test_candidates_differ_and_stop_raises():
    eng = FakeEngine()
    image = np.zeros((32, 32, 3), np.uint8)
    mask = np.zeros((32, 32), bool)
    mask[8:20, 8:20] = True
    res = run_job(eng, job(image, mask, eng, 4, candidates=3), Sampling(steps=4))
    assert len(res.images) == 3
    assert len({int(im[10, 10, 0]) for im in res.images}) == 3
    with pytest.raises(Stopped):
        run_job(eng, job(image, mask, eng, 4), Sampling(steps=4), should_stop=lambda: True)


def test_automatic_class_is_chosen_once_for_all_windows():
    eng = FakeEngine()
    image = np.zeros((32, 200, 3), np.uint8)
    mask = np.zeros((32, 200), bool)
    mask[:, 100:] = True
    chosen = []
    res = run_job(eng, job(image, mask, eng, 8, class_id=None), Sampling(steps=4),
                  on_class=chosen.append)
    assert chosen == [207] and res.class_id == 207
    assert {c["class_id"] for c in eng.calls} == {207}


def test_colour_fix_sees_the_pixels_compositing_keeps_and_shapes_the_result():
    eng = FakeEngine()
    image = np.zeros((32, 32, 3), np.uint8)
    mask = np.zeros((32, 32), bool)
    mask[12:15, 12:16] = True  # in one 4 px cell, (3, 3): the model regenerates cells 2..4
    seen = []

    def fix(decoded, reference, known):
        seen.append(known.copy())
        return np.full_like(decoded, 77)

    res = run_job(eng, job(image, mask, eng, 4), Sampling(steps=4), colour_fix=fix)
    # Known: every pixel the composite takes from the image, ring cells included; only the
    # painted pixels are the fix's to invent.
    expect = ~mask
    assert all(np.array_equal(k, expect) for k in seen)
    assert (res.images[0][mask] == 77).all()


@settings(max_examples=40, deadline=None)
@given(st.integers(20, 90), st.integers(20, 90), st.integers(0, 2**16), st.integers(1, 3),
       st.sampled_from([0.0, 0.5]), st.integers(0, 6), st.booleans())
def test_any_edit_changes_only_the_mask_and_its_feather(h, w, seed, n, overlap, feather, lock):
    """Whatever the windows, candidates and locks: the job's image is never written to, and
    every candidate equals it outside the mask's feather and on locked pixels."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), np.uint8)
    mask = np.zeros((h, w), bool)
    for _ in range(rng.integers(1, 4)):
        y, x = rng.integers(0, h), rng.integers(0, w)
        mask[y : y + rng.integers(1, h), x : x + rng.integers(1, w)] = True
    locked = None
    if lock:
        locked = np.zeros((h, w), bool)
        locked[rng.integers(0, h) :, : rng.integers(1, w)] = True
    eng = FakeEngine()
    wins = g.plan(mask & ~locked if locked is not None else mask, eng.window,
                  eng.tokens_per_side, 8, overlap, 0.0 if overlap else g.MIN_CONTEXT)
    if not wins:
        return
    before = image.copy()
    j = Job("edit", image, mask, wins, 1, Sampling(steps=4), seed, n, feather, locked=locked)
    res = run_job(eng, j, Sampling(steps=4), colour_fix=lambda d, r, k: d)
    assert np.array_equal(image, before), "the job's image is never written to"
    reach = g.alpha(mask, feather) > 0
    assert len(res.images) == n
    for out in res.images:
        assert not np.shares_memory(out, image)
        assert np.array_equal(out[~reach], before[~reach])
        if locked is not None:
            assert np.array_equal(out[locked], before[locked]), "locked pixels never change"
