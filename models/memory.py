"""Keep freed memory in the process for the next edit instead of handing it back to the OS.

An edit allocates and frees tensors of 16-256 MB at every decoder layer (a 256 px VQGAN decode
is 25 GroupNorms, SiLUs and convolutions over 128-512 channels). glibc serves blocks that big
with a fresh mmap and unmaps them on free, so each one is faulted in again, page by page, with
zeroed memory: 500,000 page faults per imagenet-256 edit, about a tenth of its time. With the
thresholds raised, freed blocks stay in the heap and the next layer reuses them (0 faults).
One arena keeps the worker thread's blocks there too: a thread arena's heaps are at most 64 MB,
and anything bigger would still be mapped afresh. The price is that the process keeps its
high-water mark (for imagenet-256 about 1.3 GB) until it exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys

# mallopt parameters from glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
KEEP_BYTES = 1 << 30  # larger than any tensor of a 4-candidate 256 px edit (256 MB)


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds and use one arena; True if glibc took them.

    Call it before other threads start (the arena limit only binds threads that have not yet
    allocated). Elsewhere than glibc (macOS, Windows, musl) it does nothing and returns False.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((M_MMAP_THRESHOLD, KEEP_BYTES), (M_TRIM_THRESHOLD, KEEP_BYTES), (M_ARENA_MAX, 1))
    return all(mallopt(param, value) == 1 for param, value in settings)


def freeze_loaded_objects() -> None:
    """Put every object alive now out of the cycle collector's reach (gc.freeze). Once torch,
    Qt and the default model are loaded the process holds about 320,000 tracked objects; a full
    collection walked them all, holding the GIL for 90-120 ms on whichever thread it fell (the
    worker, mid-decode): the window froze for that long (GUI gaps of 123-132 ms in two of ten
    probed outpaints). Loaded modules and models live until the process ends or are freed by
    reference counts (a switched-out model: tested); later collections walk only what came
    after. No collection first: it would be the same 100 ms pause, once, and loading leaves
    only a few dozen cyclic objects behind (27 with the default model)."""
    gc.freeze()
