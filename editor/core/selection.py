"""Select an object in one gesture: GrabCut inside a dragged box, or a magic wand (flood fill by
colour). Qt-free: numpy in (H, W, 3) uint8, a (H, W) bool mask out; the tools in tools.py merge
it into the document's mask as one undo entry."""

from __future__ import annotations

import cv2
import numpy as np

GRABCUT_ITERS = 4
# GrabCut's cost grows with the pixels it models; above this side the box is cut at a lower
# resolution and the mask scaled back (an object's outline does not need every pixel).
GRABCUT_MAX_SIDE = 400
MARGIN = 0.25  # background context around the box, as a share of its size


Box = tuple[int, int, int, int]


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
    crop = np.ascontiguousarray(image[cy0:cy1, cx0:cx1])
    scale = min(1.0, GRABCUT_MAX_SIDE / max(crop.shape[:2]))
    small = crop if scale == 1.0 else cv2.resize(
        crop, (max(round(crop.shape[1] * scale), 1), max(round(crop.shape[0] * scale), 1)),
        interpolation=cv2.INTER_AREA)
    rect = (int((x0 - cx0) * scale), int((y0 - cy0) * scale),
            max(int((x1 - x0) * scale), 2), max(int((y1 - y0) * scale), 2))
    if rect[0] + rect[2] >= small.shape[1] and rect[1] + rect[3] >= small.shape[0]:
        # The box is the whole picture: GrabCut needs some background, so take its rim.
        rect = (1, 1, small.shape[1] - 2, small.shape[0] - 2)
    labels = np.zeros(small.shape[:2], np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(small, labels, rect, bgd, fgd, GRABCUT_ITERS, cv2.GC_INIT_WITH_RECT)
    except cv2.error:  # a box of one flat colour: no model can be fitted
        return out
    fg = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.uint8)
    if scale != 1.0:
        fg = cv2.resize(fg, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_NEAREST)
    out[cy0:cy1, cx0:cx1] = fg > 0
    out[:, :x0] = out[:, x1:] = False  # never outside the box the user drew
    out[:y0] = out[y1:] = False
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
