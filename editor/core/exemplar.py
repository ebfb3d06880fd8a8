"""Fills made of the photo itself: exemplar inpainting and detail transfer (Qt-free, torch-free).

* `fill`: a classical exemplar fill. OpenCV's shift-map (He & Sun, "Statistics of Patch Offsets
  for Image Completion", ECCV 2012; opencv-contrib xphoto) rearranges real pixels of the photo,
  which wins on texture; strokes a few pixels thick go to Telea, which is far faster there and
  as good (nothing to rearrange in a line). Its copied pieces are then fused in the gradient
  domain (`fuse_pieces`), so a piece copied from elsewhere in other light takes its
  neighbours' tone.
* `restore_detail`: the generated fill's fine detail re-synthesised from the known region,
  with the fill itself as the guide (image analogies, Hertzmann et al. 2001, done by blocks as
  in image quilting, Efros & Freeman 2001): every block of the hole takes the high-frequency
  band of the known block whose low-frequency neighbourhood matches the fill's. The decoder's
  blur and the upscaling of a downscaled window are replaced by texture that really is in the
  photo, while the fill's structure and colour (the low band) are kept.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from editor.core import poisson

# Widest stroke (px, the largest distance from a masked pixel to the nearest known one) that
# goes to Telea instead of shift-map.
THIN = 4.0
TELEA_RADIUS = 5  # px of known pixels around a stroke that Telea reads
# Most candidate blocks searched per restore_detail call: a 512 px photo has ~11k; larger photos
# take every k-th so the search stays ~100 ms.
MAX_CANDIDATES = 20_000
# Smoothing (px, along the hole's edge) of the tone step match_boundary removes.
SEAM_SIGMA = 8.0
SEAM_TONE = 24.0  # grey levels (RGB distance): a step about this large counts half
# Reach (px) of the known pixels match_boundary compares with those at the hole's edge to tell
# thin structure along the edge from light. Dev half, the guide alone, 6 runs, KID-Lite2 /
# PSNR box, right, bottom: without 2.4 / 13.50, 5.7 / 11.95, 12.6 / 12.40; 6 px 2.3 / 13.36,
# 5.6 / 11.89, 12.6 / 12.24; 8 px alike but a sky's gradient then counted as structure.
STEADY_REACH = 6
# Share of a hole that shift-map left black, in a photo with black pixels of its own, above
# which those are taken as missed (see fill). A few black pixels are a copy of the photo's.
MISSED_SHARE = 0.01
# Pixels (either side) of a seam between two copied pieces of a downscaled fill carried to full
# size (_copy_up) that count as rough. Dev half, the guide alone, KID-Lite2 box / right /
# bottom (6 runs): 1 px 3.1 / 5.7 / 12.3, 3 px 2.4 / 5.7 / 12.6, 6 px 2.8 / 5.8 / 12.8.
SEAM_ROUGH = 3
# fuse_pieces stops when its residual is this share of the first: within 1-5 grey levels of the
# exact solution on object removals (26-80 k hole pixels), 0.1-0.2 s.
FUSE_TOL = 1e-2
# At the hole's edge, a step that changes the colour is a subject's edge, not light (same_colour):
# grey levels of RGB distance from grey that count half, and the least weight such a step keeps.
# Dev half, product path, 3 runs, PSNR box / strokes / right / bottom: 48 costs 0.03-0.11 dB,
# 32 0.07-0.15 dB; 64 left a faint glow of a kingfisher's orange over the fill.
TINT = 48.0
TINT_FLOOR = 0.02


def light(step: np.ndarray) -> np.ndarray:
    """How far a step in tone `step` (..., 3) RGB is taken for light, 1 to 0: a step of many
    grey levels is structure (SEAM_TONE), not light."""
    out: np.ndarray = 1 / (1 + (np.linalg.norm(step, axis=-1) / SEAM_TONE) ** 2)
    return out


def same_colour(step: np.ndarray) -> np.ndarray:
    """How far the two sides of a step `step` (..., 3) RGB are one colour in other light, 1 to
    TINT_FLOOR: light brightens or darkens, a subject the mask cuts into changes the colour
    (orange beside beige bokeh), and its colour must not spread into the fill as a glow."""
    tint = np.linalg.norm(step - step.mean(-1, keepdims=True), axis=-1) / TINT
    out: np.ndarray = np.maximum(np.exp(-np.log(2) * tint * tint), TINT_FLOOR)
    return out


def thickness(mask: np.ndarray) -> float:
    """Half the widest part of the mask in pixels (0 for an empty mask)."""
    if not mask.any():
        return 0.0
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    return float(dist.max())


def fill(image: np.ndarray, mask: np.ndarray, max_side: int | None = None,
         keep_out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """((H, W, 3) uint8 `image` with the `mask` (H, W) bool pixels filled from the rest of it,
    (H, W) bool: the filled pixels that are not a copy of a known pixel, so have no fine detail
    of their own: Telea's, shift-map's misses, and where a downscaled fill's copy could not be
    carried to full size).

    `max_side`: fill at most at this resolution (shift-map's time grows faster than the pixel
    count: a 128 px window with a large hole takes ~0.7 s, at 64 px ~0.1 s) and carry the fill
    to full size as copies of full-size pixels (_copy_up); the known pixels stay exact. The
    copied pieces are fused in the gradient domain (fuse_pieces) at the size the fill is made:
    dev half, the guide alone, 3 runs, PSNR box 13.38 -> 13.89 dB, right 11.84 -> 12.01,
    bottom 12.21 -> 12.52, KID-Lite2 within its noise (1.2 -> 1.4, 5.2 -> 5.2, 11.6 -> 12.0).

    `keep_out` (H, W) bool: known pixels that are not copied (see _fill_keeping_out)."""
    if not mask.any():
        return image.copy(), mask.copy()
    if mask.all():
        raise ValueError("nothing to fill from: every pixel is masked")
    thin = thickness(mask) <= THIN  # a distance transform: once
    if keep_out is not None and not thin:
        kept = _fill_keeping_out(image, mask, max_side, keep_out)
        if kept is not None:
            return kept
    if thin:
        return _raw_fill(image, mask, thin=True)
    h, w = mask.shape
    if max_side is None or max(h, w) <= max_side:
        out, rough = _raw_fill(image, mask, thin=False)
        shift, found = _shifts(image, mask, out)
        return fuse_pieces(image, mask, out, shift, found & ~rough[mask]), rough
    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    # A low-resolution pixel is masked when any of its source pixels is.
    small_mask = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
    if small_mask.all():
        small_mask[...] = False
        small_mask[1:-1, 1:-1] = True
    small_out, small_rough = _raw_fill(small, small_mask, thickness(small_mask) <= THIN)
    shift, found = _shifts(small, small_mask, small_out)
    found &= ~small_rough[small_mask]
    out, rough = _copy_up(image, mask, small_mask, small_out, small_rough, shift, found)
    # The pieces' tone is evened out where the copies are made (there the shifts are exact)
    # and the offset carried up with them: bounded time at any photo size.
    offset = fuse_pieces(small, small_mask, small_out, shift, found).astype(np.float32) - small_out
    offset = cv2.resize(offset, (w, h), interpolation=cv2.INTER_LINEAR)
    fused = np.clip(out + offset, 0, 255).round().astype(np.uint8)
    return np.where(mask[..., None], fused, out), rough


def _raw_fill(image: np.ndarray, mask: np.ndarray, thin: bool) -> tuple[np.ndarray, np.ndarray]:
    """`fill` at this size, without fuse_pieces: Telea for a `thin` mask, else shift-map."""
    bgr = np.ascontiguousarray(image[..., ::-1])
    m8 = mask.astype(np.uint8) * 255
    if thin:
        return cv2.inpaint(bgr, m8, TELEA_RADIUS, cv2.INPAINT_TELEA)[..., ::-1].copy(), mask.copy()
    out = _shift_map(bgr, m8)
    # Pixels shift-map found no shift for come back black (deep in a strip at the picture's
    # edge: at full size it misses the far third of a 30 % bottom strip): those are filled from
    # their surroundings by Telea. Where the photo has black pixels too, black may be a copy:
    # when over MISSED_SHARE of the hole is black, shift-map runs again on the photo lifted to
    # grey level 1, where black means missed (else the misses stayed black bands).
    missed = mask & ~out.any(-1)
    if not bgr[~mask].any(-1).all():
        if missed.sum() > MISSED_SHARE * mask.sum():
            out = _shift_map(np.maximum(bgr, 1), m8)
            missed = mask & ~out.any(-1)
        else:
            missed[...] = False
    out[~mask] = bgr[~mask]
    if missed.any():
        out = cv2.inpaint(out, missed.astype(np.uint8) * 255, TELEA_RADIUS, cv2.INPAINT_TELEA)
    return out[..., ::-1].copy(), missed


def _fill_keeping_out(image: np.ndarray, mask: np.ndarray, max_side: int | None,
                      keep_out: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """`fill` that copies none of the `keep_out` pixels (the user's keep-out brush, over a
    subject that must not come back in the fill: a second dog beside the first), or None when
    they change nothing or leave nothing to copy from. Shift-map fills them too, as part of the
    hole, and they are put back. With `max_side`, the larger hole is filled at a side smaller by
    the square root of the growth (half at most): about as long as the hole alone (the dog
    sample's 30 % outpaint guide, the dog kept out: 2.8-3.3 s at the same side, 0.8 s at the
    smaller one, 0.6-0.8 s without the keep-out); the copies are carried to full size as ever.
    Telea's thin strokes copy nothing: `fill` does not ask for them."""
    hole = mask | keep_out
    if hole.all() or np.array_equal(hole, mask):
        return None
    side = None if max_side is None else round(
        max_side * max(0.5, math.sqrt(mask.sum() / hole.sum())))
    out, rough = fill(image, hole, side)
    back = keep_out & ~mask
    out[back] = image[back]
    return out, rough & mask


def _copy_up(image: np.ndarray, mask: np.ndarray, small_mask: np.ndarray, small_out: np.ndarray,
             small_rough: np.ndarray, shift: np.ndarray, found: np.ndarray,
             ) -> tuple[np.ndarray, np.ndarray]:
    """`fill`'s result at full size from its fill of the downscaled `small`: every hole pixel
    copies the full-size pixel its low-resolution pixel's shift points to (the shift scaled
    up), so the fill is the photo's own full-size texture, not an upsampled blur; where that
    lands off the known pixels or the pixel had no shift (`small_rough`), the upsampled fill
    stays and counts as rough, as do the seams between copied pieces. Dev half, the guide
    alone, KID-Lite2 (6 runs) with restore_detail on the rough pixels against the upsampled
    fill with restore_detail everywhere: box 3.3 -> 2.4, right strips 7.0 -> 5.7, bottom
    15.7 -> 12.6; restore_detail on the copies too: box 3.3, right 7.5, bottom 15.2; on the
    pixels without a copy only: box 3.9, right 5.9, bottom 14.1."""
    big_h, big_w = mask.shape
    h, w = small_mask.shape
    up = cv2.resize(small_out, (big_w, big_h), interpolation=cv2.INTER_CUBIC)
    out = np.where(mask[..., None], up, image)
    grid = np.full((h, w), -1, np.int64)
    grid[small_mask] = np.arange(int(small_mask.sum()))
    ys, xs = np.nonzero(mask)
    cell = grid[np.minimum(ys * h // big_h, h - 1), np.minimum(xs * w // big_w, w - 1)]
    ok = (cell >= 0) & found[cell.clip(0)]
    ty = ys + np.round(shift[cell.clip(0), 0] * big_h / h).astype(np.int64)
    tx = xs + np.round(shift[cell.clip(0), 1] * big_w / w).astype(np.int64)
    ok &= (ty >= 0) & (ty < big_h) & (tx >= 0) & (tx < big_w)
    ok[ok] &= ~mask[ty[ok], tx[ok]]
    out[ys[ok], xs[ok]] = image[ty[ok], tx[ok]]
    rough = np.zeros_like(mask)
    rough[ys[~ok], xs[~ok]] = True
    # Where two copied pieces meet (and at the hole's edge) the texture steps: SEAM_ROUGH px
    # either side count as rough too, for restore_detail's blended blocks to join them.
    label = np.zeros(mask.shape, np.int64)  # each pixel's source offset as one number
    label[ys, xs] = np.where(ok, (ty - ys) * (2 * big_w + 1) + (tx - xs), np.iinfo(np.int64).min)
    seam = np.zeros_like(mask)
    seam[:, 1:] |= label[:, 1:] != label[:, :-1]
    seam[1:] |= label[1:] != label[:-1]
    width = 2 * SEAM_ROUGH + 1
    rough |= mask & (cv2.dilate(seam.astype(np.uint8), np.ones((width, width), np.uint8)) > 0)
    return out, rough


def fuse_pieces(image: np.ndarray, mask: np.ndarray, out: np.ndarray, shift: np.ndarray,
                copied: np.ndarray) -> np.ndarray:
    """`out` (shift-map's fill of `mask` in `image`) with the tone of its copied pieces evened
    out in the gradient domain, as shift-map editing (Pritch et al. 2009) and Photomontage
    (Agarwala et al. 2004) finish theirs: the fill whose gradients are the copies' own inside
    each piece and, across a seam between pieces or at the hole's edge, those of the copies'
    sources there (so a pale patch of sky copied into a darker part of it takes the tone its
    neighbours have). `shift` (N, 2) and `copied` (N,): each of the N hole pixels
    np.argwhere(mask)'s copy offset, and whether it is one. A step far beyond the sources'
    counts little (SEAM_TONE): structure the copy cut across, not light; so does one at the
    hole's edge that changes the colour (same_colour): a subject the mask cuts into.

    The offset is grey, the same in R, G and B: it evens out light, which brightens or darkens,
    and never tints. Solved per channel it tinted: a table's wood copied into a red saucer came
    out red-washed, a baboon's green fur purple (dev half and the four samples, the guide alone,
    3 runs, KID-Lite2 / PSNR box 4.3 / 13.82 -> 3.6 / 13.61 dB, right 6.4 / 12.52 -> 6.5 /
    12.49, bottom 6.9 / 12.77 -> 6.9 / 12.67); it is one channel to solve instead of three."""
    o = out.astype(np.float32)
    sy, sx = np.zeros(mask.shape, np.int64), np.zeros(mask.shape, np.int64)
    src = np.zeros(mask.shape, bool)
    sy[mask], sx[mask], src[mask] = shift[:, 0], shift[:, 1], copied
    rhs = np.zeros_like(o)
    weights = []
    for dy, dx in ((0, 1), (1, 0)):
        g, wt = _seam_gradients(image, mask, o, sy, sx, src, dy, dx)
        flow = (o[: o.shape[0] - dy, : o.shape[1] - dx] - o[dy:, dx:] - g) * wt[..., None]
        rhs[: o.shape[0] - dy, : o.shape[1] - dx] -= flow
        rhs[dy:, dx:] += flow
        weights.append(wt)
    offset = poisson.solve(mask, weights[0], weights[1], rhs.mean(-1, keepdims=True), tol=FUSE_TOL)
    fused = np.clip(o + offset, 0, 255).round().astype(np.uint8)
    return np.where(mask[..., None], fused, out)


def _seam_gradients(image: np.ndarray, mask: np.ndarray, o: np.ndarray, sy: np.ndarray,
                    sx: np.ndarray, src: np.ndarray, dy: int, dx: int,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(target difference p - q (H', W', 3), weight (H', W')) of every pair of neighbours p
    and q = p + (dy, dx) (fuse_pieces): the fill's own inside a piece, else the mean of the
    known difference at the same offset from the copied end(s)' sources."""
    h, w = mask.shape
    hh, ww = h - dy, w - dx
    p, q = (slice(0, hh), slice(0, ww)), (slice(dy, h), slice(dx, w))
    g = o[p] - o[q]
    same = src[p] & src[q] & (sy[p] == sy[q]) & (sx[p] == sx[q])
    seam = (mask[p] | mask[q]) & ~same & (src[p] | src[q])
    yy, xx = np.mgrid[:hh, :ww]
    total, n = np.zeros_like(g), np.zeros((hh, ww), np.float32)
    known = ~mask
    img = image.astype(np.float32)
    for end in (p, q):
        ay, ax = yy + sy[end], xx + sx[end]
        ok = seam & src[end] & (ay >= 0) & (ax >= 0) & (ay + dy < h) & (ax + dx < w)
        ay, ax = np.where(ok, ay, 0), np.where(ok, ax, 0)
        ok &= known[ay, ax] & known[ay + dy, ax + dx]
        total += np.where(ok[..., None], img[ay, ax] - img[ay + dy, ax + dx], 0)
        n += ok
    have = n > 0
    target = total / np.maximum(n, 1)[..., None]
    d = g - target
    trust = light(d) * np.where(mask[p] != mask[q], same_colour(d), 1.0)  # at the hole's edge
    weight = np.where(have, trust, 1.0) * (mask[p] | mask[q])
    return np.where(have[..., None], target, g), weight.astype(np.float32)


def _shifts(image: np.ndarray, mask: np.ndarray, out: np.ndarray,
            rounds: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """((N, 2) shift, (N,) found) of the N hole pixels np.argwhere(mask) of shift-map's fill
    `out`: out[p] == image[p + shift], a known pixel. Shift-map copies pixels, so its fill is the
    photo under a piecewise-constant shift: each hole pixel's 3 x 3 neighbourhood in `out` is
    looked up among the wholly known ones (by hash), then the shifts are made coherent: in
    red-black rounds each pixel takes its own shift or a neighbour's, whichever copies its
    pixel exactly with the fewest neighbours of another shift, so a flat sky copied from one
    place is carried up from one place, not from a scatter of equal pixels."""
    h, w = mask.shape
    span = 2 * w + 1  # a shift is one number, dy * span + dx, so comparing is one integer test
    colour, filled = _packed(image).ravel(), _packed(out)
    shift, found = _looked_up(filled, mask, span)
    hole = np.argwhere(mask)
    index = np.full((h, w), -1, np.int64)
    index[mask] = np.arange(len(hole))
    nb = hole[:, None] + np.array([(-1, 0), (1, 0), (0, -1), (0, 1)])[None]  # (N, 4, 2)
    inside = (nb[..., 0] >= 0) & (nb[..., 0] < h) & (nb[..., 1] >= 0) & (nb[..., 1] < w)
    nb_idx = np.where(inside, index[nb[..., 0].clip(0, h - 1), nb[..., 1].clip(0, w - 1)], -1)
    has = nb_idx >= 0
    known, target = (~mask).ravel(), filled[mask]
    rows = np.arange(len(hole))
    red = (hole.sum(1) % 2) == 0
    for _ in range(rounds):
        for part in (red, ~red):
            nb_shift = np.where(has, shift[nb_idx.clip(0)], 0)  # (N, 4)
            nb_found = has & found[nb_idx.clip(0)]
            cand = np.concatenate([shift[:, None], nb_shift], 1)  # (N, 5)
            dy = np.floor_divide(cand + w, span)
            sy, sx = hole[:, :1] + dy, hole[:, 1:] + cand - dy * span
            valid = np.concatenate([found[:, None], nb_found], 1)
            valid &= (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
            src = (sy * w + sx).clip(0, h * w - 1)
            valid &= known[src] & (colour[src] == target[:, None])
            differ = ((cand[:, :, None] != nb_shift[:, None]) & nb_found[:, None]).sum(-1)
            best = np.where(valid, differ, 99).argmin(1)
            take = part & valid[rows, best]
            shift = np.where(take, cand[rows, best], shift)
            found |= take
    dy = np.floor_divide(shift + w, span)
    return np.stack([dy, shift - dy * span], 1), found


def _packed(image: np.ndarray) -> np.ndarray:
    """(H, W) int64: every RGB pixel of `image` as one number."""
    out: np.ndarray = (image.astype(np.int64) << np.array([16, 8, 0])).sum(-1)
    return out


def _looked_up(filled: np.ndarray, mask: np.ndarray, span: int) -> tuple[np.ndarray, np.ndarray]:
    """((N,) shift as dy * span + dx, (N,) found) of the hole pixels of `filled` (packed) whose
    3 x 3 neighbourhood equals a wholly known one, found by a hash of the 9 pixels."""
    h, w = mask.shape
    pad = np.pad(filled, 1, mode="edge").astype(np.uint64)
    weights = np.random.default_rng(0).integers(1, 2**62, 9, dtype=np.uint64)
    code = np.zeros((h, w), np.uint64)
    for k, (dy, dx) in enumerate(np.ndindex(3, 3)):
        code += pad[dy : dy + h, dx : dx + w] * weights[k]  # wraps around: a hash
    whole = cv2.erode((~mask).astype(np.uint8), np.ones((3, 3), np.uint8),
                      borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    known_at, known_code = np.argwhere(whole), code[whole]
    order = np.argsort(known_code)
    known_at, known_code = known_at[order], known_code[order]
    hole = np.argwhere(mask)
    shift = np.zeros(len(hole), np.int64)
    if not len(known_code):
        return shift, np.zeros(len(hole), bool)
    i = np.searchsorted(known_code, code[mask]).clip(0, len(known_code) - 1)
    found: np.ndarray = known_code[i] == code[mask]
    d = known_at[i] - hole
    shift[found] = (d[:, 0] * span + d[:, 1])[found]
    return shift, found


def _shift_map(bgr: np.ndarray, m8: np.ndarray) -> np.ndarray:
    out = np.zeros_like(bgr)
    cv2.xphoto.inpaint(bgr, 255 - m8, out, cv2.xphoto.INPAINT_SHIFTMAP)  # its mask = known
    return out


def match_boundary(filled: np.ndarray, hole: np.ndarray, sigma: float = SEAM_SIGMA,
                   keep_out: np.ndarray | None = None) -> np.ndarray:
    """`filled` (H, W, 3) uint8 with its `hole` pixels offset so that, in tone, they meet the
    known pixels around the hole (gradient-domain blending, Perez et al. 2003, for the low band
    only). Shift-map copies texture from elsewhere in the photo, where the light may differ
    (the sky's gradient, a shadow): its seam with the surroundings shows as a step in tone. The
    step along the hole's edge, smoothed along the edge by `sigma` px so texture is not
    smeared, is interpolated smoothly (harmonically) over the hole and added; the texture stays
    the copied one. Pixels outside `hole` are returned unchanged. Kept-out pixels (`keep_out`)
    set no tone: the fill does not carry on a subject the user kept out of it."""
    if not hole.any() or hole.all():
        return filled.copy()
    img = filled.astype(np.float32)
    known = (~hole if keep_out is None else ~hole & ~keep_out).astype(np.float32)
    k3 = np.ones((3, 3), np.float32)
    # Hole pixels touching a known pixel: their step is the known neighbours' mean less them.
    n_known = cv2.filter2D(known, -1, k3, borderType=cv2.BORDER_CONSTANT)
    edge = hole & (n_known > 0)
    around = cv2.filter2D(img * known[..., None], -1, k3, borderType=cv2.BORDER_CONSTANT)
    step = np.where(edge[..., None], around / np.maximum(n_known, 1)[..., None] - img, 0)
    # A large step is structure (an edge the copy cut across), not light: it counts little,
    # or a wall's tone would bleed into the sky beside it.
    trust = edge * light(step)
    colour = edge * same_colour(step)
    w = cv2.GaussianBlur(trust.astype(np.float32), (0, 0), sigma)
    step = cv2.GaussianBlur((step * trust[..., None]).astype(np.float32), (0, 0), sigma)
    step = step / np.maximum(w, 1e-6)[..., None]
    # Where the known pixels at the edge differ from those a few px further out, the edge runs
    # along thin structure (a white pole beside a night sky), not light: the step fades there,
    # else a whole stretch of it came back at full size and spread as a glow into the fill.
    reach = np.ones((2 * STEADY_REACH + 1,) * 2, np.float32)
    n_far = cv2.filter2D(known, -1, reach, borderType=cv2.BORDER_CONSTANT)
    far = cv2.filter2D(img * known[..., None], -1, reach, borderType=cv2.BORDER_CONSTANT)
    near_far = (around / np.maximum(n_known, 1)[..., None]
                - far / np.maximum(n_far, 1)[..., None])
    # Nor does a subject's colour at the edge (`colour`, weighed before the step was smoothed).
    steady = edge * light(near_far) * colour
    steady = cv2.GaussianBlur(steady.astype(np.float32), (0, 0), sigma) / np.maximum(
        cv2.GaussianBlur(edge.astype(np.float32), (0, 0), sigma), 1e-6)
    step = step * steady[..., None]
    offset = _harmonic(step, edge, hole)
    out = np.clip(img + offset, 0, 255).round().astype(np.uint8)
    return np.where(hole[..., None], out, filled)


def _harmonic(values: np.ndarray, fixed: np.ndarray, region: np.ndarray, side: int = 64,
              iters: int = 400) -> np.ndarray:
    """(H, W, C): `values` at the `fixed` pixels, interpolated harmonically (a membrane) over
    the rest of `region`, zero outside it. Solved by Jacobi iterations at `side` px at most
    (the offset is smooth) and upsampled; the picture's border is free (Neumann)."""
    h, w = region.shape
    s = min(1.0, side / max(h, w))
    size = (max(2, round(w * s)), max(2, round(h * s)))
    weight = cv2.resize(fixed.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    val = cv2.resize(values * fixed[..., None], size, interpolation=cv2.INTER_AREA)
    fix = weight > 0.05
    val = np.where(fix[..., None], val / np.maximum(weight, 1e-6)[..., None], 0)
    inside = cv2.resize(region.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
    free = inside & ~fix
    # Known pixels beyond the edge constrain nothing: neighbours are averaged over the
    # region and the edge only. Free pixels start at the mean step.
    live = np.pad((inside | fix).astype(np.float32), 1)[..., None]
    count = _neighbours(live)
    u = np.where(free[..., None], val[fix].mean(0) if fix.any() else 0, val).astype(np.float32)
    for _ in range(iters):
        p = np.pad(u, ((1, 1), (1, 1), (0, 0)), mode="edge") * live
        u = np.where(free[..., None], _neighbours(p) / np.maximum(count, 1), val)
    up = cv2.resize(u, (w, h), interpolation=cv2.INTER_LINEAR)
    out: np.ndarray = np.where(region[..., None], up, 0).astype(np.float32)
    return out


def _neighbours(p: np.ndarray) -> np.ndarray:
    """The sum of the 4 neighbours of every inner pixel of the padded `p`."""
    out: np.ndarray = p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]
    return out


def _blocks(a: np.ndarray, q: int) -> np.ndarray:
    """(H, W, C) -> (H // q, W // q, C): the mean of every q x q cell."""
    h, w = a.shape[0] // q * q, a.shape[1] // q * q
    out: np.ndarray = a[:h, :w].reshape(h // q, q, w // q, q, -1).mean((1, 3))
    return out


def restore_detail(
    result: np.ndarray, mask: np.ndarray, sigma: float = 3.0, cell: int | None = None,
    coherence: float = 1.0, keep_out: np.ndarray | None = None,
) -> np.ndarray:
    """`result` (H, W, 3) uint8 with its `mask` pixels' band above `sigma` (Gaussian, px)
    replaced by the matching known blocks' band. Pixels outside `mask` are returned unchanged.

    Blocks are 2 * `cell` px, laid every `cell` px and blended with a Hann window (a partition of
    unity). Matching compares the low band over the 4 x 4 cells around a block (4 * `cell` px).
    As in shift-map, neighbouring blocks prefer the same offset into the photo (`coherence`
    weighs that against the match), so the band comes in coherent pieces instead of a patchwork
    of unrelated blocks. No block is taken from near the `keep_out` pixels. Deterministic.
    """
    h, w = mask.shape
    # Blocks grow with the band they carry: a wide band holds structure.
    q = int(cell) if cell is not None else max(4, round(0.75 * sigma))
    if not mask.any() or h < 8 * q or w < 8 * q:
        return result.copy()
    img = result.astype(np.float32)
    low = cv2.GaussianBlur(img, (0, 0), sigma)
    high = img - low
    feat = _blocks(low, q)  # (gh, gw, 3)
    gh, gw = feat.shape[:2]
    hole = _blocks(mask.astype(np.float32)[..., None], q)[..., 0] > 0  # cells touching the hole
    # The 4 x 4 cells around cell (i, j) are cells i-1..i+2, j-1..j+2: block (i, j) covers
    # cells i..i+1, j..j+1, in the middle.
    pad = np.pad(feat, ((1, 2), (1, 2), (0, 0)), mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(pad, (4, 4), (0, 1))  # (gh, gw, 3, 4, 4)
    desc = win.reshape(gh, gw, -1).astype(np.float32)
    # Sources: blocks whose whole neighbourhood is known and inside the image.
    near = hole if keep_out is None else hole | (_blocks(keep_out.astype(np.float32)[..., None],
                                                         q)[..., 0] > 0)
    near = cv2.dilate(near.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    ok = ~near
    ok[:1], ok[-3:], ok[:, :1], ok[:, -3:] = False, False, False, False
    cand = np.argwhere(ok)
    blocks = np.zeros((gh, gw), bool)
    blocks[:-1, :-1] = hole[:-1, :-1] | hole[1:, 1:] | hole[1:, :-1] | hole[:-1, 1:]
    query = np.argwhere(blocks)
    if len(cand) == 0 or len(query) == 0:
        return result.copy()
    if len(cand) > MAX_CANDIDATES:
        cand = cand[:: -(-len(cand) // MAX_CANDIDATES)]
    src = _coherent_sources(desc, query, cand, ok, coherence)
    detail = _quilt(high, src, query, q)
    out = np.clip(low + detail, 0, 255).round().astype(np.uint8)
    return np.where(mask[..., None], out, result)


def _quilt(high: np.ndarray, src: np.ndarray, query: np.ndarray, q: int) -> np.ndarray:
    """`high` (H, W, 3) with the 2q x 2q blocks at the `query` cells replaced by those at the
    `src` cells (both (N, 2) in cells of q px), blended with a Hann window."""
    h, w = high.shape[:2]
    gh, gw = h // q, w // q
    b = 2 * q
    hann = np.sin(np.pi * (np.arange(b) + 0.5) / b) ** 2
    weight = (hann[:, None] * hann[None, :])[..., None].astype(np.float32)  # (b, b, 1)
    # Every chosen source block at once, (N, b, b, 3); sources lie wholly inside the image.
    ys = src[:, 0, None] * q + np.arange(b)
    xs = src[:, 1, None] * q + np.arange(b)
    blk = high[ys[:, :, None], xs[:, None, :]] * weight
    # Accumulated per q x q cell: block (i, j) covers cells i..i+1, j..j+1, and for one of its
    # four quarters no two blocks share a cell, so plain indexed adds are exact (no Python loop
    # holding the GIL while the GUI thread waits).
    quarters = blk.reshape(-1, 2, q, 2, q, 3).transpose(0, 1, 3, 2, 4, 5)  # (N, 2, 2, q, q, 3)
    wq = weight.reshape(2, q, 2, q, 1).transpose(0, 2, 1, 3, 4)  # (2, 2, q, q, 1)
    acc = np.zeros((gh + 1, gw + 1, q, q, 3), np.float32)
    norm = np.zeros((gh + 1, gw + 1, q, q, 1), np.float32)
    for a in (0, 1):
        for c in (0, 1):
            acc[query[:, 0] + a, query[:, 1] + c] += quarters[:, a, c]
            norm[query[:, 0] + a, query[:, 1] + c] += wq[a, c]
    acc = acc.transpose(0, 2, 1, 3, 4).reshape((gh + 1) * q, (gw + 1) * q, 3)[:h, :w]
    norm = norm.transpose(0, 2, 1, 3, 4).reshape((gh + 1) * q, (gw + 1) * q, 1)[:h, :w]
    covered = norm[..., 0] > 1e-3
    return np.where(covered[..., None], acc / np.maximum(norm, 1e-3), high)


def _coherent_sources(
    desc: np.ndarray, query: np.ndarray, cand: np.ndarray, ok: np.ndarray, coherence: float,
    k: int = 8, rounds: int = 4,
) -> np.ndarray:
    """(Nq, 2) source cell of every query cell: each query's k best matches, and the offsets
    of its 4 neighbours applied to it (PatchMatch's propagation), chosen by match distance plus
    `coherence` x the median best distance for every neighbour whose offset differs (a
    shift-map smoothness term), in red-black rounds of iterated conditional modes."""
    gh, gw = ok.shape
    c = desc[cand[:, 0], cand[:, 1]]  # (Nc, F)
    c2 = (c * c).sum(1)
    qd = desc[query[:, 0], query[:, 1]]
    # The best match, then k - 1 more drawn from the sources (PatchMatch's random search;
    # a fixed seed keeps the result deterministic): a full top-k sort costs 3x the matmul.
    top = np.empty((len(query), k), np.int64)
    for s in range(0, len(query), 1024):
        top[s : s + 1024, 0] = (c2[None] - 2 * qd[s : s + 1024] @ c.T).argmin(1)  # + |q|^2
    top[:, 1:] = np.random.default_rng(0).integers(0, len(cand), (len(query), k - 1))
    own = cand[top]  # (Nq, k, 2) source cells

    def dist(src: np.ndarray) -> np.ndarray:  # (Nq, P, 2) -> (Nq, P)
        diff = desc[src[..., 0], src[..., 1]] - qd[:, None]
        d: np.ndarray = (diff * diff).sum(-1)
        return d

    own_d = dist(own)
    best = own_d.argmin(1)
    label = own[np.arange(len(query)), best]  # (Nq, 2)
    scale = coherence * float(np.median(own_d.min(1))) + 1e-6
    index = np.full((gh, gw), -1, np.int64)
    index[query[:, 0], query[:, 1]] = np.arange(len(query))
    steps = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)])
    nb = query[:, None] + steps[None]  # (Nq, 4, 2)
    inside = (nb[..., 0] >= 0) & (nb[..., 0] < gh) & (nb[..., 1] >= 0) & (nb[..., 1] < gw)
    nb_idx = np.where(inside, index[nb[..., 0].clip(0, gh - 1), nb[..., 1].clip(0, gw - 1)], -1)
    has = nb_idx >= 0
    red = (query.sum(1) % 2) == 0
    for _ in range(rounds):
        for part in (red, ~red):
            offset = label - query  # (Nq, 2)
            nb_off = np.where(has[..., None], offset[nb_idx.clip(0)], 0)  # (Nq, 4, 2)
            prop = query[:, None] + nb_off  # neighbours' offsets applied here
            valid = has & (prop[..., 0] >= 0) & (prop[..., 0] < gh) & (prop[..., 1] >= 0) & (
                prop[..., 1] < gw)
            valid &= ok[prop[..., 0].clip(0, gh - 1), prop[..., 1].clip(0, gw - 1)]
            prop = np.where(valid[..., None], prop, own[:, :1])
            props = np.concatenate([own, prop], 1)  # (Nq, k + 4, 2)
            data = np.concatenate([own_d, dist(prop)], 1)
            poff = props - query[:, None]
            differ = (poff[:, :, None, :] != nb_off[:, None]).any(-1) & has[:, None]
            energy = data + scale * differ.sum(-1)
            pick = props[np.arange(len(query)), energy.argmin(1)]
            label = np.where(part[:, None], pick, label)
    out: np.ndarray = label
    return out
