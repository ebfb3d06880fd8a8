"""Tune photo guidance (editor.jobs PHOTO_*) on bench/quality's DEV half only.

Each config is `remask,prior,change sigma[,guide side[,change span[,outpaint windows[,strip
context]]]]` (editor.core.pipeline, geometry.GUIDED_OUTPAINT_MAX_WINDOWS and
editor.core.fill.STRIP_CONTEXT (0/1));
`off` is the transformer alone. Runs the product path (the CLI, in process) with the constants
patched, scores like bench/quality (masked PSNR, KID on Lite2 and Lite0) against the cached
classical fills:

    python -m bench.tune_photo --photos data/evalphotos --kinds box right off 0.5,0,1.5 ...
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench import quality as q


def apply(config: str) -> list[str]:
    """Patch the guidance constants for `config`; returns the extra CLI options."""
    import editor.core.fill as fill
    import editor.core.geometry as g
    import editor.core.jobs as jobs
    import editor.core.pipeline as pipeline

    if config == "off":
        return ["--guidance", "off"]
    remask, prior, change, *side = (float(x) for x in config.split(","))
    jobs.PHOTO_REMASK, jobs.PHOTO_PRIOR = remask, prior
    pipeline.CHANGE_SIGMA = change
    pipeline.GUIDE_SIDE = int(side[0]) if side else 256
    pipeline.CHANGE_SPAN = side[1] if len(side) > 1 else 0.0
    g.GUIDED_OUTPAINT_MAX_WINDOWS = int(side[2]) if len(side) > 2 else 4
    fill.STRIP_CONTEXT = bool(side[3]) if len(side) > 3 else True
    pipeline.GUIDES.clear()  # guides of another side are not this config's
    return []


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--photos", type=Path, required=True)
    p.add_argument("--kinds", nargs="+", choices=q.MASK_KINDS, default=["box", "right"])
    p.add_argument("--cache", type=Path, default=Path("data/quality-cache"))
    p.add_argument("--json", type=Path)
    p.add_argument("--jitter", type=int, default=0,
                   help="add noise of +-1 grey level (this seed) to the photos the methods get "
                        "(shift-map's result jumps with it: repeat a config over seeds)")
    p.add_argument("configs", nargs="+")
    args = p.parse_args(argv)
    import torch

    from models.classifier import load_classifier

    torch.set_grad_enabled(False)
    paths = sorted(x for x in args.photos.iterdir() if x.stem in q.DEV)
    photos = {x.stem: q.load_photo(x) for x in paths}
    judges = {j: load_classifier("cpu", variant=j) for j in q.JUDGES}
    rows = []
    for kind in args.kinds:
        masks = {n: q.make_mask(kind, *im.shape[:2], seed=q.seed_of(n)) for n, im in photos.items()}
        items = [(n, q.jitter(photos[n], args.jitter), masks[n]) for n in photos]
        boxes = {n: q.patch_boxes(masks[n], seed=q.seed_of(n)) for n in photos}
        real = [photos[n][y:y + q.PATCH, x:x + q.PATCH] for n in photos for y, x in boxes[n]]
        real_f = {j: q.features(net, real) for j, net in judges.items()}

        def score(outs: dict[str, np.ndarray], name: str, seconds: float,
                  kind: str = kind, masks: dict = masks, boxes: dict = boxes,
                  real_f: dict = real_f) -> None:
            fake = [outs[n][y:y + q.PATCH, x:x + q.PATCH] for n in outs for y, x in boxes[n]]
            row = {"kind": kind, "method": name, "seconds": round(seconds, 2),
                   "psnr": float(np.mean([q.masked_psnr(outs[n], photos[n], masks[n])
                                          for n in outs]))}
            for j, net in judges.items():
                row[f"kid_{j}"] = 1000 * q.kid(real_f[j], q.features(net, fake))
            rows.append(row)
            print(json.dumps(row), flush=True)

        for m in ("shiftmap", "telea", "mean"):
            score({n: q.classical_cached(m, n, kind, im, masks[n], args.cache, args.jitter)
                   for n, im, _ in items}, m, 0.0)
        for config in args.configs:
            extra = apply(config)
            t = time.monotonic()
            if kind in ("right", "bottom"):
                outs = q.run_outpaint(items, kind, "default", "cpu", extra)
            else:
                outs = q.run_model(items, "default", "cpu", extra=extra)
            score(outs, config, (time.monotonic() - t) / len(items))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
