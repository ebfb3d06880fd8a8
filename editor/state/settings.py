"""The user's generation settings as one observable object (no widgets).

Widgets bind to it (editor.ui.bind) and the controller, the step tools and the project file read
it; nothing reads a spin box. As krita-ai-diffusion's model/properties.py: every setting is a
`Setting` descriptor with a default and a check, every change emits `changed(name, value)` once
(setting a value equal to the current one emits nothing, so a widget bound both ways does not
loop), and `to_dict` / `apply` (de)serialise the lot for projects and QSettings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from PySide6.QtCore import QObject, Signal

from editor.core.jobs import ORDERS, SCHEDULES, Sampling
from editor.core.limits import (
    MAX_BRUSH,
    MAX_CANDIDATES,
    MAX_CHOICE_TEMPERATURE,
    MAX_SEED,
    MAX_STEPS,
    MAX_TOLERANCE,
    MIN_BRUSH,
)

T = TypeVar("T")
NUM_CLASSES = 1000


def _clamp(low: float, high: float, kind: type) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        return kind(min(max(kind(v), low), high))

    return check


def _one_of(names: tuple[str, ...]) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if str(v) not in names:
            raise ValueError(f"{v!r} is not one of {names}")
        return str(v)

    return check


def _class_id(v: Any) -> int | None:
    if v is None:
        return None
    v = int(v)
    if not 0 <= v < NUM_CLASSES:
        raise ValueError(f"class {v} outside 0..{NUM_CLASSES - 1}")
    return v


class Setting(Generic[T]):
    """One observable setting of a `Settings` object: `check` converts and validates a new
    value (raising ValueError / TypeError for one it refuses)."""

    def __init__(self, default: T, check: Callable[[Any], T]) -> None:
        self.default, self.check = default, check
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> Setting[T]: ...
    @overload
    def __get__(self, obj: Settings, owner: type) -> T: ...
    def __get__(self, obj: Settings | None, owner: type) -> Setting[T] | T:
        if obj is None:
            return self
        return obj._values.get(self.name, self.default)  # type: ignore[no-any-return]

    def __set__(self, obj: Settings, value: Any) -> None:
        v = self.check(value)
        if v != obj._values.get(self.name, self.default):
            obj._values[self.name] = v
            obj.changed.emit(self.name, v)


class Settings(QObject):
    """What the sampling and class panels show; `sampling()` is what a job runs with."""

    changed = Signal(str, object)  # setting name, new value

    steps = Setting(Sampling.steps, _clamp(2, MAX_STEPS, int))
    schedule = Setting(Sampling.schedule, _one_of(SCHEDULES))
    order = Setting(Sampling.order, _one_of(ORDERS))
    choice_temperature = Setting(Sampling.choice_temperature,
                                 _clamp(0.0, MAX_CHOICE_TEMPERATURE, float))
    guidance = Setting(Sampling.guidance, bool)
    random_seed = Setting(True, bool)
    seed = Setting(0, _clamp(0, MAX_SEED, int))
    candidates = Setting(4, _clamp(1, MAX_CANDIDATES, int))
    class_id: Setting[int | None] = Setting(None, _class_id)  # None: automatic
    fill_on_release = Setting(True, bool)  # an outpaint drag generates when released
    brush_size = Setting(32, _clamp(MIN_BRUSH, MAX_BRUSH, int))  # brush, eraser, lock brush
    wand_tolerance = Setting(32, _clamp(0, MAX_TOLERANCE, int))

    # What projects and the settings file keep (fill_on_release is a menu toggle of the session;
    # the brush size has its own key in the settings file).
    SAVED = ("steps", "schedule", "order", "choice_temperature", "random_seed", "seed",
             "candidates", "guidance", "class_id")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._values: dict[str, Any] = {}

    def sampling(self, start_step: int = 2) -> Sampling:
        steps = self.steps
        return Sampling(steps, min(start_step, steps - 1), self.schedule,
                        self.choice_temperature, order=self.order, guidance=self.guidance)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.SAVED}

    def apply(self, values: dict[str, Any]) -> None:
        """Take the values a project or the settings file holds; a damaged or unknown one
        keeps the current value (a project may come from anyone)."""
        for name in self.SAVED:
            if name not in values:
                continue
            try:
                setattr(self, name, values[name])
            except (TypeError, ValueError, OverflowError):
                if name == "class_id":  # a class the editor does not have: automatic
                    self.class_id = None
