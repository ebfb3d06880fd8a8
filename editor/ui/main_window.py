"""The main window: menus, toolbar, the canvas, the class and sampling panels, the status bar.

Owns the worker thread (so closing the window stops it) and wires widgets to the controller.
Errors are shown in non-blocking message boxes and never lose the document.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PySide6.QtCore import QBuffer, QIODevice, QSettings, Qt, QTimer, QUrl, Slot
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QImage,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from editor.core import imageio
from editor.core.classes import class_names
from editor.core.imageio import READ_FORMATS
from editor.core.samples import samples
from editor.state.controller import Controller
from editor.state.document import Document
from editor.state.imageconv import to_qimage
from editor.state.project import EXT as PROJECT_EXT
from editor.state.worker import model_catalogue
from editor.ui.canvas import Canvas
from editor.ui.session import Session
from editor.ui.step_tools import StepTools
from editor.ui.tools import (
    MAX_BRUSH,
    MIN_BRUSH,
    Brush,
    Eraser,
    Lasso,
    LockBrush,
    MagicWand,
    ObjectSelect,
    RectSelect,
    Tool,
)
from editor.ui.widgets import CandidateBar, ClassPicker, SamplePicker, SamplingPanel

if TYPE_CHECKING:
    from editor.state.worker import WorkerThread

MAX_RECENT = 10
# The embedded model learned textures and scenes from a small corpus (MODEL_CARD.md), tiny is
# random: a class steers their colours, it does not draw the object.
NO_OBJECTS = ("default", "tiny")
MASK_STEP = 8  # px a mask grows or shrinks by (Ctrl+] / Ctrl+[)
# (keys, what they do): shown as a two-column table, so no line wraps mid-phrase.
HELP = (
    ("Ctrl+Enter", "generate: regenerate the masked pixels"),
    ("Ctrl+Z · Ctrl+Shift+Z", "undo · redo"),
    ("Ctrl+O · Ctrl+S · Ctrl+Alt+S", "open · save (into the open project) · save project"),
    ("Ctrl+N", "new image of the chosen class"),
    ("Ctrl+C · Ctrl+V", "copy the image · paste an image as a new document"),
    ("B · E · R · L", "brush · eraser · rectangle · lasso (right button or Alt erases)"),
    ("O", "select object: drag a box around it (GrabCut finds its outline)"),
    ("W", "magic wand: click a colour (similar connected pixels, within the tolerance)"),
    ("[ · ]", "brush size"),
    ("Ctrl+D · Ctrl+I · Ctrl+A", "clear · invert · mask all"),
    ("Ctrl+] · Ctrl+[", f"grow · shrink the mask by {MASK_STEP} px"),
    ("drag an edge or corner", "outpaint: grow the canvas, filled on release"),
    ("wheel", "zoom about the pointer"),
    ("Space+drag, middle button", "pan"),
    ("Ctrl+0 · Ctrl+1", "fit · 100 %"),
    ("hold Tab", "show the original"),
    ("C", "compare: the original left of a divider that follows the pointer"),
    ("Esc", "cancel the running generation"),
    ("Ctrl+Shift+Enter", "regenerate the selection as the chosen class"),
    ("Ctrl+G", "token grid (highlighted cells are the ones the model regenerates)"),
    ("K", "lock brush: cells to keep in every later regeneration (right button unlocks)"),
    ("Shift+V", "vary the masked region (re-decode a random share of its tokens)"),
    ("Ctrl+Shift+F", "fill the mask from its surroundings (classic; best for thin strokes)"),
    ("Alt+Left · Alt+Right", "previous · next candidate"),
    ("Return · Ctrl+R", "accept the candidate · regenerate it"),
    ("Steps panel", "scrub the decode's steps, branch from one, heatmap, re-roll weakest"),
)
TOOL_LABELS = {"object": "Select object", "wand": "Magic wand"}
OPEN_FILTER = ("Images and projects (" + " ".join(f"*.{e}" for e in READ_FORMATS)
               + f" *{PROJECT_EXT});;All files (*)")
SAVE_FILTER = "PNG (*.png);;JPEG (*.jpg *.jpeg);;WebP (*.webp)"
MASK_OPEN_FILTER = ("Images (" + " ".join(f"*.{e}" for e in READ_FORMATS)
                    + ");;All files (*)")
MASK_SAVE_FILTER = "PNG (*.png)"


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
        self.tools = {"brush": brush, "eraser": eraser, "rectangle": RectSelect(),
                      "lasso": Lasso(), "object": ObjectSelect(), "wand": MagicWand(),
                      "lock": LockBrush(self.controller.locks)}
        self.candidate_bar = CandidateBar()
        self.class_picker = ClassPicker()
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
        self._build_actions()
        self._build_status()
        self._bind()
        self.session = Session(self)  # project files, autosave, recovery
        self.step_tools = StepTools(self)  # scrubber, heatmap, re-roll, lock, candidates
        self._restore_layout()
        self.set_tool("brush")
        self.canvas.setFocus()
        self._update_title()

    # ------------------------------------------------------------------ construction
    def _build_docks(self) -> None:
        cls = QWidget()
        v = QVBoxLayout(cls)
        v.addWidget(self.class_picker, 1)
        self.regen_button = QPushButton("Regenerate selection as automatic class")
        self.new_button = QPushButton("New image of this class")
        v.addWidget(self.regen_button)
        v.addWidget(self.new_button)
        self.class_note = QLabel("")
        self.class_note.setWordWrap(True)
        self.class_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.class_note.setVisible(False)
        v.addWidget(self.class_note)
        dock = QDockWidget("Class", self)
        dock.setObjectName("class-dock")
        dock.setWidget(cls)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        dock2 = QDockWidget("Sampling", self)
        dock2.setObjectName("sampling-dock")
        dock2.setWidget(self.sampling)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock2)
        self._list_models()

    def _list_models(self) -> None:
        """The official models in the model list: installed ones load, the others say how to
        get them (nothing is downloaded from the app)."""
        box = self.sampling.model
        at = box.findData("…")
        for name, _description, installed in model_catalogue():
            if name == "default" or box.findData(name) >= 0:
                continue
            label = f"{name} (installed)" if installed else f"{name}: download first"
            box.insertItem(at, label, name if installed else f"download:{name}")
            at += 1

    def _action(self, text: str, slot: Callable[..., object],
                shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None,
                checkable: bool = False, owner: QWidget | None = None) -> QAction:
        """`owner`: the widget whose keyboard focus the shortcut needs (default: anywhere in
        the window)."""
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        a.setCheckable(checkable)
        a.triggered.connect(slot)
        if owner is not None:
            a.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        (owner or self).addAction(a)  # shortcuts work even when the menu bar is hidden
        return a

    def _build_actions(self) -> None:
        stack = self.doc.undo_stack
        self.a_new = self._action("&New image of the chosen class…", self.new_image,
                                  QKeySequence.StandardKey.New)
        self.a_open = self._action("&Open…", self.open_dialog, QKeySequence.StandardKey.Open)
        self.a_save = self._action("&Save", self.save, QKeySequence.StandardKey.Save)
        self.a_save_as = self._action("Save &As…", self.save_as,
                                      QKeySequence.StandardKey.SaveAs)
        self.a_quit = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        # Own actions rather than QUndoStack.createUndoAction: a fixed label keeps the toolbar
        # from jumping, and they stay disabled while a decode reads the image.
        self.a_undo = self._action("&Undo", stack.undo, QKeySequence.StandardKey.Undo)
        self.a_redo = self._action("&Redo", stack.redo, QKeySequence.StandardKey.Redo)
        stack.canUndoChanged.connect(self._update_history_actions)
        stack.canRedoChanged.connect(self._update_history_actions)
        stack.undoTextChanged.connect(self._update_history_actions)
        stack.redoTextChanged.connect(self._update_history_actions)
        self.a_clear = self._action("Clear mask", lambda: self._set_mask(False), "Ctrl+D")
        self.a_all = self._action("Mask everything", lambda: self._set_mask(True), "Ctrl+A")
        self.a_invert = self._action("Invert mask", self._invert_mask, "Ctrl+I")
        self.a_grow = self._action(f"Grow mask by {MASK_STEP} px", lambda: self._grow_mask(1),
                                   "Ctrl+]")
        self.a_shrink = self._action(f"Shrink mask by {MASK_STEP} px",
                                     lambda: self._grow_mask(-1), "Ctrl+[")
        self.a_generate = self._action("&Generate", self.generate, "Ctrl+Return")
        self.a_regen_as = self._action("Regenerate selection as class", self.regenerate_as,
                                       "Ctrl+Shift+Return")
        for a, keys in ((self.a_generate, "Ctrl+Enter"), (self.a_regen_as, "Ctrl+Shift+Enter")):
            a.setShortcuts([a.shortcut(), QKeySequence(keys)])  # the keypad's Enter too
        self.a_fill_classic = self._action(
            "&Fill from surroundings (no model)",
            lambda: self.controller.fill_classic(), "Ctrl+Shift+F")
        self.a_vary = self._action(
            "&Vary masked region", lambda: self.step_tools.vary(
                self.step_tools.scrubber.percent.value() / 100), "Shift+V")
        self.a_cancel = self._action("&Cancel", self.cancel, "Esc")
        self.a_prev = self._action("Previous candidate", lambda: self._step_candidate(-1),
                                   "Alt+Left")
        self.a_next = self._action("Next candidate", lambda: self._step_candidate(1),
                                   "Alt+Right")
        # Return belongs to whatever has the keyboard (the class search picks with it): only
        # the canvas turns it into Accept.
        self.a_accept = self._action("Accept candidate", self.controller.accept, "Return",
                                     owner=self.canvas)
        self.a_regenerate = self._action("Regenerate candidates", self.controller.regenerate,
                                         "Ctrl+R")
        self.a_cancel.setEnabled(False)
        self.a_fit = self._action("&Fit to window", self.canvas.fit, "Ctrl+0")
        self.a_actual = self._action("Actual size", self.canvas.actual_size, "Ctrl+1")
        self.a_grid = self._action("Show token grid", self.canvas.set_grid_visible, "Ctrl+G",
                                   checkable=True)
        self.a_grid.setChecked(True)
        self.a_fill = self._action("Fill on edge release", self._set_fill, checkable=True)
        self.a_fill.setChecked(self.controller.fill_on_release)
        self.a_smaller = self._action("Smaller brush", lambda: self._brush_step(1 / 1.25), "[")
        self.a_bigger = self._action("Bigger brush", lambda: self._brush_step(1.25), "]")
        self._update_history_actions()

        group = QActionGroup(self)
        self.tool_actions: dict[str, QAction] = {}
        for name, tool in self.tools.items():
            a = self._action(TOOL_LABELS.get(name, name.capitalize()),
                             lambda _=False, n=name: self.set_tool(n),
                             tool.shortcut, checkable=True)
            group.addAction(a)
            self.tool_actions[name] = a

        mb = self.menuBar()
        f = mb.addMenu("&File")
        f.addActions([self.a_new, self.a_open])
        self.recent_menu = f.addMenu("Open &Recent")
        self.sample_menu = f.addMenu("Open Sa&mple")
        for title, path in samples():
            a = self.sample_menu.addAction(title)
            a.triggered.connect(lambda _=False, p=path: self.open_path(p))
        self.sample_menu.setEnabled(not self.sample_menu.isEmpty())
        self.a_save_project = self._action("Save &Project…", lambda: self.session.save_project(),
                                           "Ctrl+Alt+S")
        f.addActions([self.a_save, self.a_save_as, self.a_save_project])
        f.addSeparator()
        self.a_import_mask = self._action("&Import Mask…", self.import_mask_dialog)
        self.a_export_mask = self._action("E&xport Mask…", self.export_mask_dialog)
        f.addActions([self.a_import_mask, self.a_export_mask])
        f.addSeparator()
        f.addAction(self.a_quit)
        e = mb.addMenu("&Edit")
        e.addActions([self.a_undo, self.a_redo])
        e.addSeparator()
        self.a_copy = self._action("&Copy image", self.copy_image, QKeySequence.StandardKey.Copy)
        self.a_paste = self._action("&Paste as new image", self.paste_image,
                                    QKeySequence.StandardKey.Paste)
        e.addActions([self.a_copy, self.a_paste])
        e.addSeparator()
        e.addActions([self.a_clear, self.a_all, self.a_invert, self.a_grow, self.a_shrink])
        t = mb.addMenu("&Tools")
        t.addActions(list(self.tool_actions.values()))
        t.addSeparator()
        t.addActions([self.a_smaller, self.a_bigger])
        gm = mb.addMenu("&Generate")
        gm.addActions([self.a_generate, self.a_regen_as, self.a_vary, self.a_fill_classic,
                       self.a_cancel])
        gm.addSeparator()
        gm.addActions([self.a_prev, self.a_next, self.a_accept, self.a_regenerate])
        gm.addSeparator()
        gm.addAction(self.a_fill)
        self.a_split = self._action("Compare with the original (split)", self.canvas.set_split,
                                    "C", checkable=True)
        vm = mb.addMenu("&View")
        vm.addActions([self.a_fit, self.a_actual, self.a_grid, self.a_split])
        hm = mb.addMenu("&Help")
        hm.addAction(QAction("Keyboard and mouse", self, triggered=self.show_help))

        tb = self.addToolBar("Main")
        tb.setObjectName("main-toolbar")
        tb.addActions([self.a_open, self.a_save, self.a_undo, self.a_redo])
        tb.addSeparator()
        tb.addActions(list(self.tool_actions.values()))
        self.brush_size = QSpinBox(minimum=MIN_BRUSH, maximum=MAX_BRUSH, value=32, suffix=" px")
        self.brush_size.setToolTip("Brush size ( [ and ] )")
        tb.addWidget(self.brush_size)
        self.tolerance = QSpinBox(minimum=0, maximum=255, value=32, prefix="± ")
        self.tolerance.setToolTip("Magic wand tolerance: how far a colour may be from the "
                                  "clicked one (per channel, 0-255)")
        tb.addWidget(self.tolerance)
        tb.addSeparator()
        tb.addActions([self.a_generate, self.a_cancel])
        tb.addSeparator()
        tb.addActions([self.a_fit, self.a_grid])
        self._refresh_recent()

    def _build_status(self) -> None:
        sb = self.statusBar()
        self.progress_label = QLabel("")
        self.progress_bar = QProgressBar(maximumWidth=160)
        self.progress_bar.setVisible(False)
        self.zoom_label = QLabel("100%")
        sb.addPermanentWidget(self.progress_label)
        sb.addPermanentWidget(self.progress_bar)
        sb.addPermanentWidget(self.zoom_label)

    def _bind(self) -> None:
        c, cv = self.controller, self.canvas
        c.preview_started.connect(cv.begin_preview)
        c.preview_patch.connect(cv.paint_preview)
        c.preview_cells.connect(cv.show_undecided)
        c.preview_ended.connect(cv.end_preview)
        c.plan_changed.connect(cv.set_plan)
        c.busy_changed.connect(self._on_busy)
        c.progress.connect(self._on_progress)
        c.advanced.connect(self._on_advanced)
        c.candidate_changed.connect(self.candidate_bar.set_candidate)
        c.error.connect(self.show_error)
        c.message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        c.model_changed.connect(self._on_model)
        c.model_failed.connect(self.sampling.forget_model_path)  # the list: only what loads
        c.class_chosen.connect(
            lambda cid: self.statusBar().showMessage(f"Automatic class: {class_names()[cid]}"))
        cv.extend_requested.connect(c.extend)
        cv.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f}%"))
        self.candidate_bar.accept.connect(c.accept)
        self.candidate_bar.regenerate.connect(c.regenerate)
        self.candidate_bar.discard.connect(self._discard)
        self.candidate_bar.show_index.connect(c.show_candidate)
        st = c.settings
        self.class_picker.class_changed.connect(lambda cid: setattr(st, "class_id", cid))
        st.changed.connect(self._on_setting)
        self.regen_button.clicked.connect(self.regenerate_as)
        self.new_button.clicked.connect(self.new_image)
        self.sampling.model_chosen.connect(self._choose_model)
        self.brush_size.valueChanged.connect(self._set_brush_size)
        self.tolerance.valueChanged.connect(
            lambda t: setattr(self.tools["wand"], "tolerance", t))
        self.doc.undo_stack.cleanChanged.connect(self._update_title)
        self.doc.path_changed.connect(self._update_title)
        # The blank start page says what to do; anything done to the document retires it.
        cv.set_hint(FIRST_HINT)
        self.doc.canvas_changed.connect(self._retire_start_page)
        self.doc.undo_stack.indexChanged.connect(self._retire_start_page)
        self.sample_picker.picked.connect(self.open_path)

    def _retire_start_page(self, *_args: object) -> None:
        self.canvas.set_hint("")
        self.sample_picker.setVisible(False)

    # ------------------------------------------------------------------ files
    def open_dialog(self) -> None:
        start = str(self.doc.path.parent) if self.doc.path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open image", start, OPEN_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> bool:
        """Open an image; on failure show why and keep the current document untouched."""
        if not self._may_discard():
            return False
        if Path(path).suffix.lower() == PROJECT_EXT:
            if not self.session.open_project(path):
                return False
            self._add_recent(str(Path(path).resolve()))
            return True
        # Decoding a big photo takes a second or more (24 MP PNG: 1.3 s on 2 cores): say so.
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            loaded = imageio.load(path)
        except ValueError as e:
            self.show_error("Could not open", str(e))
            self._forget_recent(str(path))
            return False
        finally:
            QApplication.restoreOverrideCursor()
        self._show_loaded(loaded, Path(path), Path(path).name)
        self._add_recent(str(Path(path).resolve()))
        return True

    def _show_loaded(self, loaded: imageio.LoadedImage, path: Path | None, name: str) -> None:
        """`loaded` becomes the document (an opened file, or a pasted image: no path)."""
        self.controller.cancel()
        self.controller.accept()
        image = loaded.rgb
        self.doc.reset(image, path, alpha=loaded.alpha, straight=loaded.straight,
                       exif=loaded.exif, icc_profile=loaded.icc_profile)
        QTimer.singleShot(0, self.canvas.fit)
        note = f" · {loaded.note}" if loaded.note else ""
        self.statusBar().showMessage(f"Opened {name} ({image.shape[1]}×{image.shape[0]}){note}",
                                     8000)

    def copy_image(self) -> None:
        """The image as it is now, to the clipboard (to paste into another program)."""
        QApplication.clipboard().setImage(to_qimage(self.doc.export_rgba()))  # alpha kept
        self.statusBar().showMessage(f"Copied the image ({self.doc.width}×{self.doc.height})",
                                     5000)

    def paste_image(self) -> bool:
        """A new document from the clipboard: an image, or a copied image file."""
        data = QApplication.clipboard().mimeData()
        files = [u.toLocalFile() for u in data.urls() if u.isLocalFile()] if data.hasUrls() else []
        if files:
            return self.open_path(files[0])
        if not data.hasImage():
            self.show_error("Nothing to paste", "The clipboard holds no image. Copy an image "
                            "(or an image file) in another program first.")
            return False
        image = QApplication.clipboard().image()
        if imageio.too_large(image.width(), image.height()):  # before any copy of its pixels
            self.show_error("Could not paste", f"The clipboard image is {image.width()} x "
                            f"{image.height()} pixels; the editor opens images up to "
                            f"{imageio.limit_text()}.")
            return False
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:  # the same checks as a file (alpha, modes), through one lossless encoding
            buf = QBuffer()
            buf.open(QIODevice.OpenModeFlag.WriteOnly)
            image.save(buf, "PNG", 0)  # 0: fastest compression, it is decoded right away
            loaded = imageio.decode(bytes(buf.data()), "the clipboard image")
        except ValueError as e:
            self.show_error("Could not paste", str(e))
            return False
        finally:
            QApplication.restoreOverrideCursor()
        if not self._may_discard():
            return False
        self._show_loaded(loaded, None, "the clipboard image")
        return True

    def save(self) -> bool:
        """Save the document where it came from: its project, else its image file (a recovered
        document is a project, never saved over its photo)."""
        if self.session.project_path is not None or self.session.unsaved_recovery:
            return self.session.save_project(self.session.project_path)
        if self.doc.path is None or self.doc.path.suffix.lower().lstrip(".") not in (
            "png", "jpg", "jpeg", "webp"
        ):
            return self.save_as()
        return self.save_to(self.doc.path)

    def save_as(self) -> bool:
        start = str(self.doc.path.with_suffix(".png")) if self.doc.path else "untitled.png"
        path, _ = QFileDialog.getSaveFileName(self, "Save image", start, SAVE_FILTER)
        return bool(path) and self.save_to(Path(path))

    def save_to(self, path: Path) -> bool:
        """Write the image to `path`. Without an open project the document becomes that file;
        with one, this is an export: the project stays what Ctrl+S saves, unsaved changes
        stay unsaved."""
        if not path.suffix:
            path = path.with_suffix(".png")
        try:
            rgba = self.doc.export_rgba()
            imageio.save(path, rgba[..., :3], rgba[..., 3] if rgba.shape[2] == 4 else None,
                         self.doc.exif, icc_profile=self.doc.icc_profile)
        except ValueError as e:
            self.show_error("Could not save", str(e))
            return False
        self._add_recent(str(path.resolve()))
        if self.session.project_path is not None:
            self.statusBar().showMessage(f"Exported {path}", 5000)
            return True
        self.doc.mark_saved(path)
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    def import_mask_dialog(self) -> None:
        start = str(self.doc.path.parent) if self.doc.path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Import mask", start, MASK_OPEN_FILTER)
        if path:
            self.import_mask(path)

    def import_mask(self, path: str | Path) -> bool:
        """Replace the mask with a mask file (white = regenerate, as the CLI's --masks) as one
        undo step; a mask of the canvas's aspect ratio is scaled. On failure show why and
        change nothing."""
        try:
            read = imageio.load_mask(path)
            mask = imageio.fit_mask(read, self.doc.mask.shape)
        except ValueError as e:  # an unreadable file names itself; a size mismatch does not
            text = str(e) if isinstance(e, imageio.ImageLoadError) else f"{Path(path).name}: {e}"
            self.show_error("Could not import the mask", text)
            return False
        self.doc.set_mask(mask, "Import mask")
        scaled = f" (scaled from {read.shape[1]}×{read.shape[0]})" if read is not mask else ""
        self.statusBar().showMessage(f"Imported mask {Path(path).name}{scaled}", 8000)
        return True

    def export_mask_dialog(self) -> None:
        p = self.doc.path
        start = str(p.with_name(f"{p.stem}-mask.png")) if p else "mask.png"
        path, _ = QFileDialog.getSaveFileName(self, "Export mask", start, MASK_SAVE_FILTER)
        if path:
            self.export_mask(path)

    def export_mask(self, path: str | Path) -> bool:
        """Write the mask as a PNG of the canvas size: white = regenerate, black = kept."""
        p = Path(path)
        if not p.suffix:
            p = p.with_suffix(".png")
        try:
            imageio.save_mask(p, self.doc.mask)
        except ValueError as e:
            self.show_error("Could not export the mask", str(e))
            return False
        self.statusBar().showMessage(f"Exported the mask to {p}", 5000)
        return True

    def _may_discard(self) -> bool:
        if not self.confirm or not self.doc.modified:
            return True
        r = QMessageBox.question(
            self, "Unsaved changes", "Save the changes to the current document first?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
        )
        if r == QMessageBox.StandardButton.Save:
            return self.save()
        return r == QMessageBox.StandardButton.Discard

    def _setting(self, key: str, default: object = None) -> object:
        """A stored value, or `default` when the settings file holds something unreadable."""
        try:
            return self.settings.value(key, default)
        except Exception:  # a damaged file can make QSettings' unpickling raise anything
            return default

    def _recent(self) -> list[str]:
        v = self._setting("recent", [])
        return [str(x) for x in (v if isinstance(v, list) else [v] if v else [])]

    def _add_recent(self, path: str) -> None:
        items = [path] + [p for p in self._recent() if p != path]
        self.settings.setValue("recent", items[:MAX_RECENT])
        self._refresh_recent()

    def _forget_recent(self, path: str) -> None:
        items = [p for p in self._recent() if p != str(Path(path).resolve()) and p != path]
        self.settings.setValue("recent", items)
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        for p in self._recent():
            a = self.recent_menu.addAction(p)
            a.triggered.connect(lambda _=False, p=p: self.open_path(p))
        self.recent_menu.setEnabled(bool(self._recent()))

    def dragEnterEvent(self, e: QDragEnterEvent) -> None:
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dropEvent(self, e: QDropEvent) -> None:
        urls: list[QUrl] = e.mimeData().urls()
        local = [u.toLocalFile() for u in urls if u.isLocalFile()]
        if local:
            e.acceptProposedAction()
            self.open_path(local[0])

    # ------------------------------------------------------------------ edit actions
    def set_tool(self, name: str) -> None:
        tool = self.tools[name]
        if isinstance(tool, Brush):
            tool.set_size(self.brush_size.value())
        self.canvas.tool = tool
        self.tool_actions[name].setChecked(True)
        self.brush_size.setEnabled(isinstance(tool, Brush))
        self.tolerance.setEnabled(isinstance(tool, MagicWand))

    def _set_brush_size(self, size: int) -> None:
        for t in self.tools.values():
            if isinstance(t, Brush):
                t.set_size(size)
        self.canvas.set_brush_size(size)

    def _brush_step(self, factor: float) -> None:
        if not self.brush_size.isEnabled():  # a tool without a size: say so, change nothing
            self.statusBar().showMessage("[ and ] size the brush, eraser and lock brush", 3000)
            return
        v = self.brush_size.value()
        new = round(v * factor)
        self.brush_size.setValue(new if new != v else v + (1 if factor > 1 else -1))

    def _set_mask(self, on: bool) -> None:
        self.doc.set_mask(np.full(self.doc.mask.shape, on), "Mask everything" if on
                          else "Clear mask")

    def _invert_mask(self) -> None:
        self.doc.set_mask(~self.doc.mask, "Invert mask")

    def _grow_mask(self, sign: int) -> None:
        """Grow (or shrink) the mask by MASK_STEP px: removing an object needs its edge and
        shadow covered too. One undo entry."""
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * MASK_STEP + 1,) * 2)
        op = cv2.dilate if sign > 0 else cv2.erode
        # Beyond the image counts as unmasked when growing and as masked when shrinking, so a
        # mask on the border stays there.
        m = op(self.doc.mask.astype(np.uint8), disc, borderValue=0 if sign > 0 else 1)
        m = m.astype(bool)
        self.doc.set_mask(m, "Grow mask" if sign > 0 else "Shrink mask")

    def _set_fill(self, on: bool) -> None:
        self.controller.fill_on_release = on

    # ------------------------------------------------------------------ generation
    def _on_setting(self, name: str, value: object) -> None:
        if name == "class_id":
            self.class_picker.set_class(value)  # type: ignore[arg-type]
            self._on_class(value)  # type: ignore[arg-type]
        elif name == "fill_on_release":
            self.a_fill.setChecked(bool(value))

    def _on_class(self, class_id: int | None) -> None:
        name = self.class_picker.class_name(class_id)
        self.regen_button.setText(f"Regenerate selection as {name}")
        self.a_regen_as.setText(f"Regenerate selection as {name}")
        self.new_button.setEnabled(class_id is not None)
        self._update_class_note()

    def _update_class_note(self) -> None:
        """One honest line where a class is chosen with a model that cannot draw objects."""
        cid, model = self.controller.class_id, self.controller.model_name
        weak = cid is not None and model in NO_OBJECTS
        if weak:
            self.class_note.setText(
                f"The {model} model learned textures and scenes, not ImageNet objects: expect "
                f"the colours and texture of a {class_names()[cid]}, not a recognisable one. "
                "For objects, get the official weights with `maskgit-editor weights download "
                "imagenet-256` and pick imagenet-256 under Model.")
        self.class_note.setVisible(weak)

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
        if not self._may_discard():
            return
        if self.controller.new_image(cid, class_names()[cid]):
            QTimer.singleShot(0, self.canvas.fit)

    def cancel(self) -> None:
        self.controller.cancel()

    def _step_candidate(self, delta: int) -> None:
        c = self.controller.candidate
        if c is not None:
            self.controller.show_candidate(c.index + delta)

    def _discard(self) -> None:
        c = self.controller.candidate
        if c is not None and self.doc.undo_stack.index() == c.undo_index:
            self.doc.undo_stack.undo()
        self.controller.accept()

    def _choose_model(self, name: str) -> None:
        if name.startswith("download:"):
            self.sampling.select_model(self.controller.model_name or "default")
            self.show_error("Model not installed", f"{name[9:]} is not on this machine. Get it "
                            f"once (about 910 MB) with:\n\n    maskgit-editor weights download "
                            f"{name[9:]}\n\nthen pick it here.")
            return
        if name == "…":
            path, _ = QFileDialog.getOpenFileName(self, "Open model", "",
                                                  "Models (*.safetensors)")
            if not path:
                self.sampling.select_model(self.controller.model_name or "default")
                return
            self.sampling.add_model_path(path)
            name = path
        self.sampling.model_status.setText("loading…")
        self.controller.load_model(name)  # remembered in settings once it has loaded

    @Slot(str, int, int)
    def _on_model(self, name: str, window: int, tokens: int) -> None:
        self._update_class_note()
        if window:
            self.sampling.model_status.setText(f"{window} px window, {tokens}×{tokens} tokens")
            self.sampling.select_model(name)  # after a failed switch: show what is loaded
            self.settings.setValue("model", name)  # a file that failed is never remembered
        else:
            self.sampling.model_status.setText("no model loaded")

    def _update_history_actions(self, *_args) -> None:
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
        self._update_history_actions()
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
        rows = "".join(f"<tr><td style='padding-right:14px'><b>{k}</b></td><td>{v}</td></tr>"
                       for k, v in HELP)
        box = QMessageBox(QMessageBox.Icon.Information, "Keyboard and mouse",
                          f"<p>Paint what to regenerate, then Generate.</p><table>{rows}</table>",
                          QMessageBox.StandardButton.Ok, self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setStyleSheet("QLabel#qt_msgbox_label { min-width: 640px; }")  # narrow by default
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def show_error(self, title: str, text: str) -> None:
        """Non-blocking: the app keeps running (and a decode keeps painting) behind the box."""
        self.last_error = (title, text)
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok,
                          self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    @Slot()
    def _restore_layout(self) -> None:
        geometry, state = self._setting("geometry"), self._setting("state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        with contextlib.suppress(TypeError, ValueError):  # absent or damaged: the defaults
            self.brush_size.setValue(int(self._setting("brush", 32)))  # type: ignore[arg-type]
            remembered = dict(json.loads(str(self._setting("sampling"))))
            # A class from an earlier run would silently steer today's plain Generate; older
            # settings files still hold one.
            remembered.pop("class_id", None)
            self.controller.settings.apply(remembered)

    def _save_layout(self) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("state", self.saveState())
        self.settings.setValue("brush", self.brush_size.value())
        # Steps, schedule, order, temperatures, seed and candidates; the model has its own
        # key (loaded at start); the class is chosen anew each run (projects keep theirs).
        sampling = self.controller.settings.to_dict()
        sampling.pop("class_id")
        self.settings.setValue("sampling", json.dumps(sampling))

    def _update_title(self, *_args) -> None:
        try:
            star = "*" if self.doc.modified else ""
        except RuntimeError:  # the undo stack emits cleanChanged while being destroyed
            return
        session = getattr(self, "session", None)  # the title is first set before it exists
        shown = session.project_path if session is not None else None
        shown = shown or self.doc.path
        name = shown.name if shown else "untitled"
        self.setWindowTitle(f"{name}{star} — MaskGIT Editor")

    def grab_canvas(self) -> QImage:
        return self.canvas.grab().toImage()

    def closeEvent(self, e: QCloseEvent) -> None:
        if not self._may_discard():
            e.ignore()
            return
        self._save_layout()
        self.controller.cancel()
        self.session.close()  # a normal end (saved or discarded): the autosave goes
        # A decode stops within one step; a model load cannot be interrupted, so allow it time,
        # out of sight: the window goes at once.
        self.hide()
        self.worker_stopped = self.worker_thread.close(timeout_ms=60_000)
        e.accept()
