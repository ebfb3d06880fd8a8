"""Measure the longest GUI-thread stall while a real decode runs (not collected by pytest).

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/editor/stall_probe.py [MODEL] [--width=PX]

MODEL: a .safetensors path, 'default', or a preset name (default-128, tiny) for random weights of
that size, which cost the same compute as trained ones. A QTimer fires every 5 ms on the GUI
thread and records the gap since its previous tick; the largest gap while the generation runs
is the longest time the GUI could not respond. The window is shown, live steps are painted.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication

from editor.state.worker import Worker, WorkerThread
from editor.ui.main_window import MainWindow


def factory(spec: str):
    def make(_name: str, device: str):
        from models.engine import Engine
        from models.maskgit import MaskGIT, preset

        if spec.endswith(".safetensors") or spec == "default":
            from editor.batch import load_engine

            return load_engine(spec, device)
        return Engine(MaskGIT(preset(spec)), device=device)

    return make


def main() -> int:
    spec = sys.argv[1] if len(sys.argv) > 1 else "default-128"
    _app = QApplication.instance() or QApplication([])  # must outlive the window
    tmp = Path("/tmp/stall-probe.ini")
    win = MainWindow(WorkerThread(Worker(factory(spec))),
                     QSettings(str(tmp), QSettings.Format.IniFormat), confirm=False)
    win.resize(1200, 800)
    win.show()
    loaded = []
    win.controller.model_changed.connect(lambda *a: loaded.append(a))
    win.controller.load_model(spec, "auto")
    wait = QEventLoop()
    win.controller.model_changed.connect(wait.quit)
    if not loaded:
        wait.exec()
    w = int(next((a.split("=")[1] for a in sys.argv if a.startswith("--width=")), 512))
    h = w * 3 // 4
    rng = np.random.default_rng(0)
    img = (rng.random((h, w, 1)) * np.linspace(40, 220, w)[None, :, None]).astype(np.uint8)
    win.doc.reset(np.repeat(img, 3, axis=2))
    m = np.zeros((h, w), bool)
    m[h * 5 // 16 : h * 9 // 16, w * 6 // 16 : w * 9 // 16] = True
    win.doc.set_mask(m, "mask")
    win.class_picker.set_class(207)

    gaps: list[float] = []
    ends: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        ends.append(now)
        last[0] = now

    probe = QTimer()
    probe.setInterval(5)
    probe.timeout.connect(tick)
    steps: list[float] = []
    win.controller.step_painted.connect(lambda *_: steps.append(time.perf_counter()))
    loop = QEventLoop()
    win.controller.busy_changed.connect(lambda b: None if b else loop.quit())
    t0 = time.perf_counter()
    last[0] = t0
    probe.start()
    win.a_generate.trigger()
    job_windows = list(win.controller.job.windows) if win.controller.job else []
    loop.exec()
    elapsed = time.perf_counter() - t0
    probe.stop()
    g = np.array(gaps) * 1000
    print(f"model {spec} ({loaded[0][1]} px window), {w}x{h} image, "
          f"{len(job_windows)} window(s), {len(steps)} steps painted in "
          f"{elapsed:.2f} s; probe ticks {len(g)}: max gap {g.max():.1f} ms, "
          f"p99 {np.percentile(g, 99):.1f} ms, median {np.median(g):.1f} ms; "
          f"error: {win.last_error}")
    if "-v" in sys.argv:
        for gap, end in zip(g, ends, strict=True):
            if gap > 15:
                near = min(steps, key=lambda s: abs(s - end), default=t0)
                print(f"  gap {gap:.1f} ms ending at {end - t0:.3f} s; "
                      f"nearest step at {near - t0:.3f} s")
        print("  steps at", " ".join(f"{s - t0:.3f}" for s in steps))
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
