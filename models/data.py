"""Training data: source images -> a bank of square crops -> augmented batches.

The corpus (../shared/tools/corpus) is a few hundred photos and many more tileable game textures,
at very different sizes. So:

* crops are cut once, at a per-domain range of scales (a wallpaper is cut into many crops at a
  fraction of its side, a 320 px animal photo into a few that keep most of the animal), and stored
  as uint8 squares of `bank_size` px (a `CropBank`, which also packs into one .npz of JPEG bytes
  so it can travel to a training machine);
* batches are drawn from the bank with domain-balanced weights (photos against textures, never in
  proportion to row count) and augmented on the training device: a random square of 80..100 % of
  the crop's side (so the model's window never upsamples), horizontal flips, mild colour jitter;
* the train/validation split is by source image (`source_url`, else the file's sha1), never by
  crop, so no validation crop shares pixels with a training crop.

Every random draw takes an explicit `torch.Generator`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

if TYPE_CHECKING:
    from models.classifier import Classifier

PHOTO_DOMAINS = ("scene", "animal", "monument", "object")
TEXTURE_DOMAINS = ("surface", "terrain", "sky", "aerial")
DOMAINS = PHOTO_DOMAINS + TEXTURE_DOMAINS
PHOTO_SHARE = 0.65  # of sampled crops; the app edits photos, textures teach materials

# Crop side as a fraction of the image's short side, per domain (lo, hi). Objects and animals
# keep most of the subject; scenes (often multi-megapixel wallpapers) are cut at several zooms;
# textures at a scale where their pattern is still visible at 128 px.
DOMAIN_SCALES: dict[str, tuple[float, float]] = {
    "scene": (0.2, 1.0),
    "animal": (0.45, 1.0),
    "monument": (0.4, 1.0),
    "object": (0.5, 1.0),
    "surface": (0.35, 1.0),
    "terrain": (0.35, 1.0),
    "sky": (0.3, 1.0),
    "aerial": (0.3, 1.0),
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".dds", ".tif", ".tiff")


@dataclass(frozen=True)
class Source:
    """One source image."""

    path: Path
    domain: str  # one of DOMAINS
    group: str  # split key: images with the same group are always on the same side
    license: str = "unknown"
    width: int = 0
    height: int = 0


def read_manifest(root: str | Path) -> list[Source]:
    """Sources listed in `root/manifest.csv` (written by the corpus tool's build_manifest.py)."""
    root = Path(root)
    out = []
    with open(root / "manifest.csv", newline="") as f:
        for row in csv.DictReader(f):
            domain = row["domain"] if row["domain"] in DOMAINS else "scene"
            out.append(
                Source(
                    path=root / row["path"],
                    domain=domain,
                    group=row.get("source_url") or row["sha1"],
                    license=row.get("license", "unknown"),
                    width=int(row.get("width") or 0),
                    height=int(row.get("height") or 0),
                )
            )
    return out


def scan_folder(root: str | Path) -> list[Source]:
    """Every image file under `root` (recursively), as 'scene' photos grouped by file content."""
    root = Path(root)
    out = []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            digest = hashlib.sha1(p.read_bytes()).hexdigest()
            out.append(Source(path=p, domain="scene", group=digest))
    return out


def find_sources(*folders: str | Path) -> list[Source]:
    """The sources of corpus folders (manifest.csv) or any folders of images, in order."""
    out: list[Source] = []
    for folder in map(Path, folders):
        listed = (folder / "manifest.csv").is_file()
        out += read_manifest(folder) if listed else scan_folder(folder)
    return out


# Where the app's sample photos (resources/samples/SOURCES.md) lie in the corpus: a new user's
# first edits, the README's pictures and the speed benchmarks are on them, so no model trains on
# them. (The shipped default-128 did: its model card says so.)
SAMPLE_SOURCES = (
    "gcompris-qt-data/src/activities/categorization/resource/images/others/cup.webp",
    "gcompris-qt-data/src/activities/erase/resource/kingfisher.webp",
    "gcompris-qt-data/src/activities/explore_farm_animals/resource/animals/dog.webp",
    "gcompris-qt-data/src/activities/explore_monuments/resource/usa/canyondeChelly.webp",
)


def without_samples(sources: Sequence[Source]) -> list[Source]:
    """`sources` less the app's sample photos."""
    return [s for s in sources if not Path(s.path).as_posix().endswith(SAMPLE_SOURCES)]


def split_sources(
    sources: Sequence[Source], val_fraction: float, generator: torch.Generator
) -> tuple[list[Source], list[Source]]:
    """(train, val) split by `group`, stratified by domain so every domain is validated.

    A group is stratified under the domain of its first source; all its sources follow it.
    The app's sample photos are left out of both sides, after the split is drawn, so every other
    image stays on the side it was on before they were (the shipped model's held-out crops stay
    held out, and its evaluation comparable).
    """
    group_domain: dict[str, str] = {}
    for s in sources:
        group_domain.setdefault(s.group, s.domain)
    val_groups: set[str] = set()
    for domain in DOMAINS:
        groups = sorted(g for g, d in group_domain.items() if d == domain)
        if len(groups) <= 2:
            continue
        perm = torch.randperm(len(groups), generator=generator).tolist()
        val_groups |= {groups[i] for i in perm[: round(len(groups) * val_fraction)]}
    train = [s for s in sources if s.group not in val_groups]
    val = [s for s in sources if s.group in val_groups]
    return without_samples(train), without_samples(val)


# The image formats training reads (IMAGE_SUFFIXES'; DDS for game textures): a corpus file in
# any other format Pillow knows (PSD, EPS, ICNS...) would run a parser nobody vetted.
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "DDS", "TIFF")


def load_rgb(path: str | Path, background: int = 128) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W, 3) uint8 RGB and an (H, W) bool 'opaque' mask (None when fully opaque).

    Transparent pixels and the magenta colour key are composited onto grey and reported, so crops
    can avoid them. A file in none of FORMATS is a ValueError naming it.
    """
    try:
        with Image.open(path, formats=FORMATS) as im:
            im.load()
            rgba = np.asarray(im.convert("RGBA"))
    except (OSError, Image.DecompressionBombError) as e:
        raise ValueError(f"{path}: not a readable {'/'.join(FORMATS)} image ({e})") from e
    rgb = rgba[..., :3].copy()
    opaque = rgba[..., 3] >= 128
    opaque &= ~((rgb[..., 0] == 255) & (rgb[..., 1] == 0) & (rgb[..., 2] == 255))
    if opaque.all():
        return rgb, None
    rgb[~opaque] = background
    return rgb, opaque


@dataclass
class CropBank:
    """Square uint8 crops with their domain, source group and (optionally) ImageNet pseudo-label."""

    images: torch.Tensor  # (N, 3, S, S) uint8
    domains: torch.Tensor  # (N,) long index into DOMAINS
    groups: torch.Tensor  # (N,) long index of the source image's group (split key)
    labels: torch.Tensor | None = None  # (N,) long ImageNet class ids
    label_probs: torch.Tensor | None = None  # (N,) float, the classifier's top-1 probability
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def size(self) -> int:
        return self.images.shape[-1]

    def to(self, device: str | torch.device) -> CropBank:
        def mv(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device)

        return CropBank(
            self.images.to(device),
            self.domains.to(device),
            self.groups.to(device),
            mv(self.labels),
            mv(self.label_probs),
            dict(self.meta),
        )

    def sampling_weights(self) -> torch.Tensor:
        """(N,) weights that balance photos against textures, and domains within each.

        Within its half, a domain gets a share proportional to sqrt(number of source images), so
        one lone sky photo is not drawn as often as hundreds of surfaces.
        """
        w = torch.zeros(len(self), dtype=torch.float64)
        doms = self.domains.cpu()
        grps = self.groups.cpu()
        for names, share in ((PHOTO_DOMAINS, PHOTO_SHARE), (TEXTURE_DOMAINS, 1 - PHOTO_SHARE)):
            idx = [DOMAINS.index(d) for d in names]
            present = [(i, doms == i) for i in idx if bool((doms == i).any())]
            if not present:
                continue
            n_img = {i: len(torch.unique(grps[m])) for i, m in present}
            total = sum(math.sqrt(n) for n in n_img.values())
            for i, m in present:
                w[m] = share * math.sqrt(n_img[i]) / total / int(m.sum())
        if w.sum() == 0:
            w[:] = 1.0
        return (w / w.sum()).float()


def cut_crops(
    sources: Sequence[Source],
    crop_size: int,
    generator: torch.Generator,
    crops_per_photo: tuple[int, int] = (6, 24),
    crops_per_texture: int = 2,
    min_std: float = 4.0,
) -> CropBank:
    """Cut square crops at per-domain scales from every source, resized to `crop_size`.

    A photo gets one crop per 64 px of short side, clamped to `crops_per_photo`; a texture gets
    `crops_per_texture`. Crops with transparent pixels or almost no contrast are redrawn (a few
    tries) and dropped if no good one is found.
    """
    group_ids: dict[str, int] = {}
    images, domains, groups = [], [], []
    for src in sources:
        rgb, opaque = load_rgb(src.path)
        h, w = rgb.shape[:2]
        short = min(h, w)
        if src.domain in PHOTO_DOMAINS:
            n = int(np.clip(short // 64, *crops_per_photo))
        else:
            n = crops_per_texture
        lo, hi = DOMAIN_SCALES[src.domain]
        # Never cut a region smaller than the crop (that would upsample), where the image allows.
        lo = max(lo, min(1.0, crop_size / short))
        gid = group_ids.setdefault(src.group, len(group_ids))
        for _ in range(n):
            for _try in range(6):
                r = torch.rand(3, generator=generator).tolist()
                side = max(1, int(short * (lo + (hi - lo) * r[0])))
                y = int((h - side) * r[1])
                x = int((w - side) * r[2])
                if opaque is not None and not opaque[y : y + side, x : x + side].all():
                    continue
                crop = Image.fromarray(rgb[y : y + side, x : x + side])
                if side != crop_size:
                    crop = crop.resize((crop_size, crop_size), Image.Resampling.BICUBIC,
                                       reducing_gap=3.0)
                arr = np.asarray(crop)
                if arr.std() < min_std:
                    continue
                images.append(torch.from_numpy(arr.copy()).permute(2, 0, 1))
                domains.append(DOMAINS.index(src.domain))
                groups.append(gid)
                break
    if not images:
        raise ValueError("no usable crops in the given sources")
    return CropBank(
        images=torch.stack(images),
        domains=torch.tensor(domains, dtype=torch.long),
        groups=torch.tensor(groups, dtype=torch.long),
        meta={"sources": len(sources), "groups": len(group_ids)},
    )


@torch.no_grad()
def pseudo_label(
    bank: CropBank, classifier: Classifier, out_size: int, batch_size: int = 64
) -> None:
    """Fill `bank.labels` with the classifier's top-1 ImageNet class of each crop's centre
    `out_size` square (what the model sees without augmentation)."""
    dev = next(classifier.parameters()).device
    labels, probs = [], []
    off = (bank.size - out_size) // 2
    for i in range(0, len(bank), batch_size):
        x = bank.images[i : i + batch_size, :, off : off + out_size, off : off + out_size]
        p = classifier.predict(x.to(dev).float() / 255)
        conf, idx = p.max(-1)
        labels.append(idx.cpu())
        probs.append(conf.float().cpu())
    bank.labels = torch.cat(labels)
    bank.label_probs = torch.cat(probs)


# ----------------------------------------------------------------------------- packing


def save_bank(bank: CropBank, path: str | Path, quality: int = 90) -> None:
    """One .npz: crops as concatenated JPEG bytes (with offsets) plus the per-crop arrays."""
    blobs = []
    for img in bank.images:
        buf = io.BytesIO()
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(
            buf, "JPEG", quality=quality, subsampling=0
        )
        blobs.append(np.frombuffer(buf.getvalue(), np.uint8))
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    arrays: dict[str, np.ndarray] = {
        "jpeg": np.concatenate(blobs),
        "offsets": offsets,
        "size": np.array(bank.size, dtype=np.int64),
        "domains": bank.domains.numpy(),
        "groups": bank.groups.numpy(),
    }
    if bank.labels is not None:
        arrays["labels"] = bank.labels.numpy()
    if bank.label_probs is not None:
        arrays["label_probs"] = bank.label_probs.numpy()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)  # type: ignore[arg-type]  # the stub types **kwds as allow_pickle


def load_bank(path: str | Path) -> CropBank:
    with np.load(path, allow_pickle=False) as z:
        jpeg, offsets = z["jpeg"], z["offsets"]
        images = np.stack(
            [
                np.asarray(
                    Image.open(
                        io.BytesIO(jpeg[offsets[i] : offsets[i + 1]].tobytes()), formats=("JPEG",)
                    ).convert("RGB")
                )
                for i in range(len(offsets) - 1)
            ]
        )
        labels = torch.from_numpy(z["labels"]).long() if "labels" in z else None
        probs = torch.from_numpy(z["label_probs"]).float() if "label_probs" in z else None
        return CropBank(
            images=torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
            domains=torch.from_numpy(z["domains"]).long(),
            groups=torch.from_numpy(z["groups"]).long(),
            labels=labels,
            label_probs=probs,
        )


# ----------------------------------------------------------------------------- batches


def augment(
    images: torch.Tensor,
    out_size: int,
    generator: torch.Generator,
    min_side: float = 0.8,
    flip: bool = True,
    jitter: float = 0.08,
) -> torch.Tensor:
    """(B, 3, S, S) uint8 crops -> (B, 3, out, out) float in [0, 1], on the crops' device.

    A random square of side in [min_side, 1] x S at a random place (scaled to `out_size`),
    a horizontal flip with p = 0.5, and brightness/contrast/saturation each scaled by 1 +- jitter.
    `generator` must live on the same device as `images`.
    """
    b, _, s, _ = images.shape
    dev = images.device
    r = torch.rand(b, 6, generator=generator, device=dev)
    side = min_side + (1 - min_side) * r[:, 0]  # share of the crop's side
    cx = (1 - side) * (2 * r[:, 1] - 1)  # centre in [-1, 1] coordinates, inside the crop
    cy = (1 - side) * (2 * r[:, 2] - 1)
    sx = torch.where(r[:, 3] < 0.5, -side, side) if flip else side
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 2] = sx, cx
    theta[:, 1, 1], theta[:, 1, 2] = side, cy
    grid = F.affine_grid(theta, [b, 3, out_size, out_size], align_corners=False)
    x = images.float() / 255
    # Area-like prefilter: the region is shrunk by up to S / out_size; a bilinear sample of a
    # pre-blurred image avoids aliasing without a per-sample resize.
    ratio = s * float(side.min()) / out_size
    if ratio > 1.5:
        x = F.avg_pool2d(x, int(ratio), stride=1, padding=int(ratio) // 2)[..., :s, :s]
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if jitter > 0:
        j = 1 + jitter * (2 * torch.rand(b, 3, 1, 1, 1, generator=generator, device=dev) - 1)
        grey = x.mean(1, keepdim=True)
        x = grey + (x - grey) * j[:, 2]  # saturation
        mean = x.mean((1, 2, 3), keepdim=True)
        x = mean + (x - mean) * j[:, 1]  # contrast
        x = x * j[:, 0]  # brightness
    return x.clamp(0, 1)


class BatchSampler:
    """Endless domain-balanced batches from a bank on any device."""

    def __init__(
        self,
        bank: CropBank,
        batch_size: int,
        out_size: int,
        generator: torch.Generator,
        augment_batches: bool = True,
    ):
        self.bank = bank
        self.batch_size = batch_size
        self.out_size = out_size
        self.generator = generator
        self.augment = augment_batches
        self.weights = bank.sampling_weights().to(bank.images.device)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(images (B, 3, out, out) float [0, 1], labels (B,) long; zeros when unlabelled)."""
        idx = torch.multinomial(
            self.weights, self.batch_size, replacement=True, generator=self.generator
        )
        crops = self.bank.images[idx]
        if self.augment:
            x = augment(crops, self.out_size, self.generator)
        else:
            x = center(crops, self.out_size)
        labels = self.bank.labels[idx] if self.bank.labels is not None else torch.zeros_like(idx)
        return x, labels


def center(images: torch.Tensor, out_size: int) -> torch.Tensor:
    """(B, 3, S, S) uint8 -> the central (B, 3, out, out) float in [0, 1] (no resampling)."""
    off = (images.shape[-1] - out_size) // 2
    return images[..., off : off + out_size, off : off + out_size].float() / 255
