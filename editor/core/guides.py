"""Photo guidance's guides, made once per picture and mask, and ahead of time while the user is
still choosing what to do (Qt-free, torch-free).

A guide (the hole filled from the rest of the photo by shift-map, see editor.core.fill) is most
of a guided Generate's wait on a large hole: about 0.6 s for a 25 % box on a 512 px photo on 2
cores. A mask has several guides, its variants: the candidates of a Generate take turns between
two of them (shift-map on the mirrored photo, or at another size, rebuilds the hole
differently). The controller asks for them as soon as a mask is painted (`prefetch`), so the
Generate that follows usually finds them made; Generate again on the same mask reuses them.
Guides are keyed by the picture's and the mask's bytes, so a stale one is never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

# (image, todo, variant, keep_out) -> guide
Make = Callable[[np.ndarray, np.ndarray, int, np.ndarray | None], np.ndarray]
KEEP = 2  # masks whose guides are kept: the last, and the one before (an undo brings it back)
# Niceness the guide threads add to the app's (Linux sets it per thread). They run beside the
# worker and the GUI thread on 2 cores; a step below those two, the rough fill and a repaint get
# a core when they need one. Box, pause and outpaint Generates, four runs of nine each: first
# fill 0.16-0.21 s against 0.22-0.28 s, GUI gaps over 16 ms 4 of 36 against 7 of 36, same time.
NICE = 5


def _background() -> None:
    if sys.platform.startswith("linux"):  # elsewhere PRIO_PROCESS would renice the whole app
        with contextlib.suppress(OSError):  # refused (a sandbox): the guides run as before
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(os.getpriority(os.PRIO_PROCESS, tid) + NICE,
                                                     19))


def key(image: np.ndarray, todo: np.ndarray, keep_out: np.ndarray | None = None) -> bytes:
    """The picture's, the mask's and the keep-out's identity (a 512 px photo hashes in about
    1 ms)."""
    h = hashlib.blake2b(image.tobytes(), digest_size=16)
    h.update(np.packbits(todo).tobytes())
    if keep_out is not None and keep_out.any():
        h.update(b"keep out" + np.packbits(keep_out).tobytes())
    h.update(repr((todo.shape, image.shape)).encode())
    return h.digest()


class Guides:
    """Guides made by `make(image, todo, variant, keep_out)` in two background threads, on demand
    (`future`, `get`) or ahead of time (`prefetch`), those of the last KEEP masks kept."""

    def __init__(self, make: Make) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._made: OrderedDict[bytes, dict[int, Future[np.ndarray]]] = OrderedDict()
        # The newest prefetch asked: picture, mask, how many variants, keep-out.
        self._wanted: tuple[np.ndarray, np.ndarray, int, np.ndarray | None] | None = None
        # Two threads: the prefetch takes one at most (one guide after another), and guides
        # asked for and not prefetched take the rest. So two guides are made at once on a
        # 2-core machine, and no more: the GUI thread needs its share.
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="guide",
                                        initializer=_background)

    def prefetch(self, image: np.ndarray, todo: np.ndarray, variants: int = 1,
                 keep_out: np.ndarray | None = None) -> None:
        """Make variants 0 to `variants` - 1 of the guide of `image` and `todo` in the
        background, in that order. The arrays are the guides' from now on (pass copies). Only
        the newest request waits: a mask painted over while a guide is being made replaces the
        rest of the older one's."""
        with self._lock:
            idle = self._wanted is None
            self._wanted = (image, todo, variants, keep_out)
        if idle:
            self._pool.submit(self._drain)

    def _drain(self) -> None:
        while True:
            with self._lock:
                if self._wanted is None:
                    return
                image, todo, variants, keep_out = self._wanted
                k = key(image, todo, keep_out)
                made = self._made.get(k, {})
                # A guide made, or being made by `future`, is not made again.
                todo_next = next((v for v in range(variants) if v not in made), None)
                if todo_next is None:
                    self._wanted = None
                    return
                fut = self._store(k, todo_next)
            self._fulfil(fut, image, todo, todo_next, keep_out)
            if fut.exception() is not None:  # not tried again here: Generate will report it
                with self._lock:
                    if self._wanted is not None and self._wanted[0] is image:
                        self._wanted = None

    def get(self, image: np.ndarray, todo: np.ndarray, variant: int = 0,
            keep_out: np.ndarray | None = None) -> np.ndarray:
        """The guide (see `future`), waited for. Read-only: it is shared by every job that
        asks."""
        return self.future(image, todo, variant, keep_out).result()

    def future(self, image: np.ndarray, todo: np.ndarray, variant: int = 0,
               keep_out: np.ndarray | None = None) -> Future[np.ndarray]:
        """Variant `variant` of the guide of `image` and `todo`: the one made or being made for
        them, else one queued now beside the prefetch (which may be busy with another variant
        or a mask painted over), so the asker can show something else while it is made."""
        k = key(image, todo, keep_out)
        with self._lock:
            fut = self._made.get(k, {}).get(variant)
            if fut is not None:
                self._made.move_to_end(k)
                return fut
            fut = self._store(k, variant)
        self._pool.submit(self._fulfil, fut, image, todo, variant, keep_out)
        return fut

    def _store(self, k: bytes, variant: int) -> Future[np.ndarray]:
        fut: Future[np.ndarray] = Future()
        self._made.setdefault(k, {})[variant] = fut
        self._made.move_to_end(k)
        while len(self._made) > KEEP:
            self._made.popitem(last=False)
        return fut

    def _fulfil(self, fut: Future[np.ndarray], image: np.ndarray, todo: np.ndarray,
                variant: int, keep_out: np.ndarray | None = None) -> None:
        try:
            guide = self._make(image, todo, variant, keep_out)
            guide.flags.writeable = False
            fut.set_result(guide)
        except BaseException as e:  # the asker gets it; a failed guide is not kept
            fut.set_exception(e)
            with self._lock:
                for made in self._made.values():
                    for v, f in list(made.items()):
                        if f is fut:
                            del made[v]

    def clear(self) -> None:
        """Forget every guide (tests; a new model does not need it: guides use no model)."""
        with self._lock:
            self._made.clear()
