"""The longest time the GUI thread could not respond while the worker decodes.

The real main window (offscreen unless a display is set) runs a real edit on a model of the
given preset; a QTimer on the GUI thread fires every 5 ms and records the gap since its previous
tick. The largest gap during the decode is the stall a person would feel.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np


def max_stall_ms(model: str = "default-128", outpaint: bool = False) -> float:
    """Run one generation on `model` ('default', a preset for random weights, or a path): an
    inpaint of one window, or with `outpaint` the heaviest case, a strip grown on two sides
    (about 20 windows) with the panel's 4 candidates each."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from editor.state.worker import Worker, WorkerThread
    from editor.ui.main_window import MainWindow

    def factory(_name: str, device: str) -> object:  # a models.engine.Engine
        from models.engine import Engine
        from models.maskgit import MaskGIT, preset
        from models.registry import resolve

        if model in ("tiny", "default-128", "imagenet-256", "imagenet-512"):
            return Engine(MaskGIT(preset(model)), device=device)
        return Engine.from_file(resolve(model), device=device)

    app = QApplication.instance() or QApplication([])
    ini = Path(tempfile.mkdtemp()) / "bench.ini"
    win = MainWindow(
        WorkerThread(Worker(factory)), QSettings(str(ini), QSettings.Format.IniFormat),
        confirm=False,
    )
    win.resize(1200, 800)
    win.show()
    loaded = QEventLoop()
    win.controller.model_changed.connect(loaded.quit)
    win.controller.load_model(model, "auto")
    if not win.controller.ready:
        loaded.exec()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (384, 512, 3), dtype=np.uint8)
    win.doc.reset(image)
    win.class_picker.set_class(207)
    if outpaint:
        win.controller.fill_on_release = False
        win.controller.extend(0, 48, 160, 0)
        win.sampling.candidates.setValue(4)
    else:
        mask = np.zeros((384, 512), bool)
        mask[120:220, 180:300] = True
        win.doc.set_mask(mask, "mask")
    settle = QEventLoop()  # the canvas repaints and replans first: that is not decoding
    QTimer.singleShot(200, settle.quit)
    settle.exec()

    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    probe = QTimer()
    probe.setInterval(5)
    probe.timeout.connect(tick)
    done = QEventLoop()
    win.controller.busy_changed.connect(lambda busy: None if busy else done.quit())
    last[0] = time.perf_counter()
    probe.start()
    win.a_generate.trigger()
    done.exec()
    probe.stop()
    win.close()
    app.processEvents()
    return max(gaps) * 1000 if gaps else float("nan")


if __name__ == "__main__":
    import sys

    print(f"max GUI stall: {max_stall_ms(*sys.argv[1:2]):.1f} ms")
