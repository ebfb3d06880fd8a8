"""Run a Job on an engine: window after window, each conditioned on the ones before.

Qt-free and torch-free (the engine is passed in), so the worker thread and the headless CLI run
the very same code. Compositing happens here, off the GUI thread.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

import cv2
import numpy as np

from editor.core import fill
from editor.core import geometry as g
from editor.core.guides import Guides
from editor.core.history import DecodeHistory, StepRecord
from editor.core.jobs import Job, JobResult


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

    def encode(self, image: np.ndarray) -> np.ndarray: ...

    def decode(self, tokens: np.ndarray) -> np.ndarray: ...

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


T = TypeVar("T")
STOP_POLL = 0.05  # s: how often a job waiting for a guide or a fill asks whether to stop
# Fill from surroundings runs here, not on the worker thread itself: shift-map cannot be
# interrupted, but the job can stop waiting for it (Cancel, a newer job, closing the window
# waited 2-8 s for a fill or a guide before).
_FILLS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fill")


def _waited(future: Future[T], should_stop: Callable[[], bool]) -> T:
    """`future`'s result; Stopped as soon as `should_stop()` turns true while it is not ready
    (the work goes on in its thread: a guide is kept for the next Generate)."""
    while True:
        try:
            return future.result(timeout=STOP_POLL)
        except TimeoutError:
            if should_stop():
                raise Stopped from None


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


# Longest side (px) at which the exemplar fill that guided windows start from is made, once
# per job over the whole hole and its context (see fill.region). At 128 px: box KID-Lite2
# 5.6 and PSNR 11.95 dB against 4.2 and 13.29 at 256 (dev half, change sigma 4), in half the time.
# 192 px: 3.8 / 12.59 dB, 160 px: 3.2 / 12.98 dB, in 0.4 and 0.25 of 256's shift-map time.
# With the guide carried to full size as copies (exemplar._copy_up), the guide alone, 6 runs,
# KID-Lite2 box / right / bottom: 2.4 / 5.7 / 12.6 at 256 px, 4.4 / 6.7 / 12.7 at 192 px
# (0.6 of the time).
GUIDE_SIDE = 256
# The same for an outpaint strip: at 512 px shift-map cannot reach the far third of a 30 %
# bottom strip (its misses become Telea streaks, or shift-map is run again on them), and on the
# mean of 4 dev runs, the guide alone, 512 px is no better (right 9.2, bottom 15.2 KID-Lite2,
# against 8.7 and 15.3 at 256) for ~3 s more a photo.
# Candidate c of a Generate starts from variant Job.first_guide + c % GUIDES_PER_BATCH of the
# guide (modulo their number): shift-map at GUIDE_SIDE times the share, on the photo, its
# mirror image or the photo upside down, rebuilds the hole in another way each time (a sky
# pasted into a facade in one, the facade carried on in the next), so the candidates differ in
# structure, not only in the model's few re-masked tokens, and Regenerate brings the next ones.
# Variant 0 is what a single-candidate edit (the CLI) gets. In an outpaint the even variants
# (the first candidate of a batch, and the third) keep the photo's subject out of the strip
# (fill.subject_kept_out, unless the user painted a keep-out), the odd ones copy from the whole
# photo: the subject kept out fills the strip with its background (no second dog); where
# the cut took the wrong thing, or the user wants the subject carried on, the other candidates
# have it.
GUIDE_VARIANTS = (  # (share, mirrored, upside down)
    (1.0, False, False), (0.625, True, False), (1.0, False, True), (0.625, True, True),
    (1.0, True, False), (0.625, False, True), (1.0, True, True), (0.625, False, False))
# Guides a batch of candidates starts from (candidate c takes the c % 2-th). Every guide is
# ~0.3-0.7 s of shift-map: a 4-candidate box Generate clicked 0.2 s after the mask took 2.6 s
# with 4 guides (3 of them at 0.75 of the side) and 2.3 s with 4 (3 at 0.625), against 1.0 s
# with one (2 cores with bf16, nothing else running).
GUIDES_PER_BATCH = 2
# Longest side of the rough fill painted while the guide is still being made (_pending_guides):
# for a 25 % box on a 512 px photo on 2 cores, 0.05 s alone (0.1 s at 96 px), against 0.6 s for
# the guide. It runs beside the guide, which doubles its time: the first fill of a box Generate
# (samples, 3 runs each, interleaved) was 0.18-0.27 s at 96 px, 0.12-0.16 s at 80; at 64 px
# pieces of the subject show in it (a kingfisher's back in the hole).
ROUGH_SIDE = 80
# Gaussian sigma (model-window px; a token cell is 8) of the model's change that a guided
# window keeps (see _residual): its finer change is the tokenizer's blur and blotches. Box
# KID-Lite2 on the dev half: 6.4 unsmoothed, 5.8 at 1.5, 4.2 at 4, 2.8 at 8.
CHANGE_SIGMA = 8.0
# ... and less its mean over this sigma (about a window): a window's change of colour showed as
# a tile in flat sky on right outpaints. Dev half, KID-Lite2 / PSNR: box 2.8 / 13.29 -> 2.7 /
# 13.33, right 10.7 / 11.63 -> 9.5 / 11.68.
CHANGE_SPAN = 32.0
# Least share of the context box (see fill.context_box) that must be known for the guide: from a
# strip a few pixels high shift-map cannot fill (it returns black). Such jobs decode plainly.
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
    n = max(int(job.candidates), 1)
    changed = functools.reduce(g.union, [v.clipped(h, w) for v in job.windows])
    run = _Run(engine, job, params, -1, n, should_stop, on_step, colour_fix, on_records, None)
    # The guide (or a rough fill, painted at once) first: the class is chosen while it is made.
    pending = _pending_guides(run) if follows_photo(job) else None
    if class_id is None:
        # One class for the whole edit, taken from the first window's visible context, so
        # neighbouring windows of an outpaint do not drift to different classes.
        v = job.windows[0]
        class_id = int(engine.auto_class(g.window_image(job.image, v), _tokens(job.mask, v)))
        if on_class is not None:
            on_class(class_id)
    guides = None if pending is None else [_waited(f, should_stop) for f in pending]
    if guides is None and hasattr(params, "remask"):  # a requested class is not pulled back
        params = replace(params, remask=1.0, prior=0.0)
    run = replace(run, params=params, class_id=class_id, guides=guides)
    result = _edit(run, changed)
    if guides is not None:
        # The windows were decoded at the model's size: the guide's band above it comes back.
        scale = max(v.scale for v in job.windows)
        todo = todo_of(job)
        result.images = [np.where(todo[..., None], _plus_band(im, own(guides, c), scale), im)
                         for c, im in enumerate(result.images)]
    return result


def photo_guide(job: Job, variant: int = 0) -> np.ndarray | None:
    """The job's image with the hole filled from the rest of the photo (variant `variant` of
    GUIDE_VARIANTS), which every window's decode starts from; None when the photo shows too
    little around the hole to fill from."""
    todo = todo_of(job)
    return GUIDES.get(job.image, todo, variant, job.keep_out) if guided(todo) else None


def _pending_guides(run: _Run) -> list[Future[np.ndarray]] | None:
    """Each candidate's guide (photo_guide, variant first_guide + c), made or being made (two at
    a time). While the first is being made (the user pressed Generate before the prefetch
    finished), a rough fill is painted as the decode's start, so the hole shows the photo within
    a fraction of a second; the guides' step replaces it."""
    job = run.job
    todo = todo_of(job)
    if not guided(todo):
        return None
    pending = [GUIDES.future(job.image, todo, (job.first_guide + c) % len(GUIDE_VARIANTS),
                             job.keep_out)
               for c in range(guides_per_batch(run.candidates))]
    live = run.on_step is not None or run.on_records is not None
    if live and g.core_mask(job.mask, job.windows[0]).any():
        area = _Area.of(job, [job.image], job.mask, 0)
        if not pending[0].done():  # in the place of the first guide: what it keeps out
            keep_out = variant_keep_out(job.image, todo, job.first_guide, job.keep_out)
            rough = fill.region(job.image, todo, ROUGH_SIDE, finish=False, keep_out=keep_out)[0]
            _show_start(run, area, [job.image], 0, None, [rough])
        if not all(f.done() for f in pending):  # the first guide, while the others are made
            _show_start(run, area, [job.image], 0, None,
                        [_waited(pending[0], run.should_stop)])
    return [pending[c % len(pending)] for c in range(run.candidates)]


def guided(todo: np.ndarray) -> bool:
    """Whether the photo around `todo` shows enough to fill it from (else a plain decode)."""
    x0, y0, x1, y1 = fill.context_box(todo)
    return bool(todo.any()) and bool(todo[y0:y1, x0:x1].mean() <= 1 - GUIDE_MIN_CONTEXT)


def guides_per_batch(candidates: int) -> int:
    """How many guide variants a batch of `candidates` starts from (Regenerate moves
    Job.first_guide on by as many)."""
    return min(max(candidates, 1), GUIDES_PER_BATCH, len(GUIDE_VARIANTS))


def prefetch_guide(image: np.ndarray, todo: np.ndarray, candidates: int = 1,
                   keep_out: np.ndarray | None = None) -> None:
    """Start making the guides a Generate of `candidates` of `image` with `todo` to fill will
    need (the arrays are the guides' from now on: pass copies). Cheap on the caller's thread."""
    if guided(todo):
        GUIDES.prefetch(image, todo, guides_per_batch(candidates), keep_out)


def _make_guide(image: np.ndarray, todo: np.ndarray, variant: int = 0,
                keep_out: np.ndarray | None = None) -> np.ndarray:
    share, mirrored, upside_down = GUIDE_VARIANTS[variant]
    keep_out = variant_keep_out(image, todo, variant, keep_out)
    turn = (slice(None, None, -1 if upside_down else 1), slice(None, None, -1 if mirrored else 1))
    filled = fill.region(np.ascontiguousarray(image[turn]), np.ascontiguousarray(todo[turn]),
                         round(GUIDE_SIDE * share),
                         keep_out=None if keep_out is None else keep_out[turn])[0]
    return np.ascontiguousarray(filled[turn])


# Generate again on the same picture and mask (new candidates) reuses the guide, and the
# controller has it made while the user is still deciding.
GUIDES = Guides(_make_guide)


def _plus_band(image: np.ndarray, guide: np.ndarray, scale: float) -> np.ndarray:
    """`image` plus the detail of `guide` that a window at 1 / `scale` of its size loses."""
    if scale <= 1:
        return image
    h, w = guide.shape[:2]
    small = cv2.resize(guide, (max(1, round(w / scale)), max(1, round(h / scale))),
                       interpolation=cv2.INTER_AREA)
    band = guide.astype(np.int16) - cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    out: np.ndarray = np.clip(image + band, 0, 255).astype(np.uint8)
    return out


def todo_of(job: Job) -> np.ndarray:
    """The pixels the job may change: its mask less the locked cells."""
    return job.mask if job.locked is None else job.mask & ~job.locked


# Longest side at which Fill from surroundings runs shift-map over a region and its context
# (~2 s on 2 cores); a larger crop is filled at this size and its detail restored at full size.
FILL_SIDE = 256


def variant_keep_out(image: np.ndarray, todo: np.ndarray, variant: int,
                     keep_out: np.ndarray | None) -> np.ndarray | None:
    """What guide variant `variant` copies nothing from: the even ones keep the subject of an
    outpaint out as well (kept_out), the odd ones only the user's keep-out."""
    return kept_out(image, todo, keep_out) if variant % 2 == 0 else keep_out


def kept_out(image: np.ndarray, todo: np.ndarray,
             keep_out: np.ndarray | None) -> np.ndarray | None:
    """The pixels a fill of `todo` copies nothing from: the user's keep-out where one is painted,
    else in an outpaint the photo's subject (fill.subject_kept_out)."""
    if keep_out is not None and keep_out.any():
        return keep_out
    return fill.subject_kept_out(image, todo)


def fill_job(job: Job, should_stop: Callable[[], bool] = lambda: False) -> JobResult:
    """Fill from surroundings, no model: the masked pixels (less locked ones) filled from the
    rest of the photo by editor.core.fill.region (shift-map; Telea for thin strokes)."""
    todo = todo_of(job)
    if not todo.any():
        raise ValueError("nothing to fill: the mask is empty")
    made = _FILLS.submit(lambda: fill.region(job.image, todo, FILL_SIDE,
                                             keep_out=kept_out(job.image, todo, job.keep_out)))
    out, rect = _waited(made, should_stop)
    if should_stop():
        raise Stopped
    return JobResult(job.id, [out], None, rect)


def follows_photo(job: Job) -> bool:
    """Photo guidance (start from an exemplar fill, keep its pixels where the model agrees)
    applies to a fresh edit without a requested class: a re-roll or a branch continues a
    decode as it was, and a requested class must win over what the photo had there."""
    return (bool(getattr(job.sampling, "guidance", False)) and job.class_id is None
            and job.token_mask is None and job.branch is None and job.tokens is None)


@dataclass(frozen=True)
class _Run:
    """What every window of one job shares."""

    engine: EngineLike
    job: Job
    params: Any
    class_id: int
    candidates: int
    should_stop: Callable[[], bool]
    on_step: StepCallback | None
    colour_fix: ColourFix | None
    on_records: RecordsCallback | None
    # Each candidate's guide (the photo with the hole filled by fill.region), or None.
    guides: list[np.ndarray] | None


def _edit(run: _Run, changed: tuple[int, int, int, int]) -> JobResult:
    job, class_id = run.job, run.class_id
    if len(job.windows) == 1:
        v = job.windows[0]
        hist = DecodeHistory(job.id, v, np.zeros((v.tokens, v.tokens), bool),
                             g.core_mask(job.mask, v), class_id, list(job.past or []))
        images = _window(run, [job.image], job.mask, 0, job.seed, hist)
        return JobResult(job.id, images, class_id, changed, hist)
    # Every candidate chains its own windows (window k+1 sees candidate i's window k), and all
    # candidates of window k still decode as one batch.
    images, pending = [job.image.copy()], job.mask.copy()  # ours: windows update it in place
    chain = []
    for k, v in enumerate(job.windows):
        hist = DecodeHistory(job.id, v, np.zeros((v.tokens, v.tokens), bool),
                             g.core_mask(pending, v), class_id)
        images = _window(run, images, pending, k, job.seed + k, hist, owned=True)
        if hist.steps:  # a window whose core earlier windows already did decodes nothing
            chain.append(hist)
        x0, y0, x1, y1 = v.core
        pending[y0:y1, x0:x1] = False  # done: later windows take it as context
    return JobResult(job.id, images, class_id, changed, chain=chain)


def _tokens(mask: np.ndarray, v: g.Window) -> np.ndarray:
    return g.token_mask(g.core_mask(mask, v), v)


@dataclass
class _Area:
    """Where window k of a job works, in image and model space."""

    v: g.Window
    srcs: list[np.ndarray]  # the model input of each picture (one shared, or per candidate)
    mine: np.ndarray  # (H, W) the pixels this window writes
    cells: np.ndarray  # (t, t) the token cells to decode
    keep: np.ndarray | None  # (H, W) locked pixels, never changed
    todo: np.ndarray  # (H, W) every pixel still to generate
    hole: np.ndarray | None  # (H, W) generated content anyway: windows cross-fade there

    @classmethod
    def of(cls, job: Job, images: list[np.ndarray], pending: np.ndarray, k: int) -> _Area:
        v = job.windows[k]
        mine = g.core_mask(pending, v)
        locked = None if job.locked is None else g.token_mask(job.locked, v, 0)
        keep = g.locked_pixels(job.locked, v)  # locked cells: their pixels are never changed
        # Every pixel still to generate that the window sees, not only its core: the rest of
        # the hole holds grey (outpaint) or the object being removed, and neither may pass
        # for context.
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
        # Windows cross-fade into what earlier windows generated; a re-roll changes its cells.
        hole = job.mask if job.token_mask is None else None
        return cls(v, [g.window_image(im, v) for im in images], mine, cells, keep, todo, hole)


def _window(
    run: _Run,
    images: list[np.ndarray],
    pending: np.ndarray,
    k: int,
    seed: int,
    hist: DecodeHistory,
    owned: bool = False,
) -> list[np.ndarray]:
    """The candidates' results of window k, each composited over its own picture: `images`
    holds one picture shared by all candidates, or one per candidate. `owned`: the pictures
    are the pipeline's own, so a candidate's may be updated in place (no full-image copy per
    window and candidate); otherwise every result is a new array."""
    n = run.candidates
    private = owned and len(images) == n
    if not g.core_mask(pending, run.job.windows[k]).any():
        return images if private else [own(images, c).copy() for c in range(n)]
    area = _Area.of(run.job, images, pending, k)
    # Before the engine's first work; the first window's start is the feedback that counts
    # (later windows of a multi-window edit would each cost an encode per candidate).
    if run.guides is not None and run.job.branch is None and k == 0:
        _show_start(run, area, images, k, hist, run.guides)
    decode, fixed = _start(run, area, seed, hist)
    out = []
    # The last step was already fixed and blended for its records: that is the result.
    for c, (region, (x0, y0, x1, y1)) in enumerate(_follow(run, area, images, k, decode, fixed,
                                                              hist)):
        img = images[c] if private else own(images, c).copy()
        img[y0:y1, x0:x1] = region
        out.append(img)
    return out


# fixed(preview, c): candidate c's decoded window made ready to composite.
Fix = Callable[[np.ndarray, int], np.ndarray]


def _start(run: _Run, area: _Area, seed: int, hist: DecodeHistory
           ) -> tuple[Iterator[list[Any]], Fix]:
    """The window's decode (a branch, a guided edit or a plain one) and how to fix its
    previews: the colour fix, or for a guided edit the exemplar fill plus the model's change."""
    job, engine, params, v = run.job, run.engine, run.params, area.v
    known = ~g.window_mask(area.todo, v)

    def colour(preview: np.ndarray, c: int) -> np.ndarray:
        if run.colour_fix is None:
            return preview
        return run.colour_fix(preview, own(area.srcs, c), known)

    fixed: Fix = colour

    if job.branch is not None:
        start = job.start_mask if job.start_mask is not None else area.cells
        at = job.branch
        if job.locked is not None:  # a lock painted after that decode: those cells stay
            at = replace(at, masked=at.masked & ~g.token_mask(job.locked, v, 0))
        hist.start_mask = start.copy()
        image = area.srcs[0] if len(area.srcs) == 1 else np.stack(area.srcs)
        return engine.branch(at, start, run.class_id, params, seed, run.candidates,
                             image=image), fixed
    hist.start_mask = area.cells.copy()
    srcs, tokens = area.srcs, job.tokens
    if run.guides is not None and not known.all():
        srcs = _guided_sources(area, run.guides)
        # Candidates sharing a source share its tokens and reconstruction, and the engine
        # starts from those tokens instead of encoding every candidate's source again.
        codes: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for src in srcs:
            if id(src) not in codes:
                code = np.asarray(engine.encode(src))
                codes[id(src)] = code, engine.decode(code)
        fixed = _residual(srcs, [codes[id(src)][1] for src in srcs])
        if tokens is None:
            tokens = (codes[id(srcs[0])][0] if len(srcs) == 1
                      else np.stack([codes[id(src)][0] for src in srcs]))
    image = srcs[0] if len(srcs) == 1 else np.stack(srcs)
    return engine.edit_many(image, area.cells, run.class_id, params, seed, run.candidates,
                            tokens), fixed


def _show_start(run: _Run, area: _Area, images: list[np.ndarray], k: int,
                hist: DecodeHistory | None, guides: list[np.ndarray]) -> None:
    """Paint and record where a guided decode starts, the photo's own fill of the hole, as a
    step before the model's: the user sees it as soon as the guide exists (the model's step
    takes another second or more on 2 cores) and can scrub between it and the result.
    `hist` None: a fill shown until every candidate's guide is made (a rough one, or the first
    candidate's), painted only (not encoded, not recorded; the guides' step takes its place)."""
    params, v = run.params, area.v
    step = max(int(getattr(params, "start_step", 1)) - 1, 0)
    total = int(getattr(params, "steps", step + 1))
    masked = area.cells.copy()
    none = np.zeros(masked.shape, np.float32)
    srcs = _guided_sources(area, guides)  # what _start hands the engine
    records: list[StepRecord] = []
    made: dict[tuple[int, int], StepRecord] = {}  # candidates with one source and picture
    for c in range(run.candidates):
        base, image = own(srcs, c), own(images, c)
        if (id(base), id(image)) not in made:
            tokens = (np.zeros(masked.shape, np.int64) if hist is None
                      else np.asarray(run.engine.encode(base)))
            patch, rect = blend_patch(image, base, v, area.mine, run.job.feather, area.keep,
                                      area.hole)
            made[id(base), id(image)] = StepRecord(step, total, tokens, masked, none, patch, rect)
        records.append(made[id(base), id(image)])
    if hist is not None:
        hist.add(records)
    if run.on_records is not None:
        run.on_records(k, records)
    if run.on_step is not None:
        run.on_step(k, records[0], records[0].patch, records[0].rect)


def _guided_sources(area: _Area, guides: list[np.ndarray]) -> list[np.ndarray]:
    """Each candidate's model input with the hole taken from its exemplar fill: the engine
    starts from its tokens, and each candidate keeps its own context around it. One input
    when the candidates share both (the engine then scores them with one forward)."""
    gap = g.window_mask(area.todo, area.v)[..., None]
    n = max(len(guides), len(area.srcs))
    if all(own(guides, c) is guides[0] for c in range(n)):
        base = g.window_image(guides[0], area.v)
        return [np.where(gap, base, im) for im in area.srcs]
    # Candidates taking turns between guides share the same array per guide and context.
    made: dict[tuple[int, int], np.ndarray] = {}
    for c in range(n):
        guide, src = own(guides, c), own(area.srcs, c)
        if (id(guide), id(src)) not in made:
            made[id(guide), id(src)] = np.where(gap, g.window_image(guide, area.v), src)
    return [made[id(own(guides, c)), id(own(area.srcs, c))] for c in range(n)]


def _residual(bases: list[np.ndarray], recons: list[np.ndarray]) -> Fix:
    """The exemplar fill plus what the model changed in it (its decode less its reconstruction
    of the fill, smoothed by CHANGE_SIGMA): the tokenizer's blur and colour shift cancel, so
    the cells the model kept stay the photo's own pixels, and where it disagrees its coarse
    structure (between CHANGE_SIGMA and CHANGE_SPAN) comes in under the photo's texture."""
    rs = [r.astype(np.float32) for r in recons]

    def fixed(preview: np.ndarray, c: int) -> np.ndarray:
        change: np.ndarray = preview.astype(np.float32) - own(rs, c)
        if CHANGE_SIGMA > 0:
            change = cv2.GaussianBlur(change, (0, 0), CHANGE_SIGMA)
        if CHANGE_SPAN > 0:  # no offset over the whole window: it shows as a tile
            change = change - cv2.GaussianBlur(change, (0, 0), CHANGE_SPAN)
        out: np.ndarray = np.clip(own(bases, c).astype(np.float32) + change, 0, 255)
        return out.round().astype(np.uint8)

    return fixed


def _follow(
    run: _Run, area: _Area, images: list[np.ndarray], k: int, decode: Iterator[list[Any]],
    fixed: Fix, hist: DecodeHistory,
) -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """Every step of the decode composited, recorded and reported; the last step's
    candidates, each composited: (region, rect)."""
    job = run.job
    blended: list[tuple[np.ndarray, tuple[int, int, int, int]]] = []
    for steps in decode:
        if run.should_stop():
            raise Stopped
        blended = [blend_patch(own(images, c), fixed(s.preview, c), area.v, area.mine,
                               job.feather, area.keep, area.hole) for c, s in enumerate(steps)]
        records = [_record(s, *b) for s, b in zip(steps, blended, strict=True)]
        hist.add(records)
        if run.on_records is not None:
            run.on_records(k, records)
        if run.on_step is not None:
            run.on_step(k, steps[0], records[0].patch, records[0].rect)
    if run.should_stop():
        raise Stopped
    if not blended:
        raise RuntimeError("the engine yielded no steps")
    return blended


def own(items: list[Any], c: int) -> Any:
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

