"""Select an object in one gesture: GrabCut inside a dragged box, or a magic wand (flood fill by
colour); and find a photo's subject on its own (`subject`, kept out of outpaints). Qt-free:
numpy in (H, W, 3) uint8, a (H, W) bool mask out; the tools in tools.py merge it into the
document's mask as one undo entry."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

GRABCUT_ITERS = 4
# GrabCut's cost grows with the pixels it models; above this side the box is cut at a lower
# resolution and the mask scaled back (an object's outline does not need every pixel).
GRABCUT_MAX_SIDE = 400
MARGIN = 0.25  # background context around the box, as a share of its size
# `subject`: GrabCut at this side at most, with this share of each side as the background rim.
SUBJECT_SIDE = 200
SUBJECT_RIM = 0.05


Box = tuple[int, int, int, int]
Rect = tuple[int, int, int, int]  # x, y, width, height (GrabCut's)


def grabcut_context(shape: tuple[int, ...], box: Box) -> tuple[Box, Box]:
    """(the box (x0, y0, x1, y1) in order and clipped to an image of `shape`, the part of the
    image grabcut reads for it: the box and a margin of background, clipped)."""
    h, w = shape[:2]
    x0, y0 = max(min(box[0], box[2]), 0), max(min(box[1], box[3]), 0)
    x1, y1 = min(max(box[0], box[2]), w), min(max(box[1], box[3]), h)
    # Only the box and a margin of background take part: the colour models then describe the
    # object's surroundings, not the far side of the photo.
    mx, my = round((x1 - x0) * MARGIN), round((y1 - y0) * MARGIN)
    return (x0, y0, x1, y1), (max(x0 - mx, 0), max(y0 - my, 0), min(x1 + mx, w), min(y1 + my, h))


def grabcut(image: np.ndarray, box: Box) -> np.ndarray:
    """The object inside `box` (x0, y0, x1, y1; image pixels) as a bool mask of the image's
    size: OpenCV GrabCut initialised with the box (outside = background). Empty when the box is
    too small to model (under 3 px a side). It reads only grabcut_context's part of `image`."""
    (x0, y0, x1, y1), (cx0, cy0, cx1, cy1) = grabcut_context(image.shape, box)
    out = np.zeros(image.shape[:2], bool)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return out

    def init(shape: tuple[int, int], scale: float) -> tuple[np.ndarray, Rect | None]:
        rect = (int((x0 - cx0) * scale), int((y0 - cy0) * scale),
                max(int((x1 - x0) * scale), 2), max(int((y1 - y0) * scale), 2))
        if rect[0] + rect[2] >= shape[1] and rect[1] + rect[3] >= shape[0]:
            # The box is the whole picture: GrabCut needs some background, so take its rim.
            rect = (1, 1, shape[1] - 2, shape[0] - 2)
        return np.zeros(shape, np.uint8), rect

    out[cy0:cy1, cx0:cx1] = _cut(image[cy0:cy1, cx0:cx1], GRABCUT_MAX_SIDE, init)
    out[:, :x0] = out[:, x1:] = False  # never outside the box the user drew
    out[:y0] = out[y1:] = False
    return out


def subject(image: np.ndarray) -> np.ndarray:
    """The photo's subject as a bool mask of its size (empty when none can be modelled):
    GrabCut with a rim of SUBJECT_RIM of each side as certain background and the rest as
    probable foreground, at SUBJECT_SIDE px. A border prior: a subject stands inside the
    frame, its background reaches the edges. On the held-out photos and the samples it finds
    a dog, a kingfisher, a footballer, a butterfly, a pagoda (0.05-0.4 s on 2 cores); a 1 px
    rim (grabcut's whole-picture case) took the background for the subject as often."""
    def init(shape: tuple[int, int], scale: float) -> tuple[np.ndarray, Rect | None]:
        labels = np.full(shape, cv2.GC_BGD, np.uint8)
        my, mx = max(1, round(SUBJECT_RIM * shape[0])), max(1, round(SUBJECT_RIM * shape[1]))
        labels[my:shape[0] - my, mx:shape[1] - mx] = cv2.GC_PR_FGD
        return labels, None

    return _cut(image, SUBJECT_SIDE, init)


def _cut(image: np.ndarray, max_side: int,
         init: Callable[[tuple[int, int], float], tuple[np.ndarray, Rect | None]]) -> np.ndarray:
    """GrabCut's foreground of `image` as a bool mask of its size, cut at `max_side` px at most:
    `init(shape, scale)` gives the starting labels and the rectangle (x, y, w, h) to start from
    (None: start from the labels) at that size."""
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    small = np.ascontiguousarray(image) if scale == 1.0 else cv2.resize(
        image, (max(round(w * scale), 1), max(round(h * scale), 1)), interpolation=cv2.INTER_AREA)
    labels, rect = init(small.shape[:2], scale)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    mode = cv2.GC_INIT_WITH_MASK if rect is None else cv2.GC_INIT_WITH_RECT
    # GrabCut starts its colour models with k-means from OpenCV's random generator (one per
    # thread): seeded, the same picture gives the same cut whatever ran before on the thread
    # (0.2 % of a kingfisher's mask moved, and the outpaint's fill with it).
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(small, labels, rect or (0, 0, 0, 0), bgd, fgd, GRABCUT_ITERS, mode)
    except cv2.error:  # one flat colour, or no background left: no model can be fitted
        return np.zeros((h, w), bool)
    fg = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.uint8)
    if scale != 1.0:
        fg = cv2.resize(fg, (w, h), interpolation=cv2.INTER_NEAREST)
    out: np.ndarray = fg > 0
    return out


def magic_wand(image: np.ndarray, seed: tuple[int, int], tolerance: int) -> np.ndarray:
    """The connected region around `seed` (x, y) whose colour is within `tolerance` (0-255, per
    channel) of the seed's, as a bool mask of the image's size (empty for a seed outside)."""
    h, w = image.shape[:2]
    x, y = seed
    out = np.zeros((h, w), bool)
    if not (0 <= x < w and 0 <= y < h):
        return out
    flood = np.zeros((h + 2, w + 2), np.uint8)
    t = (int(tolerance),) * 3
    # FIXED_RANGE compares with the seed's colour, so a gradient cannot leak the region across
    # the whole photo one small step at a time.
    flags = 8 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (255 << 8)
    cv2.floodFill(np.ascontiguousarray(image), flood, (int(x), int(y)), (0, 0, 0), t, t, flags)
    return flood[1:-1, 1:-1] > 0
