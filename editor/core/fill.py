"""Fill from surroundings without a model (Qt-free): `region` fills a hole from a context box
around it with editor.core.exemplar.fill (shift-map, Telea for thin strokes). Thin strokes
(wires, blemishes, scratches) are filled at once (`fill_thin`); regions go to the worker as a
"fill" job (shift-map, with cancel), and photo guidance's guide is such a fill too."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from concurrent.futures import Future

import cv2
import numpy as np

from editor.core import exemplar, selection
from editor.core import geometry as g
from editor.core.geometry import Rect

MAX_PIXELS = 100_000  # the immediate fill runs on the GUI thread: ~1.1 us a pixel
# A strip along the picture's edge (an outpaint) reads context as deep as the strip is long,
# not half its size: shift-map then also sees the far side of the photo, often the background
# a subject stands on, not only the subject next to the strip. Shift-map's result jumps with
# noise of one grey level in the photo (KID-Lite2 sd 1-2.5 a run), so these are means over
# runs on the photo +-1 (bench.tune_photo --jitter). Dev half, KID-Lite2 / PSNR, the guide
# alone (4 runs): right 8.7 / 12.06 -> 7.1 / 12.02 dB, bottom 15.3 / 12.55 -> 15.1 / 12.51
# (the whole photo as context: right 6.8 / 12.30); through the CLI with the model (5 runs):
# right 9.8 / 12.00 -> 8.0 / 12.05, bottom 15.6 / 12.56 -> 15.4 / 12.49, in the same time
# (measured with a narrower detail band for strips, since folded into DETAIL_BAND). The
# subject is still copied into a right strip as often (a second apple, rocket, footballer).
STRIP_CONTEXT = True
# Band (times the guide's downscale) whose detail restore_detail transfers into the rough
# pixels of a region's fill (see exemplar._copy_up). Strips had a band of their own (1.0) while
# it re-made their whole fill's detail; on the rough pixels only, 1.0 and 1.5 score alike (dev
# half, the guide alone, 6 runs, KID-Lite2: right 5.7 / 5.7, bottom 12.6 / 12.7).
DETAIL_BAND = 1.5


# An outpaint's own keep-out (subject_kept_out): the known photo's subject, found by
# selection.subject, when it covers SUBJECT_SHARE of the photo (at more, the photo is all
# subject, a face or an apple filling the frame, and there is nothing else to fill from; at
# less it is a speck), grown by SUBJECT_GROW of the photo's long side (the cut misses the
# subject's outline: fur, a tail). Dev half and the four samples, the guide alone, right strips,
# 3 runs: the subject came back in 9 of 13 strips (a second dog, kingfisher, footballer,
# motorcycle, butterfly, rocket, cup, ...), with it kept out in 2 (the apple and the cup, more
# than SUBJECT_SHARE of their frames) and as a piece in 2 (a wing, a leg); PSNR 12.49 -> 13.78, the
# Lite2 feature distance to the truth's patch 142.0 -> 140.1, but KID-Lite2 6.5 -> 8.6 (bottom
# strips 12.67 -> 13.26 dB, 6.9 -> 9.3): the set of patches is less like the truth's set, as the
# truth's strips hold more of their subjects than the fills now do.
SUBJECT_SHARE = (0.01, 0.45)
SUBJECT_GROW = 0.02
STRIP_SOLID = 0.9  # least share of its bounding box an outpaint's new canvas covers


def subject_kept_out(image: np.ndarray, todo: np.ndarray) -> np.ndarray | None:
    """For a strip along the picture's edge (an outpaint): the known photo's subject, which the
    strip's fill is to copy nothing from (no second dog beside the first). None for any other
    hole, or where the subject is not one to keep out (SUBJECT_SHARE)."""
    if not edge_strip(todo):
        return None
    x0, y0, x1, y1 = g.bbox(todo) or (0, 0, 0, 0)
    if todo[y0:y1, x0:x1].mean() < STRIP_SOLID:
        return None  # brush strokes may span the picture too, but they are no new canvas
    x0, y0, x1, y1 = g.bbox(~todo) or (0, 0, 0, 0)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    found = _subject(image[y0:y1, x0:x1])
    lo, hi = SUBJECT_SHARE
    if not lo <= found.mean() <= hi:
        return None
    r = max(1, round(SUBJECT_GROW * max(found.shape)))
    grown = cv2.dilate(found.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0
    out: np.ndarray = np.zeros_like(todo)
    out[y0:y1, x0:x1] = grown
    out &= ~todo
    return out


# The subjects of the last photos outpainted, by their pixels: a Generate's rough fill and its
# first guide ask for the same one at once, a Regenerate and Fill from surroundings again.
_SUBJECTS: OrderedDict[bytes, Future[np.ndarray]] = OrderedDict()
_SUBJECTS_LOCK = threading.Lock()


def _subject(photo: np.ndarray) -> np.ndarray:
    """selection.subject(photo), found once: a second asker meanwhile waits for the first's."""
    digest = hashlib.blake2b(np.ascontiguousarray(photo).tobytes(), digest_size=16)
    digest.update(repr(photo.shape).encode())
    key = digest.digest()
    with _SUBJECTS_LOCK:
        made = _SUBJECTS.get(key)
        mine = made is None
        if made is None:
            made = _SUBJECTS[key] = Future()
        _SUBJECTS.move_to_end(key)
        while len(_SUBJECTS) > 2:
            _SUBJECTS.popitem(last=False)
    if mine:
        try:
            made.set_result(selection.subject(photo))
        except BaseException as e:  # not kept: the next asker tries again
            made.set_exception(e)
            with _SUBJECTS_LOCK:
                _SUBJECTS.pop(key, None)
    return made.result()


def forget_subjects() -> None:
    """Find every subject again (a benchmark's rounds on the same photos)."""
    with _SUBJECTS_LOCK:
        _SUBJECTS.clear()


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


def context_box(todo: np.ndarray, pad: int | None = None, depth: int = 0) -> Rect:
    """The bounding box of `todo` grown by `pad` px, by default half the hole's size or `depth`
    if more (the context shift-map reads), clipped to the image."""
    h, w = todo.shape
    x0, y0, x1, y1 = g.bbox(todo) or (0, 0, w, h)
    if pad is None:
        pad = max(32, (x1 - x0 + y1 - y0) // 2, depth)
    return max(x0 - pad, 0), max(y0 - pad, 0), min(x1 + pad, w), min(y1 + pad, h)


def edge_strip(todo: np.ndarray) -> int:
    """The length (px) of `todo` when it is a strip along the picture's edge (it spans the
    picture one way and touches its border the other, as an outpaint's new canvas), else 0."""
    h, w = int(todo.shape[0]), int(todo.shape[1])
    x0, y0, x1, y1 = g.bbox(todo) or (0, 0, 0, 0)
    if y0 == 0 and y1 == h and (x0 == 0 or x1 == w) and x1 - x0 < w:
        return h
    if x0 == 0 and x1 == w and (y0 == 0 or y1 == h) and y1 - y0 < h:
        return w
    return 0


def region(image: np.ndarray, todo: np.ndarray, side: int | None = None,
           pad: int | None = None, finish: bool = True, keep_out: np.ndarray | None = None,
           ) -> tuple[np.ndarray, Rect]:
    """(`image` with the `todo` pixels filled from their surroundings by exemplar.fill, the
    rect that changed). The crop of context_box(todo, pad) is filled at `side` px at most and,
    for a region with `finish`, its fine detail restored at full size and its tone matched to
    the hole's surroundings (a rough preview skips both). A strip along the picture's edge
    reads context as deep as it is long (STRIP_CONTEXT). Nothing is copied from the
    `keep_out` pixels (see exemplar.fill)."""
    strip = edge_strip(todo)
    x0, y0, x1, y1 = context_box(todo, pad, strip if STRIP_CONTEXT else 0)
    crop, hole = image[y0:y1, x0:x1], todo[y0:y1, x0:x1]
    out_of = None if keep_out is None or not keep_out.any() else keep_out[y0:y1, x0:x1]
    filled, rough = exemplar.fill(crop, hole, side, out_of)
    if finish and exemplar.thickness(hole) > exemplar.THIN:  # shift-map, not Telea
        scale = max(x1 - x0, y1 - y0) / side if side else 1.0
        if scale > 1 and rough.any():  # the rest are copies of full-size pixels
            filled = exemplar.restore_detail(filled, rough, DETAIL_BAND * scale,
                                             keep_out=out_of)
        filled = exemplar.match_boundary(filled, hole, keep_out=out_of)
    out = image.copy()
    out[y0:y1, x0:x1][hole] = filled[hole]
    return out, (x0, y0, x1, y1)
