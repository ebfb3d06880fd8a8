"""Fill from surroundings without a model (Qt-free): `region` fills a hole from a context box
around it with editor.core.exemplar.fill (shift-map, Telea for thin strokes). Thin strokes
(wires, blemishes, scratches) are filled at once (`fill_thin`); regions go to the worker as a
"fill" job (shift-map, with cancel), and photo guidance's guide is such a fill too."""

from __future__ import annotations

import numpy as np

from editor.core import exemplar
from editor.core import geometry as g
from editor.core.geometry import Rect

MAX_PIXELS = 100_000  # the immediate fill runs on the GUI thread: ~1.1 us a pixel


def immediate(mask: np.ndarray) -> bool:
    """A stroke thin and small enough to fill at once (else: a region, for the worker)."""
    n = int(np.count_nonzero(mask))
    return 0 < n <= MAX_PIXELS and exemplar.thickness(mask) <= exemplar.THIN


def fill_thin(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, Rect]:
    """`image` with the pixels of `mask` filled by Telea from a ring around them, and the
    rectangle that may have changed."""
    if not mask.any():
        raise ValueError("nothing to fill")
    return region(image, mask, pad=2 * exemplar.TELEA_RADIUS)  # the ring Telea reads


def context_box(todo: np.ndarray, pad: int | None = None) -> Rect:
    """The bounding box of `todo` grown by `pad` px, by default half the hole's size (the
    context shift-map reads), clipped to the image."""
    h, w = todo.shape
    x0, y0, x1, y1 = g.bbox(todo) or (0, 0, w, h)
    if pad is None:
        pad = max(32, (x1 - x0 + y1 - y0) // 2)
    return max(x0 - pad, 0), max(y0 - pad, 0), min(x1 + pad, w), min(y1 + pad, h)


def region(image: np.ndarray, todo: np.ndarray, side: int | None = None,
           pad: int | None = None, finish: bool = True) -> tuple[np.ndarray, Rect]:
    """(`image` with the `todo` pixels filled from their surroundings by exemplar.fill, the
    rect that changed). The crop of context_box(todo, pad) is filled at `side` px at most and,
    for a region with `finish`, its fine detail restored at full size and its tone matched to
    the hole's surroundings (a rough preview skips both)."""
    x0, y0, x1, y1 = context_box(todo, pad)
    crop, hole = image[y0:y1, x0:x1], todo[y0:y1, x0:x1]
    filled = exemplar.fill(crop, hole, side)
    if finish and exemplar.thickness(hole) > exemplar.THIN:  # shift-map, not Telea
        scale = max(x1 - x0, y1 - y0) / side if side else 1.0
        if scale > 1:
            filled = exemplar.restore_detail(filled, hole, 1.5 * scale)
        filled = exemplar.match_boundary(filled, hole)
    out = image.copy()
    out[y0:y1, x0:x1][hole] = filled[hole]
    return out, (x0, y0, x1, y1)
