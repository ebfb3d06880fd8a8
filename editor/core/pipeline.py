"""Run a Job on an engine: window after window, each conditioned on the ones before.

Qt-free and torch-free (the engine is passed in), so the worker thread and the headless CLI run
the very same code. Compositing happens here, off the GUI thread.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from editor.core import exemplar
from editor.core import geometry as g
from editor.core.history import DecodeHistory, StepRecord
from editor.core.jobs import PHOTO_DETAIL_SIGMA, Job, JobResult


class StepLike(Protocol):
    step: int
    total: int
    preview: np.ndarray  # (W, W, 3) uint8 decoded window
    confidence: np.ndarray  # (t, t) float32
    masked: np.ndarray  # (t, t) bool: tokens still undecided after this step


class EngineLike(Protocol):
    """The part of models.engine.Engine the editor uses (a fake implements it in tests)."""

    window: int
    tokens_per_side: int

    def edit_many(
        self,
        image: np.ndarray | None,
        token_mask: np.ndarray,
        class_id: int | None,
        params: Any,
        seed: int = 0,
        candidates: int = 1,
        tokens: np.ndarray | None = None,
    ) -> Iterator[list[Any]]: ...

    def generate(
        self, class_id: int, params: Any, seed: int = 0, candidates: int = 1
    ) -> Iterator[list[Any]]: ...

    def auto_class(self, image: np.ndarray, token_mask: np.ndarray | None = None) -> int: ...

    def branch(
        self,
        step: Any,
        start_mask: np.ndarray,
        class_id: int | None,
        params: Any,
        seed: int = 0,
        candidates: int = 1,
        image: np.ndarray | None = None,
    ) -> Iterator[list[Any]]: ...


class Stopped(Exception):
    """The job was cancelled or superseded between two steps."""


# on_step(window_index, step, patch, patch_rect): patch is the window's preview composited over
# the current image, cropped to patch_rect (x0, y0, x1, y1) of the image.
StepCallback = Callable[[int, Any, np.ndarray, tuple[int, int, int, int]], None]
# colour_fix(decoded, reference, known) -> decoded made to agree with `reference` on the `known`
# pixels (models.colour.harmonize; passed in because this layer has no models).
ColourFix = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
# on_records(window_index, records): every candidate of one step of one window.
RecordsCallback = Callable[[int, list[StepRecord]], None]


def blend_patch(
    image: np.ndarray, result: np.ndarray, win: g.Window, mask: np.ndarray, feather: int,
    keep: np.ndarray | None = None, hole: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The composited window region only (cheap enough to run for every preview step)."""
    return g.blend_region(image, result, win, mask, feather, keep, hole, seam(win))


# Side (px) at which the exemplar start's fill of a window is made (the default model's whole
# window; a 256 px window's fill is made at half size and upsampled). At 64 px the fill loses
# layout: box PSNR 11.95 dB and KID-Lite2 20.8 against 13.78 and 13.6 at 128 (bench/tune_photo,
# dev half, remask 0.2, detail 4), at a third of the time.
GUIDE_SIDE = 128


# Least share of a window's pixels that must be known for the exemplar start: the first window
# of an outpaint sees a strip a few pixels high, from which shift-map cannot fill (it left the
# whole hole black, and later windows copied the black). Such windows decode plainly.
GUIDE_MIN_CONTEXT = 0.25


def seam(win: g.Window) -> int:
    """Cross-fade width between neighbouring windows' results: one token cell, in image px."""
    return math.ceil(win.size / win.tokens)


def run_job(
    engine: EngineLike,
    job: Job,
    params: Any,
    should_stop: Callable[[], bool] = lambda: False,
    on_step: StepCallback | None = None,
    on_class: Callable[[int], None] | None = None,
    colour_fix: ColourFix | None = None,
    on_records: RecordsCallback | None = None,
) -> JobResult:
    """Decode every window of `job`; raises Stopped when `should_stop()` turns true.

    Every candidate of every step is reported to `on_records`; the job also returns its step
    history (JobResult.history for a single window, JobResult.chain for several)."""
    h, w = job.mask.shape
    class_id = job.class_id
    if job.kind == "generate":
        return _generate(engine, job, params, should_stop, on_step, on_records)
    if job.kind == "fill":
        return fill_job(job, should_stop)
    if not job.windows:
        raise ValueError("nothing to regenerate: the mask is empty")
    if class_id is None:
        # One class for the whole edit, taken from the first window's visible context, so
        # neighbouring windows of an outpaint do not drift to different classes.
        v = job.windows[0]
        class_id = int(engine.auto_class(g.window_image(job.image, v), _tokens(job.mask, v)))
        if on_class is not None:
            on_class(class_id)
    n = max(int(job.candidates), 1)
    changed = functools.reduce(g.union, [v.clipped(h, w) for v in job.windows], None)
    guided = follows_photo(job)
    if not guided and hasattr(params, "remask"):  # a requested class must not be pulled back
        params = replace(params, remask=1.0, prior=0.0)
    result = _edit(engine, job, params, class_id, n, changed, should_stop, on_step, colour_fix,
                   on_records, guided)
    if guided and PHOTO_DETAIL_SIGMA > 0:
        # Fine detail from the photo itself, with each candidate's fill as the guide.
        todo = job.mask if job.locked is None else job.mask & ~job.locked
        sigma = PHOTO_DETAIL_SIGMA * max(v.scale for v in job.windows)
        result.images = [exemplar.restore_detail(im, todo, sigma) for im in result.images]
    return result


# Longest side at which Fill from surroundings runs shift-map over a region and its context
# (~2 s on 2 cores); a larger crop is filled at this size and its detail restored at full size.
FILL_SIDE = 256


def fill_job(job: Job, should_stop: Callable[[], bool] = lambda: False) -> JobResult:
    """Fill from surroundings, no model: the masked pixels (less locked ones) filled from the
    rest of the photo by editor.exemplar (shift-map for regions, Telea for thin strokes)."""
    todo = job.mask if job.locked is None else job.mask & ~job.locked
    box = g.bbox(todo)
    if box is None:
        raise ValueError("nothing to fill: the mask is empty")
    h, w = todo.shape
    x0, y0, x1, y1 = box
    pad = max(32, (x1 - x0 + y1 - y0) // 2)  # context to take the fill from
    x0, y0, x1, y1 = max(x0 - pad, 0), max(y0 - pad, 0), min(x1 + pad, w), min(y1 + pad, h)
    crop, hole = job.image[y0:y1, x0:x1], todo[y0:y1, x0:x1]
    filled = exemplar.fill(crop, hole, FILL_SIDE)
    scale = max(x1 - x0, y1 - y0) / FILL_SIDE
    if scale > 1 and exemplar.thickness(hole) > exemplar.THIN:
        filled = exemplar.restore_detail(filled, hole, 1.5 * scale)
    if should_stop():
        raise Stopped
    out = job.image.copy()
    out[y0:y1, x0:x1][hole] = filled[hole]
    return JobResult(job.id, [out], None, (x0, y0, x1, y1))


def follows_photo(job: Job) -> bool:
    """Photo guidance (exemplar start, token prior, detail transfer) applies to a fresh edit
    without a requested class: a re-roll or a branch continues a decode as it was, and a
    requested class must win over what the photo had there."""
    return (bool(getattr(job.sampling, "guidance", False)) and job.class_id is None
            and job.token_mask is None and job.branch is None and job.tokens is None)


def _edit(
    engine: EngineLike,
    job: Job,
    params: Any,
    class_id: int,
    n: int,
    changed: tuple[int, int, int, int],
    should_stop: Callable[[], bool],
    on_step: StepCallback | None,
    colour_fix: ColourFix | None,
    on_records: RecordsCallback | None,
    guided: bool,
) -> JobResult:
    if len(job.windows) == 1:
        v = job.windows[0]
        hist = DecodeHistory(job.id, v, np.zeros((v.tokens, v.tokens), bool),
                             g.core_mask(job.mask, v), class_id, list(job.past or []))
        images = _window(engine, job, [job.image], job.mask, 0, class_id, params, job.seed, n,
                         should_stop, on_step, colour_fix, hist, on_records, guided=guided)
        return JobResult(job.id, images, class_id, changed, hist)
    # Every candidate chains its own windows (window k+1 sees candidate i's window k), and all
    # candidates of window k still decode as one batch.
    images, pending = [job.image.copy()], job.mask.copy()  # ours: windows update it in place
    chain = []
    for k, v in enumerate(job.windows):
        hist = DecodeHistory(job.id, v, np.zeros((v.tokens, v.tokens), bool),
                             g.core_mask(pending, v), class_id)
        images = _window(engine, job, images, pending, k, class_id, params, job.seed + k, n,
                         should_stop, on_step, colour_fix, hist, on_records, owned=True,
                         guided=guided)
        if hist.steps:  # a window whose core earlier windows already did decodes nothing
            chain.append(hist)
        x0, y0, x1, y1 = v.core
        pending[y0:y1, x0:x1] = False  # done: later windows take it as context
    return JobResult(job.id, images, class_id, changed, chain=chain)


def _tokens(mask: np.ndarray, v: g.Window) -> np.ndarray:
    return g.token_mask(g.core_mask(mask, v), v)


def _window(
    engine: EngineLike,
    job: Job,
    images: list[np.ndarray],
    pending: np.ndarray,
    k: int,
    class_id: int,
    params: Any,
    seed: int,
    candidates: int,
    should_stop: Callable[[], bool],
    on_step: StepCallback | None,
    colour_fix: ColourFix | None = None,
    hist: DecodeHistory | None = None,
    on_records: RecordsCallback | None = None,
    owned: bool = False,
    guided: bool = False,
) -> list[np.ndarray]:
    """The `candidates` results of window k, each composited over its own picture: `images`
    holds one picture shared by all candidates, or one per candidate. `owned`: the pictures
    are the pipeline's own, so a candidate's may be updated in place (no full-image copy per
    window and candidate); otherwise every result is a new array."""
    private = owned and len(images) == candidates
    v = job.windows[k]
    mine = g.core_mask(pending, v)
    if not mine.any():
        return images if private else [own(images, c).copy() for c in range(candidates)]
    srcs = [g.window_image(im, v) for im in images]
    src = srcs[0] if len(srcs) == 1 else np.stack(srcs)
    locked = None if job.locked is None else g.token_mask(job.locked, v, 0)
    keep = g.locked_pixels(job.locked, v)  # locked cells: their pixels are never changed
    # Every pixel still to generate that the window sees, not only its core: the rest of the
    # hole holds grey (outpaint) or the object being removed, and neither may pass for context.
    todo = pending if keep is None else pending & ~keep
    if job.token_mask is not None:  # re-roll: the caller chose the cells
        cells = job.token_mask & ~locked if locked is not None else job.token_mask.copy()
        # Only the re-rolled cells' pixels change; the rest of the result stays as it was.
        mine = mine & g.cell_pixels(cells, v, mine.shape)
        todo = mine
    else:
        cells = g.token_mask(todo, v, locked=job.locked)
    if keep is not None:
        mine = mine & ~keep
    # Windows cross-fade into what earlier windows generated; a re-roll changes its cells only.
    hole = job.mask if job.token_mask is None else None
    # The colour fix makes the window agree with the pixels that are really there.
    known = ~g.window_mask(todo, v)

    def fixed(preview: np.ndarray, c: int) -> np.ndarray:
        return preview if colour_fix is None else colour_fix(preview, own(srcs, c), known)

    if job.branch is not None:
        start = job.start_mask if job.start_mask is not None else cells
        at = job.branch
        if locked is not None:  # a lock painted after that decode: those cells stay as sampled
            at = replace(at, masked=at.masked & ~locked)
        decode = engine.branch(at, start, class_id, params, seed, candidates, image=src)
        if hist is not None:
            hist.start_mask = start.copy()
    else:
        gap = g.window_mask(todo, v) if guided else None
        if gap is not None and gap.mean() > 1 - GUIDE_MIN_CONTEXT:  # too little to fill from
            params = replace(params, remask=1.0, prior=0.0) if hasattr(params, "remask") else params
        elif gap is not None:  # the engine starts from the tokens of an exemplar fill of the hole
            # One fill, the first candidate's, for all: each keeps its own context around it,
            # and shift-map once per window instead of once per candidate.
            fill = exemplar.fill(srcs[0], gap, GUIDE_SIDE)
            filled = [np.where(gap[..., None], fill, im) for im in srcs]
            src = filled[0] if len(filled) == 1 else np.stack(filled)
        decode = engine.edit_many(src, cells, class_id, params, seed, candidates, job.tokens)
        if hist is not None:
            hist.start_mask = cells.copy()
    last: list[Any] = []
    blended: list[tuple[np.ndarray, tuple[int, int, int, int]]] = []  # the last step's
    for steps in decode:
        if should_stop():
            raise Stopped
        last, blended = steps, []
        if hist is not None or on_records is not None:
            blended = [blend_patch(own(images, c), fixed(s.preview, c), v, mine, job.feather,
                                   keep, hole) for c, s in enumerate(steps)]
            records = [_record(s, *b) for s, b in zip(steps, blended, strict=True)]
            if hist is not None:
                hist.add(records)
            if on_records is not None:
                on_records(k, records)
            if on_step is not None:
                on_step(k, steps[0], records[0].patch, records[0].rect)
        elif on_step is not None:
            patch, rect = blend_patch(images[0], fixed(steps[0].preview, 0), v, mine,
                                      job.feather, keep, hole)
            on_step(k, steps[0], patch, rect)
    if should_stop():
        raise Stopped
    if not last:
        raise RuntimeError("the engine yielded no steps")
    out = []
    for c, s in enumerate(last):
        # The last step was already colour-fixed and blended for its records: reuse that.
        region, (x0, y0, x1, y1) = blended[c] if blended else blend_patch(
            own(images, c), fixed(s.preview, c), v, mine, job.feather, keep, hole)
        img = images[c] if private else own(images, c).copy()
        img[y0:y1, x0:x1] = region
        out.append(img)
    return out


def own(items: list, c: int) -> Any:
    """Candidate c's entry of `items`: its own, or the one all candidates share."""
    return items[c if len(items) > 1 else 0]


def _record(s: Any, patch: np.ndarray, rect: tuple[int, int, int, int]) -> StepRecord:
    return StepRecord(int(s.step), int(s.total), np.array(s.tokens), np.array(s.masked, bool),
                      np.array(s.confidence, np.float32), patch, rect)


def _generate(
    engine: EngineLike,
    job: Job,
    params: Any,
    should_stop: Callable[[], bool],
    on_step: StepCallback | None,
    on_records: RecordsCallback | None = None,
) -> JobResult:
    if job.class_id is None:
        raise ValueError("a new image needs a class: pick one in the class list")
    n, t = engine.window, engine.tokens_per_side
    full = np.ones((t, t), bool)
    hist = DecodeHistory(job.id, job.windows[0], full, np.ones((n, n), bool), job.class_id,
                         list(job.past or []), "generate")
    c = max(job.candidates, 1)
    if job.branch is not None:
        decode = engine.branch(job.branch, full, job.class_id, params, job.seed, c)
    else:
        decode = engine.generate(job.class_id, params, job.seed, c)
    last: list[Any] = []
    for steps in decode:
        if should_stop():
            raise Stopped
        last = steps
        records = [_record(s, np.array(s.preview), (0, 0, n, n)) for s in steps]
        hist.add(records)
        if on_records is not None:
            on_records(0, records)
        if on_step is not None:
            on_step(0, steps[0], steps[0].preview, (0, 0, n, n))
    if should_stop():
        raise Stopped
    if not last:
        raise RuntimeError("the engine yielded no steps")
    return JobResult(job.id, [s.preview.copy() for s in last], job.class_id, (0, 0, n, n), hist)

