"""Open / save / drop / recent files, and bad input: a clear message, nothing lost."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import make_window
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QImage

from editor.state import imageconv
from editor.state.worker import Worker, WorkerThread


@pytest.mark.parametrize("ext", ["png", "webp", "jpg"])
def test_save_and_open_round_trip(qtbot, win, tmp_path, ext):
    path = tmp_path / f"out.{ext}"
    assert win.save_to(path)
    assert not win.doc.modified
    back = imageconv.load_image(path)
    assert back.shape == win.doc.image.shape
    if ext == "png":
        assert np.array_equal(back, win.doc.image)
    assert win.open_path(path)
    assert str(path.resolve()) in win.files.recent()
    assert win.recent_menu.actions()[0].text() == str(path.resolve())


def test_opening_a_broken_file_explains_and_keeps_the_document(qtbot, win, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    m = np.zeros(win.doc.mask.shape, bool)
    m[3:9, 3:9] = True
    win.doc.set_mask(m, "mask")
    image, count = win.doc.image.copy(), win.doc.undo_stack.count()
    assert not win.open_path(bad)
    assert win.last_error[0] == "Could not open" and "broken.png" in win.last_error[1]
    assert np.array_equal(win.doc.image, image) and np.array_equal(win.doc.mask, m)
    assert win.doc.undo_stack.count() == count
    assert not win.open_path(tmp_path / "missing.jpg")
    assert "does not exist" in win.last_error[1]


def test_saving_to_an_unwritable_place_explains_and_keeps_the_old_file(qtbot, win, tmp_path):
    target = tmp_path / "keep.png"
    target.write_bytes(b"old")
    assert not win.save_to(tmp_path / "nowhere" / "x.png")
    assert win.last_error[0] == "Could not save"
    assert not win.save_to(tmp_path / "x.gif")
    assert ".gif" in win.last_error[1]
    assert target.read_bytes() == b"old"


def test_dropping_an_image_file_opens_it(qtbot, win, tmp_path):
    path = tmp_path / "dropped.png"
    Image.fromarray(np.full((20, 30, 3), 9, np.uint8)).save(path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                    Qt.KeyboardModifier.NoModifier)
    # Qt delivers Drop events only from a real drag session, so hand it to the handler.
    win.dropEvent(ev)
    assert ev.isAccepted()
    assert win.doc.image.shape == (20, 30, 3) and win.doc.path == path


def test_alpha_is_flattened_on_white_and_rows_are_not_skewed():
    img = QImage(5, 3, QImage.Format.Format_ARGB32)  # 5 * 3 bytes: rows padded in RGB888
    img.fill(Qt.GlobalColor.transparent)
    img.setPixelColor(4, 2, Qt.GlobalColor.red)
    a = imageconv.from_qimage(img)
    assert a.shape == (3, 5, 3)
    assert (a[2, 4] == (255, 0, 0)).all() and (a[0, 0] == 255).all()
    rgb = np.random.default_rng(0).integers(0, 256, (3, 5, 3), np.uint8)
    assert np.array_equal(imageconv.from_qimage(imageconv.to_qimage(rgb)), rgb)


def test_a_model_that_fails_to_load_is_explained_and_editing_still_works(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from editor.ui.main_window import MainWindow

    def broken(name, device):
        raise FileNotFoundError("no model 'nope'")

    win = MainWindow(WorkerThread(Worker(factory=broken, params=lambda s: s)),
                     QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                     confirm=False)
    qtbot.addWidget(win)
    try:
        with qtbot.waitSignal(win.controller.model_changed, timeout=5000):
            win.controller.load_model("nope")
        assert win.last_error[0] == "Model not loaded" and "nope" in win.last_error[1]
        win.doc.set_mask(np.ones(win.doc.mask.shape, bool), "all")
        win.a_generate.trigger()
        assert win.last_error[0] == "No model" and not win.controller.busy
    finally:
        win.close()


def test_an_engine_error_is_shown_and_the_worker_keeps_serving(qtbot, tmp_path, engine):
    calls = []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("out of memory (simulated)")
        return type(engine).edit_many(engine, *a, **k)

    engine.edit_many = flaky
    win = make_window(qtbot, tmp_path, engine)
    try:
        m = np.zeros(win.doc.mask.shape, bool)
        m[5:20, 5:20] = True
        win.doc.set_mask(m, "mask")
        image = win.doc.image.copy()
        with qtbot.waitSignal(win.controller.busy_changed, timeout=5000):
            win.a_generate.trigger()
        qtbot.waitUntil(lambda: not win.controller.busy, timeout=5000)
        assert win.last_error[0] == "Generation failed" and "out of memory" in win.last_error[1]
        assert np.array_equal(win.doc.image, image) and win.doc.mask.any()
        with qtbot.waitSignal(win.controller.candidate_changed, timeout=5000):
            win.a_generate.trigger()
        assert not np.array_equal(win.doc.image, image)
    finally:
        win.close()


def test_missing_classifier_for_the_automatic_class_says_what_to_do(qtbot, tmp_path, engine):
    class ClassifierUnavailable(RuntimeError):
        pass

    def no_classifier(image, token_mask=None):
        raise ClassifierUnavailable("pip install 'maskgit-editor[train]'")

    engine.auto_class = no_classifier
    win = make_window(qtbot, tmp_path, engine)
    try:
        win.doc.set_mask(np.ones(win.doc.mask.shape, bool), "all")
        win.class_picker.set_class(None)
        with qtbot.waitSignal(win.controller.busy_changed, timeout=5000,
                              check_params_cb=lambda busy: not busy):
            win.a_generate.trigger()
        assert win.last_error[0] == "Generation failed"
        assert "Pick a class" in win.last_error[1] and "maskgit-editor[train]" in win.last_error[1]
    finally:
        win.close()


def test_the_blank_start_says_what_to_do_until_something_is_done(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from editor.ui.main_window import MainWindow

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    w = MainWindow(WorkerThread(Worker(factory=lambda name, device: None)), settings,
                   confirm=False)
    qtbot.addWidget(w)
    w.resize(800, 600)
    w.show()
    qtbot.waitExposed(w)
    assert "Ctrl+O" in w.canvas.hint
    shot = w.canvas.viewport().grab().toImage()
    centre = [shot.pixelColor(shot.width() // 2 + dx, shot.height() // 2 + dy).red()
              for dx in range(-60, 61, 3) for dy in range(-12, 13, 3)]
    assert min(centre) < 200, "the hint is drawn over the white page"
    path = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 50, 3), 200, np.uint8)).save(path)
    assert w.open_path(path)
    assert w.canvas.hint == ""
    w.close()


def test_sampling_settings_survive_a_restart_and_the_class_does_not(qtbot, tmp_path, engine):
    from fakes import make_window

    win = make_window(qtbot, tmp_path, engine)
    s = win.sampling
    s.steps.setValue(20)
    s.schedule.setCurrentText("arccos")
    s.order.setCurrentText("halton")
    s.choice.setValue(2.0)
    s.seed.setValue(1234)
    s.candidates.setValue(2)
    win.class_picker.set_class(281)
    win.close()
    again = make_window(qtbot, tmp_path, engine)  # the same settings file
    try:
        t = again.sampling
        assert (t.steps.value(), t.schedule.currentText(), t.order.currentText()) == (
            20, "arccos", "halton")
        assert t.choice.value() == 2.0 and t.candidates.value() == 2
        assert again.class_picker.class_id() is None, "a plain Generate starts automatic"
    finally:
        again.close()


def test_copy_and_paste_through_the_clipboard(qtbot, win, tmp_path):
    from PySide6.QtWidgets import QApplication

    to_qimage = imageconv.to_qimage
    clip = QApplication.clipboard()
    win.copy_image()
    got = clip.image().convertToFormat(to_qimage(win.doc.image).format())
    assert got == to_qimage(win.doc.image), "the image as it is, on the clipboard"
    pasted = np.random.default_rng(3).integers(0, 256, (20, 30, 3), np.uint8)
    clip.setImage(to_qimage(pasted))
    assert win.paste_image()
    assert np.array_equal(win.doc.image, pasted) and win.doc.path is None
    path = tmp_path / "copied.png"
    Image.fromarray(pasted[:, ::-1].copy()).save(path)
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(path))])  # a file copied in a file manager
    clip.setMimeData(data)
    assert win.paste_image() and win.doc.path == path
    clip.setText("just text")
    assert not win.paste_image() and win.last_error[0] == "Nothing to paste"
    clip.clear()  # an empty clipboard: no mime data at all (None) on some platforms
    win.last_error = None
    assert not win.paste_image() and win.last_error[0] == "Nothing to paste"
    assert win.doc.path == path, "nothing changed"


def test_a_damaged_settings_file_gives_the_defaults(qtbot, tmp_path, engine):
    bad = r"@Variant(\0\0\0\x7f\0\0\0\x18PySide::PyObjectWrapper\0\0\0\0\0)"
    (tmp_path / "settings.ini").write_text(
        "[General]\n" + "".join(f"{k}={bad}\n" for k in ("recent", "sampling", "brush")))
    win = make_window(qtbot, tmp_path, engine)  # reads that file: no exception
    try:
        assert win.files.recent() == [] and win.sampling.steps.value() == 12
    finally:
        win.close()


def test_copy_keeps_transparency_and_a_huge_paste_is_refused_first(qtbot, win, tmp_path):
    from PySide6.QtWidgets import QApplication

    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:, :15, 3] = 255  # left half opaque, right half transparent
    Image.fromarray(rgba).save(tmp_path / "a.png")
    assert win.open_path(tmp_path / "a.png")
    win.copy_image()
    clip = QApplication.clipboard()
    got = clip.image()
    assert got.hasAlphaChannel() and got.pixelColor(25, 5).alpha() == 0
    assert got.pixelColor(5, 5).alpha() == 255
    clip.setImage(QImage(16385, 1, QImage.Format.Format_RGB888))
    assert not win.paste_image() and "16385 x 1" in win.last_error[1]


@pytest.mark.parametrize("kind", ["image", "project"])
def test_saving_keeps_the_window_painting_and_a_change_meanwhile_stays_unsaved(
        qtbot, win, tmp_path, monkeypatch, kind):
    import threading

    from PySide6.QtCore import QTimer

    from editor.core import imageio
    from editor.state import project

    ticked = threading.Event()
    module, name = (imageio, "save") if kind == "image" else (project, "write")
    real = getattr(module, name)

    def slow(*args, **kwargs):  # a long write: the GUI thread's timer must get its turn
        assert ticked.wait(10), "the GUI thread was frozen while saving"
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, slow)

    closed: list[bool] = []

    def tick() -> None:
        closed.append(win.close())  # refused: the write is under way
        m = win.doc.mask.copy()
        m[0:4, 0:4] = True
        win.doc.set_mask(m, "a stroke")  # a decode's result, say, coming in meanwhile
        ticked.set()

    QTimer.singleShot(100, tick)
    path = tmp_path / ("out.png" if kind == "image" else "out.maskgit")
    ok = win.files.save_to(path) if kind == "image" else win.session.save_project(path)
    assert ok and path.is_file() and ticked.is_set()
    assert closed == [False] and win.isVisible()
    assert win.doc.modified, "what was written is not what the window holds now"


def test_opening_keeps_the_window_painting_while_the_file_is_decoded(qtbot, win, tmp_path,
                                                                     monkeypatch):
    import threading

    from PySide6.QtCore import QTimer

    from editor.core import imageio

    Image.fromarray(np.full((30, 40, 3), 90, np.uint8)).save(tmp_path / "a.png")
    ticked, real = threading.Event(), imageio.load

    def slow(*args, **kwargs):  # a big photo's decode: the GUI thread's timer gets its turn
        assert ticked.wait(10), "the GUI thread was frozen while decoding"
        return real(*args, **kwargs)

    monkeypatch.setattr(imageio, "load", slow)
    QTimer.singleShot(100, ticked.set)
    assert win.files.open_path(tmp_path / "a.png") and win.doc.image.shape == (30, 40, 3)
