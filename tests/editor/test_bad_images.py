"""Every awkward image kind through the one loader (editor.core.imageio), the app and the CLI: each
opens correctly or gives a clear message, and the app / CLI stays usable afterwards."""

from __future__ import annotations

import numpy as np
import pytest
from badimages import KINDS, H, W, gradient, jpeg_rotated, png_rgba
from PIL import Image

from editor.core import imageio

OK = [k for k, v in KINDS.items() if v[1] == "ok"]
BAD = [k for k, v in KINDS.items() if v[1] == "error"]


def write(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(KINDS[name][0]())
    return path


@pytest.mark.parametrize("name", OK)
def test_loader_reads_every_supported_kind(tmp_path, name):
    loaded = imageio.load(write(tmp_path, name))
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.flags.c_contiguous
    KINDS[name][2](loaded.rgb)


@pytest.mark.parametrize("name", BAD)
def test_loader_refuses_bad_files_with_a_clear_message(tmp_path, name):
    with pytest.raises(imageio.ImageLoadError) as e:
        imageio.load(write(tmp_path, name))
    for words in KINDS[name][2]:
        assert words in str(e.value)
    assert " at 0x" not in str(e.value), "no Python object reprs in messages"


def test_a_folder_or_a_missing_path_is_named_as_such(tmp_path):
    with pytest.raises(imageio.ImageLoadError, match="is a folder, not an image file"):
        imageio.load(tmp_path)
    with pytest.raises(imageio.ImageLoadError, match="does not exist"):
        imageio.load(tmp_path / "gone.png")


def test_animations_say_that_the_first_frame_is_edited(tmp_path):
    loaded = imageio.load(write(tmp_path, "animated.webp"))
    assert loaded.frames == 3 and "first frame" in loaded.note


@pytest.mark.parametrize("name", BAD)
def test_app_explains_a_bad_file_and_stays_usable(qtbot, win, tmp_path, name):
    m = np.zeros(win.doc.mask.shape, bool)
    m[3:9, 3:9] = True
    win.doc.set_mask(m, "mask")
    image, entries = win.doc.image.copy(), win.doc.undo_stack.count()
    assert not win.open_path(write(tmp_path, name))
    assert win.last_error[0] == "Could not open"
    for words in KINDS[name][2]:
        assert words in win.last_error[1]
    assert np.array_equal(win.doc.image, image) and np.array_equal(win.doc.mask, m)
    assert win.doc.undo_stack.count() == entries
    # Still usable: a generation runs and commits.
    with qtbot.waitSignal(win.controller.candidate_changed, timeout=5000):
        win.a_generate.trigger()
    assert win.doc.undo_stack.count() == entries + 1
    # ... and a good file opens.
    assert win.open_path(write(tmp_path, "rgb.png"))
    assert np.array_equal(win.doc.image, gradient())


@pytest.mark.parametrize("name", OK)
def test_app_opens_every_supported_kind(qtbot, win, tmp_path, name):
    assert win.open_path(write(tmp_path, name))
    KINDS[name][2](win.doc.image)


def test_app_keeps_alpha_and_unchanged_colours_on_save(qtbot, win, tmp_path):
    src = tmp_path / "in.png"
    src.write_bytes(png_rgba())
    original = np.asarray(Image.open(src))
    assert win.open_path(src)
    win.doc.extend(right=8)  # the added canvas is opaque
    for ext in ("png", "webp"):
        out = tmp_path / f"out.{ext}"
        assert win.save_to(out)
        back = np.asarray(Image.open(out))
        assert back.shape == (H, W + 8, 4)
        assert np.array_equal(back[:, :W], original), "alpha and straight colours kept"
        assert (back[:, W:, 3] == 255).all()
    out = tmp_path / "out.jpg"
    assert win.save_to(out)
    assert np.asarray(Image.open(out)).shape == (H, W + 8, 3), "JPEG has no alpha"


def test_app_saves_a_rotated_photo_upright_without_the_orientation_tag(qtbot, win, tmp_path):
    src = tmp_path / "photo.jpg"
    src.write_bytes(jpeg_rotated())
    assert win.open_path(src)
    out = tmp_path / "out.jpg"
    assert win.save_to(out)
    im = Image.open(out)
    assert im.size == (H, W)
    exif = im.getexif()
    assert 0x0112 not in exif and exif.get(0x010F) == "TestCam"


def test_cli_reports_each_bad_image_and_still_does_the_good_ones(tmp_path, capsys):
    pytest.importorskip("torch")
    from editor.cli import main

    (tmp_path / "img").mkdir()
    (tmp_path / "mask").mkdir()
    names = ["rgba.png", "rotated.jpg", "grey16.png", *BAD]
    for name in names:
        write(tmp_path / "img", name)
        size = (H, W) if name == "rotated.jpg" else (W, H)  # masks match the upright image
        Image.new("L", size, 255).save(tmp_path / "mask" / f"{name.split('.')[0]}.png")
    rc = main(["inpaint", "--images", str(tmp_path / "img"), "--masks", str(tmp_path / "mask"),
               "--out", str(tmp_path / "out"), "--model", "tiny", "--steps", "2",
               "--device", "cpu", "--class", "1"])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"{len(BAD)} of {len(names)} images failed" in err
    for name in BAD:
        for words in KINDS[name][2]:
            assert words in err
    assert Image.open(tmp_path / "out" / "rgba.png").mode == "RGBA", "alpha kept"
    assert Image.open(tmp_path / "out" / "rotated.jpg").size == (H, W), "saved upright"
    # outpaint of a bad file: exit code 2 and the reason
    rc = main(["outpaint", str(tmp_path / "img" / "bomb.png"), "--right", "8", "--out",
               str(tmp_path / "o.png"), "--model", "tiny", "--device", "cpu"])
    assert rc == 2 and "8192 x 8192" in capsys.readouterr().err
