"""`maskgit-editor`: the app, and the headless commands of DESIGN.md.

Heavy imports (torch, Qt) happen inside the subcommand that needs them, so `--help` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from editor.core.device import device
from editor.core.jobs import ORDERS, SCHEDULES
from editor.core.limits import MAX_CHOICE_TEMPERATURE, MAX_STEPS

DESCRIPTION = "MaskGIT Editor: inpaint, outpaint and regenerate parts of photos with MaskGIT."
EPILOG = ("Without a command it opens the app: maskgit-editor [IMAGE] [--model NAME|PATH] "
          "[--device cpu|cuda|mps|auto].")


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an int in low..high, else a usage error (not a run without end)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in {low}..{high}, got {text}")
        return value

    return parse


def _choice_temperature(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= MAX_CHOICE_TEMPERATURE:
        raise argparse.ArgumentTypeError(f"must be in 0..{MAX_CHOICE_TEMPERATURE:g}, got {text}")
    return value


SUBCOMMANDS = ("inpaint", "outpaint", "weights", "train", "bench")


def _sampling_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="default", help="model name or .safetensors path")
    p.add_argument("--steps", type=_bounded_int(2, MAX_STEPS), default=12,
                   help=f"decoding steps, 2..{MAX_STEPS} (default 12)")
    p.add_argument("--seed", type=_bounded_int(0, 2**63 - 1), default=0,
                   help="random seed (default 0)")
    p.add_argument(
        "--class",
        dest="class_id",
        type=int,
        default=None,
        help="ImageNet class id 0..999 (default: chosen from the image)",
    )
    p.add_argument("--schedule", default="cosine", choices=SCHEDULES,
                   help="mask schedule (default cosine)")
    p.add_argument("--choice-temperature", type=_choice_temperature, default=4.5,
                   help="randomness of which tokens each step keeps (0..20, default 4.5)")
    p.add_argument("--order", choices=ORDERS, default="confidence",
                   help="tokens each step keeps: the most confident (default) or Halton order")
    p.add_argument("--guidance", choices=("photo", "off"), default="photo",
                   help="without --class, follow the photo: start from an exemplar fill, mix in "
                        "a token prior from the known region and take fine detail from the "
                        "photo (default); off: the transformer alone")
    p.add_argument("--device", type=device, default="auto", help="cpu, cuda, mps or auto")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="maskgit-editor", description=DESCRIPTION, epilog=EPILOG)
    sub = p.add_subparsers(dest="command")

    ip = sub.add_parser("inpaint", help="inpaint images with masks (white = regenerate)")
    ip.add_argument("--images", type=Path, required=True, help="image file or folder")
    ip.add_argument("--masks", type=Path, required=True, help="mask file or folder (same names)")
    ip.add_argument("--out", type=Path, required=True, help="output folder")
    ip.add_argument("--feather", type=int, default=4, help="blend width in pixels (<= 8)")
    ip.add_argument("--keep-out", type=Path, help="mask file or folder (same names; an image "
                    "without one has none): white = pixels the fills never copy")
    _sampling_args(ip)

    op = sub.add_parser("outpaint", help="extend an image on any side")
    op.add_argument("image", type=Path)
    for side in ("left", "right", "top", "bottom"):
        op.add_argument(f"--{side}", type=int, default=0, metavar="PX")
    op.add_argument("--out", type=Path, required=True, help="output file")
    op.add_argument("--keep-out", type=Path, help="mask of the image's size: white = pixels "
                    "the fills never copy (a subject that must not appear twice)")
    _sampling_args(op)

    wp = sub.add_parser("weights", help="list, download, convert or verify model weights")
    wp.add_argument("action", choices=["list", "download", "convert", "verify"])
    wp.add_argument("name", nargs="?")
    wp.add_argument("--tokenizer", type=Path)
    wp.add_argument("--transformer", type=Path)
    wp.add_argument("--out", type=Path)

    sub.add_parser(
        "train", help="train a tokenizer or transformer (see train --help)", add_help=False
    )
    bp = sub.add_parser("bench", help="run the benchmark table")
    bp.add_argument("--json", type=Path, default=None)
    return p


def main(argv: list[str] | None = None) -> int:
    from models.memory import keep_freed_memory

    keep_freed_memory()  # before any thread starts: see models/memory.py
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*SUBCOMMANDS, "-h", "--help"):
        from editor.app import main as app_main

        return app_main(argv)
    if argv[0] == "train":
        from models.training.cli import main as train_main

        return train_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.command == "inpaint":
            from editor.batch import inpaint

            return inpaint(args)
        if args.command == "outpaint":
            from editor.batch import outpaint

            return outpaint(args)
        if args.command == "weights":
            from editor.weights_cli import weights

            return weights(args)
        if args.command == "bench":
            from bench.run import main as bench_main

            return bench_main(args)
    except (ValueError, OSError) as e:
        print(f"maskgit-editor: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
