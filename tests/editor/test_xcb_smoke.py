"""CI's real-window smoke test: the app on Qt's xcb platform under Xvfb, as a user starts it.

The rest of the suite runs offscreen, so it cannot see what a fresh machine lacks for a real
window (the xcb plugin's system libraries: `make sysdeps` installs them). `make test` installs
Xvfb too; under CI a missing Xvfb fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
PHOTO = ROOT / "resources" / "samples" / "cup.jpg"  # the smallest sample: a fast decode


@pytest.fixture
def display():
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        if os.environ.get("CI"):
            pytest.fail("Xvfb is missing: `make test` installs it (apt-get install xvfb)")
        pytest.skip("Xvfb is not installed (make test installs it)")
    r, w = os.pipe()
    # -displayfd: Xvfb picks a free display and writes its number once it accepts clients.
    proc = subprocess.Popen([xvfb, "-displayfd", str(w), "-screen", "0", "1400x900x24",
                             "-nolisten", "tcp"], pass_fds=(w,), stderr=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r) as f:
        number = f.readline().strip()
    assert number, "Xvfb did not start"
    yield f":{number}"
    proc.terminate()
    proc.wait()


def test_real_app_on_xcb_opens_generates_and_draws(display: str, tmp_path: Path) -> None:
    out, start = tmp_path / "window.png", tmp_path / "start.png"
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb",
               XDG_CONFIG_HOME=str(tmp_path / "config"),  # no settings of a previous run
               MASKGIT_EDITOR_DATA=str(tmp_path / "data"), MASKGIT_EDITOR_RECOVER="no")
    p = subprocess.run([sys.executable, str(ROOT / "tests/editor/xcb_smoke_app.py"),
                        str(PHOTO), str(out), str(start)], env=env, cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, f"the app failed on xcb (rc {p.returncode}):\n{p.stdout}\n{p.stderr}"
    for path in (start, out):  # the start page (samples' thumbnails), then the result
        shot = np.asarray(Image.open(path).convert("RGB"))
        assert shot.shape[0] > 400 and shot.shape[1] > 600  # the main window, not a stub
        _, counts = np.unique(shot.reshape(-1, 3), axis=0, return_counts=True)
        # A blank or black window has a handful of colours; panels + photos have thousands.
        assert len(counts) > 1000, path.name
        assert counts.max() < 0.8 * shot.shape[0] * shot.shape[1], path.name
    keep = os.environ.get("MASKGIT_SMOKE_SHOTS")  # a folder for the docs/ screenshots
    if keep:
        for path in (start, out):
            Image.open(path).save(Path(keep) / f"xcb-smoke-{path.name}")
