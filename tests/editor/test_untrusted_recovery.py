"""Crash recovery and autosave under attack or failure (issue 16): a recovered document is a
project (Ctrl+S never writes over the photo, nor a file a crafted autosave names); autosave
errors are shown once; a damaged orphan is kept aside, never deleted unasked, never blocking
the start."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from fakes import make_window

from editor.core import imageio, project_file
from editor.state import project
from editor.ui import session


def _orphan(win, photo, name="session-1-dead"):
    """An autosave of `win`'s document, which was opened from `photo`, left by a dead session."""
    win.doc.reset(imageio.load(photo).rgb, photo)
    m = np.zeros(win.doc.mask.shape, bool)
    m[2:10, 2:10] = True
    win.doc.set_mask(m, "mask")
    orphan = session.autosave_dir() / f"{name}{project.EXT}"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    project.write(orphan, project.capture(win.doc))
    return orphan


def test_saving_a_recovered_document_never_writes_over_the_photo(qtbot, tmp_path, win,
                                                                  monkeypatch, engine):
    photo = tmp_path / "photo.png"
    imageio.save(photo, np.full((48, 64, 3), 7, np.uint8))
    before = photo.read_bytes()
    _orphan(win, photo)
    monkeypatch.setenv("MASKGIT_EDITOR_RECOVER", "yes")
    other = make_window(qtbot, tmp_path / "b", engine)
    asked: list[str] = []

    def dialog(_parent, _title, start, _filter):
        asked.append(start)
        return str(tmp_path / "recovered.maskgit"), ""

    monkeypatch.setattr(session.QFileDialog, "getSaveFileName", dialog)
    try:
        assert other.session.offer_recovery()
        assert other.save()
        assert photo.read_bytes() == before, "Ctrl+S wrote over the photo"
        assert asked and asked[0].endswith(project.EXT)
        assert project.read(tmp_path / "recovered.maskgit").mask[2:10, 2:10].all()
        assert other.session.project_path == tmp_path / "recovered.maskgit"
        assert other.save() and len(asked) == 1, "once saved, Ctrl+S saves the project"
    finally:
        other.close()


def test_a_nan_timestamp_orphan_is_still_offered(qtbot, tmp_path, win, monkeypatch):
    """Before: time.localtime(nan) raised out of the start, every start, and the IMAGE argument
    never opened."""
    photo = tmp_path / "photo.png"
    imageio.save(photo, np.zeros((48, 64, 3), np.uint8))
    orphan = _orphan(win, photo)
    with zipfile.ZipFile(orphan) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    manifest = json.loads(members["manifest.json"])
    manifest["saved_at"] = float("nan")
    members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(orphan, "w") as z:
        for k, v in members.items():
            z.writestr(k, v)
    win.doc.reset(np.zeros((48, 64, 3), np.uint8))
    monkeypatch.setenv("MASKGIT_EDITOR_RECOVER", "yes")
    assert win.session.offer_recovery()
    assert win.doc.mask[2:10, 2:10].all()


def test_an_orphan_that_breaks_recovery_is_kept_aside_and_the_start_goes_on(
        qtbot, tmp_path, win, monkeypatch):
    photo = tmp_path / "photo.png"
    imageio.save(photo, np.zeros((48, 64, 3), np.uint8))
    orphan = _orphan(win, photo)
    monkeypatch.setattr(project, "restore", lambda *a, **k: 1 / 0)  # any bug on the way
    monkeypatch.setenv("MASKGIT_EDITOR_RECOVER", "yes")
    assert not win.session.offer_recovery()
    assert not orphan.exists() and session.orphans() == []
    assert len(list(session.autosave_dir().glob("*.damaged"))) == 1
    assert "kept" in win.statusBar().currentMessage()
    assert not win.session.offer_recovery(), "a kept-aside orphan is not offered again"


def test_a_damaged_orphan_is_kept_aside_not_deleted(qtbot, tmp_path, win, monkeypatch):
    orphan = session.autosave_dir() / f"session-2-dead{project.EXT}"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"PK\x03\x04garbage")
    monkeypatch.setenv("MASKGIT_EDITOR_RECOVER", "yes")
    assert not win.session.offer_recovery()
    kept = list(session.autosave_dir().glob("*.damaged"))
    assert [p.read_bytes() for p in kept] == [b"PK\x03\x04garbage"]


def test_autosave_errors_are_shown_once(qtbot, tmp_path, engine, monkeypatch):
    blocker = tmp_path / "data"
    blocker.write_bytes(b"")  # the data folder cannot be created: a file has its name
    win = make_window(qtbot, tmp_path / "w", engine)
    shown: list[str] = []

    def record(error: str) -> None:
        shown.append(error)

    win.session.failed.connect(record)
    try:
        for i in range(3):
            win.doc.set_mask(np.full(win.doc.mask.shape, i % 2 == 0), f"edit {i}")
            win.session.autosave()  # no exception may reach the event loop
        assert len(shown) == 1 and "autosave" in shown[0].lower()
        qtbot.waitUntil(lambda: "autosave" in win.statusBar().currentMessage().lower())
        assert "autosave" in win.statusBar().currentMessage().lower()
        assert win.session.last_error
    finally:
        win.close()


def test_a_failing_autosave_write_is_reported(qtbot, tmp_path, win, monkeypatch):
    def full_disk(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(project, "write", full_disk)
    with qtbot.waitSignal(win.session.failed, timeout=5000) as sig:
        win.doc.set_mask(np.ones(win.doc.mask.shape, bool), "all")
        win.session.autosave()
    assert "No space left" in sig.args[0]


def test_a_zip_bomb_orphan_is_kept_aside_unread(qtbot, tmp_path, win, monkeypatch):
    orphan = session.autosave_dir() / f"session-3-dead{project.EXT}"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    with (zipfile.ZipFile(orphan, "w", zipfile.ZIP_DEFLATED) as z,
          z.open("manifest.json", "w", force_zip64=True) as f):
        f.write(b'{"format": "maskgit-editor-project"}')
        for _ in range(64):
            f.write(b" " * (1 << 20))
    monkeypatch.setattr(project_file.json, "loads", lambda *a: pytest.fail("the bomb was read"))
    monkeypatch.setenv("MASKGIT_EDITOR_RECOVER", "yes")
    assert not win.session.offer_recovery()
    assert len(list(session.autosave_dir().glob("*.damaged"))) == 1
