"""Seeded "monkey" runs of the real main window (offscreen, fake engine): random strokes,
selections, generations, undo and redo, some of them landing while a mask stroke is held.

A longer monkey of the window found bugs that the unit tests missed, because each needed two
things at once:
  1. a mask stroke held open while the canvas changed (an image opened, a canvas extension or
     its undo) raised on release and left mask pixels that no undo entry covered;
  2. an undo entry pushed mid-stroke (a Generate's result arriving, Ctrl+Z, Shift+X, Ctrl+I,
     Fill from surroundings) was recorded inside the stroke: undoing everything did not give
     the photo back;
  3. Paste with an empty clipboard raised;
  4. Cancel and closing waited for a Fill from surroundings (here a fill only has to end
     cleanly: a picture this small fills too fast to time).
Each seed drives 200 actions, then cancels and undoes everything: the picture must be the photo
opened last, with no mask, lock or keep-out pixel left, and nothing may have raised. The seeds
fail on the code before those fixes (e8927b3~1), by both kinds of assertion.
"""

from __future__ import annotations

import random
import sys
import threading
import traceback

import numpy as np
import pytest
from fakes import FakeEngine, make_window
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QApplication

from editor.ui.canvas import Canvas
from editor.ui.main_window import MainWindow

SEEDS = (1, 4, 15, 23)
ACTIONS = 200
MENU = {"undo": "a_undo", "redo": "a_redo", "generate": "a_generate", "cancel": "a_cancel",
        "regenerate": "a_regenerate", "next": "a_next", "prev": "a_prev", "accept": "a_accept",
        "keep_out": "a_keep_out", "invert": "a_invert", "paste": "a_paste"}
WEIGHTS = {"stroke": 30, "select": 10, "undo": 10, "redo": 4, "generate": 6, "arrive": 8,
           "cancel": 2, "regenerate": 3, "next": 2, "prev": 2, "accept": 2, "keep_out": 2,
           "invert": 2, "fill": 3, "extend": 3, "extend_undone": 2, "open": 0.5, "paste": 1}
# What may land while a stroke is held: each pushes, undoes or replaces what the stroke edits.
MID = ("undo", "redo", "generate", "arrive", "keep_out", "invert", "fill", "extend",
       "extend_undone", "open")


class Engine(FakeEngine):
    """Every step waits until the test lets results through, so when a result lands (mid-stroke
    or not) is the seed's choice, not the thread scheduler's: a seed replays the same run."""

    def __init__(self) -> None:
        super().__init__()
        self.through = threading.Event()

    def _wait(self) -> None:
        self.through.wait(timeout=60)

    def open(self) -> None:
        self.through.set()


def reported(handler):
    """`handler` with what it raises sent to sys.excepthook, as the running app does: escaping a
    Python override while QTest sends the event, an exception raised in C (numpy's ValueError)
    segfaults PySide6 6.11 instead of failing the test."""
    def guarded(self, e):
        try:
            handler(self, e)
        except Exception:
            sys.excepthook(*sys.exc_info())
    return guarded


@pytest.fixture
def monkey_win(qtbot, tmp_path, monkeypatch):
    for name in ("mousePressEvent", "mouseMoveEvent", "mouseReleaseEvent"):
        monkeypatch.setattr(Canvas, name, reported(getattr(Canvas, name)))
    # Error boxes are window-modal: they would swallow the clicks that follow.
    monkeypatch.setattr(MainWindow, "show_error", lambda self, title, text: None)
    engine = Engine()
    yield make_window(qtbot, tmp_path, engine), engine
    engine.open()


class Monkey:
    def __init__(self, qtbot, win, engine, seed: int, photos) -> None:
        self.qtbot, self.win, self.engine, self.c = qtbot, win, engine, win.controller
        self.r = random.Random(seed)
        self.photos = photos
        self.counts: dict[str, int] = {}
        self.log: list[str] = []

    def run(self, n: int) -> None:
        names = list(WEIGHTS)
        for i in range(n):
            self.act(self.r.choices(names, [WEIGHTS[k] for k in names])[0])
            QApplication.processEvents()
            check_shapes(self.win, f"after action {i} ({' '.join(self.log[-4:])})")

    def act(self, name: str, label: str = "") -> None:
        label = label or name
        self.log.append(label)
        self.counts[label] = self.counts.get(label, 0) + 1
        if name in MENU:
            getattr(self.win, MENU[name]).trigger()  # disabled (busy, no candidate): nothing
        elif name in ("stroke", "select"):
            self.gesture(name)
        else:
            getattr(self, name)()

    def arrive(self) -> None:
        """The running job's result lands."""
        if self.c.busy:
            with self.qtbot.waitSignal(self.c.busy_changed, timeout=10_000,
                                       check_params_cb=lambda busy: not busy):
                self.engine.through.set()
        self.engine.through.clear()

    def fill(self) -> None:
        self.win.a_fill_classic.trigger()
        if self.c.busy and self.c.job.kind == "fill":  # a region: its result lands now
            self.arrive()

    def extend(self) -> None:
        sides = [0, 0, 0, 0]
        sides[self.r.randrange(4)] = self.r.randint(4, 24)
        self.c.extend(*sides)

    def extend_undone(self) -> None:
        """An outpaint drag, its Generate cancelled, then Ctrl+Z: the canvas shrinks back."""
        before = self.win.doc.undo_stack.index()
        self.extend()
        self.win.a_cancel.trigger()
        if self.win.doc.undo_stack.index() != before:
            self.win.a_undo.trigger()

    def open(self) -> None:
        self.last = self.r.randrange(len(self.photos))
        assert self.win.open_path(self.photos[self.last][0])

    def point(self) -> QPoint:
        """A viewport point on the picture or up to a fifth of its size outside it."""
        d = self.win.doc
        x, y = self.r.uniform(-0.2, 1.2) * d.width, self.r.uniform(-0.2, 1.2) * d.height
        return self.win.canvas.mapFromScene(QPointF(x, y))

    def gesture(self, kind: str) -> None:
        """A stroke (brush, eraser, lock, keep-out brush) or a selection (rectangle, lasso):
        press, a few moves, release; a stroke sometimes interrupted while the button is held."""
        win, r = self.win, self.r
        tool = r.choice(("brush", "eraser", "lock", "keepout") if kind == "stroke"
                        else ("rectangle", "lasso"))
        win.tool_actions[tool].trigger()
        button = Qt.MouseButton.RightButton if r.random() < 0.15 else Qt.MouseButton.LeftButton
        view = win.canvas.viewport()
        box = view.rect().adjusted(1, 1, -1, -1)
        a = self.point()  # pressed on the viewport itself (elsewhere it would hit another
        a = QPoint(min(max(a.x(), box.left()), box.right()),  # widget); the moves go anywhere
                   min(max(a.y(), box.top()), box.bottom()))
        moves = [self.point() for _ in range(r.randint(1, 5))]
        mid = r.choice(MID) if kind == "stroke" and r.random() < 0.4 else None
        self.qtbot.mousePress(view, button, pos=a)
        for i, p in enumerate(moves):
            self.qtbot.mouseMove(view, p)
            if mid and i == len(moves) // 2:
                self.act(mid, f"mid-stroke {mid}")
        self.qtbot.mouseRelease(view, button, pos=moves[-1])


def check_shapes(win, where: str) -> None:
    doc, c = win.doc, win.controller
    shape = doc.image.shape[:2]
    assert doc.image.shape == (*shape, 3), where
    assert doc.mask.shape == c.locks.mask.shape == c.keep_out.mask.shape == shape, (
        f"{where}: image {shape}, mask {doc.mask.shape}, lock {c.locks.mask.shape}, "
        f"keep-out {c.keep_out.mask.shape}")


def photos(tmp_path) -> list[tuple[str, np.ndarray]]:
    """Two small photos, of other sizes than each other and the first picture (lossless)."""
    rng = np.random.default_rng(1)
    out = []
    for i, (h, w) in enumerate(((40, 56), (60, 72))):
        px = rng.integers(0, 256, (h, w, 3), np.uint8)
        Image.fromarray(px).save(tmp_path / f"photo{i}.png")
        out.append((str(tmp_path / f"photo{i}.png"), px))
    return out


def undo_everything(qtbot, win) -> None:
    win.a_cancel.trigger()
    qtbot.waitUntil(lambda: not win.controller.busy, timeout=5000)
    stack = win.doc.undo_stack
    for _ in range(stack.count()):
        win.a_undo.trigger()
    assert stack.index() == 0, f"undo stopped at entry {stack.index()} of {stack.count()}"


def left_over(win, photo: np.ndarray) -> list[str]:
    """What undoing everything did not take back."""
    doc, c = win.doc, win.controller
    out = []
    if doc.image.shape != photo.shape:
        out.append(f"a {doc.image.shape} picture after undoing everything, photo {photo.shape}")
    elif (doc.image != photo).any():
        out.append(f"{int((doc.image != photo).any(2).sum())} px differ from the photo")
    for name, layer in (("mask", doc.mask), ("lock", c.locks.mask), ("keep-out", c.keep_out.mask)):
        if layer.any():
            out.append(f"{int(layer.sum())} {name} px that no undo entry covers")
    return out


@pytest.mark.qt_no_exception_capture  # our hook instead: one failure naming the actions before
@pytest.mark.parametrize("seed", SEEDS)
def test_random_actions_then_undo_everything(qtbot, monkey_win, tmp_path, seed, monkeypatch):
    win, engine = monkey_win
    m = Monkey(qtbot, win, engine, seed, photos(tmp_path))
    escaped: list[str] = []

    def hook(kind, value, tb):
        where = traceback.extract_tb(tb)[-1]
        escaped.append(f"{kind.__name__} at {where.filename.split('/')[-1]}:{where.lineno} "
                       f"after {' / '.join(m.log[-3:])}")
        sys.__excepthook__(kind, value, tb)  # the whole traceback, on stderr

    monkeypatch.setattr(sys, "excepthook", hook)
    QApplication.clipboard().clear()  # mimeData() is None then (offscreen): finding 3
    try:
        m.open()
        m.run(ACTIONS)
    finally:
        engine.open()  # pytest-qt closes the window before fixtures end: let the worker stop
    print(f"\nseed {seed}: {dict(sorted(m.counts.items()))}")
    undo_everything(qtbot, win)
    check_shapes(win, "after undoing everything")
    problems = escaped + left_over(win, m.photos[m.last][1])
    assert not problems, "\n".join(problems)
