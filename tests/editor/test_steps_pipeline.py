"""Step history, branching, re-rolling and locks through editor.pipeline on the real tiny model.

These are the guarantees the scrubber, the heatmap and the lock brush rely on, checked on real
token grids (a fake engine could not tell a kept token from a re-sampled one).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from editor.core import geometry as g
from editor.core.history import weakest
from editor.core.jobs import Job, Sampling, next_job_id
from editor.core.pipeline import run_job

torch = pytest.importorskip("torch")


class Spy:
    """The real engine, with its calls recorded."""

    def __init__(self, engine) -> None:
        self.e = engine
        self.window, self.tokens_per_side = engine.window, engine.tokens_per_side
        self.calls: list[dict] = []

    def edit_many(self, image, token_mask, class_id, params, seed=0, candidates=1, tokens=None):
        self.calls.append(dict(kind="edit", mask=token_mask.copy(), class_id=class_id,
                               candidates=candidates, tokens=tokens))
        return self.e.edit_many(image, token_mask, class_id, params, seed, candidates, tokens)

    def branch(self, step, start_mask, class_id, params, seed=0, candidates=1, image=None):
        self.calls.append(dict(kind="branch", step=step.step, mask=step.masked.copy(),
                               class_id=class_id, candidates=candidates))
        return self.e.branch(step, start_mask, class_id, params, seed, candidates, image)

    def generate(self, class_id, params, seed=0, candidates=1):
        return self.e.generate(class_id, params, seed, candidates)

    def auto_class(self, image, token_mask=None):
        return 0


@pytest.fixture(scope="module")
def tiny():
    from models.engine import Engine
    from models.maskgit import MaskGIT, preset

    torch.manual_seed(0)
    return Engine(MaskGIT(preset("tiny")), device="cpu", bf16=False)


@pytest.fixture
def spy(tiny):
    return Spy(tiny)


def params(s: Sampling):
    from editor.state.worker import engine_params

    return engine_params(s)


SAMPLING = Sampling(steps=8, start_step=0)


def edit_job(image, mask, class_id=3, seed=1, locked=None, candidates=1) -> Job:
    wins = g.plan(mask & ~locked if locked is not None else mask, 32, 8)
    assert len(wins) == 1
    return Job("edit", image.copy(), mask.copy(), wins, class_id, SAMPLING, seed, candidates,
               locked=locked)


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)


def box(y0, y1, x0, x1, shape=(32, 32)):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_history_keeps_every_step_of_every_candidate(spy, image):
    res = run_job(spy, edit_job(image, box(8, 20, 8, 24), candidates=3), params(SAMPLING))
    h = res.history
    assert [r[0].step for r in h.steps] == list(range(8)) and h.candidates == 3
    assert len(spy.calls) == 1 and spy.calls[0]["candidates"] == 3, "one batched decode"
    assert not h.last().masked.any()
    for c in range(3):  # the result is the last step's composited preview
        x0, y0, x1, y1 = h.last(c).rect
        assert np.array_equal(res.images[c][y0:y1, x0:x1], h.last(c).patch)


def test_branch_reproduces_steps_up_to_k_and_differs_after(spy, image):
    job = edit_job(image, box(8, 20, 8, 24))
    first = run_job(spy, job, params(SAMPLING)).history
    # The same request decoded again is the same decode (what "reproduces" builds on).
    again = run_job(spy, replace(job, id=next_job_id()), params(SAMPLING)).history
    assert all(np.array_equal(a[0].tokens, b[0].tokens) for a, b in
               zip(first.steps, again.steps, strict=True))
    k = 3
    at = first.steps[k][0]
    branched = run_job(spy, replace(job, id=next_job_id(), seed=99, branch=at,
                                    start_mask=first.start_mask, past=first.steps[: k + 1]),
                       params(SAMPLING)).history
    assert spy.calls[-1]["kind"] == "branch" and spy.calls[-1]["step"] == k
    assert [r[0].step for r in branched.steps] == list(range(8))
    for i in range(k + 1):  # steps 0..k: identical to the original decode
        assert np.array_equal(branched.steps[i][0].tokens, first.steps[i][0].tokens)
        assert np.array_equal(branched.steps[i][0].patch, first.steps[i][0].patch)
    decided = ~at.masked & first.start_mask
    for i in range(k + 1, 8):  # what was decided at k stays; the schedule is the original's
        b, o = branched.steps[i][0], first.steps[i][0]
        assert np.array_equal(b.tokens[decided], at.tokens[decided])
        assert b.masked.sum() == o.masked.sum()
    assert not np.array_equal(branched.last().tokens, first.last().tokens), "differs after k"


def test_reroll_changes_only_the_chosen_tokens(spy, image):
    mask = box(8, 20, 8, 24)
    job = edit_job(image, mask)
    res = run_job(spy, job, params(SAMPLING))
    h = res.history
    chosen = weakest(h.last().confidence, h.start_mask, 0.25)
    assert chosen.sum() == round(h.start_mask.sum() * 0.25)
    after = res.images[0]
    reroll = Job("edit", after.copy(), h.pixel_mask, [h.window], 3, SAMPLING, 7,
                 tokens=h.last().tokens, token_mask=chosen)
    new = run_job(spy, reroll, params(SAMPLING))
    assert np.array_equal(spy.calls[-1]["mask"], chosen)
    t0, t1 = h.last().tokens, new.history.last().tokens
    assert np.array_equal(t1[~chosen], t0[~chosen]), "every other token is kept"
    assert not np.array_equal(t1[chosen], t0[chosen])
    # Pixels: only the re-rolled cells (and a feather around them) may change.
    near = g.cell_pixels(g.dilate(chosen, 1), h.window, mask.shape)
    assert np.array_equal(new.images[0][~near], after[~near])


@pytest.mark.parametrize("kind", ["generate", "branch", "reroll"])
def test_locked_tokens_are_identical_before_and_after_any_regeneration(spy, image, kind):
    mask = box(4, 28, 4, 28)
    locked = box(12, 20, 12, 20)
    res = run_job(spy, edit_job(image, mask), params(SAMPLING))
    h, before = res.history, res.images[0]
    if kind == "generate":
        job = edit_job(before, mask, seed=5, locked=locked)
    elif kind == "branch":
        job = Job("edit", before.copy(), mask.copy(), [h.window], 3, SAMPLING, 5, locked=locked,
                  branch=h.steps[2][0], start_mask=h.start_mask, past=h.steps[:3])
    else:
        job = Job("edit", before.copy(), h.pixel_mask, [h.window], 3, SAMPLING, 5,
                  locked=locked, tokens=h.last().tokens, token_mask=h.start_mask)
    out = run_job(spy, job, params(SAMPLING))
    win = h.window
    cells = g.token_mask(locked, win, 0)
    keep = g.cell_pixels(cells, win, mask.shape)
    assert np.array_equal(out.images[0][keep], before[keep]), "locked pixels are bit-identical"
    call = spy.calls[-1]
    assert not (call["mask"] & cells).any(), "no locked cell is ever masked"
    # Locked tokens are known ones: the encoded image (a new edit) or the result's (re-roll,
    # and a branch, which keeps what its origin had sampled there).
    ref = spy.e.encode(g.window_image(before, win)) if kind == "generate" else h.steps[2][0] \
        .tokens if kind == "branch" else h.last().tokens
    assert np.array_equal(out.history.last().tokens[cells], ref[cells])
    assert not np.array_equal(out.images[0][mask & ~keep], before[mask & ~keep])


def test_locked_cells_survive_the_dilation_ring(spy, image):
    """Region B right next to a locked region A: the one-token ring must not take A's cells."""
    locked = box(0, 32, 0, 16)
    mask = box(0, 32, 16, 32)
    job = edit_job(image, mask, locked=locked)
    run_job(spy, job, params(SAMPLING))
    win = job.windows[0]
    assert not (spy.calls[-1]["mask"] & g.token_mask(locked, win, 0)).any()
    assert spy.calls[-1]["mask"][:, 2:].sum() > 0


def test_multi_class_regions(spy):
    """Region A as class a, then region B as class b with A locked: A's pixels survive."""
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (32, 32, 3), np.uint8)
    a_mask, b_mask = box(0, 32, 0, 14), box(0, 32, 14, 32)
    a = run_job(spy, edit_job(img, a_mask, class_id=207), params(SAMPLING))
    after_a = a.images[0]
    b = run_job(spy, edit_job(after_a, b_mask, class_id=980, locked=a_mask), params(SAMPLING))
    win = b.history.window
    keep = g.cell_pixels(g.token_mask(a_mask, win, 0), win, a_mask.shape)
    assert [c["class_id"] for c in spy.calls] == [207, 980]
    assert np.array_equal(b.images[0][a_mask], after_a[a_mask]), "region A is untouched"
    assert np.array_equal(b.images[0][keep], after_a[keep])
    assert not np.array_equal(b.images[0][b_mask & ~keep], after_a[b_mask & ~keep])


def test_multi_class_regions_in_the_app(qtbot, tmp_path):
    """In the real window on the tiny model: regenerate region A as class a, lock it with the
    lock layer, regenerate region B (whose dilation ring reaches into A) as class b; then branch
    and re-roll B. A's pixels never change."""
    from PySide6.QtCore import QSettings

    from editor.state.worker import Worker, WorkerThread
    from editor.ui.main_window import MainWindow

    win = MainWindow(WorkerThread(Worker(colour=None)),
                     QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                     confirm=False)
    qtbot.addWidget(win)
    try:
        with qtbot.waitSignal(win.controller.model_changed, timeout=60_000):
            win.controller.load_model("tiny", "cpu")
        win.doc.reset(np.random.default_rng(2).integers(0, 256, (32, 32, 3), np.uint8))
        win.sampling.candidates.setValue(2)
        classes = []
        win.controller.result_committed.connect(lambda r: classes.append(r.class_id))
        a_mask, b_mask = box(4, 28, 2, 14), box(4, 28, 14, 30)

        def run(action):
            with qtbot.waitSignal(win.controller.result_committed, timeout=60_000):
                action()
            assert win.last_error is None

        win.doc.set_mask(a_mask, "A")
        run(lambda: win.controller.regenerate_as(207, "golden retriever"))
        after_a = win.doc.image.copy()
        win.controller.locks.set(a_mask, "Lock A")
        win.doc.set_mask(b_mask, "B")
        run(lambda: win.controller.regenerate_as(980, "volcano"))
        after_b = win.doc.image.copy()
        steps = win.step_tools.steps
        run(lambda: steps.branch(3))
        run(lambda: steps.reroll(0.5))
        assert classes == [207, 980, 980, 980]
        assert np.array_equal(win.doc.image[a_mask], after_a[a_mask]), "A survives all of it"
        assert not np.array_equal(after_b[b_mask], after_a[b_mask])
        assert steps.history.candidates == 2
        win.a_undo.trigger()  # the re-roll
        win.a_undo.trigger()  # the branch, which had replaced B's result: back to before B
        assert np.array_equal(win.doc.image, after_a) and np.array_equal(win.doc.mask, b_mask)
    finally:
        win.close()
