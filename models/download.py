"""Resumable, verified downloads of model files (only ever when the user asks for one).

A transfer writes `<file>.part` and resumes it with an HTTP Range request; the file gets its
final name only after its size and SHA-256 match, so a corrupt or half file is never used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import requests
from tqdm import tqdm

CHUNK = 1 << 20


class DownloadError(OSError):
    """A download that failed or did not verify; the message says which file and why."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def fetch(
    url: str,
    dest: Path,
    size: int | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 30.0,
    on_chunk: Callable[[int], None] | None = None,
) -> Path:
    """Download `url` to `dest`, resuming a previous `.part`; verify `size` and `sha256` if given.

    Returns `dest`. Raises DownloadError (and deletes the partial file) when the result does not
    verify, so the next attempt starts clean.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        with requests.get(url, headers=headers, stream=True, timeout=timeout) as r:
            if not (r.status_code == 416 and have):  # 416: the part is already complete
                _write(r, part, have, dest.name, progress, on_chunk)
    except requests.RequestException as e:
        raise DownloadError(
            f"download of {url} stopped ({e}); run the same command again to resume"
        ) from e
    _verify(part, dest, size, sha256)
    part.replace(dest)
    return dest


def _write(
    r: requests.Response,
    part: Path,
    have: int,
    name: str,
    progress: bool,
    on_chunk: Callable[[int], None] | None,
) -> None:
    """Append the response to `part` (or start it over when the server ignored Range)."""
    r.raise_for_status()
    if have and r.status_code != 206:  # the server ignored Range: start over
        have = 0
    total = int(r.headers.get("Content-Length", 0)) + have or None
    with (
        part.open("ab" if have else "wb") as f,
        tqdm(
            total=total,
            initial=have,
            unit="B",
            unit_scale=True,
            desc=name,
            disable=not progress,
        ) as bar,
    ):
        for chunk in r.iter_content(CHUNK):
            f.write(chunk)
            bar.update(len(chunk))
            if on_chunk:
                on_chunk(len(chunk))


def _verify(part: Path, dest: Path, size: int | None, sha256: str | None) -> None:
    """Raise DownloadError unless `part` has `size` bytes and the digest `sha256`; a part that
    can never become right (too long, wrong digest) is deleted so the next try starts clean."""
    got = part.stat().st_size
    if size is not None and got != size:
        if got > size:
            part.unlink()
        raise DownloadError(f"{dest.name}: got {got} bytes, expected {size}")
    digest = sha256_of(part)
    if sha256 is not None and digest != sha256:
        part.unlink()
        raise DownloadError(
            f"{dest.name}: SHA-256 mismatch (got {digest[:16]}..., expected {sha256[:16]}...); "
            "the file was deleted"
        )
