"""Panels of the main window: the ImageNet class picker, the sampling panel, the candidate bar.

They show and edit the observable settings (editor.state.settings); nobody reads their values.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QModelIndex, QSize, QSortFilterProxyModel, QStringListModel, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from editor.core.classes import class_names
from editor.core.jobs import ORDERS, SCHEDULES
from editor.core.limits import MAX_CANDIDATES, MAX_CHOICE_TEMPERATURE, MAX_SEED, MAX_STEPS
from editor.state.settings import Settings
from editor.ui.bind import bind_check, bind_combo_text, bind_spin

AUTO = "Automatic (from the picture)"


class ProgressBar(QProgressBar):
    """A QProgressBar that paints with the next frame. QProgressBar.setValue (and setRange,
    through reset) repaint at once, synchronously: 3-4 ms of the GUI thread at every decode
    step; here they only schedule an update, as any other widget change does."""

    def setValue(self, value: int) -> None:
        self.setUpdatesEnabled(False)  # repaint() does nothing while updates are off
        try:
            super().setValue(value)
        finally:
            self.setUpdatesEnabled(True)
        self.update()

    def setRange(self, minimum: int, maximum: int) -> None:
        self.setUpdatesEnabled(False)
        try:
            super().setRange(minimum, maximum)
        finally:
            self.setUpdatesEnabled(True)
        self.update()


class ClassPicker(QWidget):
    """A search box over the class list; the first entry is "Automatic" (class None)."""

    class_changed = Signal(object)  # int | None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QLineEdit(placeholderText="Search 1000 ImageNet classes…")
        self.search.setClearButtonEnabled(True)
        labels = [AUTO] + [f"{n}  ·  {i}" for i, n in enumerate(class_names())]
        self._model = QStringListModel(labels, self)
        self._proxy = QSortFilterProxyModel(self)
        self._proxy.setSourceModel(self._model)
        self._proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.list = QListView()
        self.list.setModel(self._proxy)
        self.list.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        self.list.setUniformItemSizes(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.search)
        lay.addWidget(self.list)
        # The chosen class, kept while a search hides its row (typing to browse must not
        # quietly switch to "Automatic").
        self._row = 0
        self._filtering = False
        self.search.textChanged.connect(self._filter)
        self.list.selectionModel().currentChanged.connect(self._on_current)
        self.search.returnPressed.connect(self._pick_first)
        self.set_class(None)

    def _filter(self, text: str) -> None:
        # Filtering moves the view's current row when it hides the chosen one; that is not a
        # choice (only a click, the arrow keys or Return choose).
        self._filtering = True
        try:
            self._proxy.setFilterFixedString(text.strip())
            idx = self._proxy.mapFromSource(self._model.index(self._row, 0))
            self.list.setCurrentIndex(idx)  # the chosen class, or no row when it is hidden
            if idx.isValid():
                self.list.scrollTo(idx, QListView.ScrollHint.PositionAtCenter)
        finally:
            self._filtering = False

    def _pick_first(self) -> None:
        """Return in the search: the best match (the whole name, then a whole word of it,
        then a name that starts with the text, then the first in the list): "lion" is the
        lion, not the sea lion; "cat" a tiger cat, not a catamaran."""
        n = self._proxy.rowCount()
        if not n:
            return
        text = self.search.text().strip().lower()
        names = [str(self._proxy.index(i, 0).data()).split("  ·  ")[0].lower() for i in range(n)]
        rank = [0 if name == text else 1 if text in name.replace("-", " ").split()
                else 2 if name.startswith(text) else 3 for name in names]
        self.list.setCurrentIndex(self._proxy.index(rank.index(min(rank)), 0))

    def _on_current(self, idx: QModelIndex, _old: QModelIndex) -> None:
        if self._filtering or not idx.isValid():
            return
        row = self._proxy.mapToSource(idx).row()
        if row != self._row:
            self._row = row
            self.class_changed.emit(self.class_id())

    def class_id(self) -> int | None:
        return None if self._row == 0 else self._row - 1

    def class_name(self, class_id: int | None = None) -> str:
        cid = self.class_id() if class_id is None else class_id
        return "automatic class" if cid is None else class_names()[cid]

    def set_class(self, class_id: int | None) -> None:
        row = 0 if class_id is None else class_id + 1
        changed, self._row = row != self._row, row
        self.search.clear()
        self._filter("")
        if changed:
            self.class_changed.emit(self.class_id())


class SamplingPanel(QWidget):
    """Steps, schedule, choice temperature, seed (random or fixed), candidates, model; bound
    to `settings`."""

    model_chosen = Signal(str)  # "default", "tiny" or a path; "…" asks for a file

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.steps = QSpinBox(minimum=2, maximum=MAX_STEPS)
        self.steps.setToolTip("Decoding steps: more is slower and a little better")
        self.schedule = QComboBox()
        self.schedule.addItems(SCHEDULES)
        self.schedule.setToolTip("How many tokens stay masked after each step")
        self.order = QComboBox()
        self.order.addItems(ORDERS)
        self.order.setToolTip("Which tokens each step keeps: the most confident (MaskGIT) or "
                              "the next of a fixed Halton order spread over the grid "
                              "(Halton-MaskGIT; choice temperature then has no effect)")
        self.choice = QDoubleSpinBox(minimum=0.0, maximum=MAX_CHOICE_TEMPERATURE, singleStep=0.5)
        self.choice.setToolTip("Randomness of which tokens are kept each step (0 = greedy)")
        self.guidance = QCheckBox("Follow the photo")
        self.guidance.setToolTip("Without a requested class, start from an exemplar fill of the "
                                 "hole, draw tokens also from the photo's own, and take fine "
                                 "detail from the photo (sharper, in keeping with the picture). "
                                 "Off: the model alone.")
        self.random_seed = QCheckBox("random")
        self.seed = QSpinBox(minimum=0, maximum=MAX_SEED)
        self.candidates = QSpinBox(minimum=1, maximum=MAX_CANDIDATES)
        self.candidates.setToolTip("Results decoded together in one batch, shown side by side "
                                   "under the canvas; click one to see it, again to accept "
                                   "it. Edits spanning "
                                   "several windows (outpainting) decode them window by "
                                   "window, each candidate continuing its own picture.")
        self.model = QComboBox()
        self.model.addItem("default", "default")
        self.model.addItem("tiny (random weights, for testing)", "tiny")
        self.model.addItem("Open .safetensors…", "…")
        self.model_status = QLabel("")
        self.model_status.setWordWrap(True)

        seed_row = QHBoxLayout()
        seed_row.addWidget(self.random_seed)
        seed_row.addWidget(self.seed, 1)
        form = QFormLayout(self)
        form.addRow("Model", self.model)
        form.addRow("", self.model_status)
        form.addRow("Steps", self.steps)
        form.addRow("Schedule", self.schedule)
        form.addRow("Order", self.order)
        form.addRow("Choice temp.", self.choice)
        form.addRow("", self.guidance)
        form.addRow("Seed", seed_row)
        form.addRow("Candidates", self.candidates)

        for box, name in ((self.steps, "steps"), (self.seed, "seed"),
                          (self.candidates, "candidates"), (self.choice, "choice_temperature")):
            bind_spin(box, settings, name)
        bind_combo_text(self.schedule, settings, "schedule")
        bind_combo_text(self.order, settings, "order")
        bind_check(self.random_seed, settings, "random_seed")
        bind_check(self.guidance, settings, "guidance")
        self.random_seed.toggled.connect(lambda on: self.seed.setEnabled(not on))
        self.seed.setEnabled(not settings.random_seed)
        self.model.activated.connect(lambda i: self.model_chosen.emit(self.model.itemData(i)))

    def add_model_path(self, path: str) -> None:
        i = self.model.findData(path)
        if i < 0:
            self.model.insertItem(self.model.count() - 1, Path(path).name, path)
            i = self.model.findData(path)
        self.model.setCurrentIndex(i)

    def forget_model_path(self, path: str) -> None:
        """Drop a file that failed to load from the list (the built-in entries stay)."""
        i = self.model.findData(path)
        if i >= 0 and path not in ("default", "tiny", "…"):
            self.model.removeItem(i)

    def select_model(self, name: str) -> None:
        i = self.model.findData(name)
        if i >= 0:
            self.model.setCurrentIndex(i)


class CandidateBar(QWidget):
    """Shown after a generation: accept it, flip to another candidate, or regenerate."""

    accept = Signal()
    regenerate = Signal()
    discard = Signal()
    show_index = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel("")
        self.prev = QPushButton("◀")
        self.next = QPushButton("▶")
        self.accept_btn = QPushButton("Accept")
        self.regen_btn = QPushButton("Regenerate")
        self.discard_btn = QPushButton("Discard")
        for b in (self.prev, self.next):
            b.setFixedWidth(32)
        for b in (self.prev, self.next, self.accept_btn, self.regen_btn, self.discard_btn):
            # The canvas keeps the keyboard: hold Tab to compare right after picking a result.
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        # ◀ candidate k/n ▶ together on the left, the actions on the right.
        for w in (self.prev, self.label, self.next):
            lay.addWidget(w)
        lay.addStretch(1)
        for w in (self.accept_btn, self.regen_btn, self.discard_btn):
            lay.addWidget(w)
        self._index, self._count = -1, 0
        self.prev.clicked.connect(lambda: self.show_index.emit(self._index - 1))
        self.next.clicked.connect(lambda: self.show_index.emit(self._index + 1))
        self.accept_btn.clicked.connect(self.accept)
        self.regen_btn.clicked.connect(self.regenerate)
        self.discard_btn.clicked.connect(self.discard)
        self.set_candidate(-1, 0)

    def set_candidate(self, index: int, count: int) -> None:
        self._index, self._count = index, count
        self.setVisible(count > 0)
        self.label.setText(f"candidate {index + 1}/{count}")
        self.prev.setEnabled(index > 0)
        self.next.setEnabled(index < count - 1)
        self.prev.setVisible(count > 1)
        self.next.setVisible(count > 1)


class SamplePicker(QWidget):
    """The start page's row of sample photos: one click opens one."""

    picked = Signal(object)  # Path

    def __init__(self, samples: list[tuple[str, Path]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.addStretch(1)
        lay.addWidget(QLabel("Or try a sample:"))
        self.buttons: list[QToolButton] = []
        for title, path in samples:
            b = QToolButton()
            b.setText(title)
            b.setIcon(QIcon(QPixmap(str(path)).scaled(
                96, 64, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation)))
            b.setIconSize(QSize(96, 64))
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the canvas keeps the keyboard
            b.clicked.connect(lambda _=False, p=path: self.picked.emit(p))
            lay.addWidget(b)
            self.buttons.append(b)
        lay.addStretch(1)
