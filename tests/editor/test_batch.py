"""The headless CLI with the tiny random-weight model: names, sizes and untouched pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from editor.cli import main

pytest.importorskip("torch")

ARGS = ["--model", "tiny", "--steps", "4", "--device", "cpu", "--class", "3"]


def far_from(mask: np.ndarray, feather: int) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    yy, xx = np.mgrid[: mask.shape[0], : mask.shape[1]]
    d2 = ((yy[..., None] - ys) ** 2 + (xx[..., None] - xs) ** 2).min(-1)
    return d2 > feather**2


def test_inpaint_folder_keeps_names_sizes_and_far_pixels(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    (tmp_path / "mask").mkdir()
    shapes = {"a.png": (40, 50), "b.webp": (33, 70)}
    masks = {}
    for name, (h, w) in shapes.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), np.uint8)).save(
            tmp_path / "img" / name, lossless=True)
        m = np.zeros((h, w), bool)
        m[5:15, 8:30] = True
        m[h - 3 :, w - 6 :] = True  # touching the corner
        masks[name] = m
        Image.fromarray(m.astype(np.uint8) * 255).save(tmp_path / "mask" / f"{name[0]}.png")
    rc = main(["inpaint", "--images", str(tmp_path / "img"), "--masks", str(tmp_path / "mask"),
               "--out", str(tmp_path / "out"), "--feather", "3", *ARGS])
    assert rc == 0
    for name, m in masks.items():
        src = np.asarray(Image.open(tmp_path / "img" / name).convert("RGB"))
        out = np.asarray(Image.open(tmp_path / "out" / name).convert("RGB"))
        assert out.shape == src.shape
        far = far_from(m, 3)
        assert np.array_equal(out[far], src[far]), name
        assert not np.array_equal(out[m], src[m]), name


def test_inpaint_reports_bad_pairs_and_still_does_the_rest(tmp_path, capsys):
    (tmp_path / "img").mkdir()
    (tmp_path / "mask").mkdir()
    Image.new("RGB", (32, 32), "red").save(tmp_path / "img" / "ok.png")
    Image.new("L", (32, 32), 255).save(tmp_path / "mask" / "ok.png")
    Image.new("RGB", (40, 32), "blue").save(tmp_path / "img" / "bad.png")
    Image.new("L", (32, 32), 255).save(tmp_path / "mask" / "bad.png")
    rc = main(["inpaint", "--images", str(tmp_path / "img"), "--masks", str(tmp_path / "mask"),
               "--out", str(tmp_path / "out"), *ARGS])
    assert rc == 1
    assert "bad.png: the mask is 32x32 but the image is 40x32" in capsys.readouterr().err
    assert (tmp_path / "out" / "ok.png").is_file() and not (tmp_path / "out" / "bad.png").exists()


def test_inpaint_rejects_a_wide_feather(tmp_path, capsys):
    rc = main(["inpaint", "--images", str(tmp_path), "--masks", str(tmp_path), "--out",
               str(tmp_path / "o"), "--feather", "20", *ARGS])
    assert rc == 2 and "--feather" in capsys.readouterr().err


def test_outpaint_grows_the_image_and_keeps_the_old_pixels(tmp_path):
    rng = np.random.default_rng(1)
    src = rng.integers(0, 256, (30, 40, 3), np.uint8)
    Image.fromarray(src).save(tmp_path / "in.png")
    rc = main(["outpaint", str(tmp_path / "in.png"), "--right", "50", "--top", "10",
               "--out", str(tmp_path / "out.png"), *ARGS])
    assert rc == 0
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == (40, 90, 3)
    assert np.array_equal(out[10 + 4 :, : 40 - 4], src[4:, :36])


def test_order_reaches_the_decoder_and_a_wrong_one_is_refused(tmp_path, capsys):
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), np.uint8)).save(tmp_path / "in.png")
    m = np.zeros((32, 32), np.uint8)
    m[8:24, 8:24] = 255
    Image.fromarray(m).save(tmp_path / "m.png")
    outs = {}
    for order in ("confidence", "halton"):
        rc = main(["inpaint", "--images", str(tmp_path / "in.png"), "--masks",
                   str(tmp_path / "m.png"), "--out", str(tmp_path / order), "--order", order,
                   *ARGS])
        assert rc == 0
        outs[order] = np.asarray(Image.open(tmp_path / order / "in.png"))
    assert not np.array_equal(outs["confidence"], outs["halton"])
    with pytest.raises(SystemExit) as e:
        main(["inpaint", "--images", str(tmp_path), "--masks", str(tmp_path), "--out",
              str(tmp_path / "o"), "--order", "zigzag", *ARGS])
    assert e.value.code == 2 and "--order" in capsys.readouterr().err


def test_outpaint_refuses_to_make_an_image_the_editor_would_refuse(tmp_path, capsys):
    Image.new("RGB", (40, 30), "red").save(tmp_path / "in.png")
    rc = main(["outpaint", str(tmp_path / "in.png"), "--right", "20000", "--out",
               str(tmp_path / "out.png"), *ARGS])
    assert rc == 2 and "20040 x 30" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


def two_halves(h: int = 64, w: int = 96) -> np.ndarray:
    """Red left half, blue right half, with fine noise (texture to copy)."""
    img = np.zeros((h, w, 3), np.int16)
    img[:, : w // 2], img[:, w // 2 :] = (200, 30, 30), (30, 30, 200)
    noise = np.random.default_rng(0).integers(-20, 21, (h, w, 1))
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def test_outpaint_and_inpaint_copy_nothing_kept_out(tmp_path, capsys):
    Image.fromarray(two_halves()).save(tmp_path / "in.png")
    keep = np.zeros((64, 96), bool)
    keep[:, 48:] = True  # the blue half, next to the new strip
    Image.fromarray(keep.astype(np.uint8) * 255).save(tmp_path / "keep.png")
    guided = ["--model", "tiny", "--steps", "4", "--device", "cpu"]  # no class: photo guidance
    reds = []
    for extra in ([], ["--keep-out", str(tmp_path / "keep.png")]):
        out = tmp_path / f"out{len(extra)}.png"
        assert main(["outpaint", str(tmp_path / "in.png"), "--right", "40", "--out", str(out),
                     *guided, *extra]) == 0
        reds.append(np.asarray(Image.open(out))[:, 100:, 0].mean())
    assert reds[1] > reds[0] + 40, "the strip is copied from the red half"
    # inpaint: a folder of keep-out masks; an image without one is inpainted as before.
    for d in ("img", "mask", "keep"):
        (tmp_path / d).mkdir()
    hole = np.zeros((64, 96), bool)
    hole[20:44, 60:84] = True  # in the blue half
    for name in ("a", "b"):
        Image.fromarray(two_halves()).save(tmp_path / "img" / f"{name}.png")
        Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "mask" / f"{name}.png")
    Image.fromarray(keep.astype(np.uint8) * 255).save(tmp_path / "keep" / "a.png")
    assert main(["inpaint", "--images", str(tmp_path / "img"), "--masks", str(tmp_path / "mask"),
                 "--keep-out", str(tmp_path / "keep"), "--out", str(tmp_path / "o"),
                 *guided]) == 0
    red = {n: np.asarray(Image.open(tmp_path / "o" / f"{n}.png"))[hole][:, 0].mean()
           for n in ("a", "b")}
    assert red["a"] > red["b"] + 20
    Image.new("L", (10, 10)).save(tmp_path / "keep" / "a.png")
    assert main(["inpaint", "--images", str(tmp_path / "img" / "a.png"), "--masks",
                 str(tmp_path / "mask" / "a.png"), "--keep-out", str(tmp_path / "keep" / "a.png"),
                 "--out", str(tmp_path / "o2"), *guided]) == 1
    assert "the keep-out mask is 10x10 but the image is 96x64" in capsys.readouterr().err


def test_outpaint_keeps_the_photos_subject_out_of_the_new_strip(tmp_path):
    """No keep-out given: the subject GrabCut finds (a red disc on grass) is not copied into the
    strip, where the whole photo as the source puts a second disc (see test_exemplar)."""
    from test_exemplar import subject_photo

    img, _, todo = subject_photo()
    Image.fromarray(img[:, ~todo[0]]).save(tmp_path / "in.png")  # the photo without its strip
    guided = ["--model", "tiny", "--steps", "4", "--device", "cpu"]  # no class: photo guidance
    assert main(["outpaint", str(tmp_path / "in.png"), "--right", "48",
                 "--out", str(tmp_path / "out.png"), *guided]) == 0
    strip = np.asarray(Image.open(tmp_path / "out.png"))[:, 152 + 8:]  # past the seam's feather
    assert (strip[..., 0] > 150).mean() < 0.01
