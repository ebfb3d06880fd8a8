"""Image files of every awkward kind, made in memory (no fixtures on disk).

Each maker returns the file's bytes; `KINDS` maps a file name to its maker and to what opening
it must do: ("ok", check) or ("error", words the message must contain).
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image

W, H = 24, 16  # not square, so a rotation shows in the shape


def gradient() -> np.ndarray:
    y, x = np.mgrid[:H, :W]
    return np.dstack([x * 10, y * 15, (x + y) * 5]).astype(np.uint8)


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def png_rgb() -> bytes:
    return encode(Image.fromarray(gradient()), "PNG")


def jpeg_rgb() -> bytes:
    return encode(Image.fromarray(gradient()), "JPEG", quality=95)


def webp_rgb() -> bytes:
    return encode(Image.fromarray(gradient()), "WEBP", lossless=True)


def png_rgba() -> bytes:
    a = np.zeros((H, W), np.uint8)
    a[:, W // 2 :] = 255
    a[0, 0] = 128
    return encode(Image.fromarray(np.dstack([gradient(), a])), "PNG")


def png_la() -> bytes:
    g = gradient()[..., 0]
    a = np.full((H, W), 255, np.uint8)
    a[:4] = 0
    return encode(Image.fromarray(np.dstack([g, a]), "LA"), "PNG")


def png_grey() -> bytes:
    return encode(Image.fromarray(gradient()[..., 1], "L"), "PNG")


def png_grey16() -> bytes:
    g = (np.arange(H * W).reshape(H, W) * 170).astype(np.uint16)  # up to ~65000
    return encode(Image.fromarray(g), "PNG")


def png_rgb16() -> bytes:
    import cv2

    bgr16 = gradient()[..., ::-1].astype(np.uint16) * 257
    ok, buf = cv2.imencode(".png", bgr16)
    assert ok
    return buf.tobytes()


def png_palette() -> bytes:
    im = Image.fromarray(gradient()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return encode(im, "PNG", transparency=0)


def jpeg_cmyk() -> bytes:
    return encode(Image.new("CMYK", (W, H), (255, 0, 0, 0)), "JPEG", quality=95)  # cyan


def jpeg_rotated() -> bytes:
    """Stored W x H, EXIF orientation 6: a viewer shows it H x W, rotated 90 degrees clockwise."""
    im = Image.fromarray(gradient())
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "TestCam"  # make: kept on save
    return encode(im, "JPEG", quality=95, exif=exif.tobytes())


def _frames() -> list[Image.Image]:
    return [Image.new("RGB", (W, H), c) for c in ((200, 30, 30), (30, 200, 30), (30, 30, 200))]


def gif_animated() -> bytes:
    f = _frames()
    return encode(f[0], "GIF", save_all=True, append_images=f[1:], duration=50, loop=0)


def webp_animated() -> bytes:
    f = _frames()
    return encode(f[0], "WEBP", save_all=True, append_images=f[1:], duration=50, lossless=True)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(w: int, h: int) -> bytes:
    """A valid PNG that claims w x h pixels but holds a few bytes: a decompression bomb."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024, 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(
        b"IEND", b"")


def truncated_png() -> bytes:
    rng = np.random.default_rng(0)
    data = encode(Image.fromarray(rng.integers(0, 256, (64, 64, 3), np.uint8)), "PNG")
    return data[: len(data) // 2]


def truncated_jpeg() -> bytes:
    rng = np.random.default_rng(0)
    data = encode(Image.fromarray(rng.integers(0, 256, (64, 64, 3), np.uint8)), "JPEG")
    return data[: len(data) // 3]


def corrupt() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes(np.random.default_rng(1).integers(0, 256, 300,
                                                                            np.uint8))


def text_file() -> bytes:
    return b"this is not an image\n" * 10


def zero_bytes() -> bytes:
    return b""


Check = Callable[[np.ndarray], None]


def _is_gradient(a: np.ndarray, tol: int = 0) -> None:
    assert a.shape == (H, W, 3)
    assert np.abs(a.astype(int) - gradient()).max() <= tol


def _grey16(a: np.ndarray) -> None:
    g = (np.arange(H * W).reshape(H, W) * 170).astype(np.uint16)
    assert a.shape == (H, W, 3) and (a[..., 0] == a[..., 2]).all()
    assert np.abs(a[..., 0].astype(int) - g / 257).max() <= 1, "16-bit scaled, not clipped"


def _cyan(a: np.ndarray) -> None:
    assert a.shape == (H, W, 3)
    assert np.abs(a.astype(int) - (0, 255, 255)).max() <= 3


def _rotated(a: np.ndarray) -> None:
    assert a.shape == (W, H, 3), "EXIF orientation applied"
    expect = np.rot90(gradient(), k=-1)  # 90 degrees clockwise
    assert np.abs(a.astype(int) - expect).mean() < 4


def _first_frame(a: np.ndarray) -> None:
    assert a.shape == (H, W, 3)
    assert np.abs(a.astype(int) - (200, 30, 30)).max() <= 8, "the first frame"


def _rgba(a: np.ndarray) -> None:
    assert a.shape == (H, W, 3)
    assert (a[1:, : W // 2] == 255).all(), "transparent: flattened onto white"
    assert (a[0, 0] == 127).all(), "half transparent black over white"
    assert np.array_equal(a[:, W // 2 :], gradient()[:, W // 2 :])


def _shape(a: np.ndarray) -> None:
    assert a.shape == (H, W, 3)


KINDS: dict[str, tuple[Callable[[], bytes], str, object]] = {
    "rgb.png": (png_rgb, "ok", _is_gradient),
    "rgb.webp": (webp_rgb, "ok", _is_gradient),
    "rgb.jpg": (jpeg_rgb, "ok", lambda a: _is_gradient(a, 12)),
    "rgba.png": (png_rgba, "ok", _rgba),
    "grey-alpha.png": (png_la, "ok", _shape),
    "grey.png": (png_grey, "ok", _shape),
    "grey16.png": (png_grey16, "ok", _grey16),
    "rgb16.png": (png_rgb16, "ok", _is_gradient),
    "palette.png": (png_palette, "ok", _shape),
    "cmyk.jpg": (jpeg_cmyk, "ok", _cyan),
    "rotated.jpg": (jpeg_rotated, "ok", _rotated),
    "animated.gif": (gif_animated, "ok", _first_frame),
    "animated.webp": (webp_animated, "ok", _first_frame),
    "zero.png": (zero_bytes, "error", ("zero.png", "empty")),
    "corrupt.png": (corrupt, "error", ("corrupt.png", "not an image")),
    "notes.jpg": (text_file, "error", ("notes.jpg", "not an image")),
    "truncated.png": (truncated_png, "error", ("truncated.png", "truncated")),
    "truncated.jpg": (truncated_jpeg, "error", ("truncated.jpg", "truncated")),
    "bomb.png": (lambda: png_header_only(100_000, 100_000), "error",
                 ("bomb.png", "10,000 megapixels", "8192 x 8192")),
    "huge.png": (lambda: png_header_only(20_000, 20_000), "error",
                 ("huge.png", "400 megapixels", "8192 x 8192")),
    "tall.png": (lambda: png_header_only(40, 30_000), "error",
                 ("tall.png", "40 x 30000", "16384 pixels a side")),
    "big.png": (lambda: png_header_only(9000, 8000), "error",
                ("big.png", "9000 x 8000", "72 megapixels", "8192 x 8192")),
}
