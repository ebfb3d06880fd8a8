"""The 1000 ImageNet class names (resources/imagenet_classes.txt, one per line, in id order)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

CLASSES_FILE = Path(__file__).resolve().parents[2] / "resources" / "imagenet_classes.txt"


@cache
def class_names() -> tuple[str, ...]:
    """Class id -> name. A broken install falls back to "class N" rather than failing."""
    try:
        names = tuple(CLASSES_FILE.read_text(encoding="utf-8").splitlines())
    except OSError:
        names = ()
    if len(names) != 1000:
        names = tuple(f"class {i}" for i in range(1000))
    return names
