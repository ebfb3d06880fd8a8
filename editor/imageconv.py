"""QImage <-> numpy, and reading / writing image files with messages a person can act on.

Arrays are (H, W, 3) uint8 RGB, C-contiguous. QImage rows may be padded (bytesPerLine), so every
conversion goes through an explicit stride.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtGui import QColor, QImage, QImageReader, QImageWriter, QPainter

READ_FORMATS = ("png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff")
WRITE_FORMATS = ("png", "jpg", "jpeg", "webp")
MAX_PIXELS = 8192 * 8192  # far above what a 128-px model edits well, below what exhausts RAM


def to_qimage(array: np.ndarray) -> QImage:
    """(H, W, 3) uint8 -> QImage that owns its pixels (safe after `array` is gone)."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got {a.shape}")
    h, w, _ = a.shape
    return QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def mask_to_qimage(mask: np.ndarray, rgba: tuple[int, int, int, int]) -> QImage:
    """(H, W) bool -> ARGB32 image: `rgba` where True, transparent elsewhere."""
    h, w = mask.shape
    buf = np.zeros((h, w, 4), np.uint8)
    r, g, b, a = rgba
    # Format_ARGB32 is B, G, R, A in memory on little-endian machines.
    buf[mask] = (b, g, r, a)
    return QImage(buf.data, w, h, 4 * w, QImage.Format.Format_ARGB32).copy()


def from_qimage(image: QImage) -> np.ndarray:
    """QImage -> (H, W, 3) uint8; transparency is flattened onto white, as a viewer shows it."""
    if image.hasAlphaChannel():
        flat = QImage(image.size(), QImage.Format.Format_RGB888)
        flat.fill(QColor("white"))
        p = QPainter(flat)
        p.drawImage(0, 0, image)
        p.end()
        image = flat
    img = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, bpl = img.height(), img.width(), img.bytesPerLine()
    raw = np.frombuffer(img.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)
    return raw[:, : 3 * w].reshape(h, w, 3).copy()


def load_image(path: str | Path) -> np.ndarray:
    """Read PNG / JPEG / WebP / ...; EXIF orientation applied. Raises ValueError with the reason."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p} does not exist or is not a file")
    reader = QImageReader(str(p))
    reader.setAutoTransform(True)  # phone photos: honour the EXIF rotation
    size = reader.size()
    if size.isValid() and size.width() * size.height() > MAX_PIXELS:
        raise ValueError(
            f"{p.name} is {size.width()} x {size.height()} pixels; the editor opens images up "
            f"to {MAX_PIXELS // 1_000_000} megapixels"
        )
    reader.setAllocationLimit(1024)  # MB; the check above is the real limit
    img = reader.read()
    if img.isNull():
        raise ValueError(f"{p.name} could not be read as an image: {reader.errorString()}")
    return from_qimage(img)


def save_image(array: np.ndarray, path: str | Path, quality: int = 95) -> None:
    """Write by extension (png, jpg, webp). Writes a temporary file first, then renames, so a
    failed save never destroys the previous file."""
    p = Path(path)
    ext = p.suffix.lower().lstrip(".")
    if ext not in WRITE_FORMATS:
        raise ValueError(f"cannot save as .{ext}: use one of {', '.join(WRITE_FORMATS)}")
    tmp = p.with_name(f".{p.name}.saving")
    writer = QImageWriter(str(tmp), b"jpg" if ext == "jpeg" else ext.encode())
    writer.setQuality(quality)
    if not writer.write(to_qimage(array)):
        err = writer.errorString()
        tmp.unlink(missing_ok=True)
        raise ValueError(f"could not save {p.name}: {err}")
    try:
        tmp.replace(p)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"could not save {p.name}: {e}") from e
