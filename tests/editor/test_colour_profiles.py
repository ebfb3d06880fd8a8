"""ICC colour profiles survive editing: the app's Save, the CLI, projects and autosaves write
back the opened file's exact profile bytes, and pixels are never converted."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from fakes import make_window
from PIL import Image, ImageCms

from editor.core import imageio
from editor.state import project

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
FORMATS = {"png": {}, "jpg": {"quality": 95}, "webp": {"lossless": True}}


def photo(path, icc: bytes | None = SRGB, seed: int = 0, size: tuple[int, int] = (48, 64)
          ) -> np.ndarray:
    rgb = np.random.default_rng(seed).integers(0, 256, (*size, 3), np.uint8)
    kw = dict(FORMATS[path.suffix[1:]])
    if icc is not None:
        kw["icc_profile"] = icc
    Image.fromarray(rgb).save(path, **kw)
    return rgb


def profile_of(path) -> bytes | None:
    with Image.open(path) as im:
        return im.info.get("icc_profile") or None


def edit(win) -> None:
    """A generation's commit, as the controller makes it: new pixels in one rectangle."""
    img = win.doc.image.copy()
    img[5:15, 5:20] = 0
    win.doc.apply_result(img, (5, 5, 20, 15), np.zeros(win.doc.mask.shape, bool), "edit")


@pytest.mark.parametrize("src_ext", list(FORMATS))
def test_the_app_saves_the_opened_profile_in_every_format(qtbot, win, tmp_path, src_ext):
    src = tmp_path / f"photo.{src_ext}"
    photo(src)
    assert win.open_path(src)
    assert win.doc.icc_profile == SRGB
    before = win.doc.image.copy()
    edit(win)
    for ext in FORMATS:
        out = tmp_path / f"out.{ext}"
        assert win.save_to(out), win.last_error
        assert profile_of(out) == SRGB, ext
        if ext != "jpg":  # lossless: untouched pixels are the opened values, not converted
            back = np.asarray(Image.open(out).convert("RGB"))
            keep = np.ones(back.shape[:2], bool)
            keep[5:15, 5:20] = False
            assert np.array_equal(back[keep], before[keep]), ext
    assert win.open_path(src) and win.doc.modified is False
    edit(win)
    assert win.save()  # Save over the opened file keeps it too
    assert profile_of(src) == SRGB


def test_an_image_without_a_profile_is_saved_without_one(qtbot, win, tmp_path):
    src = tmp_path / "plain.png"
    photo(src, icc=None)
    assert win.open_path(src) and win.doc.icc_profile is None
    edit(win)
    for ext in FORMATS:
        assert win.save_to(tmp_path / f"out.{ext}")
        assert profile_of(tmp_path / f"out.{ext}") is None, ext


def test_a_profile_that_does_not_describe_rgb_is_dropped(tmp_path):
    # The pixels become RGB and are never converted: a grey or CMYK profile would lie.
    for space, mode in ((b"GRAY", "L"), (b"CMYK", "CMYK")):
        icc = SRGB[:16] + space + SRGB[20:]
        path = tmp_path / f"{mode}.{'png' if mode == 'L' else 'jpg'}"
        Image.new(mode, (8, 8)).save(path, icc_profile=icc)
        assert profile_of(path) == icc
        loaded = imageio.load(path)
        assert loaded.icc_profile is None and loaded.rgb.shape == (8, 8, 3)
    rgb = tmp_path / "rgb.png"
    photo(rgb)
    assert imageio.load(rgb).icc_profile == SRGB


def test_the_cli_keeps_the_profile(tmp_path):
    pytest.importorskip("torch")
    from editor.cli import main

    args = ["--model", "tiny", "--steps", "4", "--device", "cpu", "--class", "3"]
    (tmp_path / "img").mkdir()
    (tmp_path / "mask").mkdir()
    srcs = {}
    for ext in FORMATS:
        srcs[ext] = photo(tmp_path / "img" / f"{ext}.{ext}", size=(32, 40))
        m = np.zeros((32, 40), np.uint8)
        m[4:12, 6:20] = 255
        Image.fromarray(m).save(tmp_path / "mask" / f"{ext}.png")
    photo(tmp_path / "img" / "plain.png", icc=None, size=(32, 40))
    Image.fromarray(m).save(tmp_path / "mask" / "plain.png")
    rc = main(["inpaint", "--images", str(tmp_path / "img"), "--masks", str(tmp_path / "mask"),
               "--out", str(tmp_path / "out"), *args])
    assert rc == 0
    for ext, src in srcs.items():
        out = tmp_path / "out" / f"{ext}.{ext}"
        assert profile_of(out) == SRGB, ext
        if ext == "png":
            assert np.array_equal(np.asarray(Image.open(out))[20:], src[20:])
    assert profile_of(tmp_path / "out" / "plain.png") is None
    rc = main(["outpaint", str(tmp_path / "img" / "jpg.jpg"), "--right", "16",
               "--out", str(tmp_path / "wide.webp"), *args])
    assert rc == 0 and profile_of(tmp_path / "wide.webp") == SRGB


def test_projects_and_autosaves_keep_the_profile_and_exif(qtbot, win, tmp_path, engine):
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    src = tmp_path / "photo.jpg"
    Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).save(
        src, quality=95, icc_profile=SRGB, exif=exif.tobytes())
    assert win.open_path(src)
    edit(win)
    path = tmp_path / "work.maskgit"
    assert win.session.save_project(path)
    win.session.flush()
    autosaved = project.read(win.session.path)
    assert autosaved.icc_profile == SRGB and autosaved.exif == win.doc.exif
    other = make_window(qtbot, tmp_path / "b", engine)
    try:
        assert other.open_path(path), other.last_error
        assert other.doc.icc_profile == SRGB and other.doc.exif == win.doc.exif
        assert other.save_to(tmp_path / "out.png")
        assert profile_of(tmp_path / "out.png") == SRGB
        with Image.open(tmp_path / "out.png") as im:
            assert im.getexif().get(0x010F) == "TestCam"
        other.session.restore(autosaved)  # what recovery does with the autosave
        assert other.doc.icc_profile == SRGB
    finally:
        other.close()


def rewrite_manifest(path, change) -> None:
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    m = json.loads(members["manifest.json"])
    change(m)
    members["manifest.json"] = json.dumps(m).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    path.write_bytes(buf.getvalue())


def test_older_projects_without_a_profile_still_open(qtbot, win, tmp_path):
    src = tmp_path / "photo.png"
    photo(src)
    assert win.open_path(src)
    edit(win)
    old, bad = tmp_path / "old.maskgit", tmp_path / "bad.maskgit"
    assert win.session.save_project(old) and win.session.save_project(bad)

    def drop(m):
        del m["exif"], m["icc_profile"]

    rewrite_manifest(old, drop)
    rewrite_manifest(bad, lambda m: m.update(icc_profile="not base64!"))
    assert win.open_path(old), win.last_error
    assert win.doc.icc_profile is None and win.doc.exif is None
    assert win.doc.undo_stack.count() == 1
    assert not win.open_path(bad)
    assert "ICC profile" in win.last_error[1]


@pytest.mark.parametrize("ext", ["png", "webp"])
def test_a_phone_sized_picture_is_still_saved_bit_exact(tmp_path, ext):
    # Over imageio.WEBP_FAST_PIXELS: WebP takes its fastest lossless effort; PNG level 3.
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (45, 60, 3), np.uint8)
    rgb = np.kron(base, np.ones((32, 32, 1), np.uint8))  # 1440 x 1920: 2.8 megapixels
    rgb = np.clip(rgb.astype(int) + rng.integers(-3, 4, rgb.shape), 0, 255).astype(np.uint8)
    assert rgb.shape[0] * rgb.shape[1] > imageio.WEBP_FAST_PIXELS
    path = tmp_path / f"big.{ext}"
    imageio.save(path, rgb, None, None)
    assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), rgb)
