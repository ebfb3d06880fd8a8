"""A few training steps of the tokenizer and transformer on the 'tiny' preset (models/training)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from waves import write_waves

from models.checkpoint import load
from models.maskgit import preset
from models.training import cli
from models.training.checkpoint import read_weights
from models.training.env import Budget, Env, TrainingError
from models.training.transformer import mask_tokens, preview_decode

pytest.importorskip("efficientnet_lite_pytorch")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_waves(tmp_path_factory.mktemp("images"), 8, 64, 80, slope=7, seed=0)


def _log(path):
    return [json.loads(line) for line in open(path / "log.jsonl")]


COMMON = ["--preset", "tiny", "--batch-size", "4", "--log-seconds", "0", "--warmup-steps", "2",
          "--device", "cpu", "--val-fraction", "0.25"]


@pytest.fixture(scope="module")
def tokenizer_run(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    args = ["tokenizer", "--data", str(folder), "--out", str(out), "--steps", "3",
            "--restart-every", "2", "--perceptual-size", "64", *COMMON]
    assert cli.main(args) == 0
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
    assert cli.main(args) == 0
    log = _log(out)
    resumed = [r for r in log if "resumed" in r]
    assert resumed and resumed[-1]["step"] == 3
    assert [r for r in log if "checkpoint" in r][-1]["checkpoint"] == 5
    # Resuming once the budget is spent is a no-op, not a crash.
    assert cli.main(args) == 0
    assert [r for r in _log(out) if "checkpoint" in r][-1]["checkpoint"] == 5


def test_transformer_trains_and_exports(tokenizer_run, folder, tmp_path):
    tok_out, _ = tokenizer_run
    ckpt = str(tok_out / "tokenizer.ckpt.safetensors")
    out = tmp_path / "tf"
    full = tmp_path / "full.safetensors"
    args = ["transformer", "--data", str(folder), "--tokenizer", ckpt, "--out", str(out),
            "--steps", "2", "--shard-mb", "0.2", "--export", str(full), *COMMON]
    assert cli.main(args) == 0
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
    assert cli.main(["export", "--tokenizer", ckpt, "--transformer", *shards,
                       "--out", str(again), "--half"]) == 0
    a, b = load(again).state_dict(), model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_mask_tokens_follows_the_cosine_schedule():
    tokens = torch.randint(0, 1024, (2000, 64))
    inp, mask = mask_tokens(tokens, 2024, torch.Generator().manual_seed(0))
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
    env = Env("cpu", amp=False)
    tokens = torch.randint(0, cfg.codebook_size, (2, cfg.num_image_tokens))
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    mask[:, 10:40] = True
    out = preview_decode(net, cfg, torch.tensor([1, 2]), tokens, mask, 6,
                         torch.Generator().manual_seed(0), env)
    assert (out < cfg.codebook_size).all()
    assert torch.equal(out[~mask], tokens[~mask])


def test_library_functions_raise_and_only_the_cli_turns_errors_into_exit_codes(tmp_path, capsys):
    with pytest.raises(TrainingError, match="--steps"):
        Budget(None, None)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not weights")
    with pytest.raises(TrainingError, match="not a .safetensors file"):
        read_weights([bad], "tokenizer")
    argv = ["export", "--tokenizer", str(bad), "--transformer", str(bad), "--out",
            str(tmp_path / "out.safetensors")]
    assert cli.main(argv) == 2
    assert "not a .safetensors file" in capsys.readouterr().err
    # Nothing under models/ ends the process but the training CLI's `__main__` guard.
    root = Path(__file__).resolve().parents[2] / "models"
    exits = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = ""
            if isinstance(node, ast.Raise) and node.exc is not None:
                exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                name = ast.unparse(exc)
            elif isinstance(node, ast.Call):
                name = ast.unparse(node.func)
            if name in ("SystemExit", "sys.exit", "exit", "quit", "os._exit"):
                exits.append(f"{path.relative_to(root)}:{node.lineno}")
    main_guard = [n.lineno for n in ast.parse((root / "training" / "cli.py").read_text()).body
                  if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test)]
    assert exits == [f"training/cli.py:{main_guard[0] + 1}"]
