"""The Class dock: the class picker bound to Settings.class_id, "Regenerate selection as CLASS",
"New image of this class", and one honest line when the model cannot draw objects."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from editor.core.classes import class_names
from editor.state.controller import Controller
from editor.ui.widgets import ClassPicker

# The embedded model learned textures and scenes from a small corpus (MODEL_CARD.md), tiny is
# random: a class steers their colours, it does not draw the object.
NO_OBJECTS = ("default", "tiny")


class ClassPanel(QWidget):
    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.picker = ClassPicker()
        self.regen_button = QPushButton("Regenerate selection as automatic class")
        self.new_button = QPushButton("New image of this class")
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.note.setVisible(False)
        v = QVBoxLayout(self)
        v.addWidget(self.picker, 1)
        v.addWidget(self.regen_button)
        v.addWidget(self.new_button)
        v.addWidget(self.note)
        st = controller.settings
        self.picker.class_changed.connect(lambda cid: setattr(st, "class_id", cid))
        st.changed.connect(self._on_setting)
        controller.model_changed.connect(lambda *_: self.update_note())

    def _on_setting(self, name: str, value: object) -> None:
        if name != "class_id":
            return
        cid = value if isinstance(value, int) else None
        self.picker.set_class(cid)
        self.regen_button.setText(f"Regenerate selection as {self.picker.class_name(cid)}")
        self.new_button.setEnabled(cid is not None)
        self.update_note()

    def update_note(self) -> None:
        """One honest line where a class is chosen with a model that cannot draw objects."""
        cid, model = self.controller.class_id, self.controller.model_name
        weak = cid is not None and model in NO_OBJECTS
        if weak:
            self.note.setText(
                f"The {model} model learned textures and scenes, not ImageNet objects: expect "
                f"the colours and texture of a {class_names()[cid]}, not a recognisable one. "
                "For objects, get the official weights with `maskgit-editor weights download "
                "imagenet-256` and pick imagenet-256 under Model.")
        self.note.setVisible(weak)
