"""The largest values the editor makes, defined once: the sampling panel's ranges, the CLI's
checks and the project reader's bounds all read them."""

from __future__ import annotations

MAX_STEPS = 64  # decoding steps: each step is one transformer pass per window
MAX_CANDIDATES = 8  # candidates decoded in one batch
MAX_CHOICE_TEMPERATURE = 20.0  # the sampling panel's box; beyond it the order is noise
MAX_SEED = 2**31 - 1  # the sampling panel's seed box
MIN_BRUSH, MAX_BRUSH = 1, 512  # brush diameter, px
MAX_TOLERANCE = 255  # magic wand, per channel
