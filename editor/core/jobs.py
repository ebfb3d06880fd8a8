"""What the GUI asks the worker to do, as plain data (no Qt objects, no torch).

A `Job` carries copies of the document's arrays, so the GUI can keep editing while the worker
reads them, and an id, so results of a cancelled or superseded job can be recognised and dropped.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from editor.core.geometry import Window
from editor.core.history import DecodeHistory, StepRecord

# The mask schedules of models.sampler.SCHEDULES, repeated here because the GUI layer may not
# import models; tests/editor/test_jobs.py checks the two lists agree.
SCHEDULES = ("cosine", "arccos", "uniform", "pow2", "pow3", "log", "exp")
ORDERS = ("confidence", "halton")  # models.sampler.ORDERS, likewise checked

# Following the photo (issue 13), tuned on bench/quality's dev half. An edit without a requested
# class starts from an exemplar fill of the hole with this share of its tokens decoded again
# (the least likely ones; the cosine schedule of 12 steps rounds it to 13 %, one step), and
# mixes the exemplar token prior into the transformer with this weight.
PHOTO_REMASK = 0.15
PHOTO_PRIOR = 0.0

_ids = itertools.count(1)


def next_job_id() -> int:
    """Job ids increase, so 'newer than' is a comparison."""
    return next(_ids)


@dataclass(frozen=True)
class Sampling:
    """The sampling panel's values; the worker turns them into models.engine.SamplingParams."""

    steps: int = 12
    start_step: int = 2  # edits skip the first schedule steps, like the official editor
    schedule: str = "cosine"
    choice_temperature: float = 4.5
    temperature: float = 1.0
    order: str = "confidence"  # which tokens each step keeps: one of ORDERS
    # Follow the photo where no class is requested: exemplar start, exemplar token prior and
    # the exemplar fill kept where the model agrees (editor.core.pipeline); off = the transformer
    # alone, as before.
    guidance: bool = True

    def engine_fields(self) -> dict[str, Any]:
        """The keyword arguments of models.engine.SamplingParams."""
        d = asdict(self)
        on = d.pop("guidance")
        d.update(remask=PHOTO_REMASK if on else 1.0, prior=PHOTO_PRIOR if on else 0.0)
        return d

    def for_generation(self) -> Sampling:
        """A new image starts from nothing, so it runs the whole schedule."""
        return replace(self, start_step=0)


@dataclass
class Job:
    kind: str  # "edit" (inpaint / outpaint / regenerate) or "generate" (a new image)
    image: np.ndarray  # (H, W, 3) uint8 copy of the document image
    mask: np.ndarray  # (H, W) bool copy of the mask, True = regenerate
    windows: list[Window]  # from geometry.plan; decoded one after another
    class_id: int | None  # None: the worker picks one from the visible context
    sampling: Sampling
    seed: int
    candidates: int = 1
    feather: int = 4
    id: int = field(default_factory=next_job_id)
    # (H, W) bool: locked pixels. Their cells stay known tokens and their pixels are kept.
    locked: np.ndarray | None = None
    # (H, W) bool: pixels the photo's fills never copy (the keep-out brush; see exemplar.fill).
    keep_out: np.ndarray | None = None
    # Re-roll (single window): the known tokens and the cells to decode again.
    tokens: np.ndarray | None = None
    token_mask: np.ndarray | None = None
    # Branch (single window): continue from this StepRecord; `start_mask` is the original N0.
    branch: StepRecord | None = None
    start_mask: np.ndarray | None = None
    past: list[list[StepRecord]] | None = None  # the steps a branch shares with its origin
    # Photo guidance: the guide variant candidate 0 starts from (candidate c: the next c);
    # Regenerate moves on to the variants after the last batch's, so it rebuilds anew.
    first_guide: int = 0


@dataclass
class JobResult:
    job_id: int
    images: list[np.ndarray]  # one (H, W, 3) uint8 image per candidate, the document's size
    class_id: int | None  # the class used (the automatic one when the job had None)
    changed: tuple[int, int, int, int]  # (x0, y0, x1, y1): outside it the images equal the input
    history: DecodeHistory | None = None  # every step of a single-window decode
    # A multi-window decode: one history per window, in decode order (each window's steps are
    # its own; the windows chain, so there is no step index across them).
    chain: list[DecodeHistory] = field(default_factory=list)
