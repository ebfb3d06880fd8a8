"""The Steps panel: a slider over the steps of the current/last decode (and, for a decode of
several windows, which window), "Branch from here", the confidence heatmap toggle and "Re-roll
weakest N %". Binds to editor.state.steps.Steps."""

from __future__ import annotations

import contextlib

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QWidget,
)

from editor.state.steps import Steps


class StepScrubber(QWidget):
    branch_requested = Signal(int, float)  # step index, temperature
    reroll_requested = Signal(float)  # fraction of the edited region's tokens
    vary_requested = Signal(float)  # fraction of the masked region's tokens
    heatmap_toggled = Signal(bool)

    def __init__(self, steps: Steps, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.steps = steps
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setPageStep(1)
        self.slider.setToolTip("Scrub through the steps of the last decode (the newest step is "
                               "the result in the document)")
        self.label = QLabel("no decode yet")
        self.label.setWordWrap(True)  # long reasons must not widen the dock (and the window)
        self.window_box = QSpinBox(minimum=1, maximum=1, prefix="window ")
        self.window_box.setToolTip("This edit was decoded window by window: the slider, the "
                                   "heatmap, branching and re-rolling work on the window "
                                   "chosen here")
        self.branch_btn = QPushButton("Branch from here")
        self.temperature = QDoubleSpinBox(minimum=0.1, maximum=3.0, singleStep=0.1, value=1.0)
        self.temperature.setToolTip("Softmax temperature of the branch's token draws")
        self.heatmap = QCheckBox("Confidence heatmap")
        self.heatmap.setToolTip("Per-token confidence p(token) of the shown step, ranked within "
                                "the edited region: red = weakest, green = strongest")
        self.percent = QSpinBox(minimum=1, maximum=100, value=20, suffix=" %")
        self.reroll_btn = QPushButton("Re-roll weakest")
        self.reroll_btn.setToolTip("Decode the least confident tokens of the edited region "
                                   "again, keeping every other token (and locked cells)")

        row = QHBoxLayout()
        row.addWidget(self.branch_btn, 1)
        row.addWidget(QLabel("temp."))
        row.addWidget(self.temperature)
        self.vary_btn = QPushButton("Vary mask")
        self.vary_btn.setToolTip("Variations of the masked region that keep its layout: "
                                 "re-mask this share of its tokens at random and decode them "
                                 "again (Shift+V)")
        row2 = QHBoxLayout()
        row2.addWidget(self.reroll_btn, 1)
        row2.addWidget(self.vary_btn, 1)
        row2.addWidget(self.percent)
        form = QFormLayout(self)
        form.addRow(self.label)
        form.addRow(self.window_box)
        form.addRow(self.slider)
        form.addRow(row)
        form.addRow(self.heatmap)
        form.addRow(row2)

        self.slider.valueChanged.connect(self._on_slider)
        self.window_box.valueChanged.connect(lambda v: self.steps.select_window(v - 1))
        self.branch_btn.clicked.connect(
            lambda: self.branch_requested.emit(self.slider.value(), self.temperature.value()))
        self.reroll_btn.clicked.connect(
            lambda: self.reroll_requested.emit(self.percent.value() / 100))
        self.vary_btn.clicked.connect(lambda: self.vary_requested.emit(self.percent.value() / 100))
        self.heatmap.toggled.connect(self.heatmap_toggled)
        steps.changed.connect(self.refresh)
        steps.shown.connect(self._on_shown)
        self.refresh()

    @property
    def following(self) -> bool:
        return self.steps.index == -1

    def _on_slider(self, value: int) -> None:
        self.steps.show(value)

    def refresh(self) -> None:
        with contextlib.suppress(RuntimeError):  # signals while the window is destroyed
            self._refresh()

    def _refresh(self) -> None:
        s = self.steps
        n = len(s.steps)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(n - 1, 0))
        if s.index == -1:
            self.slider.setValue(max(n - 1, 0))
        self.slider.blockSignals(False)
        self.slider.setEnabled(n > 1)
        self.window_box.blockSignals(True)
        self.window_box.setRange(1, max(len(s.chain), 1))
        self.window_box.setSuffix(f" of {len(s.chain)}")
        self.window_box.setValue(s.window_index + 1)
        self.window_box.blockSignals(False)
        self.window_box.setVisible(len(s.chain) > 1 and not s.c.busy and s.fits())
        why = s.reason
        self.branch_btn.setEnabled(s.can_branch())
        self.reroll_btn.setEnabled(s.can_reroll())
        self.vary_btn.setEnabled(s.can_vary())
        for w in (self.branch_btn, self.reroll_btn, self.slider):
            if not w.isEnabled() and why:
                w.setToolTip(why)
        if self.branch_btn.isEnabled():
            self.branch_btn.setToolTip("Decode again from the shown step with a new seed (the "
                                       "class list's class if one is picked, else the same "
                                       "class); the steps before it are shared")
        if self.reroll_btn.isEnabled():
            self.reroll_btn.setToolTip("Decode the least confident tokens of the edited region "
                                       "again, keeping every other token (and locked cells)")
        if n == 0:
            job = s.c.job
            if job is not None and len(job.windows) > 1:
                why = "decoding window by window: every window's steps are here when it is done"
            elif s.c.busy:
                why = "decoding…"
            elif s.history is not None and not s.fits():
                why = "The canvas changed size since the last decode: its steps are for the " \
                      "canvas it had then (undo or redo back to it)."
            self.label.setText(why or "no decode yet")
        else:
            self._label(s.index if s.index != -1 else n - 1, n)

    def _on_shown(self, rec: object, index: int, count: int) -> None:
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(count - 1, 0))
        self.slider.setValue(index)
        self.slider.blockSignals(False)
        self._label(index, count)

    def _label(self, index: int, count: int) -> None:
        rec = self.steps.record(index)
        if rec is None:
            return
        tail = ""
        if index == count - 1 and not self.steps.c.busy:
            tail = " (result)" if self.steps.current else " (result, since undone or edited)"
        self.label.setText(f"step {rec.step + 1}/{rec.total}{tail} · "
                           f"{int(rec.masked.sum())} tokens undecided")
