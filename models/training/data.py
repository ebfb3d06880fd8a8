"""The images of a training run: crop banks (packed .npz or a folder cut on the fly, with
ImageNet pseudo-labels for the transformer), `train pack`, sample grids and PSNR."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from models import data as D
from models.classifier import load_classifier
from models.training.env import TrainingError


def load_banks(
    args: argparse.Namespace, out_size: int, need_labels: bool, device: torch.device
) -> tuple[D.CropBank, D.CropBank | None]:
    """(train bank, val bank or None) from a packed .npz or a folder (cut on the fly)."""
    # The split and the crops must be the same on every rank and every resume: own seed, CPU.
    generator = torch.Generator().manual_seed(args.seed)
    data = Path(args.data)
    if data.suffix == ".npz":
        train = D.load_bank(data)
        val = D.load_bank(args.val_data) if args.val_data else None
    else:
        sources = D.find_sources(data)
        tr, va = D.split_sources(sources, args.val_fraction, generator)
        size = args.bank_size or round(out_size * 1.25)
        train = D.cut_crops(tr, size, generator)
        val = D.cut_crops(va, size, generator) if va else None
    if train.size < out_size:
        raise TrainingError(f"crops of {train.size} px are smaller than the {out_size} px window")
    if need_labels:
        for bank in (train, val):
            if bank is not None and bank.labels is None:
                clf = load_classifier(device, args.classifier_weights)
                D.pseudo_label(bank, clf, out_size)
    return train.to(device), (val.to(device) if val is not None else None)


def pack(args: argparse.Namespace) -> None:
    """Cut, pseudo-label and pack train/val crop banks from a corpus or an image folder."""
    gen = torch.Generator().manual_seed(args.seed)
    sources = D.find_sources(*args.data)
    tr, va = D.split_sources(sources, args.val_fraction, gen)
    clf = load_classifier("cpu", args.classifier_weights)
    out = Path(args.out)
    for name, srcs, per_photo, per_tex in (
        ("train", tr, tuple(args.crops_per_photo), args.crops_per_texture),
        ("val", va, (2, 2), 1),
    ):
        if not srcs:
            continue
        bank = D.cut_crops(srcs, args.bank_size, gen, per_photo, per_tex)
        D.pseudo_label(bank, clf, args.window)
        D.save_bank(bank, out / f"{name}.npz", quality=args.jpeg_quality)
        size = (out / f"{name}.npz").stat().st_size
        record = {"bank": name, "sources": len(srcs), "crops": len(bank),
                  "groups": bank.meta["groups"], "mb": round(size / 1e6, 2)}
        print(json.dumps(record))
    # The split, for the model card and for evaluation code that must avoid training images.
    with open(out / "split.json", "w") as f:
        json.dump(
            {"train": sorted(str(s.path) for s in tr), "val": sorted(str(s.path) for s in va)},
            f,
            indent=0,
        )


def spread(n: int, k: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """min(k, n) indices spread evenly over 0..n-1 (banks are ordered by domain: all of them)."""
    return torch.linspace(0, n - 1, min(k, n), device=device).long()


def save_grid(rows: list[torch.Tensor], path: Path) -> None:
    """Rows of (B, 3, H, W) images in [0, 1] -> one PNG."""
    grid = torch.cat([torch.cat(list(r.float().clamp(0, 1).cpu()), dim=2) for r in rows], dim=1)
    arr = (grid.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    Image.fromarray(arr).save(path)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B,) PSNR in dB of images in [0, 1]."""
    mse = (a.float().clamp(0, 1) - b.float()).pow(2).mean((1, 2, 3))
    return -10 * torch.log10(mse.clamp_min(1e-10))
