"""Headless `maskgit-editor inpaint` and `outpaint` (DESIGN.md): the app's geometry and pipeline
without Qt, one model load for the whole batch.

Results keep the input's name, size, format, EXIF and ICC profile; pixels farther than
`--feather` from the mask are bit-identical to the input in PNG and WebP results (saved
losslessly). JPEG results are re-encoded (quality 95), which no lossy format can avoid.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from editor.core import geometry as g
from editor.core import imageio
from editor.core.imageio import LoadedImage
from editor.core.jobs import Job, Sampling
from editor.core.limits import MAX_STEPS
from editor.core.pipeline import EngineLike, run_job

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def load_engine(name: str, device: str = "auto") -> EngineLike:
    """'default', 'tiny' (random weights, to try things without a model) or a .safetensors."""
    from models.engine import Engine

    if name == "tiny":
        from models.maskgit import MaskGIT, preset

        return Engine(MaskGIT(preset("tiny")), device=device)
    from models.registry import resolve

    return Engine.from_file(resolve(name), device=device)


def sampling_params(args: argparse.Namespace) -> tuple[Sampling, Any]:
    from models.engine import SamplingParams

    steps = int(args.steps)
    if not 2 <= steps <= MAX_STEPS:  # the parser checks too; Python callers come here
        raise ValueError(f"--steps must be in 2..{MAX_STEPS}")
    s = Sampling(steps, min(2, steps - 1), args.schedule, float(args.choice_temperature),
                 order=args.order, guidance=getattr(args, "guidance", "photo") != "off")
    return s, SamplingParams(**s.engine_fields())


def read_rgb(path: Path) -> tuple[np.ndarray, LoadedImage]:
    """The app's loader (editor.core.imageio): orientation applied, alpha flattened onto white."""
    loaded = imageio.load(path)
    return loaded.rgb, loaded


def write_like(rgb: np.ndarray, src: LoadedImage, path: Path) -> None:
    """Save `rgb` as `path` in its extension's format, keeping `src`'s alpha, EXIF and ICC
    profile."""
    if path.suffix.lower() not in IMAGE_EXTS - {".gif"}:
        raise ValueError(f"{path}: cannot write {path.suffix or 'a file without extension'}; "
                         "use .png, .jpg or .webp")
    alpha = src.alpha if src.alpha is not None and src.alpha.shape == rgb.shape[:2] else None
    if alpha is not None and src.straight is not None:
        rgb = imageio.with_alpha(rgb, alpha, src.straight, src.rgb)[..., :3]
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.save(path, rgb, alpha, src.exif, icc_profile=src.icc_profile)


def _pairs(images: Path, masks: Path) -> list[tuple[Path, Path]]:
    if images.is_file():
        mask = masks if masks.is_file() else masks / f"{images.stem}.png"
        if _same(images, mask):
            raise ValueError(f"--images {images} is its own mask; give the mask another name")
        return [(images, mask)]
    if not images.is_dir():
        raise ValueError(f"--images {images}: no such file or folder")
    if not masks.is_dir():
        raise ValueError(f"--masks {masks} must be a folder when --images is a folder")
    files = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    pairs = [(p, masks / f"{p.stem}.png") for p in files]
    # With the masks in the images' folder, a mask is no image to inpaint (a.png is a.jpg's).
    mask_files = {m.resolve() for _, m in pairs}
    pairs = [(p, m) for p, m in pairs if p.resolve() not in mask_files]
    if not pairs:
        raise ValueError(f"--images {images}: no images (png, jpg, webp) in it")
    return pairs


def _same(a: Path, b: Path) -> bool:
    """One file (or where one would be) under two names: symlinks and hard links included."""
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def refuse_overwriting(outputs: list[Path], inputs: list[Path]) -> None:
    """The CLI never writes over what it reads: results go to another file or folder."""
    for out in outputs:
        hit = next((i for i in inputs if _same(out, i)), None)
        if hit is not None:
            raise ValueError(f"--out would write over the input {hit}; choose another "
                             "folder or file name")


def _run(engine: EngineLike, image: np.ndarray, mask: np.ndarray, max_windows: int,
         args: argparse.Namespace, sampling: Sampling, params: Any, feather: int,
         overlap: float = 0.0, keep_out: np.ndarray | None = None) -> np.ndarray:
    # Outpaint windows overlap and see what their neighbours drew: no context floor for them.
    min_context = 0.0 if overlap else g.MIN_CONTEXT
    windows = g.plan(mask, engine.window, engine.tokens_per_side, max_windows, overlap, min_context)
    if not windows:
        return image
    from models.colour import harmonize

    job = Job("edit", image, mask, windows, args.class_id, sampling, int(args.seed), 1, feather,
              keep_out=keep_out)
    return run_job(engine, job, params, colour_fix=harmonize).images[0]


def _keep_out(path: Path | None, image: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The --keep-out mask of `image` (a file, or the same name in a folder, where an image
    without one has none), checked against its `shape`."""
    if path is None:
        return None
    if path.is_dir():
        path = path / f"{image.stem}.png"
        if not path.is_file():
            return None
    keep = imageio.load_mask(path)
    if keep.shape != shape[:2]:
        raise ValueError(f"{image.name}: the keep-out mask is {keep.shape[1]}x{keep.shape[0]} "
                         f"but the image is {shape[1]}x{shape[0]}")
    return keep


def _check_class(class_id: int | None) -> None:
    if class_id is not None and not 0 <= class_id < 1000:
        raise ValueError(f"--class must be an ImageNet class id in 0..999, got {class_id}")


def inpaint(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    feather = int(args.feather)
    if not 0 <= feather <= g.MAX_FEATHER:
        raise ValueError(f"--feather must be in 0..{g.MAX_FEATHER} pixels, got {feather}")
    _check_class(args.class_id)
    pairs = _pairs(Path(args.images), Path(args.masks))
    keep_out = Path(args.keep_out) if args.keep_out else None
    if keep_out is not None and not keep_out.exists():
        raise ValueError(f"--keep-out {keep_out}: no such file or folder")
    if keep_out is not None and keep_out.is_file() and len(pairs) > 1:
        raise ValueError(f"--keep-out {keep_out} must be a folder when --images is a folder")
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} must be a folder")
    refuse_overwriting([out_dir / p.name for p, _ in pairs],
                        [p for pair in pairs for p in pair])
    sampling, params = sampling_params(args)
    engine = load_engine(args.model, args.device)  # once for the whole batch
    failed = 0
    for img_path, mask_path in tqdm(pairs, desc="inpaint", unit="image", file=sys.stderr):
        try:
            if not mask_path.is_file():
                raise ValueError(f"{img_path.name}: no mask {mask_path}")
            rgb, src = read_rgb(img_path)
            mask = imageio.load_mask(mask_path)
            if mask.shape != rgb.shape[:2]:
                raise ValueError(
                    f"{img_path.name}: the mask is {mask.shape[1]}x{mask.shape[0]} but the image "
                    f"is {rgb.shape[1]}x{rgb.shape[0]}"
                )
            keep = _keep_out(keep_out, img_path, rgb.shape)
            out = _run(engine, rgb, mask, g.INPAINT_MAX_WINDOWS, args, sampling, params, feather,
                       keep_out=keep)
            write_like(out, src, out_dir / img_path.name)
        except ValueError as e:
            failed += 1
            tqdm.write(f"maskgit-editor: skipped {e}", file=sys.stderr)
    if failed:
        print(f"maskgit-editor: {failed} of {len(pairs)} images failed", file=sys.stderr)
    return 1 if failed else 0


def outpaint(args: argparse.Namespace) -> int:
    sides = {s: int(getattr(args, s)) for s in ("left", "top", "right", "bottom")}
    if min(sides.values()) < 0 or not any(sides.values()):
        raise ValueError("give --left/--right/--top/--bottom in pixels (>= 0, at least one > 0)")
    _check_class(args.class_id)
    out_path = Path(args.out)
    if out_path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise ValueError(f"--out {out_path}: use a .png, .jpg or .webp file name")
    refuse_overwriting([out_path], [Path(args.image)])
    rgb, src = read_rgb(Path(args.image))
    keep = _keep_out(Path(args.keep_out), Path(args.image), rgb.shape) if args.keep_out else None
    w = rgb.shape[1] + sides["left"] + sides["right"]
    h = rgb.shape[0] + sides["top"] + sides["bottom"]
    if imageio.too_large(w, h):
        raise ValueError(f"the outpainted image would be {w} x {h} pixels; the editor makes "
                         f"and opens images up to {imageio.limit_text()}")
    sampling, params = sampling_params(args)
    engine = load_engine(args.model, args.device)
    image, mask = g.extend(rgb, np.zeros(rgb.shape[:2], bool), **sides)
    if keep is not None:  # on the grown canvas: the new strips are not kept out
        keep = np.pad(keep, ((sides["top"], sides["bottom"]), (sides["left"], sides["right"])))
    guided = sampling.guidance and args.class_id is None
    out = _run(engine, image, mask, g.outpaint_max_windows(guided), args, sampling, params,
               feather=4, overlap=g.OUTPAINT_OVERLAP, keep_out=keep)
    # Alpha does not extend with the canvas; the grown image is opaque.
    write_like(out, LoadedImage(out, exif=src.exif, icc_profile=src.icc_profile), out_path)
    print(f"wrote {out_path} ({out.shape[1]}x{out.shape[0]})", file=sys.stderr)
    return 0
