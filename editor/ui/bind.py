"""Widgets bound to an observable editor.state.settings.Settings, both ways: the widget shows
the setting, a user's change sets it, and a change made elsewhere (a project opened, the
settings file read) shows in the widget. Settings emit only on a real change, so the two
directions never loop."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QAbstractButton, QComboBox, QDoubleSpinBox, QSpinBox

from editor.state.settings import Settings


def _follow(settings: Settings, name: str, show: Any) -> None:
    settings.changed.connect(lambda n, v: show(v) if n == name else None)
    show(getattr(settings, name))


def bind_spin(box: QSpinBox | QDoubleSpinBox, settings: Settings, name: str) -> None:
    _follow(settings, name, box.setValue)
    box.valueChanged.connect(lambda v: setattr(settings, name, v))


def bind_check(button: QAbstractButton, settings: Settings, name: str) -> None:
    _follow(settings, name, button.setChecked)
    button.toggled.connect(lambda on: setattr(settings, name, on))


def bind_combo_text(combo: QComboBox, settings: Settings, name: str) -> None:
    def show(text: str) -> None:
        i = combo.findText(str(text))
        if i >= 0:
            combo.setCurrentIndex(i)

    _follow(settings, name, show)
    combo.currentTextChanged.connect(lambda t: setattr(settings, name, t))
