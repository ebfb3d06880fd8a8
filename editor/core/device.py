"""The --device argument of the app and the headless commands (checked before torch sees it)."""

from __future__ import annotations

import argparse
import re

DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d{1,2})?")


def device(text: str) -> str:
    """An argparse type for --device (torch's own error for a bad name is a traceback)."""
    if not DEVICE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not one of auto, cpu, cuda, cuda:N, mps")
    return text
