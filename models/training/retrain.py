"""`maskgit-editor train all`: retrain the default model in one command, sized for one GPU.

Four stages, each a job of its own, in a row:

    tokenizer     the VQGAN with GroupNorm of 8 groups (--norm-groups), --tokenizer-minutes
    transformer   MaskGIT on the new tokenizer's tokens, --transformer-minutes; float16 shards of
                  the best validation loss when there is validation data
    export        one float16 model file of the app (out/model.safetensors), recording the
                  ImageNet classes of the training crops
    quality       bench/quality on --photos (skipped without), numbers in out/quality.json

The defaults fit 12 minutes of one H100 or H200 including start-up: 3.8 + 3.4 minutes of
training (the previous default-128 took 521 s of wall time for 4.6 + 3.7), about a minute of
data loading, checkpoints and evaluation, and the benchmark on the test half without class
guidance. Every stage is resumable: run the same command again and it continues where it
stopped (the loops resume from their checkpoints with the budget they had left; finished stages,
listed in out/retrain.json, are skipped).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.training.checkpoint import export, read_weights
from models.training.env import TrainingError

STAGES = ("tokenizer", "transformer", "export", "quality")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="training crops (.npz) or an image folder")
    p.add_argument("--val-data", help="validation crops (.npz, with a packed --data)")
    p.add_argument("--out", default="runs/retrain", help="every stage's output, and the model")
    p.add_argument("--preset", default="default-128")
    p.add_argument("--norm-groups", type=int, default=8, help="the tokenizer's GroupNorm groups")
    p.add_argument("--name", help="model name stored in the file (default: the preset's)")
    p.add_argument("--tokenizer-minutes", type=float, default=3.8)
    p.add_argument("--transformer-minutes", type=float, default=3.4)
    p.add_argument("--tokenizer-steps", type=int, help="also stop the tokenizer at this step")
    p.add_argument("--transformer-steps", type=int, help="also stop the transformer here")
    p.add_argument("--tokenizer-batch", type=int, default=128)
    p.add_argument("--transformer-batch", type=int, default=256)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--classifier-weights", help="EfficientNet-Lite0 weights (see train pack)")
    p.add_argument("--photos", help="held-out photos for bench/quality (the stage is skipped "
                   "without them)")
    p.add_argument("--until", choices=STAGES, help="stop after this stage")
    for stage in ("tokenizer", "transformer", "quality"):
        p.add_argument(f"--{stage}-arg", action="append", default=[], dest=f"{stage}_args",
                       help=f"extra option for the {stage} stage, e.g. --{stage}-arg=--seed=1")


def _paths(args: argparse.Namespace) -> dict[str, Path]:
    out = Path(args.out)
    return {"out": out, "tokenizer": out / "tokenizer", "transformer": out / "transformer",
            "model": out / "model.safetensors", "quality": out / "quality.json",
            "record": out / "retrain.json"}


def _loop_args(args: argparse.Namespace, stage: str) -> list[str]:
    """The options both loops get from `train all`."""
    steps = getattr(args, f"{stage}_steps")
    argv = ["--data", args.data, "--out", str(_paths(args)[stage]), "--device", args.device,
            "--minutes", str(getattr(args, f"{stage}_minutes")),
            "--batch-size", str(getattr(args, f"{stage}_batch")),
            "--ckpt-minutes", "1", "--log-seconds", "20"]
    argv += ["--val-data", args.val_data] if args.val_data else []
    argv += ["--steps", str(steps)] if steps else []
    argv += ["--classifier-weights", args.classifier_weights] if args.classifier_weights else []
    return argv


def _run_job(argv: list[str]) -> None:
    from models.training.cli import build_parser, dispatch

    dispatch(build_parser().parse_args(argv))


def _tokenizer(args: argparse.Namespace) -> dict[str, Any]:
    _run_job(["tokenizer", *_loop_args(args, "tokenizer"), "--preset", args.preset,
              "--norm-groups", str(args.norm_groups), "--warmup-steps", "100",
              *args.tokenizer_args])
    return {}


def _transformer(args: argparse.Namespace) -> dict[str, Any]:
    from models.training.tokenizer import CKPT_NAME

    tok = _paths(args)["tokenizer"] / CKPT_NAME
    # The float16 shards keep the weights of the best validation loss (the last ones when there
    # is no validation data): what gets exported.
    _run_job(["transformer", *_loop_args(args, "transformer"), "--tokenizer", str(tok),
              "--shard-mb", "1024", *args.transformer_args])
    return {}


def _export(args: argparse.Namespace) -> dict[str, Any]:
    from models.training.tokenizer import CKPT_NAME as TOK
    from models.training.transformer import CKPT_NAME as TF

    paths = _paths(args)
    # The shards hold the best validation loss; the checkpoint only if no shard was written.
    transformer = sorted(paths["transformer"].glob("transformer-*.safetensors")) or [
        paths["transformer"] / TF]
    model = export([paths["tokenizer"] / TOK], transformer, paths["model"],
                   args.name or args.preset, half=True)
    return {"model": str(paths["model"]),
            "transformer_step": read_weights(transformer, "transformer").state.get("step"),
            "trained_classes": len(model.trained_classes or ())}


def _quality(args: argparse.Namespace) -> dict[str, Any]:
    if not args.photos:
        return {"skipped": "no --photos"}
    import torch

    paths = _paths(args)
    device = args.device if args.device != "auto" else (
        "cuda" if torch.cuda.is_available() else "cpu")
    # bench/ sits above models/ (it imports models, never the other way): its own process.
    cmd = [sys.executable, "-m", "bench.quality", "--photos", args.photos,
           "--model", str(paths["model"]), "--device", device, "--split", "test",
           "--no-guidance", "--json", str(paths["quality"]), *args.quality_args]
    done = subprocess.run(cmd, check=False)
    if done.returncode:
        raise TrainingError(f"bench/quality failed (exit {done.returncode}): {' '.join(cmd)}")
    return {"json": str(paths["quality"])}


def retrain(args: argparse.Namespace) -> None:
    """Run the stages not yet done (see the module docstring); out/retrain.json records them."""
    paths = _paths(args)
    paths["out"].mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"done": {}}
    if paths["record"].is_file():
        record = json.loads(paths["record"].read_text())
    jobs: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
        "tokenizer": _tokenizer, "transformer": _transformer, "export": _export,
        "quality": _quality}
    for stage in STAGES:
        if stage in record["done"]:
            print(json.dumps({"stage": stage, "skipped": "done before"}), flush=True)
        else:
            t0 = time.monotonic()
            result = jobs[stage](args)
            record["done"][stage] = {"seconds": round(time.monotonic() - t0, 1), **result}
            paths["record"].write_text(json.dumps(record, indent=1))
            print(json.dumps({"stage": stage, **record["done"][stage]}), flush=True)
        if stage == args.until:
            break
