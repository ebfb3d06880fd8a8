"""A fake Engine for editor tests: the real edit_many/generate signature, synthetic steps.

Every step's preview is one flat colour that encodes (seed, step), so a test can tell which job
and which step produced a pixel. With `gated=True` each step waits for `release()`, which lets a
test stop a decode exactly between two steps without sleeping.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt

from editor.state.worker import Worker, WorkerThread
from editor.ui.main_window import MainWindow


@dataclass(frozen=True)
class FakeStep:
    step: int
    total: int
    tokens: np.ndarray
    masked: np.ndarray
    preview: np.ndarray
    confidence: np.ndarray

    @property
    def done(self) -> bool:
        return self.step == self.total - 1


def colour(seed: int, step: int, candidate: int = 0) -> int:
    return (seed * 37 + step * 11 + candidate * 101) % 200 + 30


def confidence(seed: int, step: int, candidate: int, t: int) -> np.ndarray:
    return np.random.default_rng([seed, step, candidate]).random((t, t)).astype(np.float32)


class FakeEngine:
    window = 32
    tokens_per_side = 8

    def __init__(self, gated: bool = False) -> None:
        self.gated = gated
        self._gate = threading.Semaphore(0)
        self._open = threading.Event()
        self.calls: list[dict] = []

    def release(self, n: int = 1) -> None:
        for _ in range(n):
            self._gate.release()

    def open(self) -> None:
        """Let every remaining step through (teardown uses it so no thread stays blocked)."""
        self._open.set()
        self.release(1000)

    def _wait(self) -> None:
        if self.gated and not self._open.is_set() and not self._gate.acquire(timeout=20):
            raise RuntimeError("fake engine: the test never released this step")

    def edit_many(self, image, token_mask, class_id, params, seed=0, candidates=1, tokens=None):
        # One window for all candidates, or one per candidate (later windows of an outpaint).
        assert image.shape[-3:] == (self.window, self.window, 3) and image.dtype == np.uint8
        assert image.ndim == 3 or image.shape[0] == candidates
        assert token_mask.shape == (self.tokens_per_side,) * 2 and token_mask.dtype == bool
        self.calls.append(dict(kind="edit", class_id=class_id, seed=seed, mask=token_mask.copy(),
                               candidates=candidates, thread=threading.current_thread(),
                               tokens=None if tokens is None else tokens.copy(),
                               image=image.copy(), params=params))
        yield from self._steps(params, seed, candidates)

    def branch(self, step, start_mask, class_id, params, seed=0, candidates=1, image=None):
        """Continues from `step`: the next steps of the same schedule, drawn with `seed`."""
        self.calls.append(dict(kind="branch", step=step.step, class_id=class_id, seed=seed,
                               mask=step.masked.copy(), candidates=candidates,
                               temperature=getattr(params, "temperature", None)))
        yield from self._steps(params, seed, candidates, step.step + 1, step.total)

    def generate(self, class_id, params, seed=0, candidates=1):
        self.calls.append(dict(kind="generate", class_id=class_id, seed=seed))
        yield from self._steps(params, seed, candidates)

    def auto_class(self, image, token_mask=None):
        return 207

    def encode(self, image):
        assert image.shape == (self.window, self.window, 3) and image.dtype == np.uint8
        return np.zeros((self.tokens_per_side,) * 2, np.int64)

    def decode(self, tokens):
        """Every token grid looks mid-grey (the photo-guided residual's reference)."""
        return np.full((self.window, self.window, 3), 128, np.uint8)

    def _steps(self, params, seed, candidates, start=None, total=None):
        t, w = self.tokens_per_side, self.window
        total = params.steps if total is None else total
        start = params.start_step if start is None else start
        for s in range(start, total):
            self._wait()
            yield [
                # Fewer tokens stay undecided every step; none after the last one. Tokens and
                # confidences depend on (seed, step, candidate), so tests can tell them apart.
                FakeStep(s, total, np.full((t, t), colour(seed, s, b), np.int64),
                         np.arange(t * t).reshape(t, t) < total - 1 - s,
                         np.full((w, w, 3), colour(seed, s, b), np.uint8),
                         confidence(seed, s, b, t))
                for b in range(candidates)
            ]


def make_window(qtbot, tmp_path, engine) -> MainWindow:
    """A shown main window on a 64x48 random image, its worker serving `engine`."""
    # Flat fake colours must reach the canvas as they are: no colour correction.
    worker = Worker(factory=lambda name, device: engine, params=lambda s: s, colour=None)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(WorkerThread(worker), settings, confirm=False)
    qtbot.addWidget(win)
    win.resize(900, 700)
    win.show()
    qtbot.waitExposed(win)
    with qtbot.waitSignal(win.controller.model_changed, timeout=5000):
        win.controller.load_model("fake")
    rng = np.random.default_rng(0)
    win.doc.reset(rng.integers(0, 256, (48, 64, 3), np.uint8))
    win.canvas.actual_size()
    win.sampling.random_seed.setChecked(False)
    win.sampling.seed.setValue(5)
    # Likewise no detail transfer from the photo (tests/editor/test_photo_guidance.py has it).
    win.sampling.guidance.setChecked(False)
    return win


def vp(win, x: float, y: float) -> QPoint:
    """The viewport position of image pixel (x, y)."""
    return win.canvas.mapFromScene(QPointF(x, y))


def drag(qtbot, win, a: QPoint, b: QPoint, button=Qt.MouseButton.LeftButton, steps: int = 5):
    """A real mouse drag on the canvas viewport, in `steps` moves."""
    view = win.canvas.viewport()
    qtbot.mousePress(view, button, pos=a)
    for i in range(1, steps + 1):
        qtbot.mouseMove(view, a + (b - a) * i / steps)
    qtbot.mouseRelease(view, button, pos=b)


def paint_mask(win, x0=20, y0=12, x1=36, y1=28):
    """A rectangular mask on the window's document (one undo entry); returns it."""
    m = np.zeros(win.doc.mask.shape, bool)
    m[y0:y1, x0:x1] = True
    win.doc.set_mask(m, "mask")
    return m


def generate(qtbot, win, candidates=1):
    """Generate with `candidates` and wait for the result's commit."""
    win.sampling.candidates.setValue(candidates)
    with qtbot.waitSignal(win.controller.result_committed, timeout=5000):
        win.a_generate.trigger()
