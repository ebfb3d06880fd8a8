"""`maskgit-editor train all` end to end on CPU with the tiny preset: every stage runs, a re-run
continues instead of starting over, and the exported file records the classes it was trained
on, which the automatic class then keeps to."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from waves import write_waves

from models.checkpoint import load, save
from models.engine import Engine
from models.maskgit import MaskGIT, preset
from models.training import cli, retrain
from models.training.env import TrainingError

pytest.importorskip("efficientnet_lite_pytorch")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_waves(tmp_path_factory.mktemp("images"), 6, 48, 48, slope=5, seed=1)


def _argv(folder, out, *more):
    fast = ["--batch-size=2", "--warmup-steps=1", "--log-seconds=0", "--val-fraction=0.34"]
    return ["all", "--data", str(folder), "--out", str(out), "--preset", "tiny",
            "--device", "cpu", "--tokenizer-steps", "2", "--transformer-steps", "2",
            *[f"--tokenizer-arg={a}" for a in [*fast, "--perceptual-weight=0"]],
            *[f"--transformer-arg={a}" for a in fast], *more]


def test_retrain_runs_every_stage_and_resumes(folder, tmp_path):
    out = tmp_path / "retrain"
    # Interrupted after the tokenizer (as a lost machine would leave it)...
    assert cli.main(_argv(folder, out, "--until", "tokenizer")) == 0
    record = json.loads((out / "retrain.json").read_text())
    assert list(record["done"]) == ["tokenizer"]
    tok_ckpt = out / "tokenizer" / "tokenizer.ckpt.safetensors"
    before = tok_ckpt.stat().st_mtime_ns
    # ... the same command continues with the transformer, not with the tokenizer again.
    assert cli.main(_argv(folder, out)) == 0
    record = json.loads((out / "retrain.json").read_text())
    assert list(record["done"]) == ["tokenizer", "transformer", "export", "quality"]
    assert tok_ckpt.stat().st_mtime_ns == before
    assert record["done"]["quality"] == {"seconds": record["done"]["quality"]["seconds"],
                                         "skipped": "no --photos"}

    model = load(out / "model.safetensors")
    assert model.config.tokenizer == dataclasses.replace(preset("tiny").tokenizer, norm_groups=8)
    # The classes of the training crops (pseudo-labels of 4 of the 6 images) are recorded.
    assert model.trained_classes is not None and 1 <= len(model.trained_classes) <= 4
    assert record["done"]["export"]["trained_classes"] == len(model.trained_classes)
    # Everything done: a third run does nothing.
    assert cli.main(_argv(folder, out)) == 0
    lines = (out / "transformer" / "log.jsonl").read_text().splitlines()
    log = [json.loads(line) for line in lines]
    assert [r["checkpoint"] for r in log if "checkpoint" in r] == [2]


def test_auto_class_keeps_to_the_trained_classes(tmp_path):
    torch.manual_seed(0)
    model = MaskGIT(preset("tiny"))
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    # A file without the record (every file before it) behaves as before: the classifier's top-1.
    save(model, tmp_path / "old.safetensors")
    old = load(tmp_path / "old.safetensors")
    assert old.trained_classes is None
    top1 = Engine(old, device="cpu", bf16=False).auto_class(image)
    # A file that records its classes: the most likely of those, never an untrained one.
    others = tuple(c for c in (3, 500, 999) if c != top1)
    model.trained_classes = others
    save(model, tmp_path / "new.safetensors")
    new = load(tmp_path / "new.safetensors")
    assert new.trained_classes == tuple(sorted(others))
    assert Engine(new, device="cpu", bf16=False).auto_class(image) in others
    new = load(tmp_path / "new.safetensors")  # an Engine owns its model: a new one for each
    new.trained_classes = (*others, top1)
    assert Engine(new, device="cpu", bf16=False).auto_class(image) == top1


def test_the_quality_stage_runs_bench_quality_on_the_exported_file(tmp_path, monkeypatch):
    # The real benchmark takes about 35 s on this CPU for one photo and one mask kind (run by
    # hand: `train all --preset tiny --photos resources/samples --quality-arg=--limit=1 ...`);
    # here its process is replaced, to check what the stage asks of it.
    calls = []

    def fake_run(cmd, check):
        calls.append(cmd)
        (tmp_path / "quality.json").write_text("{}")
        return subprocess.CompletedProcess(cmd, 0 if len(calls) == 1 else 3)

    monkeypatch.setattr(retrain.subprocess, "run", fake_run)
    args = cli.build_parser().parse_args(["all", "--data", "x", "--out", str(tmp_path),
                                          "--photos", "photos", "--device", "cpu",
                                          "--quality-arg=--limit=1"])
    assert retrain._quality(args) == {"json": str(tmp_path / "quality.json")}
    cmd = calls[0]
    assert cmd[:3] == [sys.executable, "-m", "bench.quality"]

    def opt(name):
        return cmd[cmd.index(name) + 1]

    assert opt("--model") == str(tmp_path / "model.safetensors")
    assert opt("--photos") == "photos" and opt("--split") == "test"
    assert opt("--device") == "cpu" and cmd[-1] == "--limit=1"
    with pytest.raises(TrainingError, match="bench/quality failed"):
        retrain._quality(args)
