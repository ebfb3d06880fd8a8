"""Fuzzing the image loader (hypothesis): mutated PNG / JPEG / WebP / GIF bytes either load as a
sane (H, W, 3) uint8 image within the limits or raise ImageLoadError; nothing else escapes.

The cases run are counted per kind, printed (`pytest -s`) and checked, so no run passes with
none (alone or not); FUZZ_EXAMPLES scales the run.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from badimages import gif_animated, jpeg_rotated, png_palette, png_rgba, webp_animated, webp_rgb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from editor.core import imageio

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "500"))
SEEDS = {
    "png": png_rgba(),
    "png-palette": png_palette(),
    "jpeg-exif": jpeg_rotated(),
    "webp": webp_rgb(),
    "webp-animated": webp_animated(),
    "gif": gif_animated(),
}


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "dup", "big"]))
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if not data:
            break
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[i] = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80]))
        elif op == "cut":
            del data[i : i + draw(st.integers(1, 64))]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "dup":
            n = draw(st.integers(1, 64))
            data[i:i] = data[i : i + n]
        else:  # a header field (size, length) turned huge
            data[i : i + 4] = b"\x7f\xff\xff\xff"
    return bytes(data)


@pytest.mark.parametrize("kind", list(SEEDS))
def test_loader_survives_mutated_files(kind):
    run_ = {"cases": 0, "loaded": 0, "refused": 0}

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(mutated(SEEDS[kind]))
    def run(data: bytes) -> None:
        run_["cases"] += 1
        try:
            loaded = imageio.decode(data, f"fuzz.{kind}")
        except imageio.ImageLoadError as e:
            assert f"fuzz.{kind}" in str(e)
            run_["refused"] += 1
            return
        a = loaded.rgb
        assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3
        assert a.shape[0] * a.shape[1] <= imageio.MAX_PIXELS
        if loaded.alpha is not None:
            assert loaded.alpha.shape == a.shape[:2]
        run_["loaded"] += 1

    run()
    print(f"\nimage loader fuzz, {kind}: {run_['cases']} cases, {run_['loaded']} loaded, "
          f"{run_['refused']} refused with a message")
    assert run_["cases"] >= min(EXAMPLES, 50)
