"""The Help box: every key and gesture of the editor on one page."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from editor.core.masks import MASK_STEP

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
    ("X · Shift+X", "keep-out brush: pixels fills never copy, e.g. a subject that must not "
                    "appear twice in an outpaint · keep the mask out"),
    ("Shift+V", "vary the masked region (re-decode a random share of its tokens)"),
    ("Ctrl+Shift+F", "fill the mask from its surroundings (classic; best for thin strokes)"),
    ("Alt+Left · Alt+Right", "previous · next candidate"),
    ("Return · Ctrl+R", "accept the candidate · regenerate it"),
    ("Steps panel", "scrub the decode's steps, branch from one, heatmap, re-roll weakest"),
)


def show_help(parent: QWidget) -> None:
    rows = "".join(f"<tr><td style='padding-right:14px'><b>{k}</b></td><td>{v}</td></tr>"
                   for k, v in HELP)
    box = QMessageBox(QMessageBox.Icon.Information, "Keyboard and mouse",
                      f"<p>Paint what to regenerate, then Generate.</p><table>{rows}</table>",
                      QMessageBox.StandardButton.Ok, parent)
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setStyleSheet("QLabel#qt_msgbox_label { min-width: 640px; }")  # narrow by default
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
