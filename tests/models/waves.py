"""Small synthetic photos for the training tests: coloured sine waves with a little noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_waves(folder: Path, n: int, h: int, w: int, slope: int, seed: int) -> Path:
    """`n` PNGs of h x w px in `folder`, each wave a little finer than the one before."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.stack([np.sin(xx / (2 + i) + yy / slope + c) * 90 + 128 for c in range(3)], -1)
        img = (img + rng.normal(0, 6, img.shape)).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"im{i}.png")
    return folder
