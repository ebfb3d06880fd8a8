"""The models the app knows, where their weights live, and how a name becomes a file.

The embedded default ships in resources/models/. Official checkpoints are downloaded only when
the user asks (`maskgit-editor weights download NAME`) into the platform cache directory, verified,
and converted once to our .safetensors format.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

RESOURCES = Path(__file__).resolve().parent.parent / "resources" / "models"
DEFAULT_MODEL = RESOURCES / "default-128.safetensors"
OFFICIAL_BASE = "https://storage.googleapis.com/maskgit-public/checkpoints"


@dataclass(frozen=True)
class RemoteFile:
    url: str
    filename: str


@dataclass(frozen=True)
class KnownModel:
    name: str
    description: str
    licence: str
    source: str
    approx_mb: int  # size of the converted .safetensors file
    files: tuple[RemoteFile, ...] = ()  # empty for the embedded model (nothing to download)


def _official(res: int) -> KnownModel:
    return KnownModel(
        name=f"imagenet-{res}",
        description=f"Google's MaskGIT, ImageNet {res} px (official weights)",
        licence="Apache-2.0",
        source="github.com/google-research/maskgit",
        approx_mb=910,
        files=tuple(
            RemoteFile(
                f"{OFFICIAL_BASE}/{kind}_imagenet{res}_checkpoint",
                f"{kind}_imagenet{res}_checkpoint",
            )
            for kind in ("tokenizer", "maskgit")
        ),
    )


KNOWN: dict[str, KnownModel] = {
    "default": KnownModel(
        name="default",
        description="embedded default, 128 px window, trained by us (see MODEL_CARD.md)",
        licence="CC-BY-SA-4.0 (share-alike training data; see MODEL_CARD.md)",
        source="this repository",
        approx_mb=38,
    ),
    "imagenet-256": _official(256),
    "imagenet-512": _official(512),
}


def cache_dir() -> Path:
    """Where downloads and converted official models go (MASKGIT_EDITOR_CACHE overrides)."""
    override = os.environ.get("MASKGIT_EDITOR_CACHE")
    return Path(override) if override else Path(platformdirs.user_cache_dir("maskgit-editor"))


def model_path(name: str) -> Path:
    """Where the .safetensors file of a known model is (or would be)."""
    if name == "default":
        return DEFAULT_MODEL
    return cache_dir() / f"{name}.safetensors"


def is_present(name: str) -> bool:
    return model_path(name).is_file()


def available() -> list[str]:
    """Known models whose weights are on this machine, default first."""
    return [n for n in KNOWN if is_present(n)]


def resolve(name_or_path: str | Path) -> Path:
    """A model name or a path to a .safetensors file -> an existing file, or a clear error."""
    name = str(name_or_path)
    if name in KNOWN:
        path = model_path(name)
        if path.is_file():
            return path
        if name == "default":
            raise FileNotFoundError(
                f"the embedded default model is missing ({path}); "
                "restore it from a full checkout of the repository"
            )
        raise FileNotFoundError(
            f"model {name!r} is not on this machine; get it with "
            f"`maskgit-editor weights download {name}` (about {KNOWN[name].approx_mb} MB)"
        )
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    raise FileNotFoundError(
        f"no model {name!r}: give one of {', '.join(KNOWN)} or the path of a .safetensors file "
        "(`maskgit-editor weights list` shows them)"
    )


# ----------------------------------------------------------------------------- digests


def digests_file() -> Path:
    return cache_dir() / "digests.json"


def recorded_digest(filename: str) -> dict[str, Any] | None:
    """{'size': int, 'sha256': str} recorded after the first verified download, if any."""
    try:
        digest: dict[str, Any] | None = json.loads(digests_file().read_text()).get(filename)
        return digest
    except (OSError, ValueError):
        return None


def record_digest(filename: str, size: int, sha256: str) -> None:
    path = digests_file()
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        table = {}
    table[filename] = {"size": size, "sha256": sha256}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(table, indent=1, sort_keys=True))
    tmp.replace(path)
