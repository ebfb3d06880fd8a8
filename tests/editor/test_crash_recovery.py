"""Kill the app with SIGKILL after an edit; the next start recovers the edit.

The app runs in a subprocess (editor.app.main, offscreen) with the fake engine. The child makes
two edits (a mask, then a generation) and prints the image's digest; the parent polls the
autosave folder (with a deadline, no fixed sleeps) until the autosave holds both, kills the
child with SIGKILL, and starts the app again with MASKGIT_EDITOR_RECOVER=yes, which must come
up with the same image, mask and undo history, and still generate.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from editor.state import project

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
HERE = Path(__file__).resolve().parent

DRIVER = r"""
import hashlib, sys
sys.path.insert(0, sys.argv.pop(1))
import numpy as np
from fakes import FakeEngine
import editor.app as app
from editor.state.worker import Worker
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from editor.ui.main_window import MainWindow

app.Worker = lambda: Worker(factory=lambda n, d: FakeEngine(), params=lambda s: s, colour=None)
mode = sys.argv.pop(1)
qapp = QApplication([])
state = {"step": 0}

def digest(w):
    return hashlib.sha256(w.doc.image.tobytes() + w.doc.mask.tobytes()).hexdigest()[:16]

def report(w, tag):
    print(tag, digest(w), w.doc.undo_stack.index(), w.doc.undo_stack.count(), flush=True)

def poll():
    wins = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
    if not wins or not wins[0].controller.ready:
        return
    w = wins[0]
    if state["step"] == 0 and mode == "edit" and w.doc.path is not None:
        state["step"] = 1
        m = np.zeros(w.doc.mask.shape, bool)
        m[8:24, 8:24] = True
        w.doc.set_mask(m, "mask")
        w.sampling.random_seed.setChecked(False)
        w.sampling.seed.setValue(3)
        w.controller.candidate_changed.connect(
            lambda i, n: n and report(w, "EDITED"))
        w.generate()
    elif state["step"] == 0 and mode == "recover" and w.doc.undo_stack.count():
        state["step"] = 1
        report(w, "RECOVERED")
        w.doc.set_mask(np.ones(w.doc.mask.shape, bool), "all")
        def done(i, n):
            if n:
                report(w, "USABLE")
                timer.stop()
                w.doc.undo_stack.setClean()  # as if saved: no "unsaved changes" question
                w.close()
                QApplication.quit()
        w.controller.candidate_changed.connect(done)
        w.generate()

timer = QTimer()
timer.timeout.connect(poll)
timer.start(10)
QTimer.singleShot(60_000, QApplication.quit)
sys.exit(app.main(sys.argv[1:]))
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path),
                XDG_CONFIG_HOME=str(tmp_path / "cfg"), MASKGIT_EDITOR_DATA=str(tmp_path / "data"),
                MASKGIT_EDITOR_AUTOSAVE_MS="50", **extra)


def _read_line(proc: subprocess.Popen, tag: str, deadline: float) -> list[str]:
    buf = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        buf += chunk
        for line in buf.decode(errors="replace").split("\n")[:-1]:  # complete lines only
            if line.startswith(tag + " "):
                return line.split()[1:]
    raise AssertionError(f"no {tag} line before the deadline; got {buf[-2000:]!r}")


def test_sigkill_after_an_edit_then_the_next_start_recovers_it(tmp_path):
    image = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 56, 3), np.uint8)).save(image)
    autosaves = tmp_path / "data" / "autosave"
    cmd = [sys.executable, "-c", DRIVER, str(HERE)]

    child = subprocess.Popen([*cmd, "edit", str(image), "--model", "fake"], env=_env(tmp_path),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        digest, index, _count = _read_line(child, "EDITED", time.monotonic() + 60)
        assert int(index) == 2  # mask, generation
        deadline, seen = time.monotonic() + 30, None
        while time.monotonic() < deadline:  # poll for the autosave of the last edit
            files = list(autosaves.glob(f"session-*{project.EXT}"))
            if files:
                try:
                    seen = project.peek(files[0])
                except (OSError, KeyError, ValueError):
                    seen = None  # between writes
                if seen and seen["index"] == 2:
                    break
            time.sleep(0.01)
        assert seen and seen["index"] == 2, f"no autosave of both edits: {seen}"
        child.send_signal(signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert len(list(autosaves.glob(f"session-*{project.EXT}"))) == 1, "the orphan stays"

    again = subprocess.Popen([*cmd, "recover", "--model", "fake"],
                             env=_env(tmp_path, MASKGIT_EDITOR_RECOVER="yes"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        got = _read_line(again, "RECOVERED", time.monotonic() + 60)
        assert got == [digest, "2", "2"], "image, mask and undo history as before the kill"
        _read_line(again, "USABLE", time.monotonic() + 30)
        assert again.wait(30) == 0, again.stderr.read().decode()[-2000:]
    finally:
        if again.poll() is None:
            again.kill()
            again.wait()
    assert list(autosaves.glob(f"session-*{project.EXT}")) == [], "a normal close cleans up"


CLOSE_DRIVER = r"""
import sys, time
sys.path.insert(0, sys.argv.pop(1))
import numpy as np
from fakes import FakeEngine
import editor.app as app
from editor.state.worker import Worker
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from editor.ui.main_window import MainWindow


class Slow(FakeEngine):
    def _wait(self):
        time.sleep(0.1)  # 10 steps: a 1 s decode, computed in the worker thread


app.Worker = lambda: Worker(factory=lambda n, d: Slow(), params=lambda s: s, colour=None)
qapp = QApplication([])
state = {"step": 0, "t0": 0.0}

def poll():
    wins = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
    if not wins or not wins[0].controller.ready or state["step"]:
        return
    w = wins[0]
    state["step"] = 1
    def boom():
        raise RuntimeError("a bug in a slot (simulated)")
    QTimer.singleShot(0, boom)  # must become a message, not a crash
    def after_boom():
        print("ERROR", w.last_error and w.last_error[0], flush=True)
        w.doc.set_mask(np.ones(w.doc.mask.shape, bool), "all")
        def first_step(*_):
            if state["t0"]:
                return
            w.doc.undo_stack.setClean()  # no "unsaved changes" question
            state["t0"] = time.perf_counter()
            w.close()
            QApplication.quit()
        w.controller.step_painted.connect(first_step)
        w.generate()
    QTimer.singleShot(50, after_boom)

timer = QTimer()
timer.timeout.connect(poll)
timer.start(10)
QTimer.singleShot(60_000, QApplication.quit)
rc = app.main(sys.argv[1:])
print("CLOSED", f"{(time.perf_counter() - state['t0']) * 1000:.0f}", rc, flush=True)
sys.exit(rc)
"""


def test_the_app_shows_a_slot_error_and_exits_within_a_second_when_closed_mid_decode(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", CLOSE_DRIVER, str(HERE), "--model", "fake"],
                            env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert _read_line(proc, "ERROR", time.monotonic() + 60) == ["Unexpected", "error"]
        ms, rc = _read_line(proc, "CLOSED", time.monotonic() + 30)
        assert proc.wait(30) == 0 and rc == "0"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"\napp closed mid-decode: app.main returned {ms} ms after the close")
    assert int(ms) < 1000, f"closing mid-decode took {ms} ms"


FALLBACK_DRIVER = r"""
import sys
sys.path.insert(0, sys.argv.pop(1))
from fakes import FakeEngine
import editor.app as app
from editor.state.worker import Worker
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from editor.ui.main_window import MainWindow


def factory(name, device):
    if name == "default":
        return FakeEngine()
    raise ValueError(f"{name}: not a readable .safetensors file (simulated)")


app.Worker = lambda: Worker(factory=factory, params=lambda s: s, colour=None)
qapp = QApplication([])

def poll():
    wins = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
    if wins and wins[0].controller.ready:
        w = wins[0]
        print("MODEL", w.controller.model_name, (w.last_error or ("none",))[0].replace(" ", "_"),
              flush=True)
        timer.stop()
        w.close()
        QApplication.quit()

timer = QTimer()
timer.timeout.connect(poll)
timer.start(10)
QTimer.singleShot(60_000, QApplication.quit)
sys.exit(app.main(sys.argv[1:]))
"""


def test_a_broken_model_at_start_falls_back_to_the_default_with_a_message(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", FALLBACK_DRIVER, str(HERE), "--model",
                             str(tmp_path / "gone.safetensors")], env=_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert _read_line(proc, "MODEL", time.monotonic() + 60) == ["default",
                                                                     "Model_not_loaded"]
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
