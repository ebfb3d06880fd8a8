"""Inpainting quality benchmark (a benchmark, not a test; issue 4).

Held-out photos (Debian's opencv-doc, python3-skimage and python3-sklearn sample images, never in
the training corpus), longer side 512, four mask kinds (central box of 25 % of the area, free-form
strokes, outpaint right 30 %, outpaint bottom 30 %). Every method gets the same input with the
masked pixels set to grey, so nothing can copy them:

* `model`: the MaskGIT model through the product path, automatic class: `maskgit-editor inpaint`
  for box and strokes, `maskgit-editor outpaint` (the photo cut to its known part and grown
  back, as a canvas-edge drag in the app) for right and bottom;
* `shiftmap`: OpenCV's exemplar inpainting (xphoto INPAINT_SHIFTMAP, He & Sun 2012): it
  rearranges real pixels of the same photo, the strongest classical baseline on texture;
* `telea`, `ns`: OpenCV's Telea and Navier-Stokes inpainting (radius 3);
* `mean`: a flat fill with the mean colour of the known pixels.

Metrics: PSNR and SSIM over the masked pixels, and KID / FID between 128 px patches of results
and originals centred on masked pixels, on EfficientNet-Lite2 pooled features (the judge: a
network nothing in training or the app uses) and on Lite0 (the app's own classifier, for older
tables). The photos are split once by name into a dev half (tune on it) and a test half (report).
These KID/FID numbers are NOT comparable with published FID (Inception-v3, tens of thousands of
images): here a few dozen patches per mask kind, so read them as a ranking of methods.
One run is noisy: shift-map's result jumps with noise of one grey level in the photo (KID-Lite2
sd 1-2.5 a run on a half), so every method runs `--runs` times, run r on the photos with +-1 grey
level of noise drawn with seed r (run 0: the photos as they are) and the model with seed r, and
the tables give the mean over runs (and its spread).
Class guidance: for the box masks the model also runs with a requested class (the classifier's
top-1 on the original photo); we report how often the classifier puts the regenerated region in
that class (top-5), with the requested class and with the automatic class.

    python -m bench.quality --fetch /data/evalphotos        # apt-get download + unpack
    python -m bench.quality --photos /data/evalphotos --split dev|test [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

# (Debian package, path inside the package) of natural colour photographs.
EVAL_PHOTOS: list[tuple[str, str]] = [
    *[("opencv-doc", f"usr/share/doc/opencv-doc/examples/data/{n}") for n in (
        "baboon.jpg", "fruits.jpg", "building.jpg", "messi5.jpg", "squirrel_cls.jpg", "apple.jpg",
        "orange.jpg", "butterfly.jpg", "home.jpg", "aero1.jpg", "leuvenA.jpg", "chicky_512.png",
    )],
    *[("python3-skimage", f"usr/lib/python3/dist-packages/skimage/data/{n}") for n in (
        "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
    )],
    *[("python3-sklearn", f"usr/lib/python3/dist-packages/sklearn/datasets/images/{n}")
      for n in ("china.jpg", "flower.jpg")],
]
# Split once, by name (SHA-1 of the photo's stem, even = dev): tune on dev, report on test.
DEV = ("opencv-doc__apple", "opencv-doc__building", "opencv-doc__butterfly", "opencv-doc__fruits",
       "opencv-doc__home", "opencv-doc__leuvenA", "opencv-doc__messi5",
       "python3-skimage__motorcycle_left", "python3-skimage__rocket")
TEST = ("opencv-doc__aero1", "opencv-doc__baboon", "opencv-doc__chicky_512", "opencv-doc__orange",
        "opencv-doc__squirrel_cls", "python3-skimage__astronaut", "python3-skimage__chelsea",
        "python3-skimage__coffee", "python3-sklearn__china", "python3-sklearn__flower")
MASK_KINDS = ("box", "strokes", "right", "bottom")
METHODS = ("model", "shiftmap", "telea", "ns", "mean")
CLASSICAL = METHODS[1:]
# KID/FID feature networks: Lite2 is the judge (nothing in training or the app uses it); Lite0
# (the app's automatic-class network) is kept for comparison with older tables.
JUDGES = ("lite2", "lite0")
LONG_SIDE = 512
PATCH = 128  # side of the patches fed to the feature network for KID/FID
PATCHES_PER_IMAGE = 4


# ----------------------------------------------------------------------------- data


def fetch(dest: Path) -> None:
    """Download the evaluation packages (no install) and unpack the chosen photos into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for pkg in sorted({p for p, _ in EVAL_PHOTOS}):
            subprocess.run(["apt-get", "download", pkg], cwd=tmp, check=True)
            deb = next(Path(tmp).glob(f"{pkg}_*.deb"))
            unpacked = Path(tmp) / pkg
            subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
            for p, path in EVAL_PHOTOS:
                if p == pkg:
                    src = unpacked / path
                    (dest / f"{pkg}__{src.name}").write_bytes(src.read_bytes())
    print(f"{len(list(dest.iterdir()))} photos in {dest}")


def load_photo(path: Path) -> np.ndarray:
    im = Image.open(path).convert("RGB")
    s = LONG_SIDE / max(im.size)
    im = im.resize((round(im.width * s), round(im.height * s)), Image.LANCZOS)
    return np.asarray(im).copy()


def seed_of(name: str) -> int:
    """A photo's mask and patch seed: its place among all held-out photos, whichever half runs
    (the numbers of older, unsplit tables used the same seeds)."""
    everything = sorted(DEV + TEST)
    return everything.index(name) if name in everything else len(everything)


def make_mask(kind: str, h: int, w: int, seed: int) -> np.ndarray:
    """(h, w) bool, True = regenerate."""
    m = np.zeros((h, w), bool)
    if kind == "box":  # half of each side = 25 % of the area
        m[h // 4: h // 4 + h // 2, w // 4: w // 4 + w // 2] = True
    elif kind == "right":
        m[:, w - round(0.3 * w):] = True
    elif kind == "bottom":
        m[h - round(0.3 * h):, :] = True
    elif kind == "strokes":  # random thick polylines until ~20 % of the area
        rng = np.random.default_rng(seed)
        u8 = np.zeros((h, w), np.uint8)
        while (u8 > 0).mean() < 0.2:
            x, y = rng.integers(0, w), rng.integers(0, h)
            thick = int(rng.integers(12, 28))
            for _ in range(int(rng.integers(3, 7))):
                ang = rng.uniform(0, 2 * np.pi)
                length = rng.uniform(30, 110)
                nx = int(np.clip(x + length * np.cos(ang), 0, w - 1))
                ny = int(np.clip(y + length * np.sin(ang), 0, h - 1))
                cv2.line(u8, (int(x), int(y)), (nx, ny), 255, thick)
                x, y = nx, ny
        m = u8 > 0
    else:
        raise ValueError(kind)
    return m


# ----------------------------------------------------------------------------- methods


def grey_out(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = img.copy()
    out[mask] = 128
    return out


def classical(method: str, img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    src = grey_out(img, mask)
    if method == "mean":
        src[mask] = img[~mask].mean(0).round().astype(np.uint8)
        return src
    if method == "shiftmap":  # exemplar: rearranges real pixels of the photo (opencv-contrib)
        out = np.zeros_like(src)
        valid = (~mask).astype(np.uint8) * 255  # xphoto's mask marks the known pixels
        cv2.xphoto.inpaint(src[..., ::-1].copy(), valid, out, cv2.xphoto.INPAINT_SHIFTMAP)
        return out[..., ::-1].copy()
    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    bgr = cv2.inpaint(src[..., ::-1].copy(), mask.astype(np.uint8) * 255, 3, flag)
    return bgr[..., ::-1].copy()


def jitter(img: np.ndarray, run: int) -> np.ndarray:
    """`img` with noise of +-1 grey level drawn with seed `run` (run 0: `img` itself)."""
    if not run:
        return img
    noise = np.random.default_rng(run).integers(-1, 2, img.shape)
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def classical_cached(method: str, name: str, kind: str, img: np.ndarray, mask: np.ndarray,
                     cache: Path | None, run: int = 0) -> np.ndarray:
    """Classical fills are deterministic and shift-map takes 10-60 s a photo: kept on disk.
    `img` is the photo of run `run` (jitter)."""
    if cache is None:
        return classical(method, img, mask)
    f = cache / (f"{method}-{kind}-{name}.png" if not run else f"{method}-{kind}-{name}-j{run}.png")
    if f.exists():
        out = np.asarray(Image.open(f).convert("RGB")).copy()
        if out.shape == img.shape:
            return out
    out = classical(method, img, mask)
    cache.mkdir(parents=True, exist_ok=True)
    Image.fromarray(out).save(f)
    return out


def run_model(items: list[tuple[str, np.ndarray, np.ndarray]], model: str, device: str,
              class_id: int | None = None, extra: list[str] = (), seed: int = 0,
              ) -> dict[str, np.ndarray]:
    """Inpaint through the CLI (the product path) with `seed`; returns results by name."""
    from editor.cli import main as cli_main

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for d in ("img", "mask", "out"):
            (t / d).mkdir()
        for name, img, mask in items:
            Image.fromarray(grey_out(img, mask)).save(t / "img" / f"{name}.png")
            Image.fromarray(mask.astype(np.uint8) * 255).save(t / "mask" / f"{name}.png")
        argv = ["inpaint", "--images", str(t / "img"), "--masks", str(t / "mask"),
                "--out", str(t / "out"), "--model", model, "--device", device, "--seed", str(seed)]
        if class_id is not None:
            argv += ["--class", str(class_id)]
        if cli_main([*argv, *extra]) != 0:
            raise RuntimeError("maskgit-editor inpaint failed")
        return {name: np.asarray(Image.open(t / "out" / f"{name}.png").convert("RGB")).copy()
                for name, _, _ in items}


def run_outpaint(items: list[tuple[str, np.ndarray, np.ndarray]], kind: str, model: str,
                 device: str, extra: list[str] = (), seed: int = 0) -> dict[str, np.ndarray]:
    """Outpaint through the CLI (`maskgit-editor outpaint`, the app's outpaint path: windows
    overlapping along the new strip): the photo cut to its known part, grown back by the
    masked strip; returns results by name, the size of the photos."""
    from editor.cli import main as cli_main

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for name, img, mask in items:
            h, w = mask.shape
            if kind == "right":
                keep, grow = img[:, : w - int(mask[0].sum())], ["--right", str(int(mask[0].sum()))]
            else:
                keep, grow = img[: h - int(mask[:, 0].sum())], ["--bottom",
                                                                str(int(mask[:, 0].sum()))]
            Image.fromarray(keep).save(t / f"{name}.png")
            argv = ["outpaint", str(t / f"{name}.png"), *grow, "--out", str(t / f"{name}-out.png"),
                    "--model", model, "--device", device, "--seed", str(seed)]
            if cli_main([*argv, *extra]) != 0:
                raise RuntimeError("maskgit-editor outpaint failed")
            res = np.asarray(Image.open(t / f"{name}-out.png").convert("RGB")).copy()
            if res.shape != img.shape:
                raise RuntimeError(f"{name}: outpaint gave {res.shape}, expected {img.shape}")
            out[name] = res
    return out


# ----------------------------------------------------------------------------- metrics


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    mse = ((a[mask].astype(np.float64) - b[mask]) ** 2).mean()
    return float(10 * np.log10(255**2 / max(mse, 1e-10)))


def masked_ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mean over masked pixels of the SSIM map (Gaussian 11 x 11, sigma 1.5) of luminance."""
    x = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64)
    y = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64)
    blur = lambda z: cv2.GaussianBlur(z, (11, 11), 1.5)  # noqa: E731
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return float(s[mask].mean())


def patch_boxes(mask: np.ndarray, seed: int) -> list[tuple[int, int]]:
    """Top-left corners of PATCH-px squares centred on random masked pixels (inside the image)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    out = []
    for i in rng.integers(0, len(ys), PATCHES_PER_IMAGE):
        y = int(np.clip(ys[i] - PATCH // 2, 0, h - PATCH))
        x = int(np.clip(xs[i] - PATCH // 2, 0, w - PATCH))
        out.append((y, x))
    return out


def features(clf, patches: list[np.ndarray]) -> np.ndarray:
    import torch

    x = torch.from_numpy(np.stack(patches)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        return np.concatenate([clf.features(x[i:i + 32]).numpy() for i in range(0, len(x), 32)])


def kid(real: np.ndarray, fake: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel (Binkowski et al. 2018)."""
    d = real.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    m, n = len(real), len(fake)
    kxx, kyy, kxy = k(real, real), k(fake, fake), k(real, fake)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                 + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean())


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    # tr sqrt(S1 S2) from the eigenvalues of S1 S2 (real and >= 0 for PSD S1, S2).
    ev = np.linalg.eigvals(s1 @ s2).real.clip(min=0)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(ev).sum())


# ----------------------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fetch", type=Path, help="download the held-out photos into this folder")
    p.add_argument("--photos", type=Path, help="folder of held-out photos")
    p.add_argument("--model", default="default", help="model name or .safetensors path")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path, help="write all numbers here")
    p.add_argument("--grid", type=Path,
                   help="write a picture (photo, input, Telea, shift-map, model)")
    p.add_argument("--runs", type=int, default=3,
                   help="runs per method, run r on the photos with +-1 grey level of noise of "
                        "seed r (0: none) and the model with seed r; tables give the mean")
    p.add_argument("--limit", type=int, default=0, help="use only the first N photos")
    p.add_argument("--no-guidance", action="store_true", help="skip the class-guidance runs")
    p.add_argument("--kinds", nargs="+", choices=MASK_KINDS, default=MASK_KINDS,
                   help="mask kinds to run (default: all)")
    p.add_argument("--outpaint-as-inpaint", action="store_true",
                   help="right/bottom through `inpaint` (masked in place) instead of `outpaint`")
    p.add_argument("--split", choices=("dev", "test", "all"), default="dev",
                   help="which half of the photos (tune on dev, report on test)")
    p.add_argument("--cache", type=Path, default=Path("data/quality-cache"),
                   help="folder keeping the classical fills between runs ('' for none)")
    p.add_argument("--model-arg", action="append", default=[], dest="model_args",
                   help="extra option for the model's CLI run, e.g. --model-arg=--exemplar=off")
    return p


def _photos(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """The photos of the chosen split, by name."""
    paths = sorted(q for q in args.photos.iterdir() if q.suffix.lower() in (".jpg", ".png"))
    if args.split != "all":
        keep = DEV if args.split == "dev" else TEST
        paths = [q for q in paths if q.stem in keep]
    if args.limit:
        paths = paths[: args.limit]
    return {q.stem: load_photo(q) for q in paths}


def _score(photos: dict[str, np.ndarray], masks: dict[str, np.ndarray],
           outs: dict[str, dict[str, np.ndarray]], judges: dict) -> dict[str, dict[str, float]]:
    """Masked PSNR and SSIM of every method, and KID/FID of its patches around the hole against
    the photos' own patches there, on every judge's features."""
    real_patches, fake_patches = [], {m: [] for m in METHODS}
    row = {m: {"psnr": [], "ssim": []} for m in METHODS}
    for n in photos:
        boxes = patch_boxes(masks[n], seed=seed_of(n))
        real_patches += [photos[n][y:y + PATCH, x:x + PATCH] for y, x in boxes]
        for m in METHODS:
            r = outs[m][n]
            row[m]["psnr"].append(masked_psnr(r, photos[n], masks[n]))
            row[m]["ssim"].append(masked_ssim(r, photos[n], masks[n]))
            fake_patches[m] += [r[y:y + PATCH, x:x + PATCH] for y, x in boxes]
    real_f = {j: features(net, real_patches) for j, net in judges.items()}
    summary = {}
    for m in METHODS:
        summary[m] = {"psnr": float(np.mean(row[m]["psnr"])),
                      "ssim": float(np.mean(row[m]["ssim"]))}
        for j, net in judges.items():
            fake_f = features(net, fake_patches[m])
            summary[m][f"kid_{j}"] = kid(real_f[j], fake_f)
            summary[m][f"fid_{j}"] = fid(real_f[j], fake_f)
    return summary


def _over_runs(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict]:
    """Every method's metrics as the mean over `runs`, with each run's KID-Lite2 and PSNR and
    their standard deviation."""
    out: dict[str, dict] = {}
    for m in runs[0]:
        out[m] = {k: float(np.mean([r[m][k] for r in runs])) for k in runs[0][m]}
        for k in ("kid_lite2", "psnr"):
            values = [r[m][k] for r in runs]
            out[m][f"{k}_runs"] = values
            out[m][f"{k}_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return out


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    if args.fetch:
        fetch(args.fetch)
        if not args.photos:
            return 0
    if not args.photos:
        p.error("give --photos (or --fetch)")
    import torch

    from models.classifier import load_classifier

    torch.set_grad_enabled(False)
    photos = _photos(args)
    clf = load_classifier("cpu")
    judges = {j: clf if j == "lite0" else load_classifier("cpu", variant=j) for j in JUDGES}
    cache = args.cache if str(args.cache) not in ("", ".") else None
    results: dict = {"split": args.split, "photos": list(photos), "model_args": args.model_args,
                     "runs": args.runs, "per_kind": {}}
    grid_rows = []
    t0 = time.monotonic()
    for kind in args.kinds:
        masks = {n: make_mask(kind, *im.shape[:2], seed=seed_of(n)) for n, im in photos.items()}
        runs, model_seconds = [], 0.0
        for run in range(args.runs):
            items = [(n, jitter(photos[n], run), masks[n]) for n in photos]
            outs: dict[str, dict[str, np.ndarray]] = {}
            tm = time.monotonic()
            if kind in ("right", "bottom") and not args.outpaint_as_inpaint:
                outs["model"] = run_outpaint(items, kind, args.model, args.device,
                                             args.model_args, seed=run)
            else:
                outs["model"] = run_model(items, args.model, args.device, extra=args.model_args,
                                          seed=run)
            model_seconds += (time.monotonic() - tm) / len(items) / args.runs
            for m in CLASSICAL:
                outs[m] = {n: classical_cached(m, n, kind, im, masks[n], cache, run)
                           for n, im, _ in items}
            runs.append(_score(photos, masks, outs, judges))
            if kind == "box" and run == 0:
                grid_rows = [[photos[n], grey_out(photos[n], masks[n]), outs["telea"][n],
                              outs["shiftmap"][n], outs["model"][n]] for n in list(photos)[:4]]
                if not args.no_guidance:
                    results["class_guidance"] = class_guidance(photos, masks, outs["model"],
                                                               clf, args)
                    print(json.dumps(results["class_guidance"]), flush=True)
        summary = _over_runs(runs)
        summary["model"]["seconds_per_photo"] = model_seconds  # the CLI run, model load included
        results["per_kind"][kind] = summary
        print(f"[{time.monotonic() - t0:.0f} s] {kind}: "
              + json.dumps({m: {k: round(v, 4) if isinstance(v, float) else v
                                for k, v in s.items()} for m, s in summary.items()}), flush=True)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.grid and grid_rows:
        save_grid(grid_rows, args.grid)
    return 0


def class_guidance(photos, masks, auto_out, clf, args) -> dict:
    """Top-5 hit rate of the requested class on the regenerated box, requested vs automatic."""
    import torch

    def crop_box(img, mask):
        ys, xs = np.nonzero(mask)
        return img[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]

    def top5(img):
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
        return clf.top_k(x, 5)[0].tolist()

    hits_req, hits_auto = [], []
    for n, img in photos.items():
        want = top5(img)[0]  # what the whole photo looks like
        req = run_model([(n, img, masks[n])], args.model, args.device, class_id=want,
                        extra=args.model_args)[n]
        hits_req.append(want in top5(crop_box(req, masks[n])))
        hits_auto.append(want in top5(crop_box(auto_out[n], masks[n])))
    return {"requested_class_top5": float(np.mean(hits_req)),
            "automatic_class_top5": float(np.mean(hits_auto)), "n": len(photos)}


def table(results: dict) -> str:
    split = results.get("split", "all")
    runs = results.get("runs", 1)
    lines = [f"{split} half: {len(results['photos'])} photos, mean of {runs} run(s) (+- sd)",
             "| mask | method | PSNR (dB) | SSIM | KID-Lite2 x 1000 | KID-Lite0 x 1000 "
             "| FID-Lite2* |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for kind, summary in results["per_kind"].items():
        for m, s in summary.items():
            lines.append(f"| {kind} | {m} | {s['psnr']:.2f} | {s['ssim']:.3f} | "
                         f"{1000 * s['kid_lite2']:.1f} +- {1000 * s.get('kid_lite2_sd', 0):.1f} | "
                         f"{1000 * s['kid_lite0']:.1f} | "
                         f"{s['fid_lite2']:.1f} |")
    return "\n".join(lines)


def save_grid(rows: list[list[np.ndarray]], path: Path, side: int = 256) -> None:
    def fit(a):
        im = Image.fromarray(a)
        s = side / max(im.size)
        im = im.resize((round(im.width * s), round(im.height * s)), Image.LANCZOS)
        canvas = Image.new("RGB", (side, side), (255, 255, 255))
        canvas.paste(im, ((side - im.width) // 2, (side - im.height) // 2))
        return np.asarray(canvas)

    grid = np.concatenate([np.concatenate([fit(a) for a in r], 1) for r in rows], 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path, quality=88)


if __name__ == "__main__":
    sys.exit(main())
