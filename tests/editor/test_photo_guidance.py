"""Photo guidance in the pipeline (issue 13): an exemplar start and detail from the photo for
a plain edit; none of it when a class is requested, so the class can win."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from fakes import FakeEngine

from editor.core import geometry as g
from editor.core.jobs import PHOTO_PRIOR, PHOTO_REMASK, Job, Sampling
from editor.core.pipeline import run_job
from models.engine import SamplingParams


class Recorder(FakeEngine):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[np.ndarray] = []
        self.params: list[SamplingParams] = []

    def edit_many(self, image, token_mask, class_id, params, seed=0, candidates=1, tokens=None):
        self.inputs.append(image.copy())
        self.params.append(params)
        yield from super().edit_many(image, token_mask, class_id, params, seed, candidates)


def stripes(h: int = 48, w: int = 64, width: int = 2) -> np.ndarray:
    x = np.arange(w)
    lum = np.where((x // width) % 2 == 0, 200, 60)
    img = np.repeat(lum[None, :, None], h, 0).repeat(3, 2).astype(np.uint8)
    img[..., 0] = 120
    return img


def box_job(engine: Recorder, class_id: int | None, guidance: bool = True) -> Job:
    image = stripes()
    mask = np.zeros(image.shape[:2], bool)
    mask[16:32, 20:40] = True
    wins = g.plan(mask, engine.window, engine.tokens_per_side, g.INPAINT_MAX_WINDOWS)
    return Job("edit", image, mask, wins, class_id, Sampling(steps=4, guidance=guidance), 0, 2,
               feather=2)


def edit(engine: Recorder, class_id: int | None, guidance: bool = True):
    job = box_job(engine, class_id, guidance)
    result = run_job(engine, job, SamplingParams(**job.sampling.engine_fields()))
    return job.image, job.mask, job.windows, result


def test_a_plain_edit_starts_from_an_exemplar_fill_and_gets_the_photos_detail():
    engine = Recorder()
    image, mask, wins, result = edit(engine, None)
    plain = g.window_image(image, wins[0])
    hole = g.window_mask(mask, wins[0])
    for seen in engine.inputs[0].reshape(-1, *plain.shape):  # each candidate's input
        assert np.array_equal(seen[~hole], plain[~hole]), "the context is the photo's"
    assert engine.params[0].remask == PHOTO_REMASK and engine.params[0].prior == PHOTO_PRIOR
    # The fake engine paints flat colours; the exemplar fill under the model's change brings
    # the stripes' contrast into the hole, and nothing outside it changes.
    for out in result.images:
        assert _within_feather(out, image, mask)
        assert out[mask][:, 1].std() > 20


def _within_feather(out: np.ndarray, image: np.ndarray, mask: np.ndarray) -> bool:
    near = np.zeros_like(mask)
    ys, xs = np.nonzero(mask)
    near[max(ys.min() - 4, 0): ys.max() + 5, max(xs.min() - 4, 0): xs.max() + 5] = True
    return bool(np.array_equal(out[~near], image[~near]))


def textured_job(engine: Recorder, candidates: int = 2) -> Job:
    import cv2

    rng = np.random.default_rng(0)  # texture with structure at every scale: no two fills agree
    image = cv2.resize(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), (64, 48),
                       interpolation=cv2.INTER_NEAREST)
    image = np.clip(image + rng.integers(-20, 20, image.shape), 0, 255).astype(np.uint8)
    mask = np.zeros(image.shape[:2], bool)
    mask[16:32, 20:40] = True
    wins = g.plan(mask, engine.window, engine.tokens_per_side, g.INPAINT_MAX_WINDOWS)
    return Job("edit", image, mask, wins, None, Sampling(steps=4), 0, candidates, feather=2)


def test_each_candidate_starts_from_its_own_rebuilding_of_the_hole():
    engine = Recorder()
    job = textured_job(engine)
    mask, wins = job.mask, job.windows
    result = run_job(engine, job, SamplingParams(**job.sampling.engine_fields()))
    first, second = engine.inputs[0]
    hole = g.window_mask(mask, wins[0])
    assert np.array_equal(first[~hole], second[~hole]), "the same context"
    assert np.abs(first[hole].astype(int) - second[hole]).mean() > 10, "another fill"
    a, b = result.images
    assert np.abs(a[mask].astype(int) - b[mask]).mean() > 10, "the candidates differ"


def test_regenerate_rebuilds_the_hole_from_the_next_guides():
    firsts = []
    # Regenerate moves first_guide on. The photo, mirrored, upside down (their sizes are all this
    # small picture's own).
    for first_guide in (0, 1, 2):
        engine = Recorder()
        job = replace(textured_job(engine), first_guide=first_guide)
        run_job(engine, job, SamplingParams(**job.sampling.engine_fields()))
        firsts.append(engine.inputs[0][0])
    hole = g.window_mask(job.mask, job.windows[0])
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert np.abs(firsts[a][hole].astype(int) - firsts[b][hole]).mean() > 10


def test_a_requested_class_is_decoded_without_the_photos_pull():
    engine = Recorder()
    image, _, wins, result = edit(engine, class_id=207)
    assert np.array_equal(engine.inputs[0], g.window_image(image, wins[0]))
    assert engine.params[0].remask == 1.0 and engine.params[0].prior == 0.0
    off = Recorder()
    *_, plain = edit(off, class_id=None, guidance=False)
    assert off.params[0].remask == 1.0 and off.params[0].prior == 0.0
    assert all(np.array_equal(a, b) for a, b in zip(result.images, plain.images, strict=True))


def test_a_window_with_nothing_known_decodes_plainly():
    engine = Recorder()
    image = stripes()
    mask = np.ones(image.shape[:2], bool)  # everything: no photo to follow
    wins = g.plan(mask, engine.window, engine.tokens_per_side, g.INPAINT_MAX_WINDOWS)
    sampling = Sampling(steps=4)
    job = Job("edit", image, mask, wins, None, sampling, 0, 1)
    result = run_job(engine, job, SamplingParams(**sampling.engine_fields()))
    assert all(p.remask == 1.0 for p in engine.params)
    assert result.images[0].shape == image.shape


def test_a_job_that_sees_too_little_of_the_photo_decodes_plainly():
    from editor.core.pipeline import GUIDE_MIN_CONTEXT

    engine = Recorder()
    image = stripes()
    mask = np.ones(image.shape[:2], bool)
    mask[:3] = False  # a thin strip of photo: nothing shift-map can fill from
    wins = g.plan(mask, engine.window, engine.tokens_per_side, g.INPAINT_MAX_WINDOWS, 0.0, 0.0)
    assert mask.mean() > 1 - GUIDE_MIN_CONTEXT
    sampling = Sampling(steps=4)
    job = Job("edit", image, mask, wins, None, sampling, 0, 1)
    run_job(engine, job, SamplingParams(**sampling.engine_fields()))
    assert all(p.remask == 1.0 for p in engine.params)


def outpaint_job(engine: FakeEngine, candidates: int = 1) -> Job:
    image = stripes(96, 64, width=8)  # wider than a token cell, as a window sees them
    mask = np.zeros(image.shape[:2], bool)
    mask[64:] = True  # the bottom third is new canvas
    image[mask] = 128
    wins = g.plan(mask, engine.window, engine.tokens_per_side, g.INPAINT_MAX_WINDOWS, 0.0, 0.0)
    assert len(wins) > 1
    return Job("edit", image, mask, wins, None, Sampling(steps=4), 0, candidates, feather=2)


def test_every_window_of_an_outpaint_starts_from_one_guide_of_the_whole_hole():
    from editor.core.pipeline import photo_guide

    engine = Recorder()
    job = outpaint_job(engine)
    guide = photo_guide(job)
    assert guide is not None
    run_job(engine, job, SamplingParams(**job.sampling.engine_fields()))
    assert all(p.remask == PHOTO_REMASK for p in engine.params)
    pending = job.mask.copy()
    for v, seen in zip(job.windows, engine.inputs, strict=True):
        gap = g.window_mask(pending, v)  # what earlier windows left to do
        # The hole as the guide has it; the stripes carry on into the new canvas.
        assert np.array_equal(seen[gap], g.window_image(guide, v)[gap])
        assert seen[gap][:, 1].std() > 20
        x0, y0, x1, y1 = v.core
        pending[y0:y1, x0:x1] = False


class Flat(Recorder):
    """A model whose every decode is flat `level` grey. FakeEngine.decode reconstructs the fill
    as 128, so 128 is a model that keeps every token it is given, and 168 one whose decode is its
    reconstruction made 40 levels brighter (a change of colour over the whole window, which
    would show as a tile)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def edit_many(self, image, token_mask, class_id, params, seed=0, candidates=1, tokens=None):
        for steps in super().edit_many(image, token_mask, class_id, params, seed, candidates):
            for s in steps:
                s.preview[...] = self.level
            yield steps


def test_cells_the_model_keeps_stay_the_photos_own_pixels():
    import editor.core.pipeline as pipeline

    engine = Flat(128)  # keeps every token
    job = outpaint_job(engine, candidates=2)
    guide = pipeline.photo_guide(job)
    result = run_job(engine, job, SamplingParams(**job.sampling.engine_fields()))
    for out in result.images:
        diff = np.abs(out[job.mask].astype(int) - guide[job.mask].astype(int))
        # Windows are decoded at the model's size (40 px seen as 32): only the stripes' edges
        # soften. Without the residual the hole would be the decode's flat grey (~70 off).
        assert np.median(diff) <= 1 and diff.mean() < 10


def test_a_windows_change_of_colour_is_not_kept():
    import editor.core.pipeline as pipeline

    engine = Flat(168)  # its reconstruction, 40 levels brighter
    job = outpaint_job(engine)
    guide = pipeline.photo_guide(job)
    result = run_job(engine, job, SamplingParams(**job.sampling.engine_fields()))
    diff = result.images[0][job.mask].astype(int) - guide[job.mask].astype(int)
    assert abs(np.median(diff)) <= 1, "the offset is gone, not added to the photo's pixels"


def test_generate_again_on_the_same_mask_reuses_the_guide(monkeypatch):
    import editor.core.pipeline as pipeline

    calls = []
    region = pipeline.fill.region

    def counted(*args, **kw):
        calls.append(1)
        return region(*args, **kw)

    monkeypatch.setattr(pipeline.fill, "region", counted)
    monkeypatch.setattr(pipeline, "GUIDES", pipeline.Guides(pipeline._make_guide))
    engine = Recorder()
    job = outpaint_job(engine)
    first = run_job(engine, job, SamplingParams(**job.sampling.engine_fields()))
    again = replace(job, seed=7)  # new candidates, same picture and mask
    run_job(engine, again, SamplingParams(**job.sampling.engine_fields()))
    assert len(calls) == 1
    other = replace(job, mask=np.roll(job.mask, -4, 0))  # another mask: a new guide
    run_job(engine, other, SamplingParams(**job.sampling.engine_fields()))
    assert len(calls) == 2
    assert first.images[0].flags.writeable, "results are the caller's to edit"



def _painted(engine: Recorder, job: Job) -> tuple[list, object]:
    """(step, decodes begun, patch) of everything the worker would hand the canvas, in order,
    and the job's result."""
    painted = []

    def on_step(k, step, patch, rect):
        painted.append((int(step.step), len(engine.inputs), patch.copy()))

    result = run_job(engine, job, SamplingParams(**job.sampling.engine_fields()), on_step=on_step)
    return painted, result


def _inner(mask: np.ndarray, rect) -> np.ndarray:
    x0, y0, x1, y1 = rect
    return mask[y0:y1, x0:x1] & (g.dilate(~mask, 3) == 0)[y0:y1, x0:x1]


def test_a_guided_edit_shows_the_photos_fill_before_the_models_step(monkeypatch):
    import editor.core.pipeline as pipeline

    monkeypatch.setattr(pipeline, "GUIDES", pipeline.Guides(pipeline._make_guide))
    engine = Recorder()
    job = box_job(engine, None)
    guide = pipeline.photo_guide(job)  # made before Generate, as the prefetch does
    assert all(pipeline.photo_guide(job, c) is not None for c in range(job.candidates))
    painted, result = _painted(engine, job)
    first_step, decodes_begun, patch = painted[0]
    assert decodes_begun == 0, "painted before the engine decoded anything"
    assert first_step < painted[-1][0] and len(painted) == len(result.history.steps)
    x0, y0, x1, y1 = rect = result.history.steps[0][0].rect
    assert np.abs(patch.astype(int) - guide[y0:y1, x0:x1].astype(int))[
        _inner(job.mask, rect)].mean() < 12, "the first step is the photo's own fill"


def test_a_generate_before_its_guide_is_made_paints_a_rough_fill_meanwhile(monkeypatch):
    import threading

    import editor.core.pipeline as pipeline

    release = threading.Event()
    rough_painted: list[bool] = []

    # The guide is still being made when Generate is pressed.
    def held(image, todo, variant=0, keep_out=None):
        assert release.wait(30)
        return pipeline._make_guide(image, todo, variant, keep_out)

    monkeypatch.setattr(pipeline, "GUIDES", pipeline.Guides(held))
    engine = Recorder()
    job = box_job(engine, None)
    painted = []

    def on_step(k, step, patch, rect):
        painted.append((int(step.step), len(engine.inputs), patch.copy()))
        rough_painted.append(not release.is_set())
        release.set()  # the guide is made only once the rough fill is on screen

    result = run_job(engine, job, SamplingParams(**job.sampling.engine_fields()), on_step=on_step)
    assert rough_painted[0], "painted while the guide was still being made"
    # The rough fill, and the first candidate's guide if the others are still being made:
    # painted, not steps.
    extra = len(painted) - len(result.history.steps)
    assert extra in (1, 2)
    rough, then = painted[0], painted[extra]
    assert rough[0] == then[0] and rough[1] == then[1] == 0, (
        "the guides' step, before any decode, takes the rough fill's place")
    inner = _inner(job.mask, result.history.steps[0][0].rect)
    assert rough[2][inner][:, 1].std() > 20, "the photo's stripes, not a flat hole"


def test_the_guides_and_fill_from_surroundings_copy_nothing_kept_out():
    import editor.core.pipeline as pipeline

    rng = np.random.default_rng(0)
    image = np.zeros((96, 128, 3), np.uint8)
    image[:, :64], image[:, 64:] = (200, 30, 30), (30, 30, 200)  # a red and a blue half
    image = np.clip(image + rng.integers(-20, 21, (96, 128, 1)), 0, 255).astype(np.uint8)
    mask = np.zeros((96, 128), bool)
    mask[30:60, 8:40] = True  # in the red half
    keep_out = np.zeros_like(mask)
    keep_out[:, :64] = True
    wins = g.plan(mask, 32, 4, g.INPAINT_MAX_WINDOWS, 0.0, 0.0)
    job = Job("edit", image, mask, wins, None, Sampling(steps=4), 0, 1, feather=2)
    kept = replace(job, keep_out=keep_out)
    blue = [pipeline.photo_guide(j)[mask][:, 2].mean() for j in (job, kept)]
    assert blue[1] > blue[0] + 20
    fills = [pipeline.fill_job(replace(j, kind="fill")).images[0][mask][:, 2].mean()
             for j in (job, kept)]
    assert fills[1] > fills[0] + 20


def test_an_outpaints_rough_fill_keeps_the_subject_out_as_its_first_guide_does(monkeypatch):
    import threading

    from test_exemplar import red_share, subject_photo

    import editor.core.pipeline as pipeline

    release = threading.Event()

    def held(image, todo, variant=0, keep_out=None):  # the guide is still being made
        assert release.wait(30)
        return pipeline._make_guide(image, todo, variant, keep_out)

    monkeypatch.setattr(pipeline, "GUIDES", pipeline.Guides(held))
    engine = Recorder()
    img, _, todo = subject_photo()
    wins = g.plan(todo, engine.window, engine.tokens_per_side, g.GUIDED_OUTPAINT_MAX_WINDOWS)
    job = Job("edit", img, todo, wins, None, Sampling(steps=4), 0, 2, feather=2)
    painted = []

    def on_step(k, step, patch, rect):
        if not release.is_set():
            painted.append((patch.copy(), rect))
        release.set()

    run_job(engine, job, SamplingParams(**job.sampling.engine_fields()), on_step=on_step)
    (patch, (x0, y0, x1, y1)), = painted
    assert red_share(patch, todo[y0:y1, x0:x1]) == 0.0, "no second subject, even for a moment"
