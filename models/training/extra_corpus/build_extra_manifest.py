#!/usr/bin/env python3
"""Manifest of the extra photo corpus (issue 14), for the images fetch_extra.sh unpacked.

Usage: build_extra_manifest.py DEST SELECTION.tsv [--eval-dir DIR ...] [--existing-manifest CSV ...]
                               [--min-side 200] [--max-transparent 0.5]

Reads SELECTION.tsv (package, debpath, dest, domain, label, license, license_source, credit: one
row per hand-picked image, unpacked by fetch_extra.sh to DEST/<package>/<dest>) and writes
DEST/manifest.csv (the columns of the corpus tool's build_manifest.py, shared/tools/corpus, as
read by models.data.read_manifest), DEST/manifest_rejected.csv (path, package, reason, detail)
and DEST/manifest_summary.json (per package: version, images kept, domains, licences, rejects).

Filters (as in the corpus tool): the file decodes with Pillow, its short side is at least
--min-side pixels, at most --max-transparent of its pixels are transparent (alpha < 128) or
magenta-keyed, it is not a flat fill (grey std < 2), and it is not a byte-identical duplicate of
a row kept before it or of a row of an --existing-manifest file.

Evaluation hold-out: no image of an evaluation package (EVAL_PACKAGES) is used, and an image is
rejected if its SHA-1 equals that of any photo in the --eval-dir folders, if its 16x16 average
hash is within HASH_BITS_MAX (12) bits of one of theirs (catches rescaled or re-encoded copies),
or if its file stem is an evaluation photo's name (EVAL_STEMS), unless its SHA-1 is listed in
REVIEWED_NOT_EVAL after a look by eye.

Needs Pillow and numpy. Not part of the package: run it as a script (fetch_extra.sh does).
"""

from __future__ import annotations

import argparse
import collections
import csv
import hashlib
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

Image.MAX_IMAGE_PIXELS = 300_000_000
FIELDS = ["path", "package", "license", "license_source", "credit", "source_url",
          "domain", "label", "width", "height", "transparent", "sha1"]
REJECT_FIELDS = ["path", "package", "reason", "detail"]
EVAL_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
# Evaluation photos (bench/quality.py EVAL_PHOTOS and resources/samples, see SOURCES.md)
EVAL_STEMS = {
    "baboon", "fruits", "building", "messi5", "squirrel_cls", "apple", "orange", "butterfly",
    "home", "aero1", "leuvena", "chicky_512", "astronaut", "chelsea", "coffee", "rocket",
    "motorcycle_left", "china", "flower", "canyon", "cup", "dog", "kingfisher", "canyondechelly",
}
EVAL_PACKAGES = {
    "opencv-doc", "libjxl-testdata", "python3-skimage", "python-skimage-doc", "scikit-image",
    "python3-sklearn", "python-sklearn-doc", "scikit-learn",
}
HASH_BITS_MAX = 12
# Name matches that were checked by eye and are different photos (sha1 of our file -> note)
REVIEWED_NOT_EVAL = {
    # lxqt-themes butterfly.png: a swallowtail on a scabious flower, dark background; the
    # evaluation photo opencv-doc butterfly.jpg is a different butterfly on a leaf
    "c321e0f7b57a6c6680cf3bb83fa8d250167b4bc6":
        "reviewed: different photo from opencv-doc butterfly.jpg",
}

Hash = npt.NDArray[np.bool_]
Row = dict[str, Any]


@dataclass
class ImageInfo:
    """What the filters need to know about one image."""

    sha1: str
    width: int
    height: int
    transparent: float  # fraction of pixels with alpha < 128 or the magenta key
    std: float  # grey-level standard deviation of the visible pixels
    hash: Hash  # 16x16 average hash


@dataclass
class Reference:
    """What the candidates are compared with: evaluation photos and existing corpus rows."""

    eval_sha: dict[str, str]  # sha1 -> evaluation photo path
    eval_hash: dict[str, Hash]  # evaluation photo path -> average hash
    existing: dict[str, str]  # sha1 -> path in an existing corpus
    min_side: int
    max_transparent: float


def ahash(im: Image.Image) -> Hash:
    """16x16 average hash: which pixels of the grey thumbnail are above its mean."""
    g = np.asarray(im.convert("L").resize((16, 16), Image.Resampling.BILINEAR), dtype=np.float32)
    out: Hash = (g > g.mean()).flatten()
    return out


def inspect_image(path: str) -> ImageInfo:
    """Decode `path` and measure it (size, hidden fraction, grey std on <= 512 px, hash)."""
    with open(path, "rb") as fh:
        blob = fh.read()
    sha1 = hashlib.sha1(blob).hexdigest()
    with Image.open(io.BytesIO(blob)) as im:
        im.load()
        w, h = im.size
        small: Image.Image = im
        if max(w, h) > 512:
            s = 512 / max(w, h)
            size = (max(1, round(w * s)), max(1, round(h * s)))
            small = im.resize(size, Image.Resampling.NEAREST)
        rgba = np.asarray(small.convert("RGBA"), dtype=np.int16)
        hsh = ahash(im.convert("RGB"))
    rgb, alpha = rgba[..., :3], rgba[..., 3]
    keyed = (rgb[..., 0] >= 240) & (rgb[..., 1] <= 16) & (rgb[..., 2] >= 240)
    hidden = (alpha < 128) | keyed
    vis = rgb[~hidden].astype(np.float32)
    std = 0.0
    if len(vis) >= 16:
        std = float((0.299 * vis[:, 0] + 0.587 * vis[:, 1] + 0.114 * vis[:, 2]).std())
    return ImageInfo(sha1, w, h, float(hidden.mean()), std, hsh)


def load_eval_photos(dirs: Iterable[str]) -> tuple[dict[str, str], dict[str, Hash]]:
    """SHA-1 -> path and path -> average hash of the photos in the evaluation folders."""
    eval_sha: dict[str, str] = {}
    eval_hash: dict[str, Hash] = {}
    for d in dirs:
        if not os.path.isdir(d):
            print(f"note: eval dir {d} not found, skipped")
            continue
        for n in sorted(os.listdir(d)):
            p = os.path.join(d, n)
            if not n.lower().endswith(EVAL_SUFFIXES):
                continue
            with open(p, "rb") as fh:
                eval_sha[hashlib.sha1(fh.read()).hexdigest()] = p
            with Image.open(p) as im:
                eval_hash[p] = ahash(im.convert("RGB"))
    return eval_sha, eval_hash


def load_existing(manifests: Iterable[str]) -> dict[str, str]:
    """SHA-1 -> path of every row of the existing manifests (missing files are skipped)."""
    existing: dict[str, str] = {}
    for m in manifests:
        if os.path.isfile(m):
            with open(m, encoding="utf-8", newline="") as fh:
                for r in csv.DictReader(fh):
                    existing[r["sha1"]] = r["path"]
    return existing


def eval_reason(info: ImageInfo, stem: str, ref: Reference, min_dist: list[int]) -> tuple[str, str]:
    """(reason, detail) if the image is, or may be, an evaluation photo; else ('', '')."""
    dists = {p: int((info.hash != h).sum()) for p, h in ref.eval_hash.items()}
    near = min(dists.items(), key=lambda kv: kv[1]) if dists else (None, 256)
    min_dist.append(near[1])
    if info.sha1 in ref.eval_sha:
        return "eval-sha1", ref.eval_sha[info.sha1]
    if near[1] <= HASH_BITS_MAX:
        return "eval-lookalike", f"{near[0]} ({near[1]} bits)"
    if stem in EVAL_STEMS and info.sha1 not in REVIEWED_NOT_EVAL:
        return "eval-name", ""
    return "", ""


def filter_reason(info: ImageInfo, ref: Reference, seen: dict[str, str]) -> tuple[str, str]:
    """(reason, detail) if the image fails a corpus filter; else ('', '')."""
    if min(info.width, info.height) < ref.min_side:
        return "small", ""
    if info.transparent > ref.max_transparent:
        return "transparent", f"{info.transparent:.2f}"
    if info.std < 2.0:
        return "flat", ""
    if info.sha1 in seen:
        return "duplicate", seen[info.sha1]
    if info.sha1 in ref.existing:
        return "in-existing-corpus", ref.existing[info.sha1]
    return "", ""


def check(dest: str, s: dict[str, str], ref: Reference, seen: dict[str, str],
          min_dist: list[int]) -> tuple[ImageInfo | None, str, str]:
    """(info, reason, detail) for one selection row; reason is '' when the image is kept."""
    rel = s["package"] + "/" + s["dest"]
    path = os.path.join(dest, rel)
    if s["package"] in EVAL_PACKAGES:
        return None, "eval-package", ""
    if not os.path.isfile(path):
        return None, "missing", ""
    try:
        info = inspect_image(path)
    except Exception as e:  # any decoding failure rejects the file
        return None, "undecodable", str(e)
    stem = os.path.splitext(os.path.basename(rel))[0].lower()
    reason, detail = eval_reason(info, stem, ref, min_dist)
    if not reason:
        reason, detail = filter_reason(info, ref, seen)
    return info, reason, detail


def select(dest: str, sel: Sequence[dict[str, str]], ref: Reference
           ) -> tuple[list[Row], list[Row], list[int]]:
    """(kept manifest rows, rejected rows, closest hash distance of each decoded image)."""
    rows: list[Row] = []
    rejected: list[Row] = []
    seen: dict[str, str] = {}
    min_dist: list[int] = []
    for s in sel:
        pkg = s["package"]
        rel = pkg + "/" + s["dest"]
        info, reason, detail = check(dest, s, ref, seen, min_dist)
        if reason or info is None:
            rejected.append({"path": rel, "package": pkg, "reason": reason, "detail": detail})
            continue
        seen[info.sha1] = rel
        rows.append({"path": rel, "package": pkg, "license": s["license"],
                     "license_source": s["license_source"], "credit": s["credit"],
                     "source_url": "", "domain": s["domain"], "label": s["label"],
                     "width": info.width, "height": info.height,
                     "transparent": round(info.transparent, 3), "sha1": info.sha1})
    return rows, rejected, min_dist


def write_csv(path: str, fields: list[str], rows: list[Row]) -> None:
    """Write `rows` with a header line."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def counts(values: Iterable[Any]) -> dict[Any, int]:
    """Value -> count, most common first."""
    return dict(collections.Counter(values).most_common())


def package_summary(dest: str, packages: Iterable[str], rows: list[Row],
                    rejected: list[Row]) -> dict[str, Row]:
    """Per package: version (from DEST/<package>/_meta/version), kept, domains, licences."""
    per_pkg: dict[str, Row] = {}
    for pkg in sorted(packages):
        try:
            with open(os.path.join(dest, pkg, "_meta", "version")) as fh:
                version = fh.read().strip()
        except OSError:
            version = "unknown"
        kept = [r for r in rows if r["package"] == pkg]
        per_pkg[pkg] = {
            "version": version, "kept": len(kept),
            "domains": counts(r["domain"] for r in kept),
            "licenses": counts(r["license"] for r in kept),
            "rejected": dict(collections.Counter(
                r["reason"] for r in rejected if r["package"] == pkg)),
        }
    return per_pkg


def summary(dest: str, sel: Sequence[dict[str, str]], rows: list[Row], rejected: list[Row],
            n_eval: int, min_dist: list[int]) -> Row:
    """The contents of manifest_summary.json."""
    return {
        "total_kept": len(rows), "total_rejected": len(rejected),
        "eval_photos_compared": n_eval,
        "eval_min_hash_distance_bits": min(min_dist) if min_dist else None,
        "eval_hash_threshold_bits": HASH_BITS_MAX,
        "per_package": package_summary(dest, {s["package"] for s in sel}, rows, rejected),
        "per_license": counts(r["license"] for r in rows),
        "per_domain": counts(r["domain"] for r in rows),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("dest", help="corpus folder written by fetch_extra.sh")
    ap.add_argument("selection", help="selection.tsv")
    ap.add_argument("--eval-dir", action="append", default=[],
                    help="folder of evaluation photos to hold out (repeatable)")
    ap.add_argument("--existing-manifest", action="append", default=[],
                    help="manifest.csv of a corpus to de-duplicate against (repeatable)")
    ap.add_argument("--min-side", type=int, default=200)
    ap.add_argument("--max-transparent", type=float, default=0.5)
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Write the manifest, the rejects and the summary into DEST."""
    a = parse_args(argv)
    eval_sha, eval_hash = load_eval_photos(a.eval_dir)
    existing = load_existing(a.existing_manifest)
    print(f"eval photos: {len(eval_sha)}, existing corpus rows: {len(existing)}")
    ref = Reference(eval_sha, eval_hash, existing, a.min_side, a.max_transparent)
    with open(a.selection, encoding="utf-8", newline="") as fh:
        sel = list(csv.DictReader(fh, delimiter="\t"))
    rows, rejected, min_dist = select(a.dest, sel, ref)
    write_csv(os.path.join(a.dest, "manifest.csv"), FIELDS, rows)
    write_csv(os.path.join(a.dest, "manifest_rejected.csv"), REJECT_FIELDS, rejected)
    summ = summary(a.dest, sel, rows, rejected, len(eval_sha), min_dist)
    with open(os.path.join(a.dest, "manifest_summary.json"), "w", encoding="utf-8") as fh:
        json.dump(summ, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    reasons = dict(collections.Counter(r["reason"] for r in rejected))
    print(f"kept {len(rows)}, rejected {len(rejected)} {reasons}")
    print(f"closest evaluation-photo hash distance: {summ['eval_min_hash_distance_bits']} bits "
          f"(threshold {HASH_BITS_MAX})")


if __name__ == "__main__":
    main()
