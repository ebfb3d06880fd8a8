"""Image files from strangers (issue 16): whatever a file is named, only the photo decoders run
(PostScript never reaches Ghostscript); writes never follow a planted symlink; big but legal
metadata (a 1.5 MB ICC profile, a 60 MB eXIf chunk) opens and saves in every format."""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image

from editor.core import imageio

# A complete EPS file: Pillow identifies it from its first bytes, whatever its name says.
EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n%%EndComments\n"
       b"/f (/tmp/pwned) (w) file def f (x) writestring f closefile\n{ } loop\nshowpage\n%%EOF\n")


@pytest.fixture
def ghostscript_calls(monkeypatch):
    """Pillow believes Ghostscript is installed; every call it makes is recorded, not run."""
    calls: list[list[str]] = []

    def record(cmd, *args, **kwargs):
        calls.append(list(cmd))
        raise OSError("ghostscript must never run")

    monkeypatch.setattr(EpsImagePlugin, "gs_binary", "gs")
    monkeypatch.setattr(EpsImagePlugin.subprocess, "check_call", record)
    return calls


@pytest.mark.parametrize("name", ["photo.png", "photo.jpg", "photo.eps", "photo"])
def test_postscript_under_any_name_never_reaches_ghostscript(tmp_path, ghostscript_calls, name):
    path = tmp_path / name
    path.write_bytes(EPS)
    with pytest.raises(imageio.ImageLoadError, match="not an image this editor can read"):
        imageio.load(path)
    with pytest.raises(imageio.ImageLoadError):
        imageio.decode(EPS, "the clipboard image")  # the clipboard's path
    assert ghostscript_calls == []


def test_only_photo_decoders_are_tried(tmp_path):
    """Formats Pillow reads but no photo needs (here ICO and PPM) are refused like unknown data."""
    for fmt in ("ICO", "PPM"):
        b = io.BytesIO()
        Image.new("RGB", (8, 8)).save(b, format=fmt)
        with pytest.raises(imageio.ImageLoadError, match="not an image this editor can read"):
            imageio.decode(b.getvalue(), f"x.{fmt.lower()}")
    b = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(b, format="PNG")
    assert imageio.decode(b.getvalue()).rgb[0, 0].tolist() == [1, 2, 3]


@pytest.mark.parametrize("name", ["out.png", "out.jpg"])
def test_a_planted_symlink_never_redirects_a_save(tmp_path, name):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    for planted in (f".{name}.saving", f".{name}.tmp", f"{name}.tmp"):  # the old names
        (tmp_path / planted).symlink_to(victim)
    imageio.save(tmp_path / name, np.zeros((4, 4, 3), np.uint8))
    assert victim.read_bytes() == b"precious"
    assert imageio.load(tmp_path / name).rgb.shape == (4, 4, 3)
    mode = (tmp_path / name).stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask, "saved with a plain file's permissions, not mkstemp's 0600"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".part")) == []


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def _png_with(*chunks: bytes) -> bytes:
    """A 4 x 4 RGB PNG with extra chunks before its pixels."""
    raw = b"".join(b"\0" + bytes(range(12)) for _ in range(4))
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
            + b"".join(chunks) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


def test_a_big_icc_profile_opens_and_saves(tmp_path):
    rng = np.random.default_rng(0)
    icc = bytearray(rng.integers(0, 256, 1_500_000, dtype=np.uint8).tobytes())
    icc[16:20] = b"RGB "  # the data colour space of an RGB profile
    data = _png_with(_chunk(b"iCCP", b"big\0\0" + zlib.compress(bytes(icc))))
    loaded = imageio.decode(data, "big-icc.png")
    assert loaded.icc_profile == bytes(icc)
    for ext in ("png", "jpg", "webp"):
        out = tmp_path / f"x.{ext}"
        imageio.save(out, loaded.rgb, exif=loaded.exif, icc_profile=loaded.icc_profile)
        assert imageio.load(out).icc_profile == bytes(icc), ext


def test_a_huge_exif_chunk_opens_and_still_saves_as_jpeg(tmp_path):
    exif = Image.Exif()
    exif[0x010E] = "x" * (60 << 20)  # ImageDescription: 60 MB
    data = _png_with(_chunk(b"eXIf", exif.tobytes()))
    loaded = imageio.decode(data, "big-exif.png")
    imageio.save(tmp_path / "x.jpg", loaded.rgb, exif=loaded.exif)
    imageio.save(tmp_path / "y.jpg", loaded.rgb, exif=exif.tobytes())  # from an older project
    assert imageio.load(tmp_path / "x.jpg").rgb.shape == (4, 4, 3)
    assert imageio.load(tmp_path / "y.jpg").rgb.shape == (4, 4, 3)
