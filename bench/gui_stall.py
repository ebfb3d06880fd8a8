"""The longest time the GUI thread could not respond during a Generate, through the commit.

The real main window (offscreen unless a display is set) runs a real edit on a model of the
given preset; a QTimer on the GUI thread fires every 5 ms and records the gap since its previous
tick. Timing runs from the Generate click through the decode, the commit of the result (one undo
entry, candidates strip, step history) and the first repaint of the canvas after it: the largest
gap is the stall a person would feel. A decode that fails, or ends without a committed result,
raises `ProbeFailed`: a probe that measured nothing must not read as fast.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE = Path(__file__).parents[1] / "resources" / "samples" / "canyon.jpg"


class ProbeFailed(RuntimeError):
    """The generation failed, or ended without committing a result."""


@dataclass
class Probe:
    """What one probed Generate saw (times in seconds from the click)."""

    gaps_ms: list[float] = field(default_factory=list)
    # The GUI thread's own CPU time in each gap: a gap much longer than its CPU time was spent
    # waiting (for a core the machine's other work had, or for the GIL), not working.
    cpu_ms: list[float] = field(default_factory=list)
    tick_ends: list[float] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)  # step_painted
    committed: float = float("nan")  # result_committed
    repainted: float = float("nan")  # the canvas's first paint after the commit
    windows: int = 0

    @property
    def max_ms(self) -> float:
        return max(self.gaps_ms) if self.gaps_ms else float("nan")

    @property
    def longest_gap_cpu_ms(self) -> float:
        """The GUI thread's own CPU time within its longest gap: near the gap, it was working;
        far below it, it was waiting for a core (the machine's other work) or the GIL."""
        return self.cpu_ms[self.gaps_ms.index(self.max_ms)] if self.gaps_ms else float("nan")

    @property
    def max_cpu_ms(self) -> float:
        """The most CPU time the GUI thread spent within one gap."""
        return max(self.cpu_ms) if self.cpu_ms else float("nan")


def make_window(model: str) -> Any:
    """The main window on `model` ('default', a preset for random weights, or a path), shown,
    with the model loaded (a editor.ui.main_window.MainWindow)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QSettings
    from PySide6.QtWidgets import QApplication

    from editor.state.worker import Worker, WorkerThread, default_engine
    from editor.ui.main_window import MainWindow

    def factory(name: str, device: str) -> object:  # a models.engine.Engine
        from models.engine import Engine
        from models.maskgit import MaskGIT, preset

        if model in ("tiny", "default-128", "imagenet-256", "imagenet-512"):
            engine = Engine(MaskGIT(preset(model)), device=device)
            from editor.state.worker import set_threads

            set_threads(engine)  # as the app's default_engine does
            return engine
        return default_engine(model, device)

    app = QApplication.instance() or QApplication([])
    ini = Path(tempfile.mkdtemp()) / "bench.ini"
    win = MainWindow(
        WorkerThread(Worker(factory)), QSettings(str(ini), QSettings.Format.IniFormat),
        confirm=False,
    )
    win._bench_app = app  # must outlive the window
    win.resize(1200, 800)
    win.show()
    loaded = QEventLoop()
    win.controller.model_changed.connect(loaded.quit)
    frozen = gc.get_freeze_count()
    win.controller.load_model(model, "auto")
    if not win.controller.ready:
        loaded.exec()
    # The worker finishes loading after the window learns of the model: the classifier, then
    # models.memory.freeze_loaded_objects. A user's first Generate waits for it; the probe
    # times the Generates after.
    deadline = time.monotonic() + 120
    while gc.get_freeze_count() == frozen and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    return win


def photo(width: int = 512) -> np.ndarray:
    """The canyon sample at `width` px wide (4:3 crop), RGB uint8."""
    import cv2

    from editor.core.imageio import load

    rgb = load(SAMPLE).rgb
    h, w = rgb.shape[:2]
    side_h = min(h, w * 3 // 4)
    crop = np.ascontiguousarray(rgb[:side_h, : side_h * 4 // 3])
    return cv2.resize(crop, (width, width * 3 // 4), interpolation=cv2.INTER_AREA)


class _Watch:
    """The probe's timer, the paint watch on the canvas and the signals of one Generate."""

    def __init__(self, win: Any) -> None:
        from PySide6.QtCore import QEvent, QEventLoop, QObject, QTimer

        self.win, self.out, self.errors = win, Probe(), []  # type: ignore[var-annotated]
        self.loop = QEventLoop()
        self.t0 = self.last = time.perf_counter()
        self.last_cpu = time.thread_time()
        self.repaint_wanted = self.stop_after_tick = False
        watch = self

        class PaintWatch(QObject):
            def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
                if ev.type() == QEvent.Type.Paint and watch.repaint_wanted:
                    # Stop at the next tick after this paint: its gap covers the paint.
                    watch.repaint_wanted, watch.stop_after_tick = False, True
                    QTimer.singleShot(0, lambda: setattr(watch.out, "repainted", watch.now()))
                return False

        self.paint_watch = PaintWatch()
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self.tick)
        c = win.controller
        self.connections = [
            (c.result_committed, self.committed),
            (c.error, lambda title, text: self.fail(f"{title}: {text}")),
            (c.busy_changed, self.idle),
            (c.step_painted, lambda *_: self.out.steps.append(self.now())),
        ]

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def fail(self, text: str) -> None:
        self.errors.append(text)
        self.loop.quit()

    def tick(self) -> None:
        t, cpu = time.perf_counter(), time.thread_time()
        self.out.gaps_ms.append((t - self.last) * 1000)
        self.out.cpu_ms.append((cpu - self.last_cpu) * 1000)
        self.out.tick_ends.append(t - self.t0)
        self.last, self.last_cpu = t, cpu
        if self.stop_after_tick and self.out.repainted == self.out.repainted:  # not NaN
            self.loop.quit()

    def committed(self, _result: object) -> None:
        self.out.committed = self.now()
        self.repaint_wanted = True
        self.win.canvas.viewport().update()  # the commit's own update may already be queued

    def idle(self, busy: bool) -> None:
        from PySide6.QtCore import QTimer

        if not busy:  # a result, if any, is committed right after this, in the same slot
            QTimer.singleShot(0, lambda: None if self.out.committed == self.out.committed
                              else self.fail("the decode ended without a committed result"))

    def attach(self, on: bool) -> None:
        viewport = self.win.canvas.viewport()
        for sig, slot in self.connections:
            sig.connect(slot) if on else sig.disconnect(slot)
        if on:
            viewport.installEventFilter(self.paint_watch)
        else:
            viewport.removeEventFilter(self.paint_watch)


def probe_generate(win: Any, timeout_s: float = 600.0) -> Probe:
    """Click Generate on `win` and tick every 5 ms until the result is committed and the canvas
    has repainted; raises ProbeFailed on an error or a decode without a result."""
    from PySide6.QtCore import QTimer

    w = _Watch(win)
    w.attach(True)
    guard = QTimer()
    guard.setSingleShot(True)
    guard.timeout.connect(lambda: w.fail(f"no result in {timeout_s:.0f} s"))
    guard.start(int(timeout_s * 1000))
    w.t0 = w.last = time.perf_counter()
    w.last_cpu = time.thread_time()
    w.timer.start()
    win.a_generate.trigger()
    job = win.controller.job
    w.out.windows = len(job.windows) if job is not None else 0
    if job is None and not w.errors:
        w.errors.append("Generate started no job")
    if not w.errors:
        w.loop.exec()
    w.timer.stop()
    guard.stop()
    w.attach(False)
    if w.errors:
        raise ProbeFailed("; ".join(w.errors))
    return w.out


def prepare(win: Any, outpaint: bool, width: int = 512) -> None:
    """Load the photo and set up the edit: a box to inpaint, or (`outpaint`) the heaviest GUI
    load, a strip grown on the right (6 windows of default-128) with 4 candidates live in each
    window. (Until issue 18 the strip grew on two sides, 24 windows: 3.5 min a run on a shared
    2-core machine for the same per-step GUI work.)"""
    from PySide6.QtCore import QEventLoop, QTimer

    image = photo(width)
    h, w = image.shape[:2]
    win.doc.reset(image)
    win.class_picker.set_class(207)
    if outpaint:
        win.controller.fill_on_release = False
        win.controller.extend(0, 0, 96, 0)
        win.sampling.candidates.setValue(4)
    else:
        mask = np.zeros((h, w), bool)
        mask[h * 5 // 16 : h * 9 // 16, w * 6 // 16 : w * 9 // 16] = True
        win.doc.set_mask(mask, "mask")
    settle = QEventLoop()  # the canvas repaints and replans first: that is not decoding
    QTimer.singleShot(200, settle.quit)
    settle.exec()


def probe(model: str = "default-128", outpaint: bool = False) -> Probe:
    """Run one generation on `model` ('default', a preset for random weights, or a path): an
    inpaint of one window, or with `outpaint` a strip grown on the right with the panel's 4
    candidates in each window; what the GUI thread saw from the click to the repaint after the
    commit."""
    win = make_window(model)
    try:
        prepare(win, outpaint)
        return probe_generate(win)
    finally:
        win.close()
        win._bench_app.processEvents()


def max_stall_ms(model: str = "default-128", outpaint: bool = False) -> float:
    """probe's longest GUI gap, in ms."""
    return probe(model, outpaint).max_ms


if __name__ == "__main__":
    import sys

    print(f"max GUI stall: {max_stall_ms(*sys.argv[1:2]):.1f} ms")
