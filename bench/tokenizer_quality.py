"""Tokenizer reconstruction quality on held-out 128 px crops: KID on EfficientNet-Lite2 features
and PSNR, for a model's own decoder and for decoder snapshots of `maskgit-editor train decoder`.

Lite2 is the judge: the decoder's fine-tuning uses Lite0 for its perceptual loss and never sees
Lite2, so a lower KID here is not the training objective scoring itself. KID is the unbiased
MMD^2 with the cubic polynomial kernel (Binkowski et al. 2018) between the pooled features of the
originals and of their reconstructions (encode -> quantize -> decode, float32, as the app).

    python -m bench.tokenizer_quality --crops BANK/val.npz \\
        --decoders runs/decoder-gan/snapshots/*.safetensors --json out.json

`--crops` takes packed crop banks (`train pack`: the central 128 px of each crop) or a corpus
folder with `--split split.json` (held-out sources only, cut again with `--seed`). `--grid`
writes rows of original | model's decoder | best snapshot.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

from bench.quality import kid
from models import data as D
from models.checkpoint import load
from models.classifier import load_classifier
from models.tokenizer import VQGAN

DEFAULT_MODEL = "resources/models/default-128.safetensors"


def held_out_crops(args, size: int) -> torch.Tensor:
    """(N, 3, size, size) float crops in [0, 1] of held-out images only."""
    path = Path(args.crops)
    if path.suffix == ".npz":
        return D.center(D.load_bank(path).images, size)
    if not args.split:
        raise SystemExit("a corpus folder needs --split (the held-out list of `train pack`)")
    held = set(json.loads(Path(args.split).read_text())["val"])
    sources = [s for s in D.find_sources(path) if str(s.path) in held]
    bank = D.cut_crops(sources, round(size * 1.25), torch.Generator().manual_seed(args.seed),
                       tuple(args.crops_per_photo), args.crops_per_texture)
    return D.center(bank.images, size)


@torch.no_grad()
def reconstruct(tok: VQGAN, x: torch.Tensor, batch: int = 32) -> torch.Tensor:
    out = []
    for i in range(0, len(x), batch):
        out.append(tok.decode_from_indices(tok.encode_to_indices(x[i:i + batch])).clamp(0, 1))
    return torch.cat(out)


@torch.no_grad()
def features(judge, x: torch.Tensor, batch: int = 32) -> np.ndarray:
    return torch.cat([judge.features(x[i:i + batch]) for i in range(0, len(x), batch)]).numpy()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a - b).pow(2).mean((1, 2, 3)).clamp_min(1e-10)
    return float((-10 * torch.log10(mse)).mean())


def with_decoder(tok: VQGAN, path: str | Path) -> VQGAN:
    t = load_file(str(path))
    tok.decoder.load_state_dict({k[len("tokenizer.decoder."):]: v.float() for k, v in t.items()
                                 if k.startswith("tokenizer.decoder.")})
    return tok


def save_grid(rows: list[list[torch.Tensor]], path: Path, scale: int = 2) -> None:
    """One row per crop, the given images side by side with a 4 px gap, upscaled for viewing."""
    gap = 4
    tiles = [[(t.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8) for t in r] for r in rows]
    s = tiles[0][0].shape[0]
    h = len(tiles) * (s + gap) - gap
    w = len(tiles[0]) * (s + gap) - gap
    canvas = np.full((h, w, 3), 255, np.uint8)
    for i, r in enumerate(tiles):
        for j, t in enumerate(r):
            canvas[i * (s + gap):i * (s + gap) + s, j * (s + gap):j * (s + gap) + s] = t
    img = Image.fromarray(canvas).resize((w * scale, h * scale), Image.NEAREST)
    img.save(path, quality=92)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--crops", required=True, help="crop bank .npz, or a corpus folder + --split")
    p.add_argument("--split", help="split.json of `train pack` (with a corpus folder)")
    p.add_argument("--seed", type=int, default=1, help="crop cutting seed (corpus folder)")
    p.add_argument("--crops-per-photo", type=int, nargs=2, default=(4, 16))
    p.add_argument("--crops-per-texture", type=int, default=2)
    p.add_argument("--decoders", nargs="*", default=[], help="decoder snapshots to compare")
    p.add_argument("--cache", type=Path, help="JSON of results already measured (by file name)")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--grid", type=Path, help="original | model | best snapshot (lowest KID)")
    p.add_argument("--grid-rows", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    model = load(args.model)
    tok = model.tokenizer.float().eval()
    size = tok.config.image_size
    x = held_out_crops(args, size)
    judge = load_classifier("cpu", variant="lite2")
    real = features(judge, x)
    cache = json.loads(args.cache.read_text()) if args.cache and args.cache.is_file() else {}
    key = f"{args.crops}|{args.seed}|{len(x)}"
    cache = cache if cache.get("_crops") == key else {"_crops": key}
    results: dict[str, dict] = {}
    base = reconstruct(tok, x)
    base_state = {k: v.clone() for k, v in tok.decoder.state_dict().items()}
    for name in ["model", *args.decoders]:
        t0 = time.monotonic()
        if name in cache:
            results[name] = cache[name]
        else:
            rec = base if name == "model" else reconstruct(with_decoder(tok, name), x)
            results[name] = {"kid_lite2": kid(real, features(judge, rec)), "psnr": psnr(rec, x)}
            cache[name] = results[name]
            if args.cache:
                args.cache.write_text(json.dumps(cache, indent=1))
        r = results[name]
        print(f"{name}: KID-Lite2 x1000 {1000 * r['kid_lite2']:.2f}  PSNR {r['psnr']:.2f} dB"
              f"  ({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
    out = {"model": args.model, "crops": args.crops, "n": len(x), "results": results}
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    if args.grid and args.decoders:
        best = min(args.decoders, key=lambda n: results[n]["kid_lite2"])
        tok.decoder.load_state_dict(base_state)
        sel = torch.linspace(0, len(x) - 1, min(args.grid_rows, len(x))).long()
        tuned = reconstruct(with_decoder(tok, best), x[sel])
        save_grid([[x[i], base[i], tuned[j]] for j, i in enumerate(sel.tolist())], args.grid)
        print(f"grid: {args.grid} (best: {best})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
