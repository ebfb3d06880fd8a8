"""The GUI thread never waits for a decode: a 5 ms QTimer probe keeps ticking while the job is
running, every step costing the worker ~300 ms of numpy work (BLAS, like torch, lets go of the
GIL while it computes). If the decode ran on the GUI thread, no tick could come while the job
runs. How long the GUI stalls is measured by bench/gui_stall.py, not asserted here.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from fakes import FakeEngine, make_window
from PySide6.QtCore import QTimer

STEP_SECONDS = 0.3


class SlowEngine(FakeEngine):
    """Every step burns STEP_SECONDS of real CPU in the calling (worker) thread."""

    def _wait(self) -> None:
        a = np.ones((384, 384), np.float32)
        end = time.perf_counter() + STEP_SECONDS
        while time.perf_counter() < end:
            a = (a @ a) * (1.0 / 384)


class Probe:
    def __init__(self, busy, interval_ms: int = 5) -> None:
        self.busy = busy
        self.ticks_while_busy = 0
        self.gaps: list[float] = []
        self._last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.ticks_while_busy += self.busy()
        self.gaps.append(now - self._last)
        self._last = now

    def start(self) -> None:
        self._last = time.perf_counter()
        self.timer.start()


@pytest.fixture
def slow_win(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, SlowEngine())
    yield w
    w.close()


def test_gui_thread_keeps_ticking_during_a_decode(qtbot, slow_win):
    win = slow_win
    win.sampling.steps.setValue(6)  # 4 steps from start_step 2: ~1.2 s of decoding
    m = np.zeros(win.doc.mask.shape, bool)
    m[10:30, 10:40] = True
    win.doc.set_mask(m, "mask")
    probe = Probe(lambda: win.controller.busy)
    probe.start()
    with qtbot.waitSignal(win.controller.candidate_changed, timeout=20_000):
        win.a_generate.trigger()
    probe.timer.stop()
    print(f"\nGUI probe: {len(probe.gaps)} ticks, {probe.ticks_while_busy} during the decode, "
          f"max gap {max(probe.gaps) * 1000:.1f} ms")
    assert probe.ticks_while_busy > 0, "the GUI thread ran no event while the job ran"


class FailingEngine(FakeEngine):
    def edit_many(self, *args, **kwargs):
        raise RuntimeError("out of memory (a test)")


def test_stall_probe_times_through_the_commit_and_the_repaint(qtbot, win):
    from bench.gui_stall import probe_generate

    m = np.zeros(win.doc.mask.shape, bool)
    m[10:30, 10:40] = True
    win.doc.set_mask(m, "mask")
    p = probe_generate(win, timeout_s=20)
    assert win.controller.candidate is not None  # the result was committed
    assert 0 < p.committed <= p.repainted
    assert p.steps and p.steps[-1] <= p.committed
    assert p.tick_ends[-1] >= p.repainted  # the last tick's gap covers the repaint
    assert p.max_ms == max(p.gaps_ms)
    # The GUI thread's CPU time in a gap: never more than the gap (1 ms of clock granularity).
    assert len(p.cpu_ms) == len(p.gaps_ms) and p.max_cpu_ms == max(p.cpu_ms)
    assert all(0 <= c <= g + 1 for c, g in zip(p.cpu_ms, p.gaps_ms, strict=True))


def test_stall_probe_fails_on_a_failed_decode(qtbot, tmp_path):
    from bench.gui_stall import ProbeFailed, probe_generate

    w = make_window(qtbot, tmp_path, FailingEngine())
    m = np.zeros(w.doc.mask.shape, bool)
    m[10:30, 10:40] = True
    w.doc.set_mask(m, "mask")
    with pytest.raises(ProbeFailed, match="out of memory"):
        probe_generate(w, timeout_s=20)
    w.close()
