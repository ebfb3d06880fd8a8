"""Bad weights files through the app's model menu and through the CLI: each is refused with a
message naming the file and the problem, nothing in it runs, and the app keeps its previous
model (and still generates) / the CLI exits with code 2 and works with a good model after."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeEngine, make_window
from PIL import Image

torch = pytest.importorskip("torch")
from safetensors.torch import save_file  # noqa: E402

from models.checkpoint import save  # noqa: E402
from models.maskgit import MaskGIT, preset  # noqa: E402


class _RunsCode:
    """Unpickling this touches a file: proof that code ran."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def bad_weights(tmp_path: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """name -> (file, words its message must contain)."""
    d = tmp_path / "weights"
    d.mkdir()
    model = MaskGIT(preset("tiny")).eval()
    good = d / "good.safetensors"
    save(model, good)
    data = good.read_bytes()
    meta = {"config": json.dumps(model.config.to_dict())}
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    out: dict[str, tuple[Path, tuple[str, ...]]] = {}

    def put(name: str, raw: bytes, *words: str) -> None:
        (d / name).write_bytes(raw)
        out[name] = (d / name, (name, *words))

    put("empty.safetensors", b"", "not a readable .safetensors")
    put("truncated.safetensors", data[: len(data) // 2])
    put("garbage.safetensors", bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8)),
        "not a readable .safetensors")
    put("pickle.safetensors", pickle.dumps({"a": 1}), "not a readable .safetensors")
    evil = d / "evil.safetensors"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "evil": _RunsCode(tmp_path / "pwned")},
               evil)
    out["evil.safetensors"] = (evil, ("evil.safetensors", "not a readable .safetensors"))
    ckpt = d / "model.ckpt"
    torch.save(model.state_dict(), ckpt)
    out["model.ckpt"] = (ckpt, ("model.ckpt", "not a readable .safetensors"))
    shape = dict(sd, **{"transformer.head_bias": torch.zeros(7)})
    save_file(shape, str(d / "shape.safetensors"), metadata=meta)
    out["shape.safetensors"] = (d / "shape.safetensors",
                                ("shape.safetensors", "transformer.head_bias", "shape (7,)"))
    missing = {k: v for k, v in sd.items() if k != "tokenizer.quantizer.codebook"}
    save_file(missing, str(d / "missing.safetensors"), metadata=meta)
    out["missing.safetensors"] = (d / "missing.safetensors",
                                  ("missing.safetensors", "missing parameter"))
    nan = dict(sd)
    nan["transformer.head_bias"] = torch.full_like(sd["transformer.head_bias"], float("nan"))
    save_file(nan, str(d / "nan.safetensors"), metadata=meta)
    out["nan.safetensors"] = (d / "nan.safetensors", ("nan.safetensors", "NaN"))
    save_file(sd, str(d / "noconfig.safetensors"))
    out["noconfig.safetensors"] = (d / "noconfig.safetensors", ("noconfig.safetensors",
                                                                "no MaskGIT config"))
    save_file(sd, str(d / "badconfig.safetensors"), metadata={"config": "{not json"})
    out["badconfig.safetensors"] = (d / "badconfig.safetensors", ("badconfig.safetensors",
                                                                  "invalid config"))
    out["absent.safetensors"] = (d / "absent.safetensors", ("absent.safetensors", "no model"))
    return out


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    base = tmp_path_factory.mktemp("bad-weights")
    return base, bad_weights(base)


def test_app_refuses_each_bad_weights_file_and_keeps_its_model(qtbot, tmp_path, weights):
    from editor.batch import load_engine

    base, files = weights
    engine = FakeEngine()
    # "tiny" is the fake engine here (it is in the model menu); any other name goes through the
    # real loader (editor.batch.load_engine -> models.checkpoint).
    win = make_window(qtbot, tmp_path, engine)
    win.worker_thread.worker._factory = (
        lambda name, device: engine if name == "tiny" else load_engine(name, "cpu"))
    try:
        with qtbot.waitSignal(win.controller.model_changed, timeout=5000):
            win.models.choose("tiny")
        assert win.settings.value("model") == "tiny"
        for name, (path, words) in files.items():
            win.last_error = None
            win.sampling.add_model_path(str(path))  # as "Open .safetensors…" lists it
            with qtbot.waitSignal(win.controller.model_changed, timeout=20_000):
                win.models.choose(str(path))  # as picked in the model menu
            assert win.sampling.model.findData(str(path)) < 0, "a file that failed is dropped"
            assert "still using tiny" in win.statusBar().currentMessage()
            assert win.last_error is not None and win.last_error[0] == "Model not loaded", name
            for w in words:
                assert w in win.last_error[1], (name, w, win.last_error[1])
            assert win.controller.model_name == "tiny" and win.controller.ready
            assert win.sampling.model.currentData() == "tiny", "the menu shows the loaded one"
            assert win.settings.value("model") == "tiny", "a bad file is never remembered"
        assert not (base / "pwned").exists(), "no code in a weights file ran"
        m = np.zeros(win.doc.mask.shape, bool)
        m[5:20, 5:20] = True
        win.doc.set_mask(m, "mask")
        with qtbot.waitSignal(win.controller.candidate_changed, timeout=5000):
            win.a_generate.trigger()  # the previous model still works
    finally:
        engine.open()
        win.close()


def test_cli_refuses_each_bad_weights_file_with_exit_code_2(tmp_path, weights, capsys):
    from editor.cli import main

    base, files = weights
    Image.new("RGB", (32, 32), "red").save(tmp_path / "in.png")
    Image.new("L", (32, 32), 255).save(tmp_path / "mask.png")
    args = ["inpaint", "--images", str(tmp_path / "in.png"), "--masks", str(tmp_path / "mask.png"),
            "--out", str(tmp_path / "out"), "--steps", "2", "--device", "cpu", "--class", "1"]
    for name, (path, words) in files.items():
        rc = main([*args, "--model", str(path)])
        err = capsys.readouterr().err
        assert rc == 2, (name, err)
        assert err.startswith("maskgit-editor: error: "), err
        for w in words:
            assert w in err, (name, w, err)
        assert "Traceback" not in err
    assert not (base / "pwned").exists(), "no code in a weights file ran"
    assert main([*args, "--model", "tiny"]) == 0, "the CLI still works with a good model"
    assert (tmp_path / "out" / "in.png").is_file()
