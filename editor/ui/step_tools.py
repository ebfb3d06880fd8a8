"""The step tools' widgets bound to the Steps state: the Steps dock (scrubber, branch, heatmap,
re-roll), the candidates strip, the heatmap and lock overlays on the canvas. The main window
places `dock` and `strip`; this wires them to the controller, the Steps and the canvas.
"""

from __future__ import annotations

import contextlib

from PySide6.QtCore import QObject, QRect, Qt
from PySide6.QtWidgets import QDockWidget, QHBoxLayout, QWidget

from editor.core.history import StepRecord
from editor.state.controller import Controller
from editor.state.imageconv import to_qimage
from editor.state.steps import Steps
from editor.ui.candidates import CandidateStrip
from editor.ui.canvas import Canvas
from editor.ui.overlays import KEEP_OUT_RGBA, HeatmapOverlay, LockOverlay
from editor.ui.scrubber import StepScrubber


class StepTools(QObject):
    def __init__(self, controller: Controller, canvas: Canvas, parent: QWidget) -> None:
        super().__init__(parent)  # a QObject child: its slots disconnect when the window goes
        self.controller, self.canvas = controller, canvas
        c, cv = controller, canvas
        self.steps = Steps(c, parent)
        self.scrubber = StepScrubber(self.steps)
        self.strip = CandidateStrip(self.steps)
        self.heat = HeatmapOverlay()
        self.heat.setVisible(False)
        self.locks = LockOverlay()
        self.keep_out = LockOverlay(KEEP_OUT_RGBA, cells=False)
        cv.scene().addItem(self.heat)
        cv.scene().addItem(self.locks)
        cv.scene().addItem(self.keep_out)
        self.locks.set_locked(c.locks.mask)
        self.keep_out.set_locked(c.keep_out.mask)

        sc = self.scrubber
        for b in (sc.branch_btn, sc.reroll_btn, sc.vary_btn, sc.heatmap):
            # A button that disables itself after a click would hand the keyboard to the next
            # widget (the "20 %" box), where C, B, [ ] and Ctrl+Z would then be typed.
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        # The "window N of M" box comes and goes with multi-window edits, and a form drops a
        # hidden row: a holder of its height keeps the room, so the buttons below stay put
        # under the pointer.
        holder = QWidget()
        holder.setFixedHeight(sc.window_box.sizeHint().height())
        sc.layout().replaceWidget(sc.window_box, holder)
        QHBoxLayout(holder).setContentsMargins(0, 0, 0, 0)
        holder.layout().addWidget(sc.window_box)

        self.dock = QDockWidget("Steps", parent)
        self.dock.setObjectName("steps-dock")
        self.dock.setWidget(self.scrubber)

        # The one live preview: steps reach the canvas through the Steps. A single-window
        # decode is shown through the scrubber (`shown`): once the user scrubs back, the canvas
        # shows the chosen step instead of each new one. A multi-window decode has no history:
        # its windows are painted as they come (`live`).
        self.steps.live.connect(self._live)
        c.locks.mask_changed.connect(self._on_locks)
        c.keep_out.mask_changed.connect(self._on_keep_out)
        c.plan_changed.connect(self.locks.set_plan)
        c.candidate_changed.connect(self.strip.select)
        self.steps.shown.connect(self._on_shown)
        self.steps.changed.connect(self._on_changed)
        self.scrubber.branch_requested.connect(self.branch)
        self.scrubber.reroll_requested.connect(self.reroll)
        self.scrubber.vary_requested.connect(self.vary)
        self.scrubber.heatmap_toggled.connect(self.show_heatmap)
        self.strip.picked.connect(self.pick)

    # ------------------------------------------------------------------ actions
    def branch(self, index: int, temperature: float) -> None:
        self.steps.branch(index, self.steps.c.class_id, temperature)

    def reroll(self, fraction: float) -> None:
        self.steps.reroll(fraction)

    def vary(self, fraction: float, seed: int | None = None) -> bool:
        return self.steps.vary(fraction, seed)

    def show_heatmap(self, on: bool) -> None:
        self.heat.setVisible(on)
        self._update_heat()

    def pick(self, batch: int, index: int) -> None:
        """A click on a pending candidate's thumbnail shows it on the canvas (still pending:
        compare, step through, Regenerate); a click on the one shown accepts it."""
        c = self.controller
        newest = self.steps.batches[0].job_id if self.steps.batches else -1
        if batch == 0 and c.candidate is not None and c.candidate.result.job_id == newest:
            if index == c.candidate.index:
                c.accept()
            else:
                c.show_candidate(index)
        else:
            self.steps.restore(batch, index)

    # ------------------------------------------------------------------ canvas
    def _on_locks(self, rect: QRect) -> None:
        self.locks.set_locked(self.controller.locks.mask, rect)

    def _on_keep_out(self, rect: QRect) -> None:
        self.keep_out.set_locked(self.controller.keep_out.mask, rect)

    def _live(self, _job: int, k: int, records: list[StepRecord]) -> None:
        c, cv = self.controller, self.canvas
        if c.job is None or len(c.job.windows) == 1 or not self.scrubber.following:
            return  # a single window's steps are shown by _on_shown
        if not cv.previewing:
            # The Steps change at a job's start arrives before the controller is busy and ends
            # the preview: every window's steps restart it.
            cv.begin_preview()
        rec = records[0]
        x0, y0, x1, y1 = rec.rect
        text = f"window {k + 1}/{len(c.job.windows)} · step {rec.step + 1}/{rec.total}"
        cv.paint_preview(to_qimage(rec.patch), QRect(x0, y0, x1 - x0, y1 - y0), text)
        cv.show_undecided(c.job.windows[k], rec.masked)

    def _on_shown(self, rec: object, index: int, count: int) -> None:
        cv = self.canvas
        if rec is None:  # the newest step of a finished decode: the document itself
            if cv.previewing and not self.controller.busy:
                cv.end_preview()
        else:
            if not cv.previewing:
                cv.begin_preview()
            x0, y0, x1, y1 = rec.rect  # type: ignore[attr-defined]
            text = f"step {rec.step + 1}/{rec.total}"  # type: ignore[attr-defined]
            cv.paint_preview(to_qimage(rec.patch), QRect(x0, y0, x1 - x0, y1 - y0), text)  # type: ignore[attr-defined]
            win = self._window()
            if win is not None:
                cv.show_undecided(win, rec.masked)  # type: ignore[attr-defined]
        self._update_heat(index)

    def _on_changed(self) -> None:
        with contextlib.suppress(RuntimeError):  # signals while the window is destroyed
            self._follow()

    def _follow(self) -> None:
        s, cv = self.steps, self.canvas
        if not s.current and not self.controller.busy and (s.index != -1 or cv.previewing):
            s.index = -1  # the result was undone or edited: scrubbing ends
            if cv.previewing:
                cv.end_preview()
            self.scrubber.refresh()  # it drew the scrubbed step before this slot ran
        self._update_heat()

    def _window(self) -> object:
        c = self.controller
        if c.busy and c.job is not None and len(c.job.windows) == 1:
            return c.job.windows[0]
        return self.steps.history.window if self.steps.history is not None else None

    def _update_heat(self, index: int | None = None) -> None:
        if not self.heat.isVisible():
            return
        s = self.steps
        rec = s.record(s.index if index is None else index)
        win = self._window()
        if rec is None or win is None or (not self.controller.busy and not s.current
                                          and s.index == -1):
            self.heat.set_heat(None, None)
            return
        region = s.region if not self.controller.busy else None
        self.heat.set_heat(win, rec.confidence, region)  # type: ignore[arg-type]
