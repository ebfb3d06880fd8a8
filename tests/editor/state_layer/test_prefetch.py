"""The guide a guided Generate needs is made once the mask settles, before Generate is pressed,
and Generate uses it instead of making another."""

from __future__ import annotations

import numpy as np
import pytest

from editor.core import pipeline
from editor.core.guides import Guides


@pytest.fixture
def made(monkeypatch):
    masks: list[np.ndarray] = []

    def make(image: np.ndarray, todo: np.ndarray, variant: int = 0,
             keep_out: np.ndarray | None = None) -> np.ndarray:
        masks.append(todo.copy())
        return image.copy()

    monkeypatch.setattr(pipeline, "GUIDES", Guides(make))
    return masks


def test_a_settled_mask_has_its_guide_made_before_generate(qtbot, stack, made):
    c = stack.controller
    c.settings.guidance = True
    m = stack.paint()
    qtbot.waitUntil(lambda: c.prefetch.asked == 1, timeout=5000)
    n = pipeline.guides_per_batch(c.candidates)  # the candidates take turns
    assert n > 1
    qtbot.waitUntil(lambda: len(made) == n, timeout=5000)
    assert all(np.array_equal(x, m) for x in made)
    with qtbot.waitSignal(c.result_committed, timeout=10_000):
        assert c.generate()
    assert len(made) == n, "Generate used the guides made ahead"


def test_no_guide_is_made_where_generate_would_not_be_guided(qtbot, stack, made):
    c = stack.controller
    stack.paint()
    c.settings.guidance, c.settings.class_id = True, 3  # a requested class is not guided
    c.prefetch.prefetch()  # what the settle timer calls
    c.settings.guidance, c.settings.class_id = False, None
    c.prefetch.prefetch()
    assert c.prefetch.asked == 0
    c.settings.guidance = True
    c.prefetch.prefetch()
    assert c.prefetch.asked == 1
