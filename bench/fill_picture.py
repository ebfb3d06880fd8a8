"""The picture of issue 13: photo, hole, Telea, shift-map, the model before (no photo guidance)
and after (photo guidance), one row per photo of bench/quality's TEST half, box masks.

    python -m bench.fill_picture --photos data/evalphotos --out docs/photo-guidance.jpg
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench import quality as q

COLUMNS = ("photo", "hole", "Telea", "shift-map", "model before", "model after")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--photos", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--kind", choices=q.MASK_KINDS, default="box")
    p.add_argument("--names", nargs="+", default=["opencv-doc__baboon", "python3-skimage__coffee",
                                                  "python3-sklearn__china",
                                                  "opencv-doc__squirrel_cls"])
    p.add_argument("--cache", type=Path, default=Path("data/quality-cache"))
    args = p.parse_args(argv)
    photos = {n: q.load_photo(next(args.photos.glob(f"{n}.*"))) for n in args.names}
    masks = {n: q.make_mask(args.kind, *im.shape[:2], seed=q.seed_of(n))
             for n, im in photos.items()}
    items = [(n, photos[n], masks[n]) for n in photos]
    run = q.run_outpaint if args.kind in ("right", "bottom") else None

    def model(extra: list[str]) -> dict[str, np.ndarray]:
        if run is not None:
            return run(items, args.kind, "default", "cpu", extra)
        return q.run_model(items, "default", "cpu", extra=extra)

    before, after = model(["--guidance", "off"]), model([])
    rows = []
    for n in photos:
        cls = [q.classical_cached(m, n, args.kind, photos[n], masks[n], args.cache)
               for m in ("telea", "shiftmap")]
        row = [photos[n], q.grey_out(photos[n], masks[n]), *cls, before[n], after[n]]
        # Around the hole at (nearly) full size: the detail is what the picture is about.
        ys, xs = np.nonzero(masks[n])
        h, w = masks[n].shape
        y0, y1 = max(ys.min() - 32, 0), min(ys.max() + 33, h)
        x0, x1 = max(xs.min() - 32, 0), min(xs.max() + 33, w)
        rows.append([a[y0:y1, x0:x1] for a in row])
    side = 256
    q.save_grid(rows, args.out, side)
    # Column titles on a white band above the grid.
    grid = Image.open(args.out)
    titled = Image.new("RGB", (grid.width, grid.height + 22), (255, 255, 255))
    titled.paste(grid, (0, 22))
    draw = ImageDraw.Draw(titled)
    for i, name in enumerate(COLUMNS):
        draw.text((i * side + 8, 5), name, fill=(0, 0, 0))
    titled.save(args.out, quality=88)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
