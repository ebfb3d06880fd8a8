"""The one thread that touches the model.

A `Worker` QObject is moved to a QThread and owns the Engine (as Qt's Mandelbrot example owns its
renderer): jobs arrive through a queued signal and run there, and steps go back as signals that
carry numpy arrays only; QPixmaps are made on the GUI thread. Cancel is a thread-safe flag that
the decode loop checks between steps, because a busy thread cannot receive queued calls. This is
the only editor module that may import `models`, and it does so lazily, inside the thread, so the
window appears before torch has loaded.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from editor.core.geometry import Rect
from editor.core.jobs import Job, Sampling
from editor.core.pipeline import EngineLike, Stopped, run_job

EngineFactory = Callable[[str, str], EngineLike]  # (model name or path, device) -> engine
SWITCH_INTERVAL_S = 0.001  # how long one thread may keep the GIL while another waits for it


def model_catalogue() -> list[tuple[str, str, bool]]:
    """(name, description, installed) of every known model, for the model list. The registry is
    plain Python (no torch): cheap on the GUI thread."""
    from models import registry

    return [(n, m.description, registry.is_present(n)) for n, m in registry.KNOWN.items()]


def default_engine(name: str, device: str) -> EngineLike:
    """'default', 'tiny' (random weights, for trying the app without a model) or a path."""
    from editor.batch import load_engine

    engine = load_engine(name, device)
    set_threads(engine)
    return engine


def set_threads(engine: EngineLike) -> None:
    """The engine's CPU threads, chosen for sharing the machine with the GUI thread."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if getattr(getattr(engine, "device", None), "type", "") == "cpu" and (cores or 1) >= 2:
        import torch

        # Leave one core to the GUI thread: with every core busy in matmuls the event loop
        # waits for the OS scheduler and the canvas stutters, and on a machine another process
        # shares, a thread team as wide as the machine spin-waits for its descheduled members
        # (2 cores, a second busy process: a 4-candidate edit 27 s with 2 threads, 13 s with
        # 1; bench/gui_stall, bench/user_wait).
        torch.set_num_threads(max(1, (cores or 1) - 1))


def colour_fix() -> Any:
    """models.colour.harmonize: the decoded window made to agree with the pixels compositing
    keeps, so the fill takes its surroundings' colours and no seam shows (MODEL_CARD)."""
    from models.colour import harmonize

    return harmonize


def engine_params(s: Sampling) -> Any:
    from models.engine import SamplingParams

    return SamplingParams(**s.engine_fields())


class Worker(QObject):
    model_loaded = Signal(str, int, int)  # name, window pixels, tokens per side
    model_failed = Signal(str, str)  # name, message
    started = Signal(int)  # job id
    class_chosen = Signal(int, int)  # job id, automatic class id
    # job id, window index, step, total, preview patch (h, w, 3) uint8, rect (x0, y0, x1, y1),
    # confidence (t, t) float32, masked (t, t) bool (tokens still undecided)
    step_ready = Signal(int, int, int, int, object, object, object, object)
    # job id, list[editor.core.history.StepRecord]: every candidate of one step of one window
    records_ready = Signal(int, int, object)
    finished = Signal(int, object)  # job id, JobResult
    failed = Signal(int, str)  # job id, message
    cancelled = Signal(int)  # job id: stopped between steps, or superseded before it started

    _run = Signal(object)  # queued into the worker thread
    _load = Signal(str, str)

    def __init__(
        self,
        factory: EngineFactory = default_engine,
        params: Callable[[Sampling], Any] = engine_params,
        colour: Callable[[], Any] | None = colour_fix,
    ) -> None:
        """`factory`, `params` and `colour` are the seams tests replace with fakes (colour None:
        previews are used as decoded)."""
        super().__init__()
        self._factory = factory
        self._params = params
        self._colour = colour
        self._engine: EngineLike | None = None
        self._model_error = "no model is loaded yet"
        self._lock = threading.Lock()
        self._latest = 0  # newest job id submitted; older ones are superseded
        self._cancelled: set[int] = set()
        self._run.connect(self._on_run)
        self._load.connect(self._on_load)

    # ------------------------------------------------------------ GUI-thread API (thread-safe)
    def submit(self, job: Job) -> None:
        """Queue `job`; any older job stops at its next step and any queued one never starts."""
        with self._lock:
            self._latest = max(self._latest, job.id)
        self._run.emit(job)

    def cancel(self, job_id: int) -> None:
        with self._lock:
            self._cancelled.add(job_id)

    def load_model(self, name: str, device: str = "auto") -> None:
        self._load.emit(name, device)

    # ------------------------------------------------------------ worker thread
    def _stale(self, job_id: int) -> bool:
        with self._lock:
            return job_id in self._cancelled or job_id < self._latest

    @Slot(str, str)
    def _on_load(self, name: str, device: str) -> None:
        try:
            engine = self._factory(name, device)
        except Exception as e:  # a bad file must not take the app down
            self._model_error = f"the model {name!r} could not be loaded: {e}"
            self.model_failed.emit(name, str(e))
            return
        self._engine = engine
        self.model_loaded.emit(name, int(engine.window), int(engine.tokens_per_side))
        prepare = getattr(engine, "prepare", None)
        if prepare is not None:
            try:
                prepare()
            except Exception as e:  # no classifier: only the automatic class needs it
                print(f"maskgit-editor: automatic class unavailable: {e}", file=sys.stderr)
        from models.memory import freeze_loaded_objects

        freeze_loaded_objects()  # after the classifier: all that start-up loads

    @Slot(object)
    def _on_run(self, job: Job) -> None:
        if self._stale(job.id):
            self._forget(job.id)
            self.cancelled.emit(job.id)
            return
        if self._engine is None and job.kind != "fill":  # a fill needs no model
            self.failed.emit(job.id, self._model_error)
            return
        self.started.emit(job.id)

        def on_step(
            k: int, step: Any, patch: np.ndarray, rect: Rect
        ) -> None:
            # Copies: the receiver lives in another thread and the engine may reuse buffers.
            self.step_ready.emit(
                job.id, k, int(step.step), int(step.total), patch.copy(), rect,
                np.array(step.confidence, np.float32), np.array(step.masked, bool),
            )

        try:
            result = run_job(
                self._engine,
                job,
                self._params(job.sampling),
                should_stop=lambda: self._stale(job.id),
                on_step=on_step,
                on_class=lambda c: self.class_chosen.emit(job.id, c),
                colour_fix=self._colour() if self._colour is not None else None,
                on_records=lambda k, records: self.records_ready.emit(job.id, k, records),
            )
        except Stopped:
            self._forget(job.id)
            self.cancelled.emit(job.id)
            return
        except Exception as e:  # shown to the user; the thread keeps serving
            traceback.print_exc()
            text = f"{type(e).__name__}: {e}"
            if type(e).__name__ == "ClassifierUnavailable":
                text = (f"The automatic class needs the EfficientNet-Lite0 classifier, which is "
                        f"not installed ({e}). Pick a class in the Class list instead.")
            self.failed.emit(job.id, text)
            return
        self.finished.emit(job.id, result)

    def _forget(self, job_id: int) -> None:
        with self._lock:
            self._cancelled.discard(job_id)


class WorkerThread:
    """Owns the QThread and its Worker; `close()` stops both without waiting on a decode."""

    def __init__(self, worker: Worker) -> None:
        # The decode's Python parts (planning, compositing, photo guidance) hold the GIL, and
        # every slot and item paint of the GUI thread needs it back: with the default 5 ms
        # switch interval a step's slots and paints waited 5 ms each (GUI gaps of 20-30 ms).
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        self.worker = worker
        self.thread = QThread()
        self.thread.setObjectName("maskgit-worker")
        worker.moveToThread(self.thread)
        self.thread.start()

    def close(self, timeout_ms: int = 10_000) -> bool:
        """Cancel whatever runs, stop the thread's event loop, wait for it; True if it ended."""
        with self.worker._lock:
            self.worker._latest += 1_000_000_000  # everything submitted so far is stale
        self.thread.quit()
        return self.thread.wait(timeout_ms)
