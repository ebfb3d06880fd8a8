"""The sample photos: small public-domain/CC0 JPEGs with their sources, offered on the start
page and in File › Open Sample."""

from __future__ import annotations

import numpy as np
from fakes import FakeEngine
from PIL import Image
from PySide6.QtCore import QSettings, Qt

from editor.core.samples import SAMPLES_DIR, samples
from editor.state.worker import Worker, WorkerThread


def test_three_or_four_small_jpegs_each_with_a_free_licence_and_source():
    found = samples()
    assert 3 <= len(found) <= 4
    sources = (SAMPLES_DIR / "SOURCES.md").read_text(encoding="utf-8")
    for _title, path in found:
        assert path.stat().st_size < 150_000
        with Image.open(path) as im:
            assert im.format == "JPEG" and max(im.size) <= 640
        row = next(line for line in sources.splitlines() if line.startswith(f"| {path.name} "))
        assert ("Public domain" in row or "CC0-1.0" in row) and "https://" in row
    subjects = sources.lower()
    assert "landscape" in subjects and "animal" in subjects and "object" in subjects


def _blank_window(qtbot, tmp_path):
    from editor.ui.main_window import MainWindow

    worker = Worker(factory=lambda name, device: FakeEngine(), params=lambda s: s, colour=None)
    w = MainWindow(WorkerThread(worker), QSettings(str(tmp_path / "s.ini"),
                                                   QSettings.Format.IniFormat), confirm=False)
    qtbot.addWidget(w)
    w.resize(900, 700)
    w.show()
    qtbot.waitExposed(w)
    return w


def test_the_start_page_offers_the_samples_and_one_click_opens_one(qtbot, tmp_path):
    w = _blank_window(qtbot, tmp_path)
    try:
        assert w.sample_picker.isVisible()
        assert [b.text() for b in w.sample_picker.buttons] == [t for t, _ in samples()]
        qtbot.mouseClick(w.sample_picker.buttons[0], Qt.MouseButton.LeftButton)
        _title, path = samples()[0]
        assert w.doc.path == path
        with Image.open(path) as im:
            assert w.doc.image.shape == (im.height, im.width, 3)
        assert not w.sample_picker.isVisible() and w.canvas.hint == ""
    finally:
        w.close()


def test_file_open_sample_lists_and_opens_every_sample(qtbot, tmp_path):
    w = _blank_window(qtbot, tmp_path)
    try:
        actions = w.sample_menu.actions()
        assert [a.text() for a in actions] == [t for t, _ in samples()]
        actions[-1].trigger()
        assert w.doc.path == samples()[-1][1]
        assert np.asarray(w.doc.image).std() > 10  # a photo, not a blank page
    finally:
        w.close()
