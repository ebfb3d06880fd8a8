"""Project files (`.maskgit`): the format, Qt-free. editor.state.project captures a session into
a `State` and restores one; this module writes and reads them.

One editing session in one file, and the format of autosaves.

A zip with a JSON manifest (`manifest.json`, versioned) and numpy arrays as `.npy` members (read
with allow_pickle=False, so a project file cannot run code). A project may come from anyone, so
reading it is bounded before anything is allocated: every member's size is capped, every array
is decoded once however often the manifest names it, the arrays' total (from their headers) is
capped, images must fit the limits of opened images, and counts (history, notes, step rows,
the stored job's windows, steps and candidates) are checked against what the editor makes.
What it holds:

- the document: image, mask, canvas origin, the opened original, its alpha / straight colours,
  EXIF and ICC profile (base64 in the manifest; absent in older files), the lock and keep-out
  layers (keep-out: absent in older files);
- the undo history: every Region / Canvas / Lock command, plus the state before the first one
  (computed backwards from the current state), and the stack index, so undo and redo work after
  reopening; commands of kinds this module does not know end the saved history there (the
  state is always saved);
- the chosen model, class and sampling values, and the pending candidates (which one is shown);
- the step history of the last decode when it made what the document shows (every step of
  every candidate: tokens, confidences, previews), so the scrubber, branching, the heatmap and
  re-rolling work again after reopening.

Written atomically: a temporary file in the same folder, fsync, os.replace. `capture` runs on
the GUI thread and only copies what editing mutates in place; `write` may run on any thread.
"""

from __future__ import annotations

import base64
import io
import json
import os
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from editor.core.edits import Pixels
from editor.core.edits import from_dict as edit_from_dict
from editor.core.geometry import MAX_FEATHER, Window
from editor.core.history import DecodeHistory, StepRecord
from editor.core.imageio import MAX_PIXELS, atomic_file, too_large
from editor.core.jobs import ORDERS, SCHEDULES, Sampling
from editor.core.limits import MAX_CANDIDATES, MAX_STEPS

FORMAT = "maskgit-editor-project"
VERSION = 1
EXT = ".maskgit"
MAX_ARRAYS = 20_000  # history entries are a handful of arrays each
MAX_ELEMENTS = 4 * MAX_PIXELS  # (H, W, 3) of the largest image, with room
MAX_MEMBER = 4 * MAX_ELEMENTS + (1 << 20)  # the bytes of the largest array, compressed or not
MAX_MANIFEST = 16 << 20  # JSON of structure only: arrays are members (840 step records: 0.3 MB)
# All arrays together, decoded: a 64 MP photo with a few outpaints needs about 2.5 GB.
MAX_DECODED = 6 << 30
MAX_HISTORY = 10_000  # undo entries
MAX_NOTES, MAX_NOTE = 20, 300  # shown in the status bar

MAX_WINDOWS = 64  # an outpaint plans at most OUTPAINT_MAX_WINDOWS; room for older plans


class ProjectError(ValueError):
    """A project file that cannot be read; the message names the file and the problem."""


@dataclass
class State:
    """Everything a project file holds, as plain data (arrays are shared, never mutated)."""

    image: np.ndarray
    mask: np.ndarray
    origin: tuple[int, int]
    original: np.ndarray
    lock: np.ndarray | None = None
    alpha: np.ndarray | None = None
    straight: np.ndarray | None = None
    path: str = ""  # the image file the session started from
    base: dict[str, Any] | None = None  # state before the first history entry
    history: list[dict[str, Any]] = field(default_factory=list)
    index: int = 0  # undo stack index (entries after it are redo-able)
    settings: dict[str, Any] = field(default_factory=dict)  # model, class, sampling, ...
    candidate: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)  # what could not be kept
    saved_at: float = 0.0
    exif: bytes | None = None  # the opened file's, written back on save
    icc_profile: bytes | None = None
    steps: dict[str, Any] | None = None  # the step history, when it made the current state
    keep_out: np.ndarray | None = None  # the keep-out layer (absent in older files)


class _Arrays:
    """Arrays go into the zip as .npy members; the manifest names them."""

    def __init__(self) -> None:
        self.members: dict[str, np.ndarray] = {}

    def put(self, a: np.ndarray | None) -> str | None:
        if a is None:
            return None
        name = f"a/{len(self.members)}.npy.z"  # zlib-compressed .npy, stored (not deflated)
        self.members[name] = a
        return name


def _encode(v: Any, arrays: _Arrays) -> Any:
    if isinstance(v, np.ndarray):
        return {"$npy": arrays.put(v)}
    if isinstance(v, dict):
        return {k: _encode(x, arrays) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_encode(x, arrays) for x in v]
    if isinstance(v, np.integer | np.floating):
        return v.item()
    return v


Cache = dict[int, tuple[np.ndarray, bytes]]  # id(array) -> (the array, its compressed .npy)


def _compressed(a: np.ndarray, level: int, cache: Cache | None) -> bytes:
    hit = cache.get(id(a)) if cache is not None else None
    if hit is not None and hit[0] is a:
        return hit[1]
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    data = zlib.compress(buf.getbuffer(), level)  # releases the GIL: the GUI keeps going
    if cache is not None:
        cache[id(a)] = (a, data)  # holding `a` keeps its id from being reused
    return data


def walk_back(st: State, done: list[dict[str, Any]]) -> dict[str, Any]:
    """The state before the first entry: the entries `done` undone from the current state, by
    the edits themselves (editor.core.edits)."""
    lock = st.lock if st.lock is not None else np.zeros(st.mask.shape, bool)
    px = Pixels(st.image, st.mask, (int(st.origin[0]), int(st.origin[1])), lock,
                st.keep_out).copy()
    for e in reversed(done):
        edit_from_dict(e).apply(px, forward=False)
    return dict(image=px.image, mask=px.mask, origin=list(px.origin),
                lock=px.lock if px.lock.any() else None,
                keep_out=px.keep_out if px.keep_out is not None and px.keep_out.any() else None)


def write(path: str | Path, st: State, compresslevel: int = 1, cache: Cache | None = None
          ) -> None:
    """Write `st` to `path` atomically (temporary file + os.replace). `cache` (autosave) keeps
    the compressed bytes of arrays that never change (history patches, the original), so each
    autosave only compresses what is new."""
    p = Path(path)
    if st.base is None:
        st.base = walk_back(st, st.history[: st.index])
    arrays = _Arrays()
    manifest = {
        "format": FORMAT, "version": VERSION, "saved_at": st.saved_at or time.time(),
        "image": _encode(st.image, arrays), "mask": _encode(st.mask, arrays),
        "origin": list(st.origin), "original": _encode(st.original, arrays),
        "lock": _encode(st.lock, arrays), "alpha": _encode(st.alpha, arrays),
        "straight": _encode(st.straight, arrays), "path": st.path,
        "base": _encode(st.base, arrays), "history": _encode(st.history, arrays),
        "index": st.index, "settings": _encode(st.settings, arrays),
        "candidate": _encode(st.candidate, arrays), "notes": st.notes,
        "exif": _b64(st.exif), "icc_profile": _b64(st.icc_profile),
        "steps": _encode(st.steps, arrays), "keep_out": _encode(st.keep_out, arrays),
    }
    p.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(p) as f:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
            z.writestr("manifest.json", json.dumps(manifest), zipfile.ZIP_DEFLATED)
            live = {id(st.image), id(st.mask)}  # autosave reuses these buffers: no cache
            for name, a in arrays.members.items():
                z.writestr(name, _compressed(a, compresslevel,
                                             None if id(a) in live else cache))
        if cache is not None:
            used = {id(a) for a in arrays.members.values()}
            for k in [k for k in cache if k not in used]:
                del cache[k]
    try:  # the rename itself survives a power cut only once the folder is synced
        dfd = os.open(p.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(text: Any, what: str, name: str) -> bytes | None:
    if text is None:
        return None
    try:
        return base64.b64decode(str(text), validate=True)
    except ValueError as e:  # binascii.Error is one
        raise ProjectError(f"{name} is damaged: {what} is not base64 ({e})") from e


def read(path: str | Path) -> State:
    """Read a project file; raises ProjectError with the reason."""
    p = Path(path)
    try:
        with zipfile.ZipFile(p) as z:
            return _read(z, p.name)
    except ProjectError:
        raise
    except IsADirectoryError as e:
        raise ProjectError(f"{p.name} is a folder, not a project file") from e
    except OSError as e:
        raise ProjectError(f"{p.name} is not a readable project file: {e.strerror or e}") from e
    except (zipfile.BadZipFile, EOFError) as e:
        raise ProjectError(f"{p.name} is not a readable project file: it is damaged or not a "
                           "MaskGIT Editor project") from e
    except MemoryError as e:
        raise ProjectError(f"{p.name}: not enough memory to open it") from e
    except Exception as e:  # zlib, struct, numpy header errors...: none may escape
        raise ProjectError(f"{p.name} is damaged: {type(e).__name__}: {e}") from e


def _read(z: zipfile.ZipFile, name: str) -> State:
    infos = z.infolist()
    if len(infos) > MAX_ARRAYS:
        raise ProjectError(f"{name}: {len(infos)} members is more than a project holds")
    # The declared sizes bound every read (zipfile never returns more than file_size bytes).
    big = next((i for i in infos if i.file_size > MAX_MEMBER), None)
    if big is not None:
        raise ProjectError(f"{name}: {big.filename} is larger than any image the editor opens")
    try:
        info = z.getinfo("manifest.json")
    except KeyError as e:
        raise ProjectError(f"{name} is not a MaskGIT Editor project (no manifest)") from e
    if info.file_size > MAX_MANIFEST:
        raise ProjectError(f"{name}: its manifest is {info.file_size / 1e6:,.0f} MB, more than "
                           "a project's")
    manifest = json.loads(z.read(info))
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ProjectError(f"{name} is not a MaskGIT Editor project")
    if int(manifest.get("version", 0)) > VERSION:
        raise ProjectError(f"{name} was written by a newer version of the editor (format "
                           f"{manifest.get('version')}; this one reads up to {VERSION})")
    return _state(_decode(z, name, manifest), name)


def _header(z: zipfile.ZipFile, name: str, member: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, header length) from the member's first bytes: nothing allocated."""
    fmt = np.lib.format
    if not member.endswith(".npy.z"):
        raise ProjectError(f"{name}: unexpected member {member!r}")
    with z.open(member) as f:
        head = zlib.decompressobj().decompress(f.read(8192), 4096)
    b = io.BytesIO(head)
    major, _minor = fmt.read_magic(b)
    read = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
    shape, _fortran, dtype = read(b)
    if dtype.hasobject:
        raise ProjectError(f"{name}: {member} holds Python objects")
    count = int(np.prod(shape, dtype=np.int64))
    if count > MAX_ELEMENTS or count * dtype.itemsize > 4 * MAX_ELEMENTS:
        raise ProjectError(f"{name}: {member} is larger than any image the editor opens")
    return shape, dtype, b.tell()


def _array(z: zipfile.ZipFile, name: str, member: str, head_len: int, nbytes: int
           ) -> np.ndarray:
    inflate = zlib.decompressobj()
    size = head_len + nbytes
    # zlib never grows data by more than 0.1 %: more packed bytes are not this array's.
    with z.open(member) as f:
        packed = f.read(size + size // 1000 + 1024)
    raw = inflate.decompress(packed, size + 1)
    if len(raw) != size:
        raise ProjectError(f"{name}: {member} is truncated or padded")
    return np.asarray(np.load(io.BytesIO(raw), allow_pickle=False))


def _refs(v: Any, members: set[str]) -> set[str]:
    """The array members the manifest names."""
    if isinstance(v, dict):
        if set(v) == {"$npy"}:
            if v["$npy"] is not None:
                members.add(str(v["$npy"]))
            return members
        for x in v.values():
            _refs(x, members)
    elif isinstance(v, list):
        for x in v:
            _refs(x, members)
    return members


def _decode(z: zipfile.ZipFile, name: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with its arrays read, bounded before anything is allocated."""
    heads = {m: _header(z, name, m) for m in _refs(manifest, set())}
    total = sum(int(np.prod(s, dtype=np.int64)) * d.itemsize for s, d, _ in heads.values())
    if total > MAX_DECODED:
        raise ProjectError(f"{name}: its arrays need {total / 2**30:,.1f} GB of memory, more "
                           f"than a project of the largest image ({MAX_DECODED >> 30} GB)")
    # Decoded once each: a member named many times is one shared (never mutated) array.
    arrays = {m: _array(z, name, m, h, int(np.prod(s, dtype=np.int64)) * d.itemsize)
              for m, (s, d, h) in heads.items()}

    def decode(v: Any) -> Any:
        if isinstance(v, dict):
            if set(v) == {"$npy"}:
                return None if v["$npy"] is None else arrays[str(v["$npy"])]
            return {str(k): decode(x) for k, x in v.items()}
        if isinstance(v, list):
            return [decode(x) for x in v]
        return v

    return decode(manifest)  # type: ignore[no-any-return]


def _state(m: dict[str, Any], name: str) -> State:
    image, mask = m["image"], m["mask"]
    if not rgb(image):
        raise ProjectError(f"{name}: the image is {getattr(image, 'dtype', type(image).__name__)}"
                           f" {getattr(image, 'shape', '')}, not an RGB image the editor opens")
    if not isinstance(mask, np.ndarray) or mask.shape != image.shape[:2]:
        raise ProjectError(f"{name}: the mask does not match the image")
    history = m.get("history") or []
    if not isinstance(history, list) or len(history) > MAX_HISTORY:
        raise ProjectError(f"{name}: its undo history is not a list of at most {MAX_HISTORY:,} "
                           "entries")
    notes = m.get("notes") or []
    notes = [str(x)[:MAX_NOTE] for x in notes[:MAX_NOTES]] if isinstance(notes, list) else []
    origin = cast("tuple[int, int]", tuple(int(x) for x in m["origin"]))  # _check: two
    st = State(image, mask.astype(bool), origin, m["original"],
               m.get("lock"), m.get("alpha"), m.get("straight"), str(m.get("path") or ""),
               m.get("base"), history, int(m.get("index", 0)),
               dict(m.get("settings") or {}), m.get("candidate"), notes,
               float(m.get("saved_at", 0)),
               _unb64(m.get("exif"), "the EXIF", name),
               _unb64(m.get("icc_profile"), "the ICC profile", name), m.get("steps"),
               m.get("keep_out"))
    if not 0 <= st.index <= len(st.history):
        raise ProjectError(f"{name}: undo index {st.index} outside its history")
    _check(st, name)
    return st


def rgb(a: Any) -> bool:
    """An (H, W, 3) uint8 image of a size the editor opens (as imageio would accept)."""
    return (isinstance(a, np.ndarray) and a.ndim == 3 and a.shape[2] == 3 and a.dtype == np.uint8
            and min(a.shape[:2]) >= 1 and not too_large(a.shape[1], a.shape[0]))


def _check(st: State, name: str) -> None:
    """Arrays that would break the editor later (on save, on paint) are refused now."""

    def bad(what: str) -> ProjectError:
        return ProjectError(f"{name} is damaged: {what} does not fit the image")

    o = st.original
    if not rgb(o):
        raise bad("the original")
    if st.alpha is not None and (st.alpha.shape != o.shape[:2] or st.alpha.dtype != np.uint8):
        raise bad("the alpha channel")
    if st.straight is not None and (st.straight.shape != o.shape or st.alpha is None):
        raise bad("the straight colours")
    for what, layer in (("the lock", st.lock), ("the keep-out", st.keep_out)):
        if layer is not None and (not isinstance(layer, np.ndarray)
                                  or layer.shape != st.mask.shape):
            raise bad(what)
    if len(st.origin) != 2:
        raise bad("the origin")
    st.lock = None if st.lock is None else st.lock.astype(bool)
    st.keep_out = None if st.keep_out is None else st.keep_out.astype(bool)


def peek(path: str | Path) -> dict[str, Any]:
    """The manifest only (for the recovery dialog): saved_at, path, index, history length."""
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("manifest.json")
        if info.file_size > MAX_MANIFEST:  # read at every start: never a zip bomb
            raise ProjectError(f"{Path(path).name}: its manifest is larger than a project's")
        m = json.loads(z.read(info))
    return dict(saved_at=float(m.get("saved_at", 0)), path=str(m.get("path") or ""),
                index=int(m.get("index", 0)), entries=len(m.get("history") or []))


def check_job(kw: dict[str, Any], h: int, w: int) -> None:
    """A stored job is what Ctrl+R (regenerate) runs again: only what the editor itself would
    plan for this image (else one crafted job allocates gigabytes or never ends)."""

    def whole(v: Any, low: int, high: int, what: str) -> int:
        if type(v) is not int or not low <= v <= high:
            raise ValueError(f"the stored job's {what} ({str(v)[:20]}) is not in {low}..{high}")
        return v

    s = kw.get("sampling")
    if not isinstance(s, Sampling):
        raise ValueError("the stored job has no sampling values")
    steps = whole(s.steps, 2, MAX_STEPS, "steps")
    whole(s.start_step, 0, steps - 1, "first step")
    if s.schedule not in SCHEDULES or s.order not in ORDERS:
        raise ValueError("the stored job's schedule or order is unknown")
    for v, high in ((s.choice_temperature, 100.0), (s.temperature, 100.0)):
        if not isinstance(v, int | float) or not 0 <= v <= high:
            raise ValueError("the stored job's temperatures are out of range")
    whole(kw.get("candidates", 1), 1, MAX_CANDIDATES, "candidates")
    whole(kw.get("feather", 4), 0, MAX_FEATHER, "feather")
    whole(kw.get("seed", 0), -(2**63), 2**64 - 1, "seed")
    if kw.get("class_id") is not None:
        whole(kw["class_id"], 0, 65535, "class")
    windows = kw.get("windows")
    if not isinstance(windows, list) or not 1 <= len(windows) <= MAX_WINDOWS:
        raise ValueError("the stored job's windows are not a plan for this image")
    for win in windows:
        whole(win.tokens, 1, 256, "tokens per window side")
        whole(win.window, win.tokens, 1024, "window")
        whole(win.size, 1, 2 * max(h, w) + 1024, "window size")
        whole(win.x, -win.size, w, "window position")
        whole(win.y, -win.size, h, "window position")
        x0, y0, x1, y1 = (whole(v, 0, max(h, w), "window core") for v in win.core)
        if not (x0 < x1 <= w and y0 < y1 <= h):
            raise ValueError("a stored window lies outside the image")
    t = windows[0].tokens
    for k, shape in (("locked", (h, w)), ("keep_out", (h, w)), ("tokens", (t, t)),
                     ("token_mask", (t, t))):
        a = kw.get(k)
        if a is not None and (not isinstance(a, np.ndarray) or a.shape != shape):
            raise ValueError(f"the stored job's {k} does not fit")
        if a is not None:
            kw[k] = a.astype(np.int64 if k == "tokens" else bool)


def window_history(s: dict[str, Any], shape: tuple[int, ...], job_id: int) -> DecodeHistory:
    """One window's step history read back, every array checked against the window and an
    image of `shape` (H, W)."""
    win = Window(**{**s["window"], "core": tuple(int(v) for v in s["window"]["core"])})
    t, (h, w) = win.tokens, shape[:2]
    grid = (t, t)
    pixel_mask, start_mask = s["pixel_mask"], s["start_mask"]
    if not isinstance(pixel_mask, np.ndarray) or pixel_mask.shape != (h, w):
        raise ValueError("its mask does not fit the image")
    if not isinstance(start_mask, np.ndarray) or start_mask.shape != grid:
        raise ValueError("its token mask does not fit the window")
    records = s["records"]
    if (not isinstance(records, list) or len(records) > MAX_STEPS + 1
            or any(not isinstance(row, list) or len(row) > MAX_CANDIDATES for row in records)):
        raise ValueError(f"more than {MAX_STEPS} steps of {MAX_CANDIDATES} candidates")
    rows: list[list[StepRecord]] = []
    for row in records:
        recs = []
        for r in row:
            x0, y0, x1, y1 = (int(v) for v in r["rect"])
            if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
                raise ValueError("a step lies outside the image")
            if (r["patch"].shape != (y1 - y0, x1 - x0, 3) or r["patch"].dtype != np.uint8
                    or any(r[k].shape != grid for k in ("tokens", "masked", "confidence"))):
                raise ValueError("a step does not fit its window")
            recs.append(StepRecord(int(r["step"]), int(r["total"]), r["tokens"].astype(np.int64),
                                   r["masked"].astype(bool), r["confidence"].astype(np.float32),
                                   r["patch"], (x0, y0, x1, y1)))
        if not recs or (rows and len(recs) != len(rows[0])):
            raise ValueError("the candidates of a step do not match")
        rows.append(recs)
    if not rows:
        raise ValueError("no steps")
    return DecodeHistory(job_id, win, start_mask.astype(bool), pixel_mask.astype(bool),
                         None if s.get("class_id") is None else int(s["class_id"]), rows,
                         str(s.get("kind") or "edit"))
