"""The main window's actions, menus and toolbar. Every action calls a public method of the window
or of what it composes (files, controller, canvas, step tools); `build_actions` sets them on the
window as `a_*` attributes, the shortcuts included (they work with the menu bar hidden)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMainWindow, QSpinBox, QWidget

from editor.core.limits import MAX_BRUSH, MAX_TOLERANCE, MIN_BRUSH
from editor.core.masks import MASK_STEP
from editor.core.samples import samples
from editor.ui.bind import bind_spin

TOOL_LABELS = {"object": "Select object", "wand": "Magic wand", "keepout": "Keep out"}
Shortcut = QKeySequence | QKeySequence.StandardKey | str | None
# The window: a QMainWindow with the public slots used below (typed loosely: a Protocol of
# forty slots would only repeat them).
Window = Any


def add_action(win: QMainWindow, text: str, slot: Callable[..., object],
               shortcut: Shortcut = None, checkable: bool = False,
               owner: QWidget | None = None) -> QAction:
    """`owner`: the widget whose keyboard focus the shortcut needs (default: anywhere in the
    window)."""
    a = QAction(text, win)
    if shortcut is not None:
        a.setShortcut(QKeySequence(shortcut))
    a.setCheckable(checkable)
    a.triggered.connect(slot)
    if owner is not None:
        a.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
    (owner or win).addAction(a)  # shortcuts work even when the menu bar is hidden
    return a


def build_actions(win: Window) -> None:
    _file_actions(win)
    _edit_actions(win)
    _generate_actions(win)
    _view_actions(win)
    _tool_actions(win)
    _menus(win)
    _toolbar(win)
    win.update_history_actions()


def _file_actions(win: Window) -> None:
    K, f = QKeySequence.StandardKey, win.files
    win.a_new = add_action(win, "&New image of the chosen class…", win.new_image, K.New)
    win.a_open = add_action(win, "&Open…", f.open_dialog, K.Open)
    win.a_save = add_action(win, "&Save", f.save, K.Save)
    win.a_save_as = add_action(win, "Save &As…", f.save_as, K.SaveAs)
    win.a_quit = add_action(win, "&Quit", win.close, K.Quit)
    win.a_save_project = add_action(win, "Save &Project…",
                                    lambda: win.session.save_project(), "Ctrl+Alt+S")
    win.a_import_mask = add_action(win, "&Import Mask…", f.import_mask_dialog)
    win.a_export_mask = add_action(win, "E&xport Mask…", f.export_mask_dialog)
    win.a_copy = add_action(win, "&Copy image", f.copy_image, K.Copy)
    win.a_paste = add_action(win, "&Paste as new image", f.paste_image, K.Paste)


def _edit_actions(win: Window) -> None:
    stack = win.doc.undo_stack
    # Own actions rather than QUndoStack.createUndoAction: a fixed label keeps the toolbar
    # from jumping, and they stay disabled while a decode reads the image.
    win.a_undo = add_action(win, "&Undo", stack.undo, QKeySequence.StandardKey.Undo)
    win.a_redo = add_action(win, "&Redo", stack.redo, QKeySequence.StandardKey.Redo)
    for signal in (stack.canUndoChanged, stack.canRedoChanged, stack.undoTextChanged,
                   stack.redoTextChanged):
        signal.connect(win.update_history_actions)
    win.a_clear = add_action(win, "Clear mask", lambda: win.set_whole_mask(False), "Ctrl+D")
    win.a_keep_out = add_action(win, "Keep the mask out of fills", win.keep_mask_out, "Shift+X")
    win.a_clear_keep_out = add_action(win, "Clear keep-out", win.clear_keep_out)
    win.a_all = add_action(win, "Mask everything", lambda: win.set_whole_mask(True), "Ctrl+A")
    win.a_invert = add_action(win, "Invert mask", win.invert_mask, "Ctrl+I")
    win.a_grow = add_action(win, f"Grow mask by {MASK_STEP} px", lambda: win.grow_mask(1),
                            "Ctrl+]")
    win.a_shrink = add_action(win, f"Shrink mask by {MASK_STEP} px",
                              lambda: win.grow_mask(-1), "Ctrl+[")


def _generate_actions(win: Window) -> None:
    c = win.controller
    win.a_generate = add_action(win, "&Generate", win.generate, "Ctrl+Return")
    win.a_regen_as = add_action(win, "Regenerate selection as class", win.regenerate_as,
                                "Ctrl+Shift+Return")
    for a, keys in ((win.a_generate, "Ctrl+Enter"), (win.a_regen_as, "Ctrl+Shift+Enter")):
        a.setShortcuts([a.shortcut(), QKeySequence(keys)])  # the keypad's Enter too
    win.a_fill_classic = add_action(win, "&Fill from surroundings (no model)",
                                    lambda: c.fill_classic(), "Ctrl+Shift+F")
    win.a_vary = add_action(win, "&Vary masked region", lambda: win.step_tools.vary(
        win.step_tools.scrubber.percent.value() / 100), "Shift+V")
    win.a_cancel = add_action(win, "&Cancel", c.cancel, "Esc")
    win.a_cancel.setEnabled(False)
    win.a_prev = add_action(win, "Previous candidate", lambda: win.step_candidate(-1),
                            "Alt+Left")
    win.a_next = add_action(win, "Next candidate", lambda: win.step_candidate(1), "Alt+Right")
    # Return belongs to whatever has the keyboard (the class search picks with it): only the
    # canvas turns it into Accept.
    win.a_accept = add_action(win, "Accept candidate", c.accept, "Return", owner=win.canvas)
    win.a_regenerate = add_action(win, "Regenerate candidates", c.regenerate, "Ctrl+R")
    win.a_fill = add_action(win, "Fill on edge release",
                            lambda on: setattr(c, "fill_on_release", on), checkable=True)
    win.a_fill.setChecked(c.fill_on_release)


def _view_actions(win: Window) -> None:
    cv = win.canvas
    win.a_fit = add_action(win, "&Fit to window", cv.fit, "Ctrl+0")
    win.a_actual = add_action(win, "Actual size", cv.actual_size, "Ctrl+1")
    win.a_grid = add_action(win, "Show token grid", cv.set_grid_visible, "Ctrl+G",
                            checkable=True)
    win.a_grid.setChecked(True)
    win.a_split = add_action(win, "Compare with the original (split)", cv.set_split, "C",
                             checkable=True)
    win.a_smaller = add_action(win, "Smaller brush", lambda: win.brush_step(1 / 1.25), "[")
    win.a_bigger = add_action(win, "Bigger brush", lambda: win.brush_step(1.25), "]")
    win.a_help = add_action(win, "Keyboard and mouse", win.show_help)


def _tool_actions(win: Window) -> None:
    group = QActionGroup(win)
    win.tool_actions = {}
    for name, tool in win.tools.items():
        a = add_action(win, TOOL_LABELS.get(name, name.capitalize()),
                       lambda _=False, n=name: win.set_tool(n), tool.shortcut, checkable=True)
        group.addAction(a)
        win.tool_actions[name] = a


def _menus(win: Window) -> None:
    mb = win.menuBar()
    f = mb.addMenu("&File")
    f.addActions([win.a_new, win.a_open])
    win.recent_menu = f.addMenu("Open &Recent")
    win.sample_menu = f.addMenu("Open Sa&mple")
    for title, path in samples():
        a = win.sample_menu.addAction(title)
        a.triggered.connect(lambda _=False, p=path: win.files.open_path(p))
    win.sample_menu.setEnabled(not win.sample_menu.isEmpty())
    f.addActions([win.a_save, win.a_save_as, win.a_save_project])
    f.addSeparator()
    f.addActions([win.a_import_mask, win.a_export_mask])
    f.addSeparator()
    f.addAction(win.a_quit)
    e = mb.addMenu("&Edit")
    e.addActions([win.a_undo, win.a_redo])
    e.addSeparator()
    e.addActions([win.a_copy, win.a_paste])
    e.addSeparator()
    e.addActions([win.a_clear, win.a_all, win.a_invert, win.a_grow, win.a_shrink])
    e.addSeparator()
    e.addActions([win.a_keep_out, win.a_clear_keep_out])
    t = mb.addMenu("&Tools")
    t.addActions(list(win.tool_actions.values()))
    t.addSeparator()
    t.addActions([win.a_smaller, win.a_bigger])
    gm = mb.addMenu("&Generate")
    gm.addActions([win.a_generate, win.a_regen_as, win.a_vary, win.a_fill_classic,
                   win.a_cancel])
    gm.addSeparator()
    gm.addActions([win.a_prev, win.a_next, win.a_accept, win.a_regenerate])
    gm.addSeparator()
    gm.addAction(win.a_fill)
    vm = mb.addMenu("&View")
    vm.addActions([win.a_fit, win.a_actual, win.a_grid, win.a_split])
    mb.addMenu("&Help").addAction(win.a_help)
    win.files.refresh_recent()


def _toolbar(win: Window) -> None:
    tb = win.addToolBar("Main")
    tb.setObjectName("main-toolbar")
    tb.addActions([win.a_open, win.a_save, win.a_undo, win.a_redo])
    tb.addSeparator()
    tb.addActions(list(win.tool_actions.values()))
    win.brush_size = QSpinBox(minimum=MIN_BRUSH, maximum=MAX_BRUSH, suffix=" px")
    bind_spin(win.brush_size, win.controller.settings, "brush_size")
    win.brush_size.setToolTip("Brush size ( [ and ] )")
    tb.addWidget(win.brush_size)
    win.tolerance = QSpinBox(minimum=0, maximum=MAX_TOLERANCE, prefix="± ")
    bind_spin(win.tolerance, win.controller.settings, "wand_tolerance")
    win.tolerance.setToolTip("Magic wand tolerance: how far a colour may be from the clicked "
                             "one (per channel, 0-255)")
    tb.addWidget(win.tolerance)
    tb.addSeparator()
    tb.addActions([win.a_generate, win.a_cancel])
    tb.addSeparator()
    tb.addActions([win.a_fit, win.a_grid])
