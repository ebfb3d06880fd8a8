"""What one undo entry changes, as plain data: the one place that knows how to apply, revert,
serialise and check an edit (Qt-free).

The document's undo commands (editor.state.document, editor.state.locks) wrap these, the project
file stores their `to_dict()` and rebuilds them with `from_dict()`, and computing the state
before the first entry of a saved history runs the very same `apply` on a `Pixels` record.

- `RegionEdit`: a rectangle of the image and/or mask, before and after (strokes, results);
- `CanvasEdit`: the whole canvas, before and after (an extension, a new image);
- `LockEdit`: a rectangle of the lock layer, before and after;
- `KeepOutEdit`: the same for the keep-out layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from editor.core.geometry import Rect

Pair = tuple[np.ndarray, np.ndarray]  # (before, after)


@dataclass
class Pixels:
    """The editable state as arrays: what the undo history changes."""

    image: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) bool, True = regenerate
    origin: tuple[int, int]  # where the opened image's top-left sits on the canvas
    lock: np.ndarray  # (H, W) bool, True = kept in every regeneration
    keep_out: np.ndarray | None = None  # (H, W) bool, True = never copied by a fill; None: none

    def copy(self) -> Pixels:
        return Pixels(self.image.copy(), self.mask.copy(), self.origin, self.lock.copy(),
                      None if self.keep_out is None else self.keep_out.copy())

    def plane(self, name: str) -> np.ndarray:
        """The `lock` or `keep_out` array (the keep-out made when there is none yet)."""
        if name == "keep_out" and self.keep_out is None:
            self.keep_out = np.zeros(self.mask.shape, bool)
        out: np.ndarray = getattr(self, name)
        return out

    def same(self, other: Pixels) -> bool:
        def keep(p: Pixels) -> np.ndarray:
            return np.zeros(p.mask.shape, bool) if p.keep_out is None else p.keep_out

        return (self.image.shape == other.image.shape and self.origin == other.origin
                and np.array_equal(self.image, other.image)
                and np.array_equal(self.mask, other.mask)
                and np.array_equal(self.lock, other.lock)
                and np.array_equal(keep(self), keep(other)))


def shift_lock(lock: np.ndarray, shape: tuple[int, ...], dx: int, dy: int) -> np.ndarray:
    """The lock on a canvas of `shape` whose origin moved by (dx, dy): cells keep their place
    in the picture, cells outside the new canvas go."""
    new = np.zeros(shape[:2], bool)
    h, w = lock.shape
    sy0, sx0 = max(-dy, 0), max(-dx, 0)
    sy1, sx1 = min(h, shape[0] - dy), min(w, shape[1] - dx)
    if sy0 < sy1 and sx0 < sx1:
        new[sy0 + dy : sy1 + dy, sx0 + dx : sx1 + dx] = lock[sy0:sy1, sx0:sx1]
    return new


def _fits(rect: Rect, shape: tuple[int, ...]) -> None:
    x0, y0, x1, y1 = rect
    if not (0 <= x0 < x1 <= shape[1] and 0 <= y0 < y1 <= shape[0]):
        raise ValueError(f"the rectangle {rect} lies outside the {shape[1]}x{shape[0]} canvas")


def _rgb(a: Any, shape: tuple[int, int] | None = None) -> np.ndarray:
    if (not isinstance(a, np.ndarray) or a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8
            or min(a.shape[:2]) < 1 or (shape is not None and a.shape[:2] != shape)):
        raise ValueError("an image of an undo entry is not an RGB image of its size")
    return a


def _plane(a: Any, shape: tuple[int, int]) -> np.ndarray:
    if not isinstance(a, np.ndarray) or a.shape != shape:
        raise ValueError("a mask of an undo entry does not fit its rectangle")
    return a.astype(bool)


def _pair(v: Any, check: Any) -> Pair:
    if not isinstance(v, list | tuple) or len(v) != 2:
        raise ValueError("an undo entry is not a (before, after) pair")
    return check(v[0]), check(v[1])


def _rect(v: Any) -> Rect:
    if not isinstance(v, list | tuple) or len(v) != 4:
        raise ValueError("an undo entry's rectangle is not four numbers")
    x0, y0, x1, y1 = (int(x) for x in v)
    return x0, y0, x1, y1


@dataclass
class RegionEdit:
    text: str
    rect: Rect
    image: Pair | None  # (h, w, 3) uint8 crops of `rect`
    mask: Pair | None  # (h, w) bool crops of `rect`

    @classmethod
    def between(cls, text: str, rect: Rect, image: Pair | None = None,
                mask: Pair | None = None) -> RegionEdit:
        """The edit from whole before/after arrays, keeping only copies of `rect`."""
        x0, y0, x1, y1 = rect

        def cut(pair: Pair | None) -> Pair | None:
            if pair is None:
                return None
            return pair[0][y0:y1, x0:x1].copy(), pair[1][y0:y1, x0:x1].copy()

        return cls(text, rect, cut(image), cut(mask))

    def side(self, forward: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The image and mask crops after (forward) or before the edit."""
        i = 1 if forward else 0
        return (None if self.image is None else self.image[i],
                None if self.mask is None else self.mask[i])

    def check(self, shape: tuple[int, ...]) -> None:
        """Raise ValueError unless the edit fits a canvas of `shape`."""
        _fits(self.rect, shape)

    def apply(self, px: Pixels, forward: bool = True) -> None:
        self.check(px.mask.shape)
        x0, y0, x1, y1 = self.rect
        image, mask = self.side(forward)
        if image is not None:
            px.image[y0:y1, x0:x1] = image
        if mask is not None:
            px.mask[y0:y1, x0:x1] = mask

    def to_dict(self) -> dict[str, Any]:
        return dict(type="region", text=self.text, rect=list(self.rect), image=self.image,
                    mask=self.mask)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RegionEdit:
        rect = _rect(d["rect"])
        x0, y0, x1, y1 = rect
        box = (y1 - y0, x1 - x0)
        image = None if d["image"] is None else _pair(d["image"], lambda a: _rgb(a, box))
        mask = None if d["mask"] is None else _pair(d["mask"], lambda a: _plane(a, box))
        return cls(str(d["text"]), rect, image, mask)


@dataclass
class CanvasEdit:
    text: str
    before: tuple[np.ndarray, np.ndarray, tuple[int, int]]  # image, mask, origin
    after: tuple[np.ndarray, np.ndarray, tuple[int, int]]

    def apply(self, px: Pixels, forward: bool = True) -> None:
        image, mask, origin = self.after if forward else self.before
        dx, dy = origin[0] - px.origin[0], origin[1] - px.origin[1]
        px.lock = shift_lock(px.lock, mask.shape, dx, dy)
        if px.keep_out is not None:
            px.keep_out = shift_lock(px.keep_out, mask.shape, dx, dy)
        px.image, px.mask, px.origin = image.copy(), mask.copy(), origin

    def to_dict(self) -> dict[str, Any]:
        (bi, bm, bo), (ai, am, ao) = self.before, self.after
        return dict(type="canvas", text=self.text, before=(bi, bm, list(bo)),
                    after=(ai, am, list(ao)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CanvasEdit:
        def side(v: Any) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
            if not isinstance(v, list | tuple) or len(v) != 3 or len(v[2]) != 2:
                raise ValueError("a canvas entry is not (image, mask, origin)")
            image = _rgb(v[0])
            return image, _plane(v[1], image.shape[:2]), (int(v[2][0]), int(v[2][1]))

        return cls(str(d["text"]), side(d["before"]), side(d["after"]))


@dataclass
class LockEdit:
    text: str
    rect: Rect
    before: np.ndarray  # (h, w) bool crops of `rect`
    after: np.ndarray
    kind: ClassVar[str] = "lock"  # its `type` in a project file
    plane: ClassVar[str] = "lock"  # the Pixels array it edits

    def check(self, shape: tuple[int, ...]) -> None:
        """Raise ValueError unless the edit fits a canvas of `shape`."""
        _fits(self.rect, shape)

    def apply(self, px: Pixels, forward: bool = True) -> None:
        layer = px.plane(self.plane)
        self.check(layer.shape)
        x0, y0, x1, y1 = self.rect
        layer[y0:y1, x0:x1] = self.after if forward else self.before

    def to_dict(self) -> dict[str, Any]:
        return dict(type=self.kind, text=self.text, rect=list(self.rect), before=self.before,
                    after=self.after)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LockEdit:
        rect = _rect(d["rect"])
        x0, y0, x1, y1 = rect
        box = (y1 - y0, x1 - x0)
        return cls(str(d["text"]), rect, _plane(d["before"], box), _plane(d["after"], box))


class KeepOutEdit(LockEdit):
    """A rectangle of the keep-out layer (pixels fills never copy), before and after."""

    kind: ClassVar[str] = "keepout"
    plane: ClassVar[str] = "keep_out"


Edit = RegionEdit | CanvasEdit | LockEdit
KINDS: dict[str, type[RegionEdit] | type[CanvasEdit] | type[LockEdit]] = {
    "region": RegionEdit, "canvas": CanvasEdit, "lock": LockEdit, "keepout": KeepOutEdit}


def from_dict(d: dict[str, Any]) -> Edit:
    """An edit read back; raises ValueError (or KeyError, TypeError) for one that does not
    describe an edit the editor makes."""
    kind = KINDS.get(str(d.get("type")))
    if kind is None:
        raise ValueError(f"unknown undo entry {d.get('type')!r}")
    return kind.from_dict(d)
