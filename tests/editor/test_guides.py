"""editor.core.guides: a guide is made once per picture and mask, ahead of the Generate that
needs it, and never used for another picture or mask."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from editor.core.guides import Guides


class Maker:
    """A guide maker that records its calls and can be held until released."""

    def __init__(self, hold: bool = False) -> None:
        self.calls: list[int] = []
        self.started = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, image: np.ndarray, todo: np.ndarray, variant: int = 0,
                 keep_out: np.ndarray | None = None) -> np.ndarray:
        self.calls.append(int(todo.sum()))
        self.started.set()
        assert self.release.wait(30)
        return np.where(todo[..., None], 7, image).astype(np.uint8)


def pic(n: int) -> tuple[np.ndarray, np.ndarray]:
    image = np.full((16, 16, 3), 100, np.uint8)
    todo = np.zeros((16, 16), bool)
    todo[2 : 2 + n, 2:10] = True
    return image, todo


def test_a_generate_after_a_prefetch_waits_for_that_guide_instead_of_making_another():
    make = Maker(hold=True)
    guides = Guides(make)
    guides.prefetch(*pic(3))
    assert make.started.wait(30)
    got: list[np.ndarray] = []
    asker = threading.Thread(target=lambda: got.append(guides.get(*pic(3))))
    asker.start()
    make.release.set()
    asker.join(30)
    assert make.calls == [24], "made once, by the prefetch"
    assert (got[0][2:5, 2:10] == 7).all() and not got[0].flags.writeable


def test_only_the_newest_queued_prefetch_is_made():
    make = Maker(hold=True)
    guides = Guides(make)
    guides.prefetch(*pic(1))
    assert make.started.wait(30)
    guides.prefetch(*pic(2))  # painted over before its guide began
    guides.prefetch(*pic(3))
    make.release.set()
    guides.get(*pic(3))  # waits for the newest, made in the background
    assert make.calls == [8, 24]


def test_another_picture_or_mask_gets_its_own_guide():
    make = Maker()
    guides = Guides(make)
    image, todo = pic(3)
    guides.get(image, todo)
    guides.get(image, todo)
    assert len(make.calls) == 1, "Generate again reuses the guide"
    guides.get(image, pic(4)[1])
    changed = image.copy()
    changed[0, 0] = 0
    guides.get(changed, todo)
    assert len(make.calls) == 3


def test_a_failed_guide_reaches_the_asker_and_is_not_kept():
    fails = [True]

    def make(image: np.ndarray, todo: np.ndarray, variant: int = 0,
             keep_out: np.ndarray | None = None) -> np.ndarray:
        if fails.pop(0) if fails else False:
            raise RuntimeError("shift-map failed")
        return image.copy()

    guides = Guides(make)
    with pytest.raises(RuntimeError, match="shift-map failed"):
        guides.get(*pic(3))
    assert guides.get(*pic(3)).shape == (16, 16, 3), "tried again, not the stored failure"


def test_a_prefetch_makes_every_candidates_variant_first_things_first():
    made: list[int] = []
    done = threading.Event()

    def make(image: np.ndarray, todo: np.ndarray, variant: int = 0,
             keep_out: np.ndarray | None = None) -> np.ndarray:
        made.append(variant)
        if len(made) == 3:
            done.set()
        return np.full_like(image, variant)

    guides = Guides(make)
    guides.prefetch(*pic(3), variants=3)
    assert done.wait(30)
    assert made == [0, 1, 2], "variant 0 first: the first candidate and a single edit need it"
    assert [int(guides.get(*pic(3), v)[0, 0, 0]) for v in range(3)] == [0, 1, 2]
    assert made == [0, 1, 2], "made once each"


def test_a_prefetch_that_fails_is_left_to_generate_to_report():
    calls: list[int] = []
    failed = threading.Event()

    def make(image: np.ndarray, todo: np.ndarray, variant: int = 0,
             keep_out: np.ndarray | None = None) -> np.ndarray:
        calls.append(variant)
        failed.set()
        raise RuntimeError("shift-map failed")

    guides = Guides(make)
    guides.prefetch(*pic(3), variants=2)
    assert failed.wait(30)
    with pytest.raises(RuntimeError, match="shift-map failed"):
        guides.get(*pic(3))  # made again for the asker, who sees the error
    assert calls[:1] == [0] and len(calls) <= 3, "the prefetch gave up, not retried forever"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_guides_are_made_below_the_gui_threads_priority():
    import os

    from editor.core import guides as module

    seen: list[int] = []

    def make(image: np.ndarray, todo: np.ndarray, variant: int = 0,
             keep_out: np.ndarray | None = None) -> np.ndarray:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return image.copy()

    mine = os.getpriority(os.PRIO_PROCESS, 0)
    Guides(make).get(*pic(3))
    assert seen == [min(mine + module.NICE, 19)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine, "not the asker's"


def test_a_keep_out_makes_another_guide_and_reaches_the_maker():
    got: list[np.ndarray | None] = []

    def make(image: np.ndarray, todo: np.ndarray, variant: int = 0,
             keep_out: np.ndarray | None = None) -> np.ndarray:
        got.append(keep_out)
        return image.copy()

    from editor.core.guides import key

    guides = Guides(make)
    image, todo = pic(3)
    keep = np.zeros_like(todo)
    keep[12:, :] = True
    assert key(image, todo, keep) != key(image, todo) == key(image, todo, ~np.ones_like(todo))
    guides.get(image, todo)
    guides.get(image, todo, 0, keep)
    guides.get(image, todo, 0, keep.copy())  # the same keep-out: the guide made for it
    assert len(got) == 2 and got[0] is None and np.array_equal(got[1], keep)

