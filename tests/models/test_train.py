"""A few training steps of the tokenizer and transformer on the 'tiny' preset (models/train.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from models import train
from models.checkpoint import load
from models.maskgit import preset

pytest.importorskip("efficientnet_lite_pytorch")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(8):
        yy, xx = np.mgrid[0:64, 0:80]
        img = np.stack([np.sin(xx / (2 + i) + yy / 7 + c) * 90 + 128 for c in range(3)], -1)
        img = (img + rng.normal(0, 6, img.shape)).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(d / f"im{i}.png")
    return d


def _log(path):
    return [json.loads(line) for line in open(path / "log.jsonl")]


COMMON = ["--preset", "tiny", "--batch-size", "4", "--log-seconds", "0", "--warmup-steps", "2",
          "--device", "cpu", "--val-fraction", "0.25"]


@pytest.fixture(scope="module")
def tokenizer_run(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    args = ["tokenizer", "--data", str(folder), "--out", str(out), "--steps", "3",
            "--restart-every", "2", "--perceptual-size", "64", *COMMON]
    assert train.main(args) == 0
    return out, args


def test_tokenizer_trains_with_finite_losses(tokenizer_run):
    out, _ = tokenizer_run
    steps = [r for r in _log(out) if "step" in r]
    assert steps and all(np.isfinite(r["loss"]) for r in steps)
    assert all(r["perceptual"] > 0 for r in steps)
    final = [r for r in _log(out) if "checkpoint" in r][-1]
    assert final["checkpoint"] == 3 and 0 < final["val_codebook_usage"] <= 1
    assert (out / "tokenizer_samples.png").is_file()


def test_tokenizer_resumes_from_its_checkpoint(tokenizer_run):
    out, args = tokenizer_run
    args = [a if a != "3" else "5" for a in args]  # same run, longer step budget
    assert train.main(args) == 0
    log = _log(out)
    resumed = [r for r in log if "resumed" in r]
    assert resumed and resumed[-1]["step"] == 3
    assert [r for r in log if "checkpoint" in r][-1]["checkpoint"] == 5
    # Resuming once the budget is spent is a no-op, not a crash.
    assert train.main(args) == 0
    assert [r for r in _log(out) if "checkpoint" in r][-1]["checkpoint"] == 5


def test_transformer_trains_and_exports(tokenizer_run, folder, tmp_path):
    tok_out, _ = tokenizer_run
    ckpt = str(tok_out / "tokenizer.ckpt.safetensors")
    out = tmp_path / "tf"
    full = tmp_path / "full.safetensors"
    args = ["transformer", "--data", str(folder), "--tokenizer", ckpt, "--out", str(out),
            "--steps", "2", "--shard-mb", "0.2", "--export", str(full), *COMMON]
    assert train.main(args) == 0
    log = _log(out)
    assert all(np.isfinite(r["loss"]) for r in log if "step" in r)
    assert np.isfinite([r for r in log if "checkpoint" in r][-1]["val_loss"])
    assert (out / "transformer_samples.png").is_file()
    model = load(full)
    assert model.config == preset("tiny")
    # The shards plus the tokenizer checkpoint rebuild the same model.
    shards = sorted(str(p) for p in out.glob("transformer-*.safetensors"))
    assert len(shards) > 1
    again = tmp_path / "again.safetensors"
    assert train.main(["export", "--tokenizer", ckpt, "--transformer", *shards,
                       "--out", str(again), "--half"]) == 0
    a, b = load(again).state_dict(), model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_mask_tokens_follows_the_cosine_schedule():
    tokens = torch.randint(0, 1024, (2000, 64))
    inp, mask = train.mask_tokens(tokens, 2024, torch.Generator().manual_seed(0))
    assert mask.sum(1).min() >= 1
    assert torch.equal(inp[~mask], tokens[~mask]) and (inp[mask] == 2024).all()
    # E[cos(pi/2 r)] = 2/pi for r ~ U(0, 1).
    assert mask.float().mean().item() == pytest.approx(2 / np.pi, abs=0.02)


def test_preview_decode_fills_every_masked_token():
    cfg = preset("tiny").transformer
    net = torch.nn.Module()
    torch.manual_seed(0)
    from models.transformer import Transformer

    net = Transformer(cfg).eval()
    env = train.Env("cpu", amp=False)
    tokens = torch.randint(0, cfg.codebook_size, (2, cfg.num_image_tokens))
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    mask[:, 10:40] = True
    out = train.preview_decode(net, cfg, torch.tensor([1, 2]), tokens, mask, 6,
                               torch.Generator().manual_seed(0), env)
    assert (out < cfg.codebook_size).all()
    assert torch.equal(out[~mask], tokens[~mask])
