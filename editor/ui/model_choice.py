"""The model list of the sampling panel, bound to the controller: it lists the official models
(installed ones load, the others say how to get them; nothing is downloaded from the app), loads
the one picked, shows what is loaded and remembers it in the settings file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QFileDialog

from editor.state.worker import model_catalogue
from editor.ui.widgets import SamplingPanel

if TYPE_CHECKING:
    from editor.ui.host import Host


class ModelChoice(QObject):
    def __init__(self, panel: SamplingPanel, win: Host) -> None:
        super().__init__(win.window())
        self.panel, self.win, c = panel, win, win.controller
        self._list()
        panel.model_chosen.connect(self.choose)
        c.model_changed.connect(self.on_model)
        c.model_failed.connect(panel.forget_model_path)  # the list: only what loads

    def _list(self) -> None:
        box = self.panel.model
        at = box.findData("…")
        for name, _description, installed in model_catalogue():
            if name == "default" or box.findData(name) >= 0:
                continue
            label = f"{name} (installed)" if installed else f"{name}: download first"
            box.insertItem(at, label, name if installed else f"download:{name}")
            at += 1

    def choose(self, name: str) -> None:
        """Load model `name` ("…": ask for a file; "download:NAME": say how to get it)."""
        panel, c = self.panel, self.win.controller
        if name.startswith("download:"):
            panel.select_model(c.model_name or "default")
            self.win.show_error("Model not installed", f"{name[9:]} is not on this machine. Get "
                                f"it once (about 910 MB) with:\n\n    maskgit-editor weights "
                                f"download {name[9:]}\n\nthen pick it here.")
            return
        if name == "…":
            path, _ = QFileDialog.getOpenFileName(self.win.window(), "Open model", "",
                                                  "Models (*.safetensors)")
            if not path:
                panel.select_model(c.model_name or "default")
                return
            panel.add_model_path(path)
            name = path
        panel.model_status.setText("loading…")
        c.load_model(name)  # remembered in the settings file once it has loaded

    @Slot(str, int, int)
    def on_model(self, name: str, window: int, tokens: int) -> None:
        panel = self.panel
        if window:
            panel.model_status.setText(f"{window} px window, {tokens}×{tokens} tokens")
            panel.select_model(name)  # after a failed switch: show what is loaded
            self.win.settings.setValue("model", name)  # a file that failed is never remembered
        else:
            panel.model_status.setText("no model loaded")
