"""What the main window offers the ui helpers that it composes (Session, StepTools, Files): its
public parts only, as a Protocol, so no helper imports editor.ui.main_window (no import cycle,
not even under TYPE_CHECKING) and none reaches into the window's private methods."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMenu, QStatusBar, QWidget

from editor.state.controller import Controller
from editor.state.document import Document
from editor.state.steps import Steps
from editor.ui.canvas import Canvas


class ProjectFiles(Protocol):
    """What editor.ui.session.Session offers the file commands."""

    project_path: Path | None  # the project Ctrl+S writes, if any
    unsaved_recovery: bool  # a recovered document: a project without a file yet

    def open_project(self, path: str | Path) -> bool: ...

    def save_project(self, path: str | Path | None = None) -> bool: ...


class Host(Protocol):
    doc: Document
    controller: Controller
    canvas: Canvas
    confirm: bool  # ask before discarding unsaved changes
    settings: QSettings  # the settings file (window layout, recent files, the model)
    recent_menu: QMenu
    session: ProjectFiles

    @property
    def steps(self) -> Steps: ...

    def window(self) -> QWidget: ...  # the parent of dialogs

    def statusBar(self) -> QStatusBar: ...

    def show_error(self, title: str, text: str) -> None: ...

    def update_title(self, *_args: object) -> None: ...
