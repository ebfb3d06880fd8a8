"""models.memory: freed tensor-sized blocks are kept for the next allocation."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A 64 MB block allocated, touched and freed three times; prints the page faults of each round.
ROUNDS = """
import resource, sys, numpy as np
from models.memory import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = np.ones(64 << 20, np.uint8)
    del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(kept, *[faults() for _ in range(3)])
"""


def rounds(mode: str) -> tuple[str, list[int]]:
    out = subprocess.run([sys.executable, "-c", ROUNDS, mode], check=True, capture_output=True,
                         text=True).stdout.split()
    return out[0], [int(n) for n in out[1:]]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_freed_block_is_reused_without_faulting_its_pages_in_again() -> None:
    _, plain = rounds("plain")
    kept, keep = rounds("keep")
    assert kept == "True"
    assert min(plain[1:]) > 100  # glibc maps a block this big afresh every time
    assert max(keep[1:]) < min(plain[1:]) / 10


def test_a_frozen_model_is_still_freed_when_dropped() -> None:
    # freeze_loaded_objects puts the loaded model out of the cycle collector's reach: switching
    # models must still free the old one (by reference counts), or each switch would leak it.
    import gc
    import weakref

    import numpy as np

    from models.engine import Engine
    from models.maskgit import MaskGIT, preset
    from models.memory import freeze_loaded_objects

    engine = Engine(MaskGIT(preset("tiny")).eval(), device="cpu")
    freeze_loaded_objects()
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)
    mask = np.zeros((8, 8), bool)
    mask[2:6, 2:6] = True
    for _ in engine.edit(image, mask, 1):
        pass
    freeze_loaded_objects()
    gone, model = weakref.ref(engine), weakref.ref(engine.model)
    del engine
    assert gone() is None and model() is None
    assert gc.get_freeze_count() > 0
