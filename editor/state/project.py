"""Project files for a session: `capture` snapshots the document, its undo history, the
pending candidates and the step history into an editor.core.project_file.State, and `restore`
makes a session what a State describes. The undo entries serialise themselves
(EditCommand.to_dict / from_dict); the file format itself is editor.core.project_file.

`capture` runs on the GUI thread and only copies what editing mutates in place; `write` may run
on any thread.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from editor.core.project_file import (  # noqa: F401 (the format's names, for the app)
    EXT,
    MAX_WINDOWS,
    Cache,
    ProjectError,
    State,
    check_job,
    peek,
    read,
    rgb,
    window_history,
    write,
)
from editor.state import document as d
from editor.state.document import EditCommand
from editor.state.results import history_from_dict, history_to_dict

if TYPE_CHECKING:
    from editor.state.controller import Controller
    from editor.state.locks import LockLayer
    from editor.state.steps import Steps


def capture(doc: d.Document, controller: Controller | None = None,
            settings: dict[str, Any] | None = None,
            pixels: tuple[np.ndarray, np.ndarray] | None = None,
            steps: Steps | None = None) -> State:
    """Snapshot `doc` (and the controller's candidate and the step history) on the GUI thread.
    `pixels`: copies of the image and mask already made by the caller (autosave updates only
    what changed)."""
    locks = controller.locks if controller is not None else None
    lock = locks.copy() if locks is not None else None
    keep_out = controller.keep_out.copy() if controller is not None else None
    image, mask = pixels if pixels is not None else (doc.image.copy(), doc.mask.copy())
    st = State(image, mask, tuple(doc.origin), doc.original, lock,
               doc.alpha, doc.straight, str(doc.path or ""), settings=dict(settings or {}),
               keep_out=keep_out)
    stack = doc.undo_stack
    entries: list[dict[str, Any]] = []
    for i in range(stack.count()):
        cmd = stack.command(i)
        e = cmd.to_dict() if isinstance(cmd, EditCommand) else None
        if e is None:
            st.notes.append(f"undo history after entry {i} ({stack.text(i)!r}) not saved")
            break
        entries.append(e)
    index = stack.index()
    if len(entries) < stack.count() and index > len(entries):
        entries = []  # cannot walk back past an unknown entry: keep the state only
        st.notes.append("undo history not saved")
        index = 0
    st.history, st.index = entries, min(index, len(entries))
    st.exif, st.icc_profile = doc.exif, doc.icc_profile
    # The state before the first entry is computed by `write`, off the GUI thread.
    if controller is not None:
        st.candidate = controller.results.pending_to_dict(stack.index())
    if steps is not None and steps.in_stack():  # a running decode has none yet: the last one's
        st.steps = history_to_dict(steps.chain, steps.window_index, steps.candidate_index,
                                   steps.region, steps.undo_index,
                                   stack.text(steps.undo_index - 1))
    st.saved_at = time.time()
    return st


def restore(st: State, doc: d.Document, controller: Controller | None = None,
            steps: Steps | None = None) -> list[str]:
    """Make `doc` (and the controller's candidate and the step history) what `st` describes.
    Returns notes on what could not be restored. The history is rebuilt by pushing the saved
    commands onto the state before the first one, then undoing back to the saved index; if that
    does not reproduce the saved state exactly, the state alone is restored."""
    notes = list(st.notes)
    locks = controller.locks if controller is not None else None
    keep_out = controller.keep_out if controller is not None else None
    path = Path(st.path) if st.path else None
    ok = False
    if st.history and st.base is not None:
        try:
            ok = _replay(st, doc, locks, keep_out, path)
        except Exception as e:  # a damaged history must not cost the state
            doc.undo_stack.clear()
            notes.append(f"undo history could not be rebuilt ({type(e).__name__}: {e})")
        if not ok:
            notes.append("undo history did not replay exactly; restored the last state only")
    if not ok:
        _reset(doc, st.image, st.mask, st.origin, st, path)
        if locks is not None:
            locks.load(st.lock)
        if keep_out is not None:
            keep_out.load(st.keep_out)
    doc.original = st.original
    if controller is not None and st.candidate is not None and ok:
        try:
            controller.results.restore_pending(st.candidate)
            if steps is not None and controller.candidate is not None:
                steps.show_batch(controller.candidate.result)
        except Exception as e:
            controller.results.forget_pending()
            notes.append(f"candidates not restored ({type(e).__name__}: {e})")
    if steps is not None and st.steps is not None:
        try:
            c = controller.candidate if controller is not None else None
            chain, k, candidate, region, ui = history_from_dict(
                st.steps, doc, c.result.job_id if c is not None else 0)
            steps.adopt(chain, k, candidate, region, ui)
        except Exception as e:
            notes.append(f"step history not restored ({type(e).__name__}: {e})")
    return notes


def _reset(doc: d.Document, image: np.ndarray, mask: np.ndarray, origin: tuple[int, int] | list,
           st: State, path: Path | None) -> None:
    doc.reset(image, path, alpha=st.alpha, straight=st.straight, exif=st.exif,
              icc_profile=st.icc_profile, mask=mask, origin=(int(origin[0]), int(origin[1])),
              original=st.original)


def _replay(st: State, doc: d.Document, locks: LockLayer | None, keep_out: LockLayer | None,
            path: Path | None) -> bool:
    """Push the saved entries onto the state before the first one and go to the saved index;
    True when that gives the saved state exactly (else the history is dropped)."""
    b = st.base
    assert b is not None
    commands = [EditCommand.from_dict(e, doc, locks, keep_out) for e in st.history]  # read first
    if not rgb(b["image"]):
        return False
    _reset(doc, b["image"], b["mask"], b["origin"], st, path)
    layers = [(layer, b.get(k), saved) for layer, k, saved in (
        (locks, "lock", st.lock), (keep_out, "keep_out", st.keep_out)) if layer is not None]
    for layer, base, _ in layers:
        layer.load(base)
    stack = doc.undo_stack
    for cmd in commands:
        stack.push(cmd)
    stack.setIndex(st.index)
    same = (doc.image.shape == st.image.shape and np.array_equal(doc.image, st.image)
            and np.array_equal(doc.mask, st.mask) and tuple(doc.origin) == tuple(st.origin))
    for layer, _, saved in layers:
        want = np.zeros(st.mask.shape, bool) if saved is None else saved
        same = same and layer.mask.shape == want.shape and np.array_equal(layer.mask, want)
    if not same:
        stack.clear()
    return same
