"""The GUI thread never waits for a decode: a 5 ms QTimer probe keeps ticking while every step
costs the worker ~300 ms of numpy work (BLAS, like torch, lets go of the GIL while it computes).
If the decode ran on the GUI thread, or the GUI waited on it, the probe would see >= 300 ms gaps.
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
    def __init__(self, interval_ms: int = 5) -> None:
        self.gaps: list[float] = []
        self._last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
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
    probe = Probe()
    probe.start()
    t0 = time.perf_counter()
    with qtbot.waitSignal(win.controller.candidate_changed, timeout=20_000):
        win.a_generate.trigger()
    elapsed = time.perf_counter() - t0
    probe.timer.stop()
    assert elapsed >= 4 * STEP_SECONDS, "the fake decode really took its time"
    worst = max(probe.gaps)
    print(f"\nGUI probe: {len(probe.gaps)} ticks over {elapsed:.2f} s, "
          f"max gap {worst * 1000:.1f} ms, p99 {np.percentile(probe.gaps, 99) * 1000:.1f} ms")
    assert worst < STEP_SECONDS / 2, f"the GUI thread stalled for {worst * 1000:.0f} ms"
