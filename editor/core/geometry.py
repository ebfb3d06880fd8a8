"""Qt-free geometry of an edit: pixel mask -> model windows -> token masks -> composite back.

Shared by the app (through the worker) and the headless CLI, so both change exactly the same
pixels. Conventions: images are (H, W, 3) uint8, masks (H, W) bool with True = regenerate,
rectangles are `Rect`s, (x0, y0, x1, y1) with exclusive ends in image pixels; a Window's square
is (x, y, size) and may reach outside the image (padding).

The guarantees the tests check as properties:

* every masked pixel lies in a masked token cell of some window (cells round outward);
* the windows' cores cover the mask;
* compositing never changes a pixel farther than `feather` from the mask.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

# The one rectangle convention of the editor: (x0, y0, x1, y1) in image pixels, exclusive ends.
Rect = tuple[int, int, int, int]
MAX_FEATHER = 8  # the CLI promise: pixels more than this outside the mask are bit-identical
INPAINT_MAX_WINDOWS = 4  # beyond this many native windows a blob is decoded downscaled instead
# Share of known pixels every window must see. A window that is all hole has nothing to condition
# on and the model paints context-blind texture (measured on held-out photos with a 25 % box:
# 2x2 native windows inside the box); a coarser window around the whole hole sees its border.
MIN_CONTEXT = 0.35
# A mask one window can hold at up to this downscale gets that one window rather than several
# sharp ones: one decode is coherent (neighbouring windows of a weak model draw different
# things and meet at a seam), faster, and keeps the step tools (scrubber, branch, heatmap,
# re-roll) that work on single-window edits. Beyond it, sharpness wins again.
SINGLE_WINDOW_MAX_SCALE = 2.0
OUTPAINT_MAX_WINDOWS = 24  # a strip along a big photo: many sharp windows beat one blurry one
# ... unless photo guidance brings the photo's texture at full size (the guide) and the model
# only its coarse change: then 4 coarser windows score as 24 sharp ones in a fifth of the time
# (dev half, guide at 512 px, KID-Lite2 / PSNR: right 7.5 / 11.84 dB against 7.8 / 11.91 dB, 11
# s against 54 s a photo through the CLI at load 3.7; bottom 21.3 / 11.22 against 21.9 / 11.18).
GUIDED_OUTPAINT_MAX_WINDOWS = 4
# Outpainting grows new content window by window; half-core overlaps let each window continue
# what its neighbour drew instead of meeting it at a one-token seam.
OUTPAINT_OVERLAP = 0.5


def outpaint_max_windows(guided: bool) -> int:
    """How many windows an outpaint strip may take: fewer, coarser ones when photo guidance
    applies (a fresh edit with the automatic class; see pipeline.follows_photo)."""
    return GUIDED_OUTPAINT_MAX_WINDOWS if guided else OUTPAINT_MAX_WINDOWS


@dataclass(frozen=True)
class Window:
    """One model window placed on the image.

    `x, y, size` are the square it reads in image pixels (it may overhang the image: that part
    is padding). `window` is the model's side in pixels: `size / window` is the downscale
    (1.0 = native resolution). `core` (x0, y0, x1, y1) is the part of the image this window is
    responsible for regenerating: the square minus one token ring on every side that has image
    beyond it, so each regenerated cell has real context around it.
    """

    x: int
    y: int
    size: int
    window: int
    tokens: int
    core: Rect

    @property
    def scale(self) -> float:
        return self.size / self.window

    @property
    def rect(self) -> Rect:
        """The square it reads, overhang included."""
        return (self.x, self.y, self.x + self.size, self.y + self.size)

    def clipped(self, height: int, width: int) -> Rect:
        """(x0, y0, x1, y1) of the window inside an image of that size."""
        return (
            max(self.x, 0),
            max(self.y, 0),
            min(self.x + self.size, width),
            min(self.y + self.size, height),
        )


def bbox(mask: np.ndarray) -> Rect | None:
    """(x0, y0, x1, y1), exclusive ends, of the True pixels; None for an empty mask."""
    rows = np.flatnonzero(mask.any(1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def changed_box(
    before: np.ndarray, after: np.ndarray, within: Rect | None
) -> Rect | None:
    """bbox of the pixels where `before` and `after` differ, looking only inside `within`
    (x0, y0, x1, y1; None: nothing can have changed), so a brush stroke on a 24 MP mask
    compares the stroke's box, not the whole mask."""
    if within is None:
        return None
    x0, y0, x1, y1 = within
    box = bbox(before[y0:y1, x0:x1] != after[y0:y1, x0:x1])
    return None if box is None else (box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0)


def union(a: Rect | None, b: Rect
          ) -> Rect:
    """The smallest (x0, y0, x1, y1) holding both (a may be None: nothing yet)."""
    if a is None:
        return b
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _axis_positions(
    lo: int, hi: int, length: int, size: int, margin: int, overlap: float
) -> list[int]:
    """Window starts along one axis so that the cores cover [lo, hi) of an axis of `length`;
    neighbouring cores share at least `overlap` of a core (and at least one margin)."""
    if length <= size:
        return [(length - size) // 2]  # one centred window; the overhang is padding
    core = size - 2 * margin
    if hi - lo <= core:
        starts = [(lo + hi - size) // 2]
    else:
        # Overlapping cores: each later window sees part of what the earlier one made.
        step = max(min(core - margin, round(core * (1 - overlap))), 1)
        n = math.ceil((hi - lo - core) / step) + 1
        first, last = lo - margin, hi - size + margin
        starts = [round(first + (last - first) * i / (n - 1)) for i in range(n)]
    # Clamping only pushes a window towards an image edge, where its core extends to that
    # edge, so coverage of [lo, hi) survives it.
    return sorted({min(max(s, 0), length - size) for s in starts})


def _core(start: int, size: int, margin: int, length: int) -> tuple[int, int]:
    lo = 0 if start <= 0 else start + margin
    hi = length if start + size >= length else start + size - margin
    return max(lo, 0), min(hi, length)


def tile(
    mask: np.ndarray, window: int, tokens: int, scale: float = 1.0, overlap: float = 0.0,
    box: Rect | None = None,
) -> list[Window]:
    """Windows of side round(window * scale) whose cores cover every True pixel of `mask`
    (`box`: the mask's bbox when the caller has it)."""
    box = bbox(mask) if box is None else box
    if box is None:
        return []
    h, w = mask.shape
    size = max(round(window * scale), window)
    margin = math.ceil(size / tokens)  # one token cell, in image pixels
    xs = _axis_positions(box[0], box[2], w, size, margin, overlap)
    ys = _axis_positions(box[1], box[3], h, size, margin, overlap)
    out = []
    for y in ys:
        for x in xs:
            cx0, cx1 = _core(x, size, margin, w)
            cy0, cy1 = _core(y, size, margin, h)
            if mask[cy0:cy1, cx0:cx1].any():
                out.append(Window(x, y, size, window, tokens, (cx0, cy0, cx1, cy1)))
    # Windows with the most known pixels go first: later ones then see earlier results.
    known = [(~mask[max(v.y, 0) : v.y + size, max(v.x, 0) : v.x + size]).sum() for v in out]
    order = sorted(range(len(out)), key=lambda i: -known[i])
    return [out[i] for i in order]


def plan(
    mask: np.ndarray,
    window: int,
    tokens: int,
    max_windows: int = INPAINT_MAX_WINDOWS,
    overlap: float = 0.0,
    min_context: float = MIN_CONTEXT,
) -> list[Window]:
    """The windows for an edit. Inpainting (no `overlap`): one window when one at a downscale
    of at most SINGLE_WINDOW_MAX_SCALE holds the mask with `min_context` known pixels around it.
    Otherwise native resolution when at most `max_windows` cover the mask and each sees at
    least `min_context` known pixels, else the smallest downscale that does (a big blob gets
    one coherent, softer window instead of a patchwork of sharp, blind ones)."""
    scale = 1.0
    box = bbox(mask)  # once: each try below would scan the whole mask again
    if box is None:
        return []
    while not overlap and scale <= SINGLE_WINDOW_MAX_SCALE:
        wins = tile(mask, window, tokens, scale, overlap, box)
        if len(wins) == 1 and context(mask, wins[0]) >= min_context:
            return wins
        scale *= 1.25
    scale = 1.0
    while True:
        wins = tile(mask, window, tokens, scale, overlap, box)
        size = round(window * scale)
        if size >= max(mask.shape):
            return wins
        if len(wins) <= max_windows and all(context(mask, w) >= min_context for w in wins):
            return wins
        scale *= 1.25


def context(mask: np.ndarray, win: Window) -> float:
    """Share of the window's in-image pixels that are known (not to be regenerated)."""
    x0, y0, x1, y1 = win.clipped(*mask.shape)
    part = mask[y0:y1, x0:x1]
    return 1.0 - float(part.mean()) if part.size else 0.0


def crop(image: np.ndarray, x: int, y: int, size: int) -> np.ndarray:
    """The (size, size, ...) square at (x, y); outside the image, mirrored padding."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + size, w), min(y + size, h)
    part = image[y0:y1, x0:x1]
    pads = (y0 - y, y + size - y1, x0 - x, x + size - x1)
    if not any(pads):
        return part.copy()
    # BORDER_REFLECT_101 needs the pad to be smaller than the part; REPLICATE never fails.
    kind = cv2.BORDER_REFLECT_101 if max(pads) < min(part.shape[:2]) else cv2.BORDER_REPLICATE
    return cv2.copyMakeBorder(part, *pads, kind)


def window_image(image: np.ndarray, win: Window) -> np.ndarray:
    """The (window, window, 3) uint8 model input of `win`."""
    sq = crop(image, win.x, win.y, win.size)
    if win.size == win.window:
        return np.ascontiguousarray(sq)
    return cv2.resize(sq, (win.window, win.window), interpolation=cv2.INTER_AREA)


def window_mask(mask: np.ndarray, win: Window) -> np.ndarray:
    """(window, window) bool: the model-space pixels of `win` that any True pixel of the image
    `mask` touches (mirrored padding mirrors the mask too, so it counts as masked)."""
    sq = crop(mask.astype(np.uint8), win.x, win.y, win.size)
    if win.size != win.window:
        # Float: an 8-bit area average rounds a sliver of a masked pixel down to 0.
        sq = cv2.resize(sq.astype(np.float32), (win.window, win.window),
                        interpolation=cv2.INTER_AREA)
    return sq > 0


def cells_of(mask_square: np.ndarray, tokens: int) -> np.ndarray:
    """(tokens, tokens) bool: a cell is True when any pixel of it is; cells round outward, so a
    square whose side is not a multiple of `tokens` still has every pixel in a True cell."""
    size = mask_square.shape[0]
    edges = np.arange(tokens + 1) * size / tokens
    lo = np.floor(edges[:-1]).astype(int)
    hi = np.ceil(edges[1:]).astype(int)
    # Summed-area table: any-pixel per cell in O(size^2 + tokens^2).
    sat = np.zeros((size + 1, size + 1), np.int64)
    sat[1:, 1:] = mask_square.astype(np.int64).cumsum(0).cumsum(1)
    total = sat[hi][:, hi] - sat[lo][:, hi] - sat[hi][:, lo] + sat[lo][:, lo]
    return np.asarray(total > 0)


def dilate(cells: np.ndarray, ring: int = 1) -> np.ndarray:
    """Grow a token mask by `ring` cells in all 8 directions (the official editing helper's
    one-token ring: the border tokens get regenerated too, so the seam lands inside new content)."""
    if ring <= 0 or not cells.any():
        return cells.copy()
    k = np.ones((2 * ring + 1, 2 * ring + 1), np.uint8)
    return cv2.dilate(cells.astype(np.uint8), k).astype(bool)


def token_mask(
    mask: np.ndarray, win: Window, ring: int = 1, locked: np.ndarray | None = None,
    only_core: bool = False,
) -> np.ndarray:
    """The (tokens, tokens) bool mask the model regenerates for `win`, from the image mask.

    `locked` (H, W) bool: pixels the user locked. Every cell holding a locked pixel stays a
    known token, even when the dilation ring would have taken it. `only_core`: as if `mask`
    were `core_mask(mask, win)`, without making that image-sized copy.
    """
    sq = crop(mask.astype(np.uint8), win.x, win.y, win.size).astype(bool)
    # Padding mirrors the mask too; only real pixels may ask for regeneration.
    h, w = mask.shape
    x0, y0, x1, y1 = win.core if only_core else win.clipped(h, w)
    real = np.zeros_like(sq)
    real[y0 - win.y : y1 - win.y, x0 - win.x : x1 - win.x] = True
    cells = dilate(cells_of(sq & real, win.tokens), ring)
    if locked is not None:
        cells &= ~token_mask(locked, win, 0)
    return cells


def cell_pixels(cells: np.ndarray, win: Window, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the image pixels of `win`'s True cells (cells round outward, as cells_of)."""
    out = np.zeros(shape, bool)
    t, size = cells.shape[0], win.size
    edges = np.arange(t + 1) * size / t
    lo, hi = np.floor(edges[:-1]).astype(int), np.ceil(edges[1:]).astype(int)
    sq = np.zeros((size, size), bool)
    for i, j in zip(*np.nonzero(cells), strict=True):
        sq[lo[i] : hi[i], lo[j] : hi[j]] = True
    h, w = shape
    x0, y0, x1, y1 = win.clipped(h, w)
    out[y0:y1, x0:x1] = sq[y0 - win.y : y1 - win.y, x0 - win.x : x1 - win.x]
    return out


def locked_pixels(locked: np.ndarray | None, win: Window) -> np.ndarray | None:
    """The pixels of every cell of `win` that holds a locked pixel: compositing keeps them."""
    if locked is None or not locked.any():
        return None
    return cell_pixels(token_mask(locked, win, 0), win, locked.shape)


def core_mask(mask: np.ndarray, win: Window) -> np.ndarray:
    """The part of `mask` this window regenerates (inside its core)."""
    out = np.zeros_like(mask, dtype=bool)
    x0, y0, x1, y1 = win.core
    out[y0:y1, x0:x1] = mask[y0:y1, x0:x1]
    return out


def alpha(mask: np.ndarray, feather: int) -> np.ndarray:
    """(H, W) float32 blend weight: 1 on the mask, a linear ramp over `feather` pixels outside
    it, and exactly 0 beyond, so those pixels are copied bit for bit."""
    if feather <= 0:
        return mask.astype(np.float32)
    # Distance of every unmasked pixel to the nearest masked one (mask pixels are the zeros).
    d = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    a = np.clip((feather + 1 - d) / (feather + 1), 0.0, 1.0)
    a[d > feather] = 0.0
    return a.astype(np.float32)


def blend_region(
    image: np.ndarray,
    result: np.ndarray,
    win: Window,
    mask: np.ndarray,
    feather: int = 4,
    keep: np.ndarray | None = None,
    hole: np.ndarray | None = None,
    seam: int = 0,
) -> tuple[np.ndarray, Rect]:
    """`image` with the model's (window, window, 3) `result` for `win` blended in where `mask`
    (already restricted to this window, e.g. by `core_mask`) says, feathered by `feather` px:
    returns (the window's in-image region of that, its rect (x0, y0, x1, y1)), without copying
    the whole image (a preview step on a 24 MP photo costs 0.7 ms instead of 23).

    `hole` (H, W) bool: pixels that are generated content anyway (the edit's whole mask, which
    earlier windows filled); there the ramp is `seam` px wide, so neighbouring windows cross-fade
    instead of meeting at a line.

    Pixels in `keep` (H, W) bool (locked cells), or outside `hole` and farther than `feather`
    from `mask`, are the input's, bit for bit.
    """
    h, w = mask.shape
    x0, y0, x1, y1 = rect = win.clipped(h, w)
    old = image[y0:y1, x0:x1]
    if x0 >= x1 or y0 >= y1:
        return old.copy(), rect
    sq = result
    if win.size != win.window:
        sq = cv2.resize(result, (win.size, win.size), interpolation=cv2.INTER_CUBIC)
    part = sq[y0 - win.y : y1 - win.y, x0 - win.x : x1 - win.x]
    # The feather ramp may cross the window's border; compute it on a region padded by the
    # feather so distances near the border are right, then keep the window part.
    f = max(int(feather), 0)
    s = max(int(seam), f) if hole is not None else f
    px0, py0, px1, py1 = max(x0 - s, 0), max(y0 - s, 0), min(x1 + s, w), min(y1 + s, h)
    m = mask[py0:py1, px0:px1]
    a = alpha(m, f)[y0 - py0 : y1 - py0, x0 - px0 : x1 - px0]
    if hole is not None and s > f:
        wide = alpha(m, s)[y0 - py0 : y1 - py0, x0 - px0 : x1 - px0]
        a = np.where(hole[y0:y1, x0:x1], wide, a)
    if keep is not None:
        a[keep[y0:y1, x0:x1]] = 0.0
    if not a.any():
        return old.copy(), rect
    blend = old.astype(np.float32) + a[..., None] * (part.astype(np.float32) - old)
    new = np.clip(np.rint(blend), 0, 255).astype(np.uint8)
    return np.where(a[..., None] > 0, new, old), rect


def extend(
    image: np.ndarray,
    mask: np.ndarray,
    left: int = 0,
    top: int = 0,
    right: int = 0,
    bottom: int = 0,
    fill: int = 127,
) -> tuple[np.ndarray, np.ndarray]:
    """Grow the canvas (outpaint): the new border is `fill` grey and masked, nothing else is."""
    if min(left, top, right, bottom) < 0:
        raise ValueError("canvas extensions must be >= 0 pixels")
    h, w = mask.shape
    img = np.full((h + top + bottom, w + left + right, 3), fill, np.uint8)
    img[top : top + h, left : left + w] = image
    m = np.ones(img.shape[:2], bool)
    m[top : top + h, left : left + w] = mask
    return img, m


def covered(mask: np.ndarray, windows: Iterable[Window]) -> np.ndarray:
    """The True pixels of `mask` that lie inside some window's core (for tests and checks)."""
    cov = np.zeros_like(mask, dtype=bool)
    for v in windows:
        x0, y0, x1, y1 = v.core
        cov[y0:y1, x0:x1] = True
    return np.asarray(mask & cov)
