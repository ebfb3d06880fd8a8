"""Cancel storms through the real worker thread: 200 rapid generate / cancel / supersede cycles
with a fast fake engine (some jobs fail in the engine), then checks that no stale step was
painted, the last job's result is what the document holds, the app still works, and no thread
is left behind; and closing the window in the middle of a decode returns within 1 s (measured).

No sleeps in the test: it drives the GUI thread by processing events; only the fake engine
"computes" for a few milliseconds per step, in the worker thread.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from fakes import FakeEngine, colour, make_window
from PySide6.QtCore import QCoreApplication

CYCLES = 200
RESULTS: dict[str, float] = {}


class FlakyEngine(FakeEngine):
    """Every 23rd decode fails in the engine; steps take `step_s` of simulated compute."""

    def __init__(self, step_s: float = 0.0) -> None:
        super().__init__()
        self.step_s = step_s
        self.decodes = 0

    def _wait(self) -> None:
        if self.step_s:
            time.sleep(self.step_s)  # the worker thread "computes"; the test never sleeps

    def edit_many(self, *a, **k):
        self.decodes += 1
        if self.decodes % 23 == 0:
            raise RuntimeError("CUDA out of memory (simulated)")
        return super().edit_many(*a, **k)


def _mask(win):
    m = np.zeros(win.doc.mask.shape, bool)
    m[12:28, 20:36] = True
    return m


def test_200_generate_cancel_supersede_cycles(qtbot, tmp_path):
    engine = FlakyEngine()
    threads_before = {t.ident for t in threading.enumerate()}
    win = make_window(qtbot, tmp_path, engine)
    c = win.controller
    painted: list[tuple[int, int]] = []
    stale: list[tuple] = []
    errors: list[tuple[str, str]] = []
    win.show_error = lambda title, text: errors.append((title, text))  # no 200 message boxes

    def on_step(job_id, step, total):
        painted.append((job_id, step))
        job = c.job
        px = win.canvas.preview_image().pixelColor(28, 20).red()
        if job is None or job.id != job_id or px != colour(job.seed, step):
            stale.append((job_id, step, job and job.id, px))

    c.step_painted.connect(on_step)
    rng = np.random.default_rng(7)
    started = time.perf_counter()
    kinds = {"supersede": 0, "cancel": 0, "finish": 0}
    for i in range(CYCLES):
        if not win.doc.mask.any():
            win.doc.set_mask(_mask(win), "mask")
        win.sampling.seed.setValue(1000 + i)
        r = rng.random()
        win.generate()
        for _ in range(int(rng.integers(0, 4))):  # let 0..3 batches of events through
            QCoreApplication.processEvents()
        if r < 0.4:
            kinds["supersede"] += 1  # the next generate supersedes this one if still running
        elif r < 0.8:
            kinds["cancel"] += 1
            win.cancel()
        else:
            kinds["finish"] += 1
            qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    # A last generation must finish normally and be what the document holds.
    if not win.doc.mask.any():
        win.doc.set_mask(_mask(win), "mask")
    win.sampling.seed.setValue(5)
    engine.decodes = 1  # the next decode is not one of the failing ones
    with qtbot.waitSignal(c.candidate_changed, timeout=5000, check_params_cb=lambda i, n: n > 0):
        win.generate()
    RESULTS["storm_s"] = time.perf_counter() - started
    last = c.sampling.steps - 1
    assert (win.doc.image[12:28, 20:36] == colour(5, last)).all()
    assert not c.busy and not win.canvas.previewing
    assert stale == [], f"stale or wrong steps painted: {stale[:5]}"
    assert painted, "steps were painted"
    assert all(t == "Generation failed" and "out of memory" in x for t, x in errors), errors[:3]
    RESULTS.update(painted=len(painted), dropped=c.dropped_steps, failures=len(errors),
                   commits=win.doc.undo_stack.count(), **kinds)

    thread = win.worker_thread.thread
    win.close()
    assert thread.isFinished() and not thread.isRunning()
    # Python threads (autosave); the QThread is checked above (Python lists it as a "dummy").
    left = [t for t in threading.enumerate() if t.ident not in threads_before and t.is_alive()
            and not isinstance(t, threading._DummyThread)]
    assert left == [], f"threads left behind: {left}"
    print(f"\nstress: {CYCLES} cycles in {RESULTS['storm_s']:.2f} s, {kinds}, "
          f"{RESULTS['painted']} steps painted, {RESULTS['dropped']} stale steps dropped, "
          f"{RESULTS['failures']} engine failures shown, {RESULTS['commits']} undo entries")


def test_closing_the_window_mid_decode_returns_within_a_second(qtbot, tmp_path):
    engine = FlakyEngine(step_s=0.05)  # 10 steps: a 0.5 s decode
    win = make_window(qtbot, tmp_path, engine)
    win.doc.set_mask(_mask(win), "mask")
    with qtbot.waitSignal(win.controller.step_painted, timeout=5000):
        win.generate()
    assert win.controller.busy
    thread = win.worker_thread.thread
    t0 = time.perf_counter()
    win.close()
    took = time.perf_counter() - t0
    RESULTS["close_mid_decode_s"] = took
    print(f"\nclose mid-decode: {took * 1000:.0f} ms")
    assert took < 1.0 and thread.isFinished() and win.worker_stopped


def test_closing_right_after_generate_and_with_an_autosave_pending(qtbot, tmp_path):
    engine = FlakyEngine(step_s=0.02)
    win = make_window(qtbot, tmp_path, engine)
    win.session.timer.setInterval(0)
    win.doc.set_mask(_mask(win), "mask")
    win.session.autosave()  # a write in flight
    win.generate()  # queued, maybe not started
    thread = win.worker_thread.thread
    t0 = time.perf_counter()
    win.close()
    took = time.perf_counter() - t0
    assert took < 1.0 and thread.isFinished()
    assert not win.session.path.exists()
    assert not [t for t in threading.enumerate() if t.name.startswith("autosave")]
