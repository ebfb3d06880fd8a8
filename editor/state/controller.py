"""The controller: turns the document and a request (Generate, Regenerate as CLASS, New image,
an outpaint drag) into worker Jobs, shows their steps, and commits each result as ONE undo entry.

It holds the running state (model, current job, current candidate), reads the user's settings
(editor.state.settings) and knows no widgets; the window binds to its signals. Results are
candidates: the committed entry can be accepted, swapped for another candidate of the same
batch, or regenerated with a new seed.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, Slot

from editor.core import fill
from editor.core import geometry as g
from editor.core.classes import class_names
from editor.core.geometry import Rect
from editor.core.imageio import limit_text, too_large
from editor.core.jobs import Job, JobResult, Sampling, next_job_id
from editor.core.pipeline import guides_per_batch
from editor.state.document import Document
from editor.state.locks import KeepOutLayer, LockLayer
from editor.state.prefetch import GuidePrefetch
from editor.state.results import Pending, Results
from editor.state.settings import Settings

if TYPE_CHECKING:
    from editor.state.worker import Worker

INPAINT_MAX_WINDOWS = g.INPAINT_MAX_WINDOWS


def mask_after_fill(job: Job) -> np.ndarray:
    """The pixels a fill job filled (its mask less locked cells)."""
    return job.mask if job.locked is None else job.mask & ~job.locked


class Controller(QObject):
    busy_changed = Signal(bool)
    progress = Signal(str)  # "window 1/2 · step 5/12"
    step_painted = Signal(int, int, int)  # job id, step, total (after the canvas got it)
    model_failed = Signal(str)  # the model (name or path) that could not be loaded
    advanced = Signal(int, int)  # steps done, steps in all: the whole job, every window
    preview_started = Signal()
    preview_ended = Signal()
    plan_changed = Signal(object, object)  # list[Window], list[(t, t) bool]
    candidate_changed = Signal(int, int)  # index, count; (-1, 0) when none pending
    model_changed = Signal(str, int, int)  # name, window, tokens per side ("" when none)
    class_chosen = Signal(int)  # the automatic class of the running job
    result_committed = Signal(object)  # the JobResult just committed (its step history)
    error = Signal(str, str)  # title, text: shown in a message box
    message = Signal(str)  # status bar

    def __init__(self, doc: Document, worker: Worker, parent: QObject | None = None,
                 settings: Settings | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.worker = worker
        self.settings = settings if settings is not None else Settings(self)
        self.seed = 0  # the last seed used (a fixed seed: the settings' own)
        self.feather = 4
        self.model_name = ""
        self.window_px = 0  # the model window's side in pixels; 0 until a model is loaded
        self.tokens = 0
        self.job: Job | None = None  # the running job; steps of any other id are dropped
        self.dropped_steps = 0  # stale steps seen (tests and the log use it)
        self._job_text = ""
        self._job_mask_after: np.ndarray | None = None
        self.locks = LockLayer(doc, self)  # cells kept in every regeneration (lock brush)
        self.keep_out = KeepOutLayer(doc, self)  # pixels fills never copy (keep-out brush)

        worker.model_loaded.connect(self._on_model_loaded)
        worker.model_failed.connect(self._on_model_failed)
        worker.step_ready.connect(self._on_step)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)
        worker.class_chosen.connect(self._on_class_chosen)

        # Re-planning on every brush dab would waste time: coalesce into one per event loop turn.
        self._replan = False  # a plan update arrived during a job
        self._plan_timer = QTimer(self)
        self._plan_timer.setSingleShot(True)
        self._plan_timer.setInterval(30)
        self._plan_timer.timeout.connect(self.update_plan)
        # Lambdas, as before: bound methods here let a controller without a parent go before
        # its document, and tests/editor/state_layer crashed (segfaults) in the next test.
        doc.mask_changed.connect(lambda _r: self._stale_plan())
        doc.canvas_changed.connect(lambda: self._stale_plan())
        # plan() of the document as it is, kept for Generate: planning a long stroke's windows
        # costs the click 5-10 ms of the GUI thread, and the overlay's plan already did it.
        self._planned: tuple[tuple, list[g.Window]] | None = None
        self.locks.mask_changed.connect(lambda _r: self._forget_plan())
        # Job -> candidates -> undo entry -> batches and step histories: one store.
        self.results = Results(doc, lambda: self.busy, self)
        self.results.pending_changed.connect(self.candidate_changed)
        # The guide a guided Generate starts from is made as soon as the mask settles.
        self.prefetch = GuidePrefetch(doc, self.locks, lambda: not self.busy and self._guided(),
                                      lambda: self.candidates, self, self.keep_out)
        # A guided outpaint plans fewer, coarser windows (geometry.outpaint_max_windows).
        self.settings.changed.connect(self._on_setting)

    # ------------------------------------------------------------------ state
    @property
    def sampling(self) -> Sampling:
        return self.settings.sampling()

    @property
    def class_id(self) -> int | None:
        """The class a plain Generate asks for (None: automatic)."""
        return self.settings.class_id

    @property
    def random_seed(self) -> bool:
        return self.settings.random_seed

    @property
    def candidates(self) -> int:
        """Decoded in one batch (window by window in multi-window edits)."""
        return self.settings.candidates

    @property
    def fill_on_release(self) -> bool:
        return self.settings.fill_on_release

    @fill_on_release.setter
    def fill_on_release(self, on: bool) -> None:
        self.settings.fill_on_release = on

    @property
    def candidate(self) -> Pending | None:
        """The committed candidate not yet accepted (editor.state.results)."""
        return self.results.pending

    @property
    def busy(self) -> bool:
        return self.job is not None

    @property
    def ready(self) -> bool:
        return self.window_px > 0

    def load_model(self, name: str, device: str = "auto") -> None:
        self.message.emit(f"Loading model {name}…")
        self.worker.load_model(name, device)

    def plan(self, mask: np.ndarray | None = None) -> list[g.Window]:
        """The windows Generate would decode now (empty until a model is loaded)."""
        if not self.ready:
            return []
        if mask is not None:
            return self._plan(mask)
        d = self.doc
        # What the plan reads besides the mask and the lock (their signals drop it).
        key = (d.mask.shape, d.origin, d.original.shape, self.window_px, self.tokens,
               self._guided())
        if self._planned is None or self._planned[0] != key:
            self._planned = (key, self._plan(d.mask))
        return list(self._planned[1])

    def _guided(self) -> bool:
        """Whether a Generate now follows the photo (pipeline.follows_photo of its job)."""
        return self.class_id is None and self.sampling.guidance

    @Slot(str, object)
    def _on_setting(self, name: str, _value: object) -> None:
        if name in ("guidance", "class_id"):
            self._stale_plan()

    def _forget_plan(self) -> None:
        self._planned = None

    def _stale_plan(self) -> None:
        self._planned = None
        self._plan_timer.start()

    def _plan(self, m: np.ndarray) -> list[g.Window]:
        if self.locks.any():  # locked pixels are never regenerated
            m = m & ~self.locks.mask
        # A mask reaching into area added by an outpaint drag is a strip along a border: many
        # sharp, overlapping windows beat one blurry downscaled one there.
        ox, oy = self.doc.origin
        oh, ow = self.doc.original.shape[:2]
        box = g.bbox(m)
        # Some masked pixel lies outside the original exactly when the bbox reaches outside.
        grown = box is not None and (box[0] < ox or box[1] < oy or box[2] > ox + ow
                                     or box[3] > oy + oh)
        if grown:
            # Overlapping windows see what their neighbours drew: no context floor needed.
            return g.plan(
                m, self.window_px, self.tokens, g.outpaint_max_windows(self._guided()),
                g.OUTPAINT_OVERLAP, 0.0
            )
        return g.plan(m, self.window_px, self.tokens, INPAINT_MAX_WINDOWS)

    @Slot()
    def update_plan(self) -> None:
        if self.busy:
            # The overlay shows the running job's windows; replanning now would only cost the
            # GUI thread time mid-decode (21 windows of an outpaint: ~14 ms). Done at the end.
            self._plan_timer.stop()
            self._replan = True
            return
        self._replan = False
        wins = self.plan()
        locked = self.locks.copy()
        cells = [g.token_mask(self.doc.mask, v, locked=locked, only_core=True) for v in wins]
        self.plan_changed.emit(wins, cells)

    # ------------------------------------------------------------------ requests
    def generate(self, text: str = "Generate") -> bool:
        """Regenerate the masked pixels as the panel's class (None: automatic)."""
        return self._edit(self.class_id, text)

    def regenerate_as(self, class_id: int | None, name: str) -> bool:
        """"Regenerate selection as CLASS": the class given here, whatever the panel says."""
        return self._edit(class_id, f"Regenerate as {name}")

    def _edit(self, class_id: int | None, text: str) -> bool:
        if not self.ready:
            self.error.emit("No model", "The model is not loaded yet (or failed to load); see "
                            "the status bar, or pick another model in the Sampling panel.")
            return False
        windows = self.plan()
        if not windows:
            self.error.emit("Nothing to regenerate",
                            "Paint a mask over the part to regenerate first (brush: B), or "
                            "drag a canvas edge outward to outpaint.")
            return False
        job = Job("edit", self.doc.image.copy(), self.doc.mask.copy(), windows, class_id,
                  self.sampling, self._next_seed(), self.candidates, self.feather,
                  locked=self.locks.copy(), keep_out=self.keep_out.copy())
        return self._start(job, text, self.doc.mask & ~job.mask)

    def start(self, job: Job, text: str, mask_after: np.ndarray | None = None) -> bool:
        """Run a job built elsewhere (branch from a step, re-roll: editor.state.steps)."""
        if not self.ready:
            return False
        return self._start(job, text, self.doc.mask & ~job.mask if mask_after is None
                           else mask_after)

    def fill_classic(self) -> bool:
        """The masked pixels filled from their surroundings as one undo entry. Thin strokes
        (wires, blemishes, scratches) take OpenCV's Telea at once on the GUI thread
        (editor.core.fill, about 0.1 s at most); regions take the exemplar fill (shift-map, which
        rearranges real pixels of the photo) on the worker thread, with the busy bar and
        Cancel, like a generation."""
        if self.busy:
            self.message.emit("Wait for the running generation (or cancel it) first.")
            return False
        m = self.doc.mask & ~self.locks.mask if self.locks.any() else self.doc.mask
        n = int(np.count_nonzero(m))
        if not n:
            self.error.emit("Nothing to fill", "Paint a mask over the part to fill first.")
            return False
        if m.all():
            self.error.emit("Nothing to fill from", "The mask covers the whole picture: leave "
                            "some of it unmasked to fill from, or use Generate.")
            return False
        if not fill.immediate(m):
            # A region: shift-map (editor.core.exemplar) on the worker thread, with cancel.
            job = Job("fill", self.doc.image.copy(), self.doc.mask.copy(), [], None,
                      self.sampling, 0, 1, 0, locked=self.locks.copy(),
                      keep_out=self.keep_out.copy())
            self._start(job, "Fill from surroundings", self.doc.mask & ~m)
            self.progress.emit("filling from surroundings…")
            self.advanced.emit(0, 0)  # no steps to count: a busy bar
            return True
        out, rect = fill.fill_thin(self.doc.image, m)
        self.accept()
        self.doc.apply_result(out, rect, self.doc.mask & ~m, "Fill from surroundings")
        self.message.emit(f"Filled {n:,} pixels from their surroundings")
        return True

    def new_image(self, class_id: int, name: str) -> bool:
        """A blank canvas of the model's size, generated entirely as `class_id` with live steps."""
        if not self.ready:
            self.error.emit("No model", "Load a model before generating a new image.")
            return False
        n = self.window_px
        self.cancel()
        self.doc.reset(np.full((n, n, 3), 127, np.uint8), masked=True)
        win = g.Window(0, 0, n, n, self.tokens, (0, 0, n, n))
        job = Job("generate", self.doc.image.copy(), self.doc.mask.copy(), [win], class_id,
                  self.sampling.for_generation(), self._next_seed(), self.candidates, 0)
        return self._start(job, f"New image: {name}", np.zeros((n, n), bool))

    def extend(self, left: int, top: int, right: int, bottom: int) -> None:
        """An outpaint drag was released: grow the canvas, then fill it if so configured."""
        if self.busy:
            self.message.emit("Wait for the running generation (or cancel it) before "
                              "extending the canvas.")
            return
        w, h = self.doc.width + left + right, self.doc.height + top + bottom
        if too_large(w, h):
            self.message.emit(f"The canvas would be {w} x {h} pixels; the editor works on "
                              f"images up to {limit_text()}.")
            return
        self.accept()
        self.doc.extend(left, top, right, bottom)
        if self.fill_on_release and self.ready:
            self.update_plan()
            self.generate("Outpaint")

    def cancel(self) -> None:
        """Stop the running job between two steps; the document is left as it was."""
        if self.job is None:
            return
        self.worker.cancel(self.job.id)
        self._end_job()
        self.results.put_back()
        self.message.emit("Cancelled")

    # ------------------------------------------------------------------ candidates
    def accept(self) -> None:
        """Keep the committed candidate (it already is in the document and the undo stack)."""
        self.results.accept()

    def regenerate(self) -> bool:
        """Throw the committed candidate away and decode the same request with a new seed."""
        c = self.candidate
        if c is None or self.busy:
            return False
        undone = self.doc.undo_stack.index() == c.undo_index
        if undone:
            self.doc.undo_stack.undo()
        self.results.drop()
        # A re-roll or a branch decodes the mask of the history it came from, not the
        # document's (which that history's commit emptied): keep it, or nothing is decoded.
        own_mask = c.job.token_mask is not None or c.job.branch is not None
        job = replace(c.job, seed=c.job.seed + 1 if not self.random_seed else self._next_seed(),
                      image=self.doc.image.copy(),
                      mask=c.job.mask.copy() if own_mask else self.doc.mask.copy(),
                      id=next_job_id(), locked=self.locks.copy(), keep_out=self.keep_out.copy(),
                      first_guide=c.job.first_guide + guides_per_batch(c.job.candidates))
        after = np.zeros_like(job.mask) if job.kind == "generate" else self.doc.mask & ~job.mask
        self._start(job, c.text, after)
        self.results.park(c if undone else None)  # cancel or failure put it back
        return True

    def show_candidate(self, index: int) -> None:
        """Swap the committed result for another candidate of the same batch (same undo slot)."""
        c = self.candidate
        if c is None or not 0 <= index < len(c.result.images) or index == c.index:
            return
        if self.doc.undo_stack.index() != c.undo_index:
            return
        self.doc.undo_stack.undo()
        self._commit(c.job, c.result, index, c.text)

    # ------------------------------------------------------------------ job plumbing
    def _next_seed(self) -> int:
        self.seed = random.randrange(2**31) if self.random_seed else self.settings.seed
        return self.seed

    def _start(self, job: Job, text: str, mask_after: np.ndarray) -> bool:
        if self.job is not None:
            # Supersede: the old job stops at its next step; its late steps are dropped by id.
            self.worker.cancel(self.job.id)
        self.preview_started.emit()
        self.accept()
        self.job, self._job_text, self._job_mask_after = job, text, mask_after
        self.worker.submit(job)
        self.busy_changed.emit(True)
        self.progress.emit("starting…")
        return True

    def _end_job(self) -> None:
        self.job = None
        self._job_mask_after = None
        self.preview_ended.emit()
        self.busy_changed.emit(False)
        self.progress.emit("")
        if self._replan:
            self._plan_timer.start()

    def _current(self, job_id: int) -> bool:
        return self.job is not None and self.job.id == job_id

    @Slot(int, int, int, int, object, object, object, object)
    def _on_step(self, job_id: int, k: int, step: int, total: int, patch: np.ndarray,
                 rect: Rect, confidence: np.ndarray,
                 masked: np.ndarray) -> None:
        if not self._current(job_id):
            self.dropped_steps += 1
            return
        assert self.job is not None
        n = len(self.job.windows)
        where = f"window {k + 1}/{n} · " if n > 1 else ""
        text = f"{where}step {step + 1}/{total}"
        # The step itself reaches the canvas once, through the Steps (Worker.records_ready).
        self.progress.emit(text)
        self.advanced.emit(k * total + step + 1, n * total)
        self.step_painted.emit(job_id, step, total)

    @Slot(int, object)
    def _on_finished(self, job_id: int, result: JobResult) -> None:
        if not self._current(job_id):
            return
        job, text, mask_after = self.job, self._job_text, self._job_mask_after
        assert job is not None and mask_after is not None
        self._end_job()
        self.results.park(None)  # a result came: nothing to give back
        x0, y0, x1, y1 = result.changed
        if result.images[0].shape != self.doc.image.shape or not np.array_equal(
            self.doc.image[y0:y1, x0:x1], job.image[y0:y1, x0:x1]
        ):
            self.error.emit("Result discarded", "The image changed while generating, so the "
                            "result no longer fits. Generate again.")
            return
        if job.kind == "fill":  # final at once, like the Telea fill: no candidates to pick
            self.doc.apply_result(result.images[0], result.changed,
                                  self.doc.mask & ~mask_after_fill(job), text)
            self.message.emit("Filled from surroundings")
            return
        # Mask strokes made while decoding survive; the regenerated pixels leave the mask.
        self._commit(job, result, 0, text, self.doc.mask & ~job.mask
                     if job.kind == "edit" else mask_after)
        self.result_committed.emit(result)
        done = "Done"
        if result.class_id is not None and job.class_id is None:
            done = f"Done (automatic class: {class_names()[result.class_id]})"
        if text == "Outpaint" and job.keep_out is None:
            # Fills copy the photo, the subject too (the odd candidates, or a subject the first
            # guide did not find): say how to keep it out of the new canvas.
            done += (". The subject again in the new canvas? Try the other candidates, or Undo "
                     "(Ctrl+Z), paint it with the keep-out brush (X), Generate")
        self.message.emit(done)

    def _commit(self, job: Job, result: JobResult, index: int, text: str,
                mask_after: np.ndarray | None = None) -> None:
        after = mask_after if mask_after is not None else self.doc.mask & ~job.mask
        self.doc.apply_result(result.images[index], result.changed, after, text)
        self.results.commit(job, result, index, text)

    @Slot(int, str)
    def _on_failed(self, job_id: int, text: str) -> None:
        if not self._current(job_id):
            return
        self._end_job()
        self.results.put_back()
        self.error.emit("Generation failed", text)

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        if self._current(job_id):  # cancelled from elsewhere (e.g. worker shutdown)
            self._end_job()

    @Slot(int, int)
    def _on_class_chosen(self, job_id: int, class_id: int) -> None:
        if self._current(job_id):
            self.class_chosen.emit(class_id)

    @Slot(str, int, int)
    def _on_model_loaded(self, name: str, window: int, tokens: int) -> None:
        self.model_name, self.window_px, self.tokens = name, window, tokens
        self._planned = None
        self.model_changed.emit(name, window, tokens)
        self.message.emit(f"Model {name}: {window} px window, {tokens}×{tokens} tokens")
        self.update_plan()

    @Slot(str, str)
    def _on_model_failed(self, name: str, text: str) -> None:
        self.error.emit("Model not loaded", f"The model {name!r} could not be loaded.\n\n{text}")
        self.message.emit(f"Model not loaded; still using {self.model_name or 'no model'}")
        self.model_failed.emit(name)
        self.model_changed.emit(self.model_name, self.window_px, self.tokens)
