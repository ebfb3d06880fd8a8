"""The sample photos in resources/samples/ (public domain / CC0, sources in SOURCES.md): a first
picture to try on the start page and in File › Open Sample."""

from __future__ import annotations

from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "resources" / "samples"


def samples() -> list[tuple[str, Path]]:
    """(title, path) of each sample, by file name; empty when the folder is missing."""
    files = sorted(SAMPLES_DIR.glob("*.jpg")) if SAMPLES_DIR.is_dir() else []
    return [(p.stem.replace("_", " ").capitalize(), p) for p in files]
