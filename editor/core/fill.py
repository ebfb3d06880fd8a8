"""Fill from surroundings without a model, the part that runs at once (Qt-free): thin strokes
(wires, blemishes, scratches) take OpenCV's Telea (editor.core.exemplar.fill) in a box around
them; regions go to the worker as a "fill" job (shift-map, with cancel)."""

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
    box = g.bbox(mask)
    if box is None:
        raise ValueError("nothing to fill")
    x0, y0, x1, y1 = box
    pad = 2 * exemplar.TELEA_RADIUS  # Telea reads a ring of this width around the hole
    h, w = mask.shape
    x0, y0, x1, y1 = max(x0 - pad, 0), max(y0 - pad, 0), min(x1 + pad, w), min(y1 + pad, h)
    hole = mask[y0:y1, x0:x1]
    filled = exemplar.fill(image[y0:y1, x0:x1], hole)
    out = image.copy()
    out[y0:y1, x0:x1][hole] = filled[hole]
    return out, (x0, y0, x1, y1)
