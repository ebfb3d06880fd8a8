"""Project files for a session: `capture` snapshots the document, its undo history, the
pending candidates and the step history into an editor.core.project_file.State, and `restore`
makes a session what a State describes. The undo entries serialise themselves
(EditCommand.to_dict / from_dict); the file format itself is editor.core.project_file.

`capture` runs on the GUI thread and only copies what editing mutates in place; `write` may run
on any thread.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from editor.core.geometry import Window
from editor.core.history import StepRecord
from editor.core.jobs import Job, JobResult, Sampling
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
    lock = locks.mask.copy() if locks is not None and locks.any() else None
    image, mask = pixels if pixels is not None else (doc.image.copy(), doc.mask.copy())
    st = State(image, mask, tuple(doc.origin), doc.original, lock,
               doc.alpha, doc.straight, str(doc.path or ""), settings=dict(settings or {}))
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
    if controller is not None and controller.candidate is not None:
        st.candidate = _candidate(controller, stack.index())
    if steps is not None and steps.in_stack():  # a running decode has none yet: the last one's
        st.steps = _history(steps)
    st.saved_at = time.time()
    return st


def _fields(record: StepRecord) -> dict[str, Any]:
    """The record's fields, its arrays shared, not copied (dataclasses.asdict deep-copies them:
    tens of MB on the GUI thread per autosave after an outpaint, and the autosave cache, keyed
    by array identity, would compress them all again every time)."""
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


def _history(steps: Steps) -> dict[str, Any]:
    chain = [dict(window=dataclasses.asdict(h.window), start_mask=h.start_mask,  # type: ignore[call-overload]
                  pixel_mask=h.pixel_mask, class_id=h.class_id, kind=h.kind,
                  records=[[_fields(r) for r in row] for row in h.steps])
             for h in steps.chain]
    # The undo entry that committed it (by index and text): the history may sit under edits.
    entry = steps.doc.undo_stack.text(steps.undo_index - 1)
    return dict(chain=chain, window=steps.window, candidate=steps.candidate, region=steps.region,
                undo_index=steps.undo_index, entry=entry)


def _candidate(controller: Controller, index: int) -> dict[str, Any] | None:
    c = controller.candidate
    if c is None or c.undo_index != index:
        return None
    x0, y0, x1, y1 = c.result.changed
    job: dict[str, Any] = {}
    for f in dataclasses.fields(Job):
        v = getattr(c.job, f.name)
        if f.name == "image":
            continue  # the input image is the state before the commit: rebuilt on restore
        if v is None or isinstance(v, np.ndarray | int | float | str | bool):
            job[f.name] = v
        elif f.name == "windows":
            job[f.name] = [dataclasses.asdict(w) for w in v]
        elif isinstance(v, Sampling):
            job[f.name] = dataclasses.asdict(v)
        else:
            job[f.name] = None  # step history of a branch: not kept
    return dict(job=job, crops=[im[y0:y1, x0:x1] for im in c.result.images],
                changed=[x0, y0, x1, y1], class_id=c.result.class_id, index=c.index,
                text=c.text)


def restore(st: State, doc: d.Document, controller: Controller | None = None,
            steps: Steps | None = None) -> list[str]:
    """Make `doc` (and the controller's candidate and the step history) what `st` describes.
    Returns notes on what could not be restored. The history is rebuilt by pushing the saved
    commands onto the state before the first one, then undoing back to the saved index; if that
    does not reproduce the saved state exactly, the state alone is restored."""
    notes = list(st.notes)
    locks = controller.locks if controller is not None else None
    path = Path(st.path) if st.path else None
    ok = False
    if st.history and st.base is not None:
        try:
            ok = _replay(st, doc, locks, path)
        except Exception as e:  # a damaged history must not cost the state
            doc.undo_stack.clear()
            notes.append(f"undo history could not be rebuilt ({type(e).__name__}: {e})")
        if not ok:
            notes.append("undo history did not replay exactly; restored the last state only")
    if not ok:
        _reset(doc, st.image, st.mask, st.origin, st, path)
        if locks is not None:
            locks.load(st.lock)
    doc.original = st.original
    if controller is not None and st.candidate is not None and ok:
        try:
            _restore_candidate(st.candidate, doc, controller)
            if steps is not None and controller.candidate is not None:
                steps.show_batch(controller.candidate.result)
        except Exception as e:
            controller.candidate = None
            notes.append(f"candidates not restored ({type(e).__name__}: {e})")
    if steps is not None and st.steps is not None:
        try:
            c = controller.candidate if controller is not None else None
            _restore_history(st.steps, doc, steps, c.result.job_id if c is not None else 0)
        except Exception as e:
            notes.append(f"step history not restored ({type(e).__name__}: {e})")
    return notes


def _reset(doc: d.Document, image: np.ndarray, mask: np.ndarray, origin: tuple[int, int] | list,
           st: State, path: Path | None) -> None:
    doc.reset(image, path, alpha=st.alpha, straight=st.straight, exif=st.exif,
              icc_profile=st.icc_profile, mask=mask, origin=(int(origin[0]), int(origin[1])),
              original=st.original)


def _replay(st: State, doc: d.Document, locks: LockLayer | None, path: Path | None) -> bool:
    """Push the saved entries onto the state before the first one and go to the saved index;
    True when that gives the saved state exactly (else the history is dropped)."""
    b = st.base
    assert b is not None
    commands = [EditCommand.from_dict(e, doc, locks) for e in st.history]  # all read first
    if not rgb(b["image"]):
        return False
    _reset(doc, b["image"], b["mask"], b["origin"], st, path)
    if locks is not None:
        locks.load(b.get("lock"))
    stack = doc.undo_stack
    for cmd in commands:
        stack.push(cmd)
    stack.setIndex(st.index)
    want = np.zeros(st.mask.shape, bool) if st.lock is None else st.lock
    same = (doc.image.shape == st.image.shape and np.array_equal(doc.image, st.image)
            and np.array_equal(doc.mask, st.mask) and tuple(doc.origin) == tuple(st.origin))
    if same and locks is not None:
        same = locks.mask.shape == want.shape and np.array_equal(locks.mask, want)
    if not same:
        stack.clear()
    return same


def _restore_candidate(c: dict[str, Any], doc: d.Document, controller: Controller) -> None:
    from editor.state.controller import Candidate

    kw = dict(c["job"])
    kw["windows"] = [Window(**{**w, "core": tuple(w["core"])}) for w in kw.get("windows", [])]
    if isinstance(kw.get("sampling"), dict):
        kw["sampling"] = Sampling(**kw["sampling"])
    kw.pop("id", None)
    if kw.get("kind") not in ("edit", "generate"):
        raise ValueError(f"unknown job kind {kw.get('kind')!r}")
    for k in ("seed", "candidates", "feather"):
        if k in kw:
            kw[k] = int(kw[k])
    if kw.get("class_id") is not None:
        kw["class_id"] = int(kw["class_id"])
    known = {f.name for f in dataclasses.fields(Job)}
    h, w = doc.mask.shape
    check_job(kw, h, w)  # before any copy: Ctrl+R runs this job again
    job = Job(image=doc.image.copy(), **{k: v for k, v in kw.items() if k in known})
    x0, y0, x1, y1 = (int(v) for v in c["changed"])
    if not (0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h):
        raise ValueError("the changed area lies outside the image")
    if not isinstance(job.mask, np.ndarray) or job.mask.shape != (h, w):
        raise ValueError("the candidate's mask does not fit the image")
    job.mask = job.mask.astype(bool)
    if not c["crops"] or any(not isinstance(a, np.ndarray) or a.shape != (y1 - y0, x1 - x0, 3)
                             or a.dtype != np.uint8 for a in c["crops"]):
        raise ValueError("the candidates do not fit the image")
    if not 0 <= int(c["index"]) < len(c["crops"]):
        raise ValueError("no such candidate")
    images = []
    for crop in c["crops"]:
        im = doc.image.copy()
        im[y0:y1, x0:x1] = crop
        images.append(im)
    result = JobResult(job.id, images, c.get("class_id"), (x0, y0, x1, y1))
    index = int(c["index"])
    stack = doc.undo_stack
    controller.candidate = Candidate(job, result, index, stack.index(), str(c["text"]),
                                     stack.command(stack.index() - 1))
    controller.candidate_changed.emit(index, len(images))




def _restore_history(s: dict[str, Any], doc: d.Document, steps: Steps, job_id: int) -> None:
    """Every array is checked against its window and the image before the Steps see them.
    `job_id`: the restored pending candidates' (the same decode's, when they were saved)."""
    ui, stack = int(s.get("undo_index", doc.undo_stack.index())), doc.undo_stack
    if not 0 < ui <= stack.count() or stack.text(ui - 1) != s.get("entry", stack.text(ui - 1)):
        raise ValueError("the undo entry it belongs to was not restored")
    if not isinstance(s["chain"], list) or len(s["chain"]) > MAX_WINDOWS:
        raise ValueError("more windows than a plan has")
    chain = [window_history(w, doc.mask.shape, job_id) for w in s["chain"]]
    if not chain or any(h.candidates != chain[0].candidates for h in chain):
        raise ValueError("its windows do not match")
    region = s.get("region")
    k = min(max(int(s.get("window") or 0), 0), len(chain) - 1)
    grid = chain[k].start_mask.shape
    steps.adopt(chain, k, int(s.get("candidate") or 0),
                region.astype(bool) if isinstance(region, np.ndarray) and region.shape == grid
                else None, ui)


