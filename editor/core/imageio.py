"""The one image loader of the app and the CLI: any file a person may drop on the editor either
becomes an (H, W, 3) uint8 RGB array (plus its alpha, EXIF and ICC profile, to write back on
save) or raises
`ImageLoadError` with a sentence that names the file and the problem. Nothing here crashes.

Qt-free (PIL + numpy), so `maskgit-editor inpaint` reads images exactly as the app does.

What is handled, and how:
- EXIF orientation is applied (phone photos stand upright), and the orientation tag is dropped
  from the EXIF written back, so viewers do not rotate the result twice.
- CMYK, palette, greyscale (8 and 16 bit), 16-bit RGB, float/int32 images: converted to 8-bit RGB.
- ICC colour profiles: kept as bytes and written back on save, pixels untouched (the model edits
  the encoded values, and unchanged pixels must stay bit-exact), so a Display P3 or Adobe RGB
  photo keeps its colours in every viewer. Only RGB profiles are kept: a CMYK or grey profile
  no longer describes the RGB pixels written back.
- Alpha (RGBA, LA, palette transparency): the editor shows and edits the image flattened onto
  white (what a viewer shows); the alpha and the straight colours are kept so a save writes the
  transparency back and unchanged pixels come back bit-exact.
- Animated GIF / WebP / APNG: the first frame.
- Decompression bombs and huge images: the size is read from the header and anything above
  `MAX_PIXELS` (64 megapixels) or `MAX_SIDE` (16384 px) is refused before a pixel is decoded;
  that keeps the document, its undo snapshots and the canvas pixmap within a few GB.
- Zero-byte, truncated, corrupt or unknown files: refused (truncated data is never padded).
- Only the decoders of `PIL_FORMATS` are ever tried, whatever the file is named: Pillow would
  hand PostScript / EPS to Ghostscript (a program that can write files and loop for ever), and
  its other plugins are code no photo needs.
- Metadata: ICC profiles up to `MAX_ICC` (Pillow's 1 MB default refuses real LUT profiles);
  EXIF above `MAX_EXIF` (what a JPEG can hold) is dropped, so every save format can write it.
- Saving goes through `atomic_file`: a fresh temporary name in the target folder, renamed over
  the target, so a planted symlink never redirects a write.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

READ_FORMATS = ("png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff")
# Pillow's decoder names: the only ones `decode` lets Pillow try (JPEG also opens MPO).
PIL_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
MAX_ICC = 16 << 20  # large LUT profiles are a few MB; JPEG holds up to 255 x 64 KB
MAX_EXIF = 65533  # one JPEG APP1 segment: larger EXIF could be opened but never saved as JPEG
# iCCP is inflated under the text-chunk cap; ICC profiles are the one large chunk photos carry.
PngImagePlugin.MAX_TEXT_CHUNK = max(PngImagePlugin.MAX_TEXT_CHUNK, MAX_ICC)
WRITE_FORMATS = ("png", "jpg", "jpeg", "webp")
MAX_PIXELS = 8192 * 8192  # 64 megapixels: the document keeps several copies (undo, original)
MAX_SIDE = 16384  # Qt paints pixmaps up to 32767 px a side; keep well inside
_ORIENTATION = 0x0112


class ImageLoadError(ValueError):
    """A file that cannot be opened as an image; the message says which and why."""


@dataclass
class LoadedImage:
    rgb: np.ndarray  # (H, W, 3) uint8, orientation applied, alpha flattened onto white
    alpha: np.ndarray | None = None  # (H, W) uint8 when the file has transparency
    straight: np.ndarray | None = None  # (H, W, 3) uint8 colours before flattening (with alpha)
    exif: bytes | None = None  # orientation tag removed
    format: str = ""  # PIL's format name ("PNG", "JPEG", ...)
    frames: int = 1  # > 1 for animations (only the first frame is read)
    icc_profile: bytes | None = None  # the file's ICC profile when it describes RGB data

    @property
    def note(self) -> str:
        """Something the user should know about how the file was read ("" if nothing)."""
        return f"{self.frames}-frame animation: editing the first frame" if self.frames > 1 else ""


def limit_text() -> str:
    return f"{MAX_PIXELS / 1e6:.0f} megapixels (8192 x 8192) and {MAX_SIDE} pixels a side"


def too_large(width: int, height: int) -> bool:
    """Beyond what the editor opens (and so what it may make: a grown canvas too)."""
    return width * height > MAX_PIXELS or max(width, height) > MAX_SIDE


def load(path: str | Path) -> LoadedImage:
    """Read an image file; raises ImageLoadError (a ValueError) with the reason."""
    p = Path(path)
    if p.is_dir():
        raise ImageLoadError(f"{p} is a folder, not an image file")
    if not p.is_file():
        raise ImageLoadError(f"{p} does not exist")
    try:
        size = p.stat().st_size
    except OSError as e:
        raise ImageLoadError(f"{p.name} cannot be read: {e.strerror or e}") from e
    if size == 0:
        raise ImageLoadError(f"{p.name} is empty (0 bytes)")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ImageLoadError(f"{p.name} cannot be read: {e.strerror or e}") from e
    return decode(data, p.name)


def decode(data: bytes, name: str = "image") -> LoadedImage:
    """`load` for bytes already in memory (the fuzz tests and project files use it)."""
    if not data:
        raise ImageLoadError(f"{name} is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Our own limit below is lower than PIL's bomb warning; damaged EXIF also warns.
            warnings.simplefilter("ignore")
            im = Image.open(io.BytesIO(data), formats=PIL_FORMATS)
        w, h = im.size
    except Image.DecompressionBombError as e:
        # PIL refuses before telling the size; its message has the pixel count.
        found = re.search(r"\((\d+) pixels\)", str(e))
        size = f"has {int(found.group(1)) / 1e6:,.0f} megapixels" if found else "is too large"
        raise ImageLoadError(f"{name} {size} (a decompression bomb?); the editor opens images "
                             f"up to {limit_text()}") from e
    except Exception as e:
        # PIL's "cannot identify" names only its BytesIO object: no help to anyone.
        why = "" if isinstance(e, UnidentifiedImageError) else f": {_reason(e)}"
        raise ImageLoadError(f"{name} is not an image this editor can read "
                             f"(PNG, JPEG, WebP, BMP, GIF, TIFF){why}") from e
    if w < 1 or h < 1:
        raise ImageLoadError(f"{name} has no pixels ({w} x {h})")
    if too_large(w, h):
        raise ImageLoadError(f"{name} is {w} x {h} pixels ({w * h / 1e6:,.0f} megapixels); "
                             f"the editor opens images up to {limit_text()}. Scale it down "
                             "first, or edit a crop.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL warns on damaged EXIF / TIFF tags; we cope
            return _decode(im, name)
    except ImageLoadError:
        raise
    except MemoryError as e:
        raise ImageLoadError(f"{name}: not enough memory to open a {w} x {h} image") from e
    except Exception as e:  # PIL raises many types on broken data; none may escape
        raise ImageLoadError(f"{name} is damaged or truncated and cannot be opened: "
                             f"{_reason(e)}") from e


def _reason(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text if len(text) < 200 else text[:200] + "…"


def _decode(im: Image.Image, name: str) -> LoadedImage:
    fmt = im.format or ""
    frames = int(getattr(im, "n_frames", 1) or 1)
    if frames > 1:
        im.seek(0)
    im.load()  # truncated data raises here (ImageFile.LOAD_TRUNCATED_IMAGES stays False)
    icc = _rgb_profile(im.info.get("icc_profile"))
    exif_obj = im.getexif()
    im = ImageOps.exif_transpose(im) or im
    exif_bytes: bytes | None = None
    if len(exif_obj):
        exif_obj.pop(_ORIENTATION, None)
        exif_bytes = exif_obj.tobytes() if len(exif_obj) else None
        if exif_bytes is not None and len(exif_bytes) > MAX_EXIF:
            exif_bytes = None  # no JPEG could carry it; a bloated EXIF is no photo's
    rgb, alpha = _to_rgb_alpha(im)
    if rgb.shape[:2] != (im.height, im.width):
        raise ImageLoadError(f"{name}: decoded pixels do not match the image size")
    if alpha is None or (alpha == 255).all():
        return LoadedImage(rgb, exif=exif_bytes, format=fmt, frames=frames, icc_profile=icc)
    return LoadedImage(flatten(rgb, alpha), alpha, rgb, exif_bytes, fmt, frames, icc)


def _rgb_profile(icc: object) -> bytes | None:
    """`icc` if it is an ICC profile of RGB data (header: data colour space at bytes 16-20)."""
    if (not isinstance(icc, bytes) or not 128 <= len(icc) <= MAX_ICC
            or icc[16:20] != b"RGB "):
        return None
    return icc


def _to_rgb_alpha(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        a = np.asarray(im).astype(np.float64)
        top = 65535.0 if mode.startswith("I;16") or a.max(initial=0) > 255 else 255.0
        if mode == "F" and a.max(initial=0) <= 1.0:
            top = 1.0
        grey = np.clip(np.rint(a * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2)), None
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in im.info
    )
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA"))
        return np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
    return np.ascontiguousarray(np.asarray(im.convert("RGB"))), None


def flatten(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Straight colours over white, as an image viewer shows them."""
    a = alpha[..., None].astype(np.uint16)
    out = (rgb.astype(np.uint16) * a + 255 * (255 - a) + 127) // 255
    return out.astype(np.uint8)


def with_alpha(rgb: np.ndarray, alpha: np.ndarray | None, straight: np.ndarray | None = None,
               flat: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) -> (H, W, 4) with `alpha`; where `rgb` still equals the flattened original
    `flat`, the original straight colours are written back (a lossless round trip)."""
    if alpha is None:
        return rgb
    out = rgb.copy()
    if straight is not None and flat is not None:
        same = (rgb == flat).all(axis=2)
        out[same] = straight[same]
    return np.dstack([out, alpha])


WEBP_FAST_PIXELS = 2_000_000  # above this, lossless WebP is written at its fastest effort


def save(path: str | Path, rgb: np.ndarray, alpha: np.ndarray | None = None,
         exif: bytes | None = None, quality: int = 95, icc_profile: bytes | None = None
         ) -> None:
    """Write by extension (png, jpg, webp; alpha kept except in JPEG; WebP lossless), with
    `exif` and the ICC profile `icc_profile` when given. Written to a temporary file and
    renamed, so a failed save never destroys the previous file."""
    p = Path(path)
    ext = p.suffix.lower().lstrip(".")
    if ext not in WRITE_FORMATS and ext not in ("bmp", "tif", "tiff"):
        raise ValueError(f"cannot save as .{ext}: use one of {', '.join(WRITE_FORMATS)}")
    arr = rgb if alpha is None or ext in ("jpg", "jpeg", "bmp") else np.dstack([rgb, alpha])
    out = Image.fromarray(np.ascontiguousarray(arr, np.uint8))
    kw: dict[str, Any] = {}
    if exif and (len(exif) <= MAX_EXIF or ext not in ("jpg", "jpeg")):
        kw["exif"] = exif
    if icc_profile:
        kw["icc_profile"] = icc_profile
    # Saving runs on the GUI thread; a phone photo (12 megapixels) took 2.8 s as PNG at zlib's
    # level 6 and 5.5 s as lossless WebP at its default effort. PNG at level 3: 1.0 s, 13 %
    # larger (0.5 % at 0.8 megapixels, 276 -> 101 ms); lossless WebP at effort 0 above
    # WEBP_FAST_PIXELS: 0.6 s, 26 % larger, still lossless.
    if ext in ("jpg", "jpeg"):
        kw.update(quality=quality, subsampling=0)
    elif ext == "png":
        kw.update(compress_level=3)
    elif ext == "webp":
        kw.update(lossless=True, exact=True)  # exact: keep colours under transparent pixels
        if arr.shape[0] * arr.shape[1] > WEBP_FAST_PIXELS:
            kw.update(quality=0, method=0)  # in lossless mode "quality" is the effort
    fmt = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "bmp": "BMP",
           "tif": "TIFF", "tiff": "TIFF"}[ext]
    try:
        with atomic_file(p) as f:
            out.save(f, format=fmt, **kw)
    except (OSError, ValueError) as e:
        raise ValueError(f"could not save {p.name}: {getattr(e, 'strerror', None) or e}") from e


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[io.BufferedWriter]:
    """A new file that becomes `path` when the block ends without error (fsynced, renamed over
    it); on error `path` is untouched. The temporary name is unpredictable and created with
    O_EXCL (mkstemp), so a symlink or file planted in the folder is never written through."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=p.parent)
    try:
        # mkstemp makes it 0600; the result gets the permissions a plain open() would give.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask, read without setting it (os.umask would change it for a moment
    under the other threads)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def load_mask(path: str | Path) -> np.ndarray:
    """A mask file as (H, W) bool: white (and not transparent) = regenerate, black = keep. The
    one reader of the CLI's `--masks` and the app's Import Mask; raises ImageLoadError."""
    try:
        loaded = load(path)
    except ImageLoadError as e:
        raise ImageLoadError(f"{path}: not a readable mask ({e})") from e
    colours = loaded.straight if loaded.straight is not None else loaded.rgb
    white = colours.astype(np.uint16).sum(axis=2) > 3 * 127
    return np.asarray(white if loaded.alpha is None else white & (loaded.alpha > 0))


def save_mask(path: str | Path, mask: np.ndarray) -> None:
    """Write an (H, W) bool mask as a greyscale PNG, white = regenerate (what `load_mask` reads
    back exactly); lossy formats would blur the edge, so only .png is accepted."""
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise ValueError(f"cannot save a mask as {p.suffix or 'a file without extension'}: "
                         "masks are saved as .png")
    save(p, np.where(mask, 255, 0).astype(np.uint8))


def fit_mask(mask: np.ndarray, shape: tuple[int, int], tolerance: float = 0.01) -> np.ndarray:
    """`mask` at `shape` (H, W): as it is, or scaled with nearest neighbour when its aspect ratio
    is within `tolerance` of the target's; anything else raises ValueError naming both sizes
    (stretching a mask would move what it covers)."""
    mh, mw = mask.shape
    h, w = shape
    if (mh, mw) == (h, w):
        return mask
    if abs((mw / mh) / (w / h) - 1) > tolerance:
        raise ValueError(f"the mask is {mw} × {mh} pixels but the canvas is {w} × {h}; a mask "
                         f"must have the canvas's size or its aspect ratio (within "
                         f"{tolerance:.0%})")
    # Sample each target pixel's centre, so a 2x mask halves and a 0.5x mask doubles exactly.
    rows = np.minimum(((np.arange(h) + 0.5) * mh / h).astype(np.intp), mh - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * mw / w).astype(np.intp), mw - 1)
    return np.asarray(mask[rows[:, None], cols[None, :]])
