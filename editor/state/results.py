"""The one results store: from a job to its candidates, the undo entry that committed one, the
batches of the candidates strip and the step history behind each committed decode.

The Controller commits results here and the Steps keep and find their histories here; the
project file reads and writes the store (`pending_to_dict` / `restore_pending`,
`history_to_dict` / `history_from_dict`). Nothing else keeps track of which undo entry holds
which result.

- pending: the committed candidate not yet accepted (swap it for another of its batch, or
  regenerate it); undoing past its entry parks it, and a redo that reaches that very entry
  makes it pending again;
- batches: the last step of every candidate of each committed decode, newest first;
- kept: the step history behind an undo entry, so undo / redo brings the scrubber back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from editor.core.geometry import Window
from editor.core.history import DecodeHistory, StepRecord
from editor.core.jobs import Job, JobResult, Sampling
from editor.core.project_file import MAX_WINDOWS, check_job, window_history
from editor.state.document import Document

KEEP_DECODES = 8  # decodes whose step history comes back when undo / redo reaches them


@dataclass
class Pending:
    """The committed candidate of a decode, still pending (not accepted)."""

    job: Job
    result: JobResult
    index: int  # which of result.images is committed
    undo_index: int  # the undo stack index right after the commit
    text: str
    entry: object = None  # the undo command of the commit (undo + redo find it again)


@dataclass
class Batch:
    """The last step of every candidate of one committed decode (the candidates strip)."""

    job_id: int
    records: list[StepRecord]
    shape: tuple[int, ...]  # the document's size then: a restore needs the same canvas


@dataclass
class Kept:
    """The step history behind one undo entry (a generation, branch, re-roll...)."""

    entry: object  # that undo command: another one at the same index is another state
    chain: list[DecodeHistory]
    window_index: int
    candidate_index: int
    region: np.ndarray | None


class Results(QObject):
    pending_changed = Signal(int, int)  # index, count; (-1, 0) when none is pending

    def __init__(self, doc: Document, busy: Callable[[], bool],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self._busy = busy  # a running job: a redo does not make a parked candidate pending
        self.pending: Pending | None = None
        self._parked: Pending | None = None  # undone; pending again if redo reaches it
        self.batches: list[Batch] = []  # newest first; kept until the document is replaced
        self._kept: dict[int, Kept] = {}  # undo index -> the decode that entry committed
        doc.undo_stack.indexChanged.connect(self._on_undo_index)

    # ------------------------------------------------------------------ the pending candidate
    def commit(self, job: Job, result: JobResult, index: int, text: str) -> None:
        """Candidate `index` of `result` was just pushed as the newest undo entry."""
        stack = self.doc.undo_stack
        self.pending = Pending(job, result, index, stack.index(), text,
                                 stack.command(stack.index() - 1))
        self._parked = None
        self.pending_changed.emit(index, len(result.images))

    def accept(self) -> None:
        """Keep the pending candidate (it already is in the document and the undo stack)."""
        self._parked = None
        if self.pending is not None:
            self.pending = None
            self.pending_changed.emit(-1, 0)

    def drop(self) -> None:
        """Nothing is pending any more (a regeneration took it off)."""
        self.pending = None
        self.pending_changed.emit(-1, 0)

    def park(self, c: Pending | None) -> None:
        """`c` was undone for a regeneration: `put_back` gives it back if none comes."""
        self._parked = c

    def put_back(self) -> None:
        """A regeneration that ends without a result gives back the candidate it took off:
        redo reaches its entry again, and the undo index makes it pending."""
        c, stack = self._parked, self.doc.undo_stack
        if c is not None and stack.index() == c.undo_index - 1 and stack.canRedo():
            stack.redo()

    @Slot(int)
    def _on_undo_index(self, index: int) -> None:
        # Undoing past the pending candidate leaves nothing to swap or regenerate, until a
        # redo reaches that very entry again.
        c, parked = self.pending, self._parked
        if c is not None and index != c.undo_index:
            self._parked, self.pending = c, None
            self.pending_changed.emit(-1, 0)
        elif (c is None and parked is not None and index == parked.undo_index
              and not self._busy() and self.doc.undo_stack.command(index - 1) is parked.entry):
            self.pending, self._parked = parked, None
            self.pending_changed.emit(parked.index, len(parked.result.images))

    # ------------------------------------------------------------------ batches and histories
    def add_batch(self, batch: Batch) -> None:
        self.batches.insert(0, batch)

    def keep(self, undo_index: int, kept: Kept) -> None:
        """Remember the history behind undo entry `undo_index` (the oldest go)."""
        self._kept[undo_index] = kept
        while len(self._kept) > KEEP_DECODES:
            del self._kept[min(self._kept)]

    def kept(self, undo_index: int) -> Kept | None:
        return self._kept.get(undo_index)

    def kept_for_job(self, job_id: int) -> Kept | None:
        return next((k for k in self._kept.values()
                     if k.chain and k.chain[0].job_id == job_id), None)

    def forget(self, kept: Kept) -> None:
        self._kept = {i: v for i, v in self._kept.items() if v is not kept}

    def forget_from(self, undo_index: int) -> None:
        """Entries from `undo_index` on are gone (a commit discarded a redo branch, or the
        stack shrank)."""
        self._kept = {i: k for i, k in self._kept.items() if i < undo_index}

    def clear(self) -> None:
        """A new document: its histories and batches are gone."""
        self._kept, self.batches = {}, []

    # ------------------------------------------------------------------ project files
    def pending_to_dict(self, undo_index: int) -> dict[str, Any] | None:
        """The pending candidates, when they belong to undo entry `undo_index`."""
        c = self.pending
        if c is None or c.undo_index != undo_index:
            return None
        x0, y0, x1, y1 = c.result.changed
        return dict(job=_job_to_dict(c.job), crops=[im[y0:y1, x0:x1] for im in c.result.images],
                    changed=[x0, y0, x1, y1], class_id=c.result.class_id, index=c.index,
                    text=c.text)

    def restore_pending(self, c: dict[str, Any]) -> None:
        """Make the saved pending candidates pending again, on the current undo entry;
        raises ValueError for a stored candidate the editor would not make."""
        doc = self.doc
        h, w = doc.mask.shape
        job = _job_from_dict(c["job"], doc.image, (h, w))
        x0, y0, x1, y1 = (int(v) for v in c["changed"])
        if not (0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h):
            raise ValueError("the changed area lies outside the image")
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
        self.commit(job, result, int(c["index"]), str(c["text"]))

    def forget_pending(self) -> None:
        """Drop the pending candidates silently (a restore that failed half way)."""
        self.pending = None


def _job_to_dict(job: Job) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(Job):
        v = getattr(job, f.name)
        if f.name == "image":
            continue  # the input image is the state before the commit: rebuilt on restore
        if v is None or isinstance(v, np.ndarray | int | float | str | bool):
            out[f.name] = v
        elif f.name == "windows":
            out[f.name] = [dataclasses.asdict(w) for w in v]
        elif isinstance(v, Sampling):
            out[f.name] = dataclasses.asdict(v)
        else:
            out[f.name] = None  # step history of a branch: not kept
    return out


def _job_from_dict(d: dict[str, Any], image: np.ndarray, shape: tuple[int, int]) -> Job:
    kw = dict(d)
    kw["windows"] = [Window(**{**w, "core": tuple(w["core"])}) for w in kw.get("windows", [])]
    if isinstance(kw.get("sampling"), dict):
        kw["sampling"] = Sampling(**kw["sampling"])
    kw.pop("id", None)
    if kw.get("kind") not in ("edit", "generate"):
        raise ValueError(f"unknown job kind {kw.get('kind')!r}")
    for k in ("seed", "candidates", "feather", "first_guide"):
        if k in kw:
            kw[k] = int(kw[k])
    if kw.get("class_id") is not None:
        kw["class_id"] = int(kw["class_id"])
    known = {f.name for f in dataclasses.fields(Job)}
    check_job(kw, *shape)  # before any copy: Ctrl+R runs this job again
    job = Job(image=image.copy(), **{k: v for k, v in kw.items() if k in known})
    if not isinstance(job.mask, np.ndarray) or job.mask.shape != shape:
        raise ValueError("the candidate's mask does not fit the image")
    job.mask = job.mask.astype(bool)
    return job


def _fields(record: StepRecord) -> dict[str, Any]:
    """The record's fields, its arrays shared, not copied (dataclasses.asdict deep-copies them:
    tens of MB on the GUI thread per autosave after an outpaint, and the autosave cache, keyed
    by array identity, would compress them all again every time)."""
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


def history_to_dict(chain: list[DecodeHistory], window: int, candidate: int,
                    region: np.ndarray | None, undo_index: int, entry: str) -> dict[str, Any]:
    """A committed decode's step history (every window of it) for the project file; `entry`:
    the text of the undo entry that committed it (the history may sit under edits)."""
    windows = [dict(window=dataclasses.asdict(h.window),  # type: ignore[call-overload]
                    start_mask=h.start_mask, pixel_mask=h.pixel_mask, class_id=h.class_id,
                    kind=h.kind, records=[[_fields(r) for r in row] for row in h.steps])
               for h in chain]
    return dict(chain=windows, window=window, candidate=candidate, region=region,
                undo_index=undo_index, entry=entry)


def history_from_dict(s: dict[str, Any], doc: Document, job_id: int
                      ) -> tuple[list[DecodeHistory], int, int, np.ndarray | None, int]:
    """(chain, window, candidate, region, undo index) of a saved step history, every array
    checked against its window and the image. `job_id`: the restored pending candidates'
    (the same decode's, when they were saved)."""
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
    region = (region.astype(bool) if isinstance(region, np.ndarray) and region.shape == grid
              else None)
    return chain, k, int(s.get("candidate") or 0), region, ui
