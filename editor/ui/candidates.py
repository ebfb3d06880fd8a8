"""The candidates strip: the N candidates of the running decode as live thumbnails (updated every
step), then the candidates of earlier decodes, kept until the document is replaced.

Clicking a thumbnail of the newest batch accepts that candidate; clicking an earlier one puts it
back (one undo entry). Binds to editor.state.steps.Steps; the main window turns clicks into actions.
"""

from __future__ import annotations

import cv2
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QToolButton, QWidget

from editor.core.history import StepRecord
from editor.state.imageconv import to_qimage
from editor.state.steps import Steps

THUMB = 72
MAX_EARLIER = 40  # thumbnails of earlier batches shown (all are kept)


def thumbnail(rec: StepRecord, size: int = THUMB) -> QPixmap:
    """The record's patch in a `size` px square: every k-th pixel down to about 4x the size,
    then averaged (INTER_AREA). A smooth scale of the whole patch took 8-12 ms for a
    560 x 3000 outpaint strip of a phone photo, 20 of them in one step's slot; this 0.4-0.7."""
    patch = rec.patch
    k = max(1, max(patch.shape[:2]) // (4 * size))
    patch = patch[k // 2 :: k, k // 2 :: k]
    h, w = patch.shape[:2]
    s = size / max(h, w)
    if s < 1:
        patch = cv2.resize(patch, (max(1, round(w * s)), max(1, round(h * s))),
                           interpolation=cv2.INTER_AREA)
    return QPixmap.fromImage(to_qimage(patch))


class CandidateStrip(QScrollArea):
    picked = Signal(int, int)  # batch (0 = newest), candidate

    def __init__(self, steps: Steps, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.steps = steps
        self.setWidgetResizable(True)
        self.setFixedHeight(THUMB + 34)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the canvas keeps the keyboard
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._inner = QWidget()
        self._row = QHBoxLayout(self._inner)
        self._row.setContentsMargins(4, 2, 4, 2)
        self.setWidget(self._inner)
        self.live_buttons: list[QToolButton] = []
        # Thumbnails by record: a commit rebuilds the strip from the records its last live step
        # already showed, and every earlier batch's again (a smooth scale each).
        self._thumbs: dict[int, tuple[StepRecord, QPixmap]] = {}
        self._live: list[StepRecord] = []  # the records the live thumbnails show
        self.buttons: list[tuple[int, int, QToolButton]] = []  # (batch, candidate, button)
        steps.live.connect(self._on_live)
        steps.batches_changed.connect(self.rebuild)
        steps.c.busy_changed.connect(self._on_busy)
        self.rebuild()

    def _on_busy(self, busy: bool) -> None:
        if not busy and self.live_buttons:  # a decode ended without a result: its row goes
            self.rebuild()

    def select(self, index: int, count: int) -> None:
        """The pending candidate of the newest batch (controller.candidate_changed); none is
        marked while nothing is pending."""
        for b, c, btn in self.buttons:
            btn.setChecked(count > 0 and b == 0 and c == index)

    def _clear(self) -> None:
        while self._row.count():
            item = self._row.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.live_buttons, self.buttons = [], []

    def _thumb(self, rec: StepRecord) -> QPixmap:
        got = self._thumbs.get(id(rec))
        if got is None or got[0] is not rec:
            got = self._thumbs[id(rec)] = (rec, thumbnail(rec))
        return got[1]

    def _button(self, rec: StepRecord, tip: str) -> QToolButton:
        b = QToolButton()
        b.setIcon(QIcon(self._thumb(rec)))
        b.setIconSize(QSize(THUMB, THUMB))
        b.setCheckable(True)
        b.setToolTip(tip)
        b.setAutoRaise(True)
        b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the canvas keeps the keyboard (Tab compares)
        return b

    def _on_live(self, _job: int, _k: int, records: list[StepRecord]) -> None:
        if len(self.live_buttons) != len(records):
            self._clear()
            self._row.addWidget(QLabel("decoding"))
            for i, r in enumerate(records):
                b = self._button(r, f"candidate {i + 1}")
                b.setEnabled(False)  # accepted once the decode has finished
                self._row.addWidget(b)
                self.live_buttons.append(b)
            self._add_earlier(0)
            self._row.addStretch(1)
        for r in self._live:  # the step before: superseded (the last one may become a batch)
            self._thumbs.pop(id(r), None)
        self._live = list(records)
        for b, r in zip(self.live_buttons, records, strict=True):
            b.setIcon(QIcon(self._thumb(r)))
        self.setVisible(True)

    def rebuild(self) -> None:
        self._clear()
        batches = self.steps.batches
        kept = {id(r) for b in batches for r in b.records}
        self._thumbs = {k: v for k, v in self._thumbs.items() if k in kept}
        self._live = []
        if batches:
            self._row.addWidget(QLabel("candidates"))
            self._add_batch(0)
            self._add_earlier(1)
        self._row.addStretch(1)
        self.setVisible(bool(batches))
        pending = self.steps.c.candidate
        if pending is None:
            self.select(-1, 0)
        else:
            self.select(pending.index, 1)

    def _add_batch(self, k: int) -> None:
        b = self.steps.batches[k]
        for i, rec in enumerate(b.records):
            tip = (f"candidate {i + 1}: click to accept" if k == 0
                   else f"earlier candidate {i + 1}: click to put it back")
            btn = self._button(rec, tip)
            btn.setCheckable(k == 0)  # only the pending batch has a chosen one
            if b.shape != self.steps.doc.mask.shape:
                btn.setEnabled(False)
                btn.setToolTip("from a canvas of another size (undo or redo back to it)")
            btn.clicked.connect(lambda _=False, k=k, i=i: self.picked.emit(k, i))
            self._row.addWidget(btn)
            self.buttons.append((k, i, btn))

    def _add_earlier(self, first: int) -> None:
        batches = self.steps.batches
        if len(batches) <= first:
            return
        self._row.addWidget(QLabel("  earlier"))
        shown = 0
        for k in range(first, len(batches)):
            if shown >= MAX_EARLIER:
                break
            self._add_batch(k)
            shown += len(batches[k].records)
