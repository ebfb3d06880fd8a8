"""Crop bank, split and augmentation of the training data (models/data.py)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from models import data as D


def _write_images(folder, n=6, seed=0, size=(70, 90)):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        h, w = size
        _yy, xx = np.mgrid[0:h, 0:w]
        img = np.stack([np.sin(xx / (3 + i) + c) * 100 + 120 for c in range(3)], -1)
        img = (img + rng.normal(0, 8, img.shape)).clip(0, 255).astype(np.uint8)
        p = folder / f"im{i}.png"
        Image.fromarray(img).save(p)
        paths.append(p)
    return paths


def test_split_is_by_group_and_deterministic():
    sources = [D.Source(path=f"{i}.png", domain=D.DOMAINS[i % 3], group=f"g{i // 2}")
               for i in range(60)]
    tr, va = D.split_sources(sources, 0.25, torch.Generator().manual_seed(0))
    assert len(tr) + len(va) == 60 and va
    assert not {s.group for s in tr} & {s.group for s in va}
    # Every domain with enough groups is validated.
    assert {s.domain for s in va} == set(D.DOMAINS[:3])
    _, va2 = D.split_sources(sources, 0.25, torch.Generator().manual_seed(0))
    assert [s.path for s in va] == [s.path for s in va2]


def test_manifest_groups_by_source_url(tmp_path):
    _write_images(tmp_path / "pkg", n=3)
    rows = [
        {"path": "pkg/im0.png", "domain": "monument", "source_url": "https://x/a", "sha1": "1"},
        {"path": "pkg/im1.png", "domain": "monument", "source_url": "https://x/a", "sha1": "2"},
        {"path": "pkg/im2.png", "domain": "surface", "source_url": "", "sha1": "3"},
    ]
    with open(tmp_path / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*rows[0], "license", "width", "height"])
        w.writeheader()
        for r in rows:
            w.writerow({**r, "license": "CC0-1.0", "width": 90, "height": 70})
    sources = D.find_sources(tmp_path)
    assert [s.group for s in sources] == ["https://x/a", "https://x/a", "3"]
    assert sources[2].domain == "surface" and sources[0].license == "CC0-1.0"


def test_sources_pool_several_folders_and_training_leaves_out_the_app_samples(tmp_path):
    sample = D.SAMPLE_SOURCES[2]  # the dog of resources/samples, where the corpus keeps it
    (tmp_path / "corpus" / sample).parent.mkdir(parents=True)
    Image.new("RGB", (90, 70)).save(tmp_path / "corpus" / sample, format="WEBP")
    _write_images(tmp_path / "corpus" / "pkg", n=1)
    with open(tmp_path / "corpus" / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "domain", "source_url", "sha1"])
        w.writeheader()
        w.writerow({"path": sample, "domain": "animal", "source_url": "", "sha1": "1"})
        w.writerow({"path": "pkg/im0.png", "domain": "surface", "source_url": "", "sha1": "2"})
    _write_images(tmp_path / "more", n=2)
    sources = D.find_sources(tmp_path / "corpus", tmp_path / "more")
    names = [s.path.relative_to(tmp_path).as_posix() for s in D.without_samples(sources)]
    assert len(sources) == 4
    assert names == ["corpus/pkg/im0.png", "more/im0.png", "more/im1.png"]


def test_transparent_pixels_are_reported_and_greyed(tmp_path):
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :20, 3] = 255  # left half opaque
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    rgb, opaque = D.load_rgb(tmp_path / "a.png")
    assert opaque is not None and opaque[:, :20].all() and not opaque[:, 20:].any()
    assert (rgb[:, 20:] == 128).all()


def test_a_corpus_file_in_an_unlisted_format_is_refused_by_name(tmp_path):
    img = Image.fromarray(np.full((8, 8, 3), 200, np.uint8))
    img.save(tmp_path / "ok.png")
    img.save(tmp_path / "odd.png", format="PCX")  # Pillow reads PCX; training must not
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    assert D.load_rgb(tmp_path / "ok.png")[0].shape == (8, 8, 3)
    for name in ("odd.png", "junk.jpg"):
        with pytest.raises(ValueError, match=name):
            D.load_rgb(tmp_path / name)


def test_cut_crops_and_pack_roundtrip(tmp_path):
    _write_images(tmp_path / "img", n=4)
    sources = D.find_sources(tmp_path / "img")
    bank = D.cut_crops(sources, 40, torch.Generator().manual_seed(0), crops_per_photo=(2, 2))
    assert bank.images.shape == (8, 3, 40, 40) and bank.images.dtype == torch.uint8
    assert bank.groups.unique().numel() == 4
    bank.labels = torch.arange(8)
    bank.label_probs = torch.full((8,), 0.5)
    D.save_bank(bank, tmp_path / "bank.npz", quality=95)
    back = D.load_bank(tmp_path / "bank.npz")
    assert back.images.shape == bank.images.shape
    assert torch.equal(back.labels, bank.labels) and torch.equal(back.groups, bank.groups)
    err = (back.images.float() - bank.images.float()).abs().mean()
    assert err < 4  # JPEG at quality 95


def test_sampling_balances_photos_against_textures():
    n_photo, n_tex = 10, 90
    bank = D.CropBank(
        images=torch.zeros(n_photo + n_tex, 3, 8, 8, dtype=torch.uint8),
        domains=torch.tensor([0] * n_photo + [D.DOMAINS.index("surface")] * n_tex),
        groups=torch.arange(n_photo + n_tex),
    )
    w = bank.sampling_weights()
    assert w[:n_photo].sum() == pytest.approx(D.PHOTO_SHARE, abs=1e-5)
    assert w.sum() == pytest.approx(1.0, abs=1e-5)


def test_augment_is_seeded_and_in_range():
    imgs = torch.randint(0, 256, (5, 3, 40, 40), dtype=torch.uint8)
    a = D.augment(imgs, 32, torch.Generator().manual_seed(3))
    b = D.augment(imgs, 32, torch.Generator().manual_seed(3))
    c = D.augment(imgs, 32, torch.Generator().manual_seed(4))
    assert a.shape == (5, 3, 32, 32)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1
    # Without jitter and at full side the crop is a plain resample of the input.
    full = D.augment(imgs, 40, torch.Generator().manual_seed(0), min_side=1.0, flip=False,
                     jitter=0)
    assert torch.allclose(full, imgs.float() / 255, atol=1e-5)


def test_batch_sampler_returns_labels():
    bank = D.CropBank(
        images=torch.randint(0, 256, (6, 3, 40, 40), dtype=torch.uint8),
        domains=torch.zeros(6, dtype=torch.long), groups=torch.arange(6),
        labels=torch.arange(100, 106),
    )
    x, y = D.BatchSampler(bank, 4, 32, torch.Generator().manual_seed(0)).next()
    assert x.shape == (4, 3, 32, 32) and ((y >= 100) & (y < 106)).all()
