"""Where model weights live and how a name on the command line becomes a file."""

from __future__ import annotations

from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources" / "models"
DEFAULT_MODEL = RESOURCES / "default-128.safetensors"


def resolve(name_or_path: str | Path) -> Path:
    """'default' or a path to a .safetensors file -> an existing file, or a clear error."""
    if str(name_or_path) == "default":
        if not DEFAULT_MODEL.is_file():
            raise FileNotFoundError(
                f"the embedded default model is missing ({DEFAULT_MODEL}); "
                "reinstall from a full checkout of the repository"
            )
        return DEFAULT_MODEL
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    raise FileNotFoundError(
        f"no model {str(name_or_path)!r}: give 'default' or the path of a .safetensors file "
        "(`maskgit-editor weights list` shows the known models)"
    )
