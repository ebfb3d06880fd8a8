"""Session state of the step tools: the history of the current/last decode, the step scrubber's
position, branching from a step, re-rolling the weakest tokens, and the earlier candidates.

A QObject that knows no widgets (DESIGN: state in QObjects, widgets bind to signals). It builds
jobs and hands them to the Controller, which runs and commits them like any generation (one undo
entry each). A multi-window edit (an outpaint, a long stroke) keeps one history per window: the
tools work on the chosen window, and branching one re-decodes that window over the picture as it
is, keeping what the others drew.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import replace

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from editor.core import geometry as g
from editor.core.history import DecodeHistory, StepRecord, weakest
from editor.core.jobs import Job, JobResult
from editor.state.controller import Controller
from editor.state.results import Batch, Kept

NO_DECODE = "Generate something first: the step tools work on the last decode."
class Steps(QObject):
    changed = Signal()  # history, availability or the chosen candidate changed
    # Job id, window index, list[StepRecord]: the newest step of the running decode, every
    # candidate. The one live preview: a single-window decode is shown through `shown`, the
    # canvas paints the windows of a multi-window one from here.
    live = Signal(int, int, object)
    shown = Signal(object, int, int)  # StepRecord (None: the document itself), index, count
    batches_changed = Signal()

    def __init__(self, controller: Controller, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.c = controller
        self.doc = controller.doc
        self.history: DecodeHistory | None = None  # the chosen window's (of `chain`)
        self.chain: list[DecodeHistory] = []  # every window of the last decode, decode order
        self.window_index = 0  # which window of `chain` `history` is
        self.live_steps: list[list[StepRecord]] = []  # the running decode, as it arrives
        self.live_job = 0
        self.candidate_index = 0  # which candidate of the history the tools show
        self.undo_index = -1  # the undo index right after this history's result was committed
        self._entry: object = None  # the undo command that committed it
        self.index = -1  # the scrubbed step (index into the steps); -1: the newest
        self.region: np.ndarray | None = None  # (t, t): the cells the user asked to regenerate
        self.reason = NO_DECODE
        self.results = controller.results  # batches and the histories kept per undo entry
        self._reroll = False
        self._planned = 0  # windows the current mask needs (the controller's last plan)
        controller.plan_changed.connect(self._on_plan)
        controller.worker.records_ready.connect(self._on_records)
        controller.result_committed.connect(self._on_result)
        controller.candidate_changed.connect(self._on_candidate)
        controller.busy_changed.connect(self._poke)
        controller.preview_started.connect(self._on_started)
        self.doc.undo_stack.indexChanged.connect(self._on_index)
        self.doc.canvas_changed.connect(self._on_canvas)

    # ------------------------------------------------------------------ state
    @property
    def batches(self) -> list[Batch]:
        """The candidates strip's batches, newest first (editor.state.results)."""
        return self.results.batches

    @property
    def steps(self) -> list[list[StepRecord]]:
        if self.c.busy:  # the running decode's (none yet, or several windows: none at all)
            return self.live_steps
        return self.history.steps if self.fits() else []

    def fits(self) -> bool:
        """The history is for a canvas of the document's size (an undone outpaint: not)."""
        return self.history is not None and self.history.pixel_mask.shape == self.doc.mask.shape

    def record(self, index: int = -1) -> StepRecord | None:
        steps = self.steps
        if not steps:
            return None
        row = steps[index]
        return row[min(self.candidate_index, len(row) - 1)]

    @property
    def current(self) -> bool:
        """The history's result is what the document shows (nothing undone or edited since)."""
        return self.in_stack() and self.doc.undo_stack.index() == self.undo_index

    def in_stack(self) -> bool:
        """The undo entry that committed the history's result is still in the undo stack
        (perhaps undone, or with edits on top)."""
        return (self.history is not None and self._entry is not None
                and self._entry_at(self.undo_index) is self._entry)

    def _entry_at(self, index: int) -> object:
        stack = self.doc.undo_stack
        return stack.command(index - 1) if 0 < index <= stack.count() else None

    def _mark(self, index: int | None = None) -> None:
        """The history belongs to undo entry `index` (default: the stack's current one)."""
        self.undo_index = self.doc.undo_stack.index() if index is None else index
        self._entry = self._entry_at(self.undo_index)

    def can_branch(self) -> bool:
        return self.fits() and not self.c.busy

    def can_vary(self) -> bool:
        return not self.c.busy and self._planned == 1

    def can_reroll(self) -> bool:
        return self.current and not self.c.busy and self.region is not None

    # ------------------------------------------------------------------ scrubbing
    def show(self, index: int) -> None:
        """Show step `index` (of the current/last decode) on the canvas; the newest step of a
        finished decode is the document itself."""
        steps = self.steps
        if not steps:
            return
        index = min(max(index, 0), len(steps) - 1)
        newest = index == len(steps) - 1
        self.index = -1 if newest else index
        rec = self.record(index)
        done = newest and not self.c.busy
        self.shown.emit(None if done and self.current else rec, index, len(steps))

    # ------------------------------------------------------------------ branch and re-roll
    def branch(self, index: int, class_id: int | None = None, temperature: float | None = None,
               seed: int | None = None) -> bool:
        """Decode again from step `index` of the last decode with a new seed (and optionally
        another class or temperature); steps up to `index` are shared."""
        h = self.history
        if h is None or self.c.busy:
            return False
        if h.pixel_mask.shape != self.doc.mask.shape:
            self.c.error.emit("Cannot branch", "The canvas changed size since that decode.")
            return False
        index = min(max(index, 0), len(h.steps) - 1)
        at = h.steps[index][min(self.candidate_index, h.candidates - 1)]
        if at.done:
            self.c.error.emit("Nothing left to decode", "Every token is decided at the last "
                              "step: branch from an earlier step, or Regenerate.")
            return False
        if len(self.chain) == 1:
            self._undo_result()
        # else one window of several: it is re-decoded over the picture as it is (the other
        # windows' results stay), as a new entry.
        s = self.c.sampling
        sampling = replace(s, steps=at.total, start_step=0,
                           temperature=s.temperature if temperature is None else temperature)
        n = max(self.c.candidates, 1)
        past = [[row[min(self.candidate_index, len(row) - 1)]] * n for row in h.steps[: index + 1]]
        cls = h.class_id if class_id is None else class_id
        kind = h.kind
        job = Job(kind, self.doc.image.copy(), h.pixel_mask.copy(), [h.window],  # type: ignore[list-item]
                  cls, sampling, self._seed(seed), n, self.c.feather,
                  locked=self.c.locks.copy(), branch=at, start_mask=h.start_mask, past=past)
        mask_after = np.zeros_like(self.doc.mask) if kind == "generate" else None
        return self.c.start(job, f"Branch from step {at.step + 1}", mask_after)

    def reroll(self, fraction: float, seed: int | None = None) -> bool:
        """Re-mask the `fraction` least confident tokens of the edited region of the current
        result (never locked ones) and decode only them again; every other token is kept."""
        h = self.history
        if h is None or not self.can_reroll():
            self.c.error.emit("Nothing to re-roll", "Re-roll works on the latest result: "
                              "generate first (and do not undo it).")
            return False
        assert self.region is not None
        last = h.last(min(self.candidate_index, h.candidates - 1))
        locked = self.c.locks.copy()
        cells = None if locked is None else g.token_mask(locked, h.window, 0)  # type: ignore[arg-type]
        chosen = weakest(last.confidence, self.region, fraction, cells)
        if not chosen.any():
            return False
        s = self.c.sampling
        job = Job("edit", self.doc.image.copy(), h.pixel_mask.copy(), [h.window],  # type: ignore[list-item]
                  h.class_id, replace(s, start_step=min(s.start_step, s.steps - 1)),
                  self._seed(seed), max(self.c.candidates, 1), self.c.feather, locked=locked,
                  tokens=last.tokens.copy(), token_mask=chosen)
        self._reroll = True
        ok = self.c.start(job, f"Re-roll weakest {round(fraction * 100)} %",
                          self.doc.mask.copy())
        self._reroll = ok
        return ok

    def vary(self, fraction: float, seed: int | None = None) -> bool:
        """Variations of the masked region, keeping its layout: a random `fraction` of its
        tokens (never locked ones) is re-masked and decoded again from the picture as it is,
        every other token kept (MaskGIT's counterpart of an img2img strength)."""
        if self.c.busy or not self.c.ready:
            return False
        windows = self.c.plan()
        if len(windows) != 1:
            self.c.error.emit("Nothing to vary" if not windows else "Region too large to vary",
                              "Paint a mask over the part to vary first." if not windows else
                              "Vary keeps the tokens it does not re-mask, so the region must "
                              "fit one window; this mask needs several. Use Generate.")
            return False
        (v,) = windows
        cells = g.token_mask(g.core_mask(self.doc.mask, v), v, ring=0, locked=self.c.locks.copy())
        where = np.argwhere(cells)
        if len(where) == 0:
            return False
        seed = self._seed(seed)
        n = min(max(round(len(where) * fraction), 1), len(where))
        pick = np.random.default_rng(seed).choice(len(where), n, replace=False)
        chosen = np.zeros_like(cells)
        chosen[tuple(where[pick].T)] = True
        s = self.c.sampling
        job = Job("edit", self.doc.image.copy(), self.doc.mask.copy(), [v], self.c.class_id,
                  replace(s, start_step=0), seed,
                  max(self.c.candidates, 1), self.c.feather, locked=self.c.locks.copy(),
                  token_mask=chosen)
        return self.c.start(job, f"Vary {round(fraction * 100)} %", self.doc.mask.copy())

    def _undo_result(self) -> None:
        """A branch replaces the result it came from when that is still the newest entry."""
        if self.current:
            self.doc.undo_stack.undo()

    def _seed(self, seed: int | None) -> int:
        if seed is not None:
            return seed
        if self.c.random_seed:
            return random.randrange(2**31)
        self.c.seed = self.c.settings.seed + 1  # the next seed after the one Generate uses
        return self.c.seed

    # ------------------------------------------------------------------ candidates strip
    def restore(self, batch: int, candidate: int) -> bool:
        """Put an earlier candidate back (its window's pixels), as one undo entry."""
        if self.c.busy:
            self.c.message.emit("Wait for the running generation (or cancel it) first.")
            return False
        if not 0 <= batch < len(self.batches):
            return False
        b = self.batches[batch]
        if b.shape != self.doc.mask.shape or not 0 <= candidate < len(b.records):
            self.c.error.emit("Cannot restore", "The canvas changed size since that candidate.")
            return False
        rec = b.records[candidate]
        x0, y0, x1, y1 = rec.rect
        img = self.doc.image.copy()
        img[y0:y1, x0:x1] = rec.patch
        self.doc.apply_result(img, rec.rect, self.doc.mask.copy(), "Restore candidate")
        return True

    # ------------------------------------------------------------------ signals in
    @Slot(int, int, object)
    def _on_records(self, job_id: int, k: int, records: list[StepRecord]) -> None:
        if self.c.job is None or self.c.job.id != job_id:
            return
        if len(self.c.job.windows) > 1:
            # Step k of one window means nothing across windows: no history to scrub.
            self.live.emit(job_id, k, records)
            return
        if job_id != self.live_job:
            self.live_job = job_id
            past = self.c.job.past or []
            self.live_steps = list(past)
            self.index = -1
        self.live_steps = [r for r in self.live_steps if r[0].step < records[0].step]
        self.live_steps.append(records)
        self.live.emit(job_id, k, records)
        if self.index == -1:  # following the decode
            self.show(len(self.live_steps) - 1)
        self.changed.emit()

    @Slot(object)
    def _on_result(self, result: JobResult) -> None:
        chain = [result.history] if result.history is not None else result.chain
        # A window that decoded nothing has no last step to show or put back.
        chain = [h for h in chain if h.steps]
        self.live_steps, self.index, self.candidate_index = [], -1, 0
        self._mark()
        if len(chain) == 1:
            self.results.add_batch(Batch(result.job_id, list(chain[0].steps[-1]),
                                         self.doc.mask.shape))
            self.batches_changed.emit()
        elif chain:  # each window's records are partial: the strip shows whole pictures
            self.show_batch(result)
        keep_region = self._reroll and self.region is not None and len(chain) == 1
        # Entries above this one were a redo branch the commit discarded.
        self.results.forget_from(self.undo_index)
        self._take(chain, len(chain) - 1, None if not keep_region else self.region)
        self._reroll = False

    def adopt(self, chain: list[DecodeHistory], window: int, candidate: int,
              region: np.ndarray | None, undo_index: int | None = None) -> None:
        """Take `chain` (a reopened project's) as the decode committed by undo entry
        `undo_index` (default: the current one)."""
        self.live_steps, self.index = [], -1
        self.candidate_index = min(max(candidate, 0), chain[0].candidates - 1)
        self._mark(undo_index)
        self._take(chain, window, region)

    def show_batch(self, result: JobResult) -> None:
        """Put `result`'s candidates in the strip (a reopened project's pending candidates)."""
        x0, y0, x1, y1 = result.changed
        pictures = [StepRecord.picture(im[y0:y1, x0:x1].copy(), result.changed)
                    for im in result.images]
        self.results.add_batch(Batch(result.job_id, pictures, self.doc.mask.shape))
        self.batches_changed.emit()

    def select_window(self, window: int) -> None:
        """Point the step tools at another window of a multi-window decode."""
        if 0 <= window < len(self.chain) and window != self.window_index:
            self.index = -1
            self._take(self.chain, window, None)
            self.show(len(self.steps) - 1)

    def _take(self, chain: list[DecodeHistory], window: int, region: np.ndarray | None) -> None:
        self.chain = chain
        self.window_index = min(max(window, 0), len(chain) - 1) if chain else 0
        self.history = chain[self.window_index] if chain else None
        self.reason = "" if chain else NO_DECODE
        self.region = region if region is not None or self.history is None else (
            self.history.start_mask.copy())
        self._keep()
        self.changed.emit()

    def _keep(self) -> None:
        """Remember the history for its undo entry, so undo / redo can bring it back."""
        if not self.chain or not self.in_stack():
            return
        self.results.keep(self.undo_index, Kept(self._entry, self.chain, self.window_index,
                                                self.candidate_index, self.region))

    @Slot(int)
    def _on_index(self, index: int) -> None:
        with contextlib.suppress(RuntimeError):  # the stack emits while being destroyed
            self._follow_undo(index)

    def _follow_undo(self, index: int) -> None:
        """Undo / redo reached an entry that committed a decode: its history is the one shown."""
        stack = self.doc.undo_stack
        self.results.forget_from(stack.count() + 1)
        k = self.results.kept(index)
        if (k is not None and not self.c.busy and index != self.undo_index
                and self._entry_at(index) is k.entry):
            self.candidate_index, self.index = k.candidate_index, -1
            self._mark(index)
            self._take(k.chain, k.window_index, k.region)
            return
        self.changed.emit()

    @Slot(int, int)
    def _on_candidate(self, index: int, count: int) -> None:
        c = self.c.candidate
        if count <= 0 or c is None:
            return
        # A flip commits the other candidate as a new undo entry (undo, then push): the
        # batch's history moves to it, whatever the undo in between showed.
        k = self.results.kept_for_job(c.result.job_id)
        if k is None:
            if index != self.candidate_index:
                self.candidate_index = index
                self.changed.emit()
            return
        self.results.forget(k)
        self.candidate_index, self.index = index, -1
        self._mark()
        self._take(k.chain, k.window_index, k.region)

    @Slot()
    def _on_started(self) -> None:
        """A new decode: the scrubber follows it from its first step."""
        self.index, self.live_steps, self.live_job = -1, [], 0
        self.changed.emit()

    @Slot(object)
    def _poke(self, *_args: object) -> None:
        self.changed.emit()

    @Slot(object, object)
    def _on_plan(self, windows: list, _cells: list) -> None:
        if len(windows) != self._planned:
            self._planned = len(windows)
            self.changed.emit()

    def _on_canvas(self) -> None:
        if self.doc.undo_stack.count() == 0:  # a new document: its history is gone
            self.history, self.region, self.reason = None, None, NO_DECODE
            self.chain, self.window_index, self.live_steps = [], 0, []
            self.results.clear()
        self.batches_changed.emit()  # thumbnails of another canvas size can't be put back
        self.changed.emit()
