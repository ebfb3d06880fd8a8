"""Long file writes without a frozen window: the work runs on a thread while the window keeps
painting and its timers run (user input waits until it is done). A phone photo took 1-3 s to
save as PNG or as a project, all of it with the window frozen."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as Pending
from typing import TypeVar

from PySide6.QtCore import QEventLoop, QObject, Signal

T = TypeVar("T")
QUICK = 0.05  # s: a save done within this returns at once (small pictures), no event loop
_running = 0


def running() -> bool:
    """A write is under way (the window must not close under it)."""
    return _running > 0


class _Done(QObject):
    fired = Signal()


def run_unfrozen(work: Callable[[], T]) -> T:
    """`work()` on a thread of its own; the GUI thread handles everything but user input until
    it has finished. Returns its result or raises its exception, as a plain call would."""
    global _running
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="save") as pool:
        fut = pool.submit(work)
        try:
            return fut.result(timeout=QUICK)
        except Pending:
            pass
        loop, done = QEventLoop(), _Done()
        done.fired.connect(loop.quit)  # queued: fired on the pool's thread
        fut.add_done_callback(lambda _f: done.fired.emit())
        _running += 1
        try:
            if not fut.done():
                loop.exec(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
        finally:
            _running -= 1
        return fut.result()
