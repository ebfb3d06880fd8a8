"""The main window: menus, toolbar, the canvas, the class and sampling panels, the status bar.

Owns the worker thread (so closing the window stops it) and wires widgets to the controller.
Errors are shown in non-blocking message boxes and never lose the document.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer, QUrl, Slot
from PySide6.QtGui import (
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QImage,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from editor.core import masks
from editor.core.classes import class_names
from editor.core.masks import MASK_STEP
from editor.core.samples import samples
from editor.state.controller import Controller
from editor.state.document import Document
from editor.state.steps import Steps
from editor.ui import help as help_
from editor.ui import unfrozen
from editor.ui.actions import build_actions
from editor.ui.canvas import Canvas
from editor.ui.class_panel import ClassPanel
from editor.ui.files import Files
from editor.ui.model_choice import ModelChoice
from editor.ui.session import Session
from editor.ui.step_tools import StepTools
from editor.ui.tools import (
    Brush,
    Eraser,
    KeepOutBrush,
    Lasso,
    LockBrush,
    MagicWand,
    ObjectSelect,
    RectSelect,
    Tool,
)
from editor.ui.widgets import CandidateBar, ProgressBar, SamplePicker, SamplingPanel

if TYPE_CHECKING:
    from editor.state.worker import WorkerThread

FIRST_HINT = ("Open a photo with Ctrl+O, or drop one here,\n"
              "or pick a class and press \u201cNew image of this class\u201d,\n"
              "or try one of the samples below.")


class MainWindow(QMainWindow):
    def __init__(self, worker_thread: WorkerThread, settings: QSettings | None = None,
                 confirm: bool = True) -> None:
        """`worker_thread`: an editor.state.worker.WorkerThread (owned from now on). `confirm`: ask
        before discarding unsaved changes (tests turn it off)."""
        super().__init__()
        self.setWindowTitle("MaskGIT Editor")
        self.resize(1280, 820)
        self.setAcceptDrops(True)
        self.settings = settings if settings is not None else QSettings()
        self.confirm = confirm
        self.last_error: tuple[str, str] | None = None
        self.worker_thread = worker_thread
        self.worker_stopped = False

        self.doc = Document()
        self.controller = Controller(self.doc, worker_thread.worker, self)
        self.canvas = Canvas(self.doc)
        self.tools: dict[str, Tool] = {}
        brush = Brush()
        eraser = Eraser()
        obj = ObjectSelect()
        self.selecting = obj.background  # GrabCut, off the GUI thread
        self.tools = {"brush": brush, "eraser": eraser, "rectangle": RectSelect(),
                      "lasso": Lasso(), "object": obj, "wand": MagicWand(),
                      "lock": LockBrush(self.controller.locks),
                      "keepout": KeepOutBrush(self.controller.keep_out)}
        self.candidate_bar = CandidateBar()
        self.class_panel = ClassPanel(self.controller)  # the Class dock
        self.class_picker = self.class_panel.picker
        self.sampling = SamplingPanel(self.controller.settings)
        self.sample_picker = SamplePicker(samples())

        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.canvas, 1)
        lay.addWidget(self.sample_picker)
        lay.addWidget(self.candidate_bar)
        self.setCentralWidget(central)
        self._build_docks()
        self.files = Files(self)  # open, paste, save, masks, the recent list
        for name in ("open_path", "save", "save_to", "paste_image", "copy_image", "import_mask",
                     "export_mask"):
            setattr(self, name, getattr(self.files, name))
        build_actions(self)
        self._build_status()
        self._bind()
        self.session = Session(self)  # project files, autosave, recovery
        # Scrubber, heatmap, re-roll, lock, candidates strip.
        self.step_tools = StepTools(self.controller, self.canvas, self)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.step_tools.dock)
        lay.insertWidget(lay.indexOf(self.candidate_bar), self.step_tools.strip)
        self._restore_layout()
        self.set_tool("brush")
        self.canvas.setFocus()
        self.update_title()

    # ------------------------------------------------------------------ construction
    def _build_docks(self) -> None:
        p = self.class_panel
        self.regen_button, self.new_button, self.class_note = p.regen_button, p.new_button, p.note
        dock = QDockWidget("Class", self)
        dock.setObjectName("class-dock")
        dock.setWidget(p)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        dock2 = QDockWidget("Sampling", self)
        dock2.setObjectName("sampling-dock")
        dock2.setWidget(self.sampling)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock2)
        self.models = ModelChoice(self.sampling, self)  # the model list

    def _build_status(self) -> None:
        sb = self.statusBar()
        self.progress_label = QLabel("")
        self.progress_bar = ProgressBar(maximumWidth=160)
        self.progress_bar.setVisible(False)
        self.zoom_label = QLabel("100%")
        sb.addPermanentWidget(self.progress_label)
        sb.addPermanentWidget(self.progress_bar)
        sb.addPermanentWidget(self.zoom_label)

    def _bind(self) -> None:
        c, cv = self.controller, self.canvas
        c.preview_started.connect(cv.begin_preview)
        c.preview_ended.connect(cv.end_preview)
        c.plan_changed.connect(cv.set_plan)
        c.busy_changed.connect(self._on_busy)
        c.progress.connect(self._on_progress)
        c.advanced.connect(self._on_advanced)
        c.candidate_changed.connect(self.candidate_bar.set_candidate)
        c.error.connect(self.show_error)
        c.message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        sel = self.selecting
        sel.started.connect(lambda: self.statusBar().showMessage("Selecting the object…"))
        sel.finished.connect(lambda: sel.running or self.statusBar().clearMessage())
        c.model_failed.connect(self.sampling.forget_model_path)  # the list: only what loads
        c.class_chosen.connect(
            lambda cid: self.statusBar().showMessage(f"Automatic class: {class_names()[cid]}"))
        cv.extend_requested.connect(c.extend)
        cv.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f}%"))
        self.candidate_bar.accept.connect(c.accept)
        self.candidate_bar.regenerate.connect(c.regenerate)
        self.candidate_bar.discard.connect(self._discard)
        self.candidate_bar.show_index.connect(c.show_candidate)
        c.settings.changed.connect(self._on_setting)
        self.regen_button.clicked.connect(self.regenerate_as)
        self.new_button.clicked.connect(self.new_image)
        self.doc.undo_stack.cleanChanged.connect(self.update_title)
        self.doc.path_changed.connect(self.update_title)
        # The blank start page says what to do; anything done to the document retires it.
        cv.set_hint(FIRST_HINT)
        self.doc.canvas_changed.connect(self._retire_start_page)
        self.doc.undo_stack.indexChanged.connect(self._retire_start_page)
        self.sample_picker.picked.connect(self.open_path)

    def _retire_start_page(self, *_args: object) -> None:
        self.canvas.set_hint("")
        self.sample_picker.setVisible(False)

    def dragEnterEvent(self, e: QDragEnterEvent) -> None:
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dropEvent(self, e: QDropEvent) -> None:
        urls: list[QUrl] = e.mimeData().urls()
        local = [u.toLocalFile() for u in urls if u.isLocalFile()]
        if local:
            e.acceptProposedAction()
            self.files.open_path(local[0])

    # ------------------------------------------------------------------ edit actions
    def set_tool(self, name: str) -> None:
        tool = self.tools[name]
        if isinstance(tool, Brush):
            tool.set_size(self.controller.settings.brush_size)
        self.canvas.tool = tool
        self.tool_actions[name].setChecked(True)
        self.brush_size.setEnabled(isinstance(tool, Brush))
        self.tolerance.setEnabled(isinstance(tool, MagicWand))

    def _set_brush_size(self, size: int) -> None:
        for t in self.tools.values():
            if isinstance(t, Brush):
                t.set_size(size)
        self.canvas.set_brush_size(size)

    def brush_step(self, factor: float) -> None:
        if not self.brush_size.isEnabled():  # a tool without a size: say so, change nothing
            self.statusBar().showMessage("[ and ] size the brush, eraser, lock and keep-out "
                                         "brushes", 3000)
            return
        st = self.controller.settings
        v = st.brush_size
        new = round(v * factor)
        st.brush_size = new if new != v else v + (1 if factor > 1 else -1)

    def keep_mask_out(self) -> None:
        """The mask (an object selected with O, say) joins the keep-out layer and is cleared:
        two undo entries, so the next Generate does not regenerate the subject itself."""
        mask = self.doc.mask
        if not mask.any():
            self.statusBar().showMessage("Nothing masked: select what fills must not copy first "
                                         "(Select object: O), or paint it with the keep-out "
                                         "brush (X)", 5000)
            return
        self.controller.keep_out.set(self.controller.keep_out.mask | mask)
        self.doc.set_mask(np.zeros_like(mask), "Clear mask")

    def clear_keep_out(self) -> None:
        """Let the fills copy from everywhere again (one undo entry)."""
        layer = self.controller.keep_out
        if not layer.any():
            self.statusBar().showMessage("Nothing is kept out", 3000)
            return
        layer.set(np.zeros_like(layer.mask), "Clear keep-out")

    def set_whole_mask(self, on: bool) -> None:
        self.doc.set_mask(np.full(self.doc.mask.shape, on), "Mask everything" if on
                          else "Clear mask")

    def invert_mask(self) -> None:
        self.doc.set_mask(~self.doc.mask, "Invert mask")

    def grow_mask(self, sign: int) -> None:
        """Grow (or shrink) the mask by MASK_STEP px, as one undo entry."""
        self.doc.set_mask(masks.grow(self.doc.mask, sign * MASK_STEP),
                          "Grow mask" if sign > 0 else "Shrink mask")

    # ------------------------------------------------------------------ generation
    def _on_setting(self, name: str, value: object) -> None:
        if name == "class_id":
            label = self.class_picker.class_name(value)  # type: ignore[arg-type]
            self.a_regen_as.setText(f"Regenerate selection as {label}")
        elif name == "fill_on_release":
            self.a_fill.setChecked(bool(value))
        elif name == "brush_size":
            self._set_brush_size(int(value))  # type: ignore[call-overload]
        elif name == "wand_tolerance":
            self.tools["wand"].tolerance = value  # type: ignore[attr-defined]

    def generate(self) -> None:
        self.controller.generate()

    def regenerate_as(self) -> None:
        cid = self.controller.class_id
        self.controller.regenerate_as(cid, self.class_picker.class_name(cid))

    def new_image(self) -> None:
        cid = self.controller.class_id
        if cid is None:
            self.show_error("Pick a class", "A new image is generated as one ImageNet class: "
                            "pick it in the Class list (type to search).")
            return
        if not self.files.may_discard():
            return
        if self.controller.new_image(cid, class_names()[cid]):
            QTimer.singleShot(0, self.canvas.fit)

    def cancel(self) -> None:
        self.controller.cancel()

    def step_candidate(self, delta: int) -> None:
        c = self.controller.candidate
        if c is not None:
            self.controller.show_candidate(c.index + delta)

    def _discard(self) -> None:
        c = self.controller.candidate
        if c is not None and self.doc.undo_stack.index() == c.undo_index:
            self.doc.undo_stack.undo()
        self.controller.accept()

    def update_history_actions(self, *_args) -> None:
        # History edits while a decode reads the image would make its result stale.
        busy = self.controller.busy
        try:
            stack = self.doc.undo_stack
            self.a_undo.setEnabled(stack.canUndo() and not busy)
            self.a_redo.setEnabled(stack.canRedo() and not busy)
            self.a_undo.setToolTip(f"Undo {stack.undoText()}".strip())
            self.a_redo.setToolTip(f"Redo {stack.redoText()}".strip())
        except RuntimeError:  # the stack signals while being destroyed
            pass

    def _on_busy(self, busy: bool) -> None:
        self.a_cancel.setEnabled(busy)
        for a in (self.a_open, self.a_new):
            a.setEnabled(not busy)
        self.update_history_actions()
        if busy:
            self.progress_bar.setValue(0)
        self.progress_bar.setVisible(busy)

    def _on_progress(self, text: str) -> None:
        self.progress_label.setText(text)

    def _on_advanced(self, done: int, total: int) -> None:
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(done)

    # ------------------------------------------------------------------ misc
    def show_help(self) -> None:
        help_.show_help(self)

    def show_error(self, title: str, text: str) -> None:
        """Non-blocking: the app keeps running (and a decode keeps painting) behind the box."""
        self.last_error = (title, text)
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok,
                          self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    @Slot()
    def _restore_layout(self) -> None:
        geometry, state = self.files.setting("geometry"), self.files.setting("state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        with contextlib.suppress(TypeError, ValueError):  # absent or damaged: the defaults
            self.controller.settings.brush_size = self.files.setting("brush", 32)
            remembered = dict(json.loads(str(self.files.setting("sampling"))))
            # A class from an earlier run would silently steer today's plain Generate; older
            # settings files still hold one.
            remembered.pop("class_id", None)
            self.controller.settings.apply(remembered)

    def _save_layout(self) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("state", self.saveState())
        self.settings.setValue("brush", self.controller.settings.brush_size)
        # Steps, schedule, order, temperatures, seed and candidates; the model has its own
        # key (loaded at start); the class is chosen anew each run (projects keep theirs).
        sampling = self.controller.settings.to_dict()
        sampling.pop("class_id")
        self.settings.setValue("sampling", json.dumps(sampling))

    def update_title(self, *_args) -> None:
        try:
            star = "*" if self.doc.modified else ""
        except RuntimeError:  # the undo stack emits cleanChanged while being destroyed
            return
        session = getattr(self, "session", None)  # the title is first set before it exists
        shown = session.project_path if session is not None else None
        shown = shown or self.doc.path
        name = shown.name if shown else "untitled"
        self.setWindowTitle(f"{name}{star} — MaskGIT Editor")

    @property
    def steps(self) -> Steps:
        return self.step_tools.steps

    def grab_canvas(self) -> QImage:
        return self.canvas.grab().toImage()

    def closeEvent(self, e: QCloseEvent) -> None:
        if unfrozen.running():  # a save is being written: the window goes after it
            self.statusBar().showMessage("Saving: close again when it is done", 5000)
            e.ignore()
            return
        if not self.files.may_discard():
            e.ignore()
            return
        self._save_layout()
        self.controller.cancel()
        self.selecting.close()
        self.session.close()  # a normal end (saved or discarded): the autosave goes
        # A decode stops within one step; a model load cannot be interrupted, so allow it time,
        # out of sight: the window goes at once.
        self.hide()
        self.worker_stopped = self.worker_thread.close(timeout_ms=60_000)
        e.accept()
