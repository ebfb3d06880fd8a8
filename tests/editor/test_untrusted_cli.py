"""The headless CLI under careless or hostile arguments (issue 16): it never writes over its
inputs, bounds its numeric options, reports bad options as usage errors (exit 2, no
traceback), and writes weights atomically (a planted symlink redirects nothing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from editor.cli import build_parser, main

pytest.importorskip("torch")

FIXTURE = Path(__file__).parent.parent / "fixtures" / "official-small"
ARGS = ["--model", "tiny", "--steps", "2", "--device", "cpu", "--class", "3"]


def _photos(folder: Path) -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), np.uint8)).save(folder / "a.jpg")
    Image.fromarray(np.full((32, 32), 255, np.uint8)).save(folder / "a.png")  # a.jpg's mask
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_inpaint_refuses_to_write_over_its_inputs(tmp_path, capsys):
    before = _photos(tmp_path / "in")
    rc = main(["inpaint", "--images", str(tmp_path / "in"), "--masks", str(tmp_path / "in"),
               "--out", str(tmp_path / "in"), *ARGS])
    assert rc == 2 and "write over the input" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (tmp_path / "in").iterdir()} == before
    (tmp_path / "link").symlink_to(tmp_path / "in")  # the same folder by another name
    assert main(["inpaint", "--images", str(tmp_path / "in" / "a.jpg"), "--masks",
                 str(tmp_path / "in" / "a.png"), "--out", str(tmp_path / "link"), *ARGS]) == 2
    assert {p.name: p.read_bytes() for p in (tmp_path / "in").iterdir()} == before


def test_masks_beside_the_images_are_not_inpainted(tmp_path):
    before = _photos(tmp_path / "in")
    rc = main(["inpaint", "--images", str(tmp_path / "in"), "--masks", str(tmp_path / "in"),
               "--out", str(tmp_path / "out"), *ARGS])
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jpg"]
    assert {p.name: p.read_bytes() for p in (tmp_path / "in").iterdir()} == before


def test_outpaint_refuses_to_write_over_its_input(tmp_path, capsys):
    photo = tmp_path / "p.png"
    Image.new("RGB", (32, 32), "red").save(photo)
    before = photo.read_bytes()
    for out in (photo, tmp_path / "." / "p.png"):
        rc = main(["outpaint", str(photo), "--right", "16", "--out", str(out), *ARGS])
        assert rc == 2 and "write over the input" in capsys.readouterr().err
    assert photo.read_bytes() == before


@pytest.mark.parametrize("option", [["--steps", "100000000"], ["--steps", "1"],
                                    ["--seed", str(2**70)], ["--seed", "-1"],
                                    ["--choice-temperature", "inf"],
                                    ["--device", "garbage"], ["--device", "cuda:x"]])
def test_bad_options_are_usage_errors(tmp_path, capsys, option):
    args = ["inpaint", "--images", str(tmp_path), "--masks", str(tmp_path), "--out",
            str(tmp_path / "o"), *ARGS, *option]
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(args)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "Traceback" not in err


def test_the_app_refuses_a_bad_device_as_a_usage_error(capsys):
    from editor.app import parse_args

    with pytest.raises(SystemExit) as e:
        parse_args(["--device", "garbage"])
    assert e.value.code == 2


def test_weights_convert_writes_atomically_and_never_over_its_inputs(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    out = tmp_path / "m.safetensors"
    for planted in (f"{out.name}.tmp", f".{out.name}.saving"):  # the old temporary names
        (tmp_path / planted).symlink_to(victim)
    tok, tr = FIXTURE / "tokenizer_checkpoint", FIXTURE / "maskgit_checkpoint"
    base = ["weights", "convert", "--tokenizer", str(tok), "--transformer", str(tr)]
    assert main([*base, "--out", str(out)]) == 0
    assert victim.read_bytes() == b"precious"
    assert [p for p in tmp_path.iterdir() if p.is_dir()] == [], "no temporary folder left"
    from models.checkpoint import read_config

    assert read_config(out).tokenizer.codebook_size > 0
    copy = tmp_path / "tok"
    copy.write_bytes(tok.read_bytes())
    assert main([*base[:3], str(copy), *base[4:], "--out", str(copy)]) == 2
    assert copy.read_bytes() == tok.read_bytes()
