"""Official weights end to end against a local HTTP server: resume, refuse, convert, load."""

import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from editor.cli import main
from models import registry
from models.checkpoint import load, load_official
from models.download import DownloadError, fetch
from models.engine import Engine, SamplingParams

FIXTURE = Path(__file__).parent.parent / "fixtures" / "official-small"


class Server:
    """Serves `files` with Range support; can cut the next transfer of a file halfway."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.cut_next: set[str] = set()
        self.ranges: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                if name not in server.files:
                    self.send_error(404)
                    return
                data = server.files[name]
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    server.ranges.append(rng)
                    start = int(rng.split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if name in server.cut_next:
                    server.cut_next.discard(name)
                    body = body[: len(body) // 2]
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    files = {
        "tokenizer_imagenet256_checkpoint": (FIXTURE / "tokenizer_checkpoint").read_bytes(),
        "maskgit_imagenet256_checkpoint": (FIXTURE / "maskgit_checkpoint").read_bytes(),
    }
    s = Server(files)
    yield s
    s.close()


@pytest.fixture
def local_registry(server, tmp_path, monkeypatch):
    monkeypatch.setenv("MASKGIT_EDITOR_CACHE", str(tmp_path / "cache"))
    model = registry.KnownModel(
        "imagenet-256",
        "test",
        "Apache-2.0",
        "local",
        1,
        files=tuple(registry.RemoteFile(f"{server.url}/checkpoints/{n}", n) for n in server.files),
    )
    monkeypatch.setitem(registry.KNOWN, "imagenet-256", model)
    return tmp_path / "cache"


def test_interrupted_download_resumes_then_converts_and_loads(server, local_registry, capsys):
    server.cut_next.add("tokenizer_imagenet256_checkpoint")
    assert main(["weights", "download", "imagenet-256"]) == 2
    assert "run the same command again to resume" in capsys.readouterr().err
    part = local_registry / "downloads" / "tokenizer_imagenet256_checkpoint.part"
    assert 0 < part.stat().st_size < len(server.files["tokenizer_imagenet256_checkpoint"])

    have = part.stat().st_size
    assert main(["weights", "download", "imagenet-256"]) == 0
    assert server.ranges == [f"bytes={have}-"]  # resumed, not restarted
    assert not part.exists()
    converted = registry.resolve("imagenet-256")
    assert converted.parent == local_registry

    # The whole path (msgpack -> safetensors -> Engine) gives the same numbers as the msgpack.
    direct = Engine(
        load_official(FIXTURE / "tokenizer_checkpoint", FIXTURE / "maskgit_checkpoint"),
        device="cpu",
        bf16=False,
    )
    via_file = Engine(load(converted), device="cpu", bf16=False)
    e = np.load(FIXTURE / "expected.npz")
    image = (e["image"][0] * 255).round().astype(np.uint8)
    mask = np.zeros((16, 16), bool)
    mask[4:10, 4:10] = True
    p = SamplingParams(steps=3)
    a = [s.preview for s in direct.edit(image, mask, 1, p, seed=0)]
    b = [s.preview for s in via_file.edit(image, mask, 1, p, seed=0)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    tokens = torch.from_numpy(e["tokens"]).long()
    tokens[tokens < 0] = 2024
    with torch.no_grad():
        assert np.abs(via_file.model.transformer(tokens).numpy() - e["logits"]).max() <= 1e-3


def test_corrupted_file_is_refused_and_no_half_file_is_kept(server, local_registry, capsys):
    assert main(["weights", "download", "imagenet-256"]) == 0  # records the digests
    raw = local_registry / "downloads" / "maskgit_imagenet256_checkpoint"
    raw.unlink()
    good = server.files["maskgit_imagenet256_checkpoint"]
    server.files["maskgit_imagenet256_checkpoint"] = good[:100] + b"X" + good[101:]
    assert main(["weights", "download", "imagenet-256"]) == 2
    assert "SHA-256 mismatch" in capsys.readouterr().err
    assert not raw.exists() and not raw.with_name(raw.name + ".part").exists()


def test_fetch_verifies_size(server, tmp_path):
    with pytest.raises(DownloadError, match="bytes, expected 5"):
        fetch(
            f"{server.url}/maskgit_imagenet256_checkpoint", tmp_path / "m", size=5, progress=False
        )


def test_missing_model_says_how_to_get_it(local_registry):
    with pytest.raises(FileNotFoundError, match="weights download imagenet-256"):
        registry.resolve("imagenet-256")


def test_list_shows_known_models(local_registry, capsys):
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "imagenet-256" in out and "imagenet-512" in out and "default" in out


def test_convert_by_hand_and_from_a_torch_state_dict(tmp_path):
    out = tmp_path / "m.safetensors"
    argv = [
        "weights",
        "convert",
        "--tokenizer",
        str(FIXTURE / "tokenizer_checkpoint"),
        "--transformer",
        str(FIXTURE / "maskgit_checkpoint"),
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    from models.checkpoint import read_flax_msgpack

    # A published-style PyTorch .ckpt keyed like the official tree.
    flat = read_flax_msgpack(FIXTURE / "maskgit_checkpoint")
    sd = {"params." + k.replace("/", "."): torch.from_numpy(v.copy()) for k, v in flat.items()}
    torch.save({"state_dict": sd}, tmp_path / "maskgit.ckpt")
    m = load_official(FIXTURE / "tokenizer_checkpoint", tmp_path / "maskgit.ckpt")
    ref = load(out)
    for a, b in zip(m.state_dict().values(), ref.state_dict().values(), strict=True):
        assert torch.equal(a, b)
