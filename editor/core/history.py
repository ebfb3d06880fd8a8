"""The step history of one decode: every step's token grid, what was still masked, confidences,
and the composited preview, for every candidate. Qt-free and torch-free.

MaskGIT decodes in a few parallel steps, each a full token grid with a confidence per token, so
keeping them all is cheap (t*t ints per step per candidate, plus a window-sized preview). The
step scrubber shows them, "branch from here" continues a decode from one of them
(Engine.branch), and the heatmap / "re-roll weakest" read the last step's confidences.

Only single-window edits keep a history: a multi-window edit chains windows, so one step index
means nothing across them (the UI says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from editor.core.geometry import Rect


@dataclass(frozen=True)
class StepRecord:
    """One candidate at one step; quacks like models.engine.Step for Engine.branch."""

    step: int
    total: int
    tokens: np.ndarray  # (t, t) int64: every position sampled at this step
    masked: np.ndarray  # (t, t) bool: still undecided after this step
    confidence: np.ndarray  # (t, t) float32: p(token)
    patch: np.ndarray  # (h, w, 3) uint8: the window's preview composited over the image
    rect: Rect  # where `patch` goes in the image

    @property
    def done(self) -> bool:
        return self.step == self.total - 1

    @classmethod
    def picture(cls, patch: np.ndarray, rect: Rect) -> StepRecord:
        """A finished candidate known only by its pixels (a multi-window edit keeps no steps):
        enough for the candidates strip and for putting it back."""
        none = np.zeros((0, 0))
        return cls(0, 1, none.astype(np.int64), none.astype(bool), none.astype(np.float32),
                   patch, rect)


@dataclass
class DecodeHistory:
    """Everything needed to scrub, branch and re-roll one single-window decode."""

    job_id: int
    window: object  # geometry.Window (typed loosely: jobs imports this module)
    start_mask: np.ndarray  # (t, t) bool: the tokens the decode started with masked (N0)
    pixel_mask: np.ndarray  # (H, W) bool: the pixels the decode composites (its core mask)
    class_id: int | None
    steps: list[list[StepRecord]] = field(default_factory=list)  # [step][candidate]
    kind: str = "edit"  # or "generate" (a new image: no image to condition on)

    @property
    def candidates(self) -> int:
        return len(self.steps[0]) if self.steps else 0

    def add(self, records: list[StepRecord]) -> None:
        # A branch shares its past: steps at or after the branch point are replaced.
        s = records[0].step
        self.steps = [r for r in self.steps if r[0].step < s] + [records]

    def index_of(self, step: int) -> int:
        for i, r in enumerate(self.steps):
            if r[0].step == step:
                return i
        raise KeyError(step)

    def last(self, candidate: int = 0) -> StepRecord:
        return self.steps[-1][candidate]


def weakest(confidence: np.ndarray, region: np.ndarray, fraction: float,
            locked: np.ndarray | None = None) -> np.ndarray:
    """(t, t) bool: the `fraction` least confident cells of `region` (at least one when the
    region has any), never a locked cell. Ties break by position, so the choice is stable."""
    allowed = region & (~locked if locked is not None else True)
    cells = np.argwhere(allowed)
    out = np.zeros_like(region, dtype=bool)
    if len(cells) == 0:
        return out
    n = min(max(round(len(cells) * fraction), 1), len(cells))
    order = np.argsort(confidence[allowed], kind="stable")[:n]
    out[tuple(cells[order].T)] = True
    return out
