"""Photo guidance's guides, made once per picture and mask, and ahead of time while the user is
still choosing what to do (Qt-free, torch-free).

A guide (the hole filled from the rest of the photo by shift-map, see editor.core.fill) is most
of a guided Generate's wait on a large hole: about 1.2 s of 2.5 s for a 25 % box on a 512 px
photo on 2 cores. The controller asks for it as soon as a mask is painted (`prefetch`), so the
Generate that follows usually finds it made; Generate again on the same mask reuses it. A guide
is keyed by the picture's and the mask's bytes, so a stale one is never used.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

Make = Callable[[np.ndarray, np.ndarray], np.ndarray]
KEEP = 2  # guides kept: the last mask's, and the one before (an undo brings it back)


def key(image: np.ndarray, todo: np.ndarray) -> bytes:
    """The picture's and the mask's identity (a 512 px photo hashes in about 1 ms)."""
    h = hashlib.blake2b(image.tobytes(), digest_size=16)
    h.update(np.packbits(todo).tobytes())
    h.update(repr((todo.shape, image.shape)).encode())
    return h.digest()


class Guides:
    """Guides made by `make(image, todo)`, on demand (`get`) or in one background thread
    (`prefetch`), the last KEEP of them kept."""

    def __init__(self, make: Make) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._made: OrderedDict[bytes, Future[np.ndarray]] = OrderedDict()
        self._wanted: tuple[np.ndarray, np.ndarray] | None = None  # the newest prefetch asked
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="guide")

    def prefetch(self, image: np.ndarray, todo: np.ndarray) -> None:
        """Make the guide of `image` and `todo` in the background. The arrays are the guide's
        from now on (pass copies). Only the newest request waits: a mask painted over while a
        guide is being made replaces the one queued after it."""
        with self._lock:
            idle = self._wanted is None
            self._wanted = (image, todo)
        if idle:
            self._pool.submit(self._drain)

    def _drain(self) -> None:
        while True:
            with self._lock:
                if self._wanted is None:
                    return
                image, todo = self._wanted
            k = key(image, todo)
            with self._lock:
                # A guide made, or being made by `get`, is not made again.
                fut = self._store(k) if k not in self._made else None
            if fut is not None:
                self._fulfil(fut, image, todo)
            with self._lock:
                if self._wanted is not None and self._wanted[0] is image:
                    self._wanted = None

    def get(self, image: np.ndarray, todo: np.ndarray) -> np.ndarray:
        """The guide of `image` and `todo` (see `future`), waited for. Read-only: it is shared
        by every job that asks."""
        return self.future(image, todo).result()

    def future(self, image: np.ndarray, todo: np.ndarray) -> Future[np.ndarray]:
        """The guide of `image` and `todo`: the one made or being made for them, else one
        started now in a thread of its own (not the prefetch's, which may be busy with a mask
        painted over), so the asker can show something else while it is made."""
        k = key(image, todo)
        with self._lock:
            fut = self._made.get(k)
            if fut is not None:
                self._made.move_to_end(k)
                return fut
            fut = self._store(k)
        threading.Thread(target=self._fulfil, args=(fut, image, todo), name="guide-now",
                         daemon=True).start()
        return fut

    def _store(self, k: bytes) -> Future[np.ndarray]:
        fut: Future[np.ndarray] = Future()
        self._made[k] = fut
        while len(self._made) > KEEP:
            self._made.popitem(last=False)
        return fut

    def _fulfil(self, fut: Future[np.ndarray], image: np.ndarray, todo: np.ndarray) -> None:
        try:
            guide = self._make(image, todo)
            guide.flags.writeable = False
            fut.set_result(guide)
        except BaseException as e:  # the asker gets it; a failed guide is not kept
            fut.set_exception(e)
            with self._lock:
                for k, f in list(self._made.items()):
                    if f is fut:
                        del self._made[k]

    def clear(self) -> None:
        """Forget every guide (tests; a new model does not need it: guides use no model)."""
        with self._lock:
            self._made.clear()
