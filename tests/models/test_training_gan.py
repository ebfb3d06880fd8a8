"""A few steps of the decoder's adversarial fine-tuning on the 'tiny' preset
(models/training/decoder_gan.py):
it trains, resumes exactly, and never touches the encoder or the codebook."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

from models import data as D
from models.checkpoint import load, save
from models.maskgit import MaskGIT, preset
from models.training import cli, decoder_gan


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("gan")
    torch.manual_seed(0)
    save(MaskGIT(preset("tiny")), d / "tiny.safetensors", dtype=torch.float16)
    g = torch.Generator().manual_seed(0)
    n = 8
    yy, xx = torch.meshgrid(torch.arange(40.0), torch.arange(40.0), indexing="ij")
    phase = torch.rand(n, 3, 1, 1, generator=g) * 6
    images = (torch.sin(xx / 3 + yy / 5 + phase) * 90 + 128).to(torch.uint8)  # (N, 3, 40, 40)
    bank = D.CropBank(images, torch.zeros(n, dtype=torch.long), torch.arange(n))
    D.save_bank(bank, d / "train.npz")
    D.save_bank(bank, d / "val.npz")
    return d


def _cfg(files) -> decoder_gan.GanConfig:
    # No perceptual network (keeps the test fast); the discriminator reaches the decoder from
    # step 1, so the adaptive weight is exercised.
    return decoder_gan.GanConfig(model=str(files / "tiny.safetensors"), batch_size=2,
                                 disc_start=1, disc_channels=8, disc_layers=2,
                                 perceptual_weight=0.0, ckpt_minutes=1e9, val_crops=0,
                                 warmup_steps=1)


def _run(files, out, steps):
    """`maskgit-editor train decoder` with _cfg's settings; its exit code."""
    cfg = _cfg(files)
    flags = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)
             if getattr(cfg, f.name) != f.default}
    argv = [f"--{k.replace('_', '-')}={v}" for k, v in flags.items()]
    return cli.main(["decoder", *argv, "--data", str(files / "train.npz"),
                     "--val-data", str(files / "val.npz"), "--out", str(out),
                     "--steps", str(steps)])


def _log(out):
    return [json.loads(line) for line in open(out / "log.jsonl")]


def test_trains_resumes_exactly_and_keeps_the_tokens(files, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert _run(files, straight, 4) == 0
    assert _run(files, split, 2) == 0
    assert _run(files, split, 4) == 0
    assert any(r.get("resumed") and r["step"] == 2 for r in _log(split))
    assert [r["checkpoint"] for r in _log(split) if "checkpoint" in r] == [0, 2, 4]
    assert (split / "samples" / "000004.png").is_file()
    a = load_file(str(straight / decoder_gan.CKPT_NAME))
    b = load_file(str(split / decoder_gan.CKPT_NAME))
    assert a.keys() == b.keys()
    for k in a:  # interrupted and resumed == run straight through, bit for bit
        assert torch.equal(a[k], b[k]), k

    # Export: only the decoder changes; every other tensor (the encoder, the codebook, the
    # transformer) is byte-identical and the config is the same.
    exported = tmp_path / "tuned.safetensors"
    assert cli.main(["decoder", "--model", str(files / "tiny.safetensors"), "--export",
                     str(split / "snapshots" / "decoder-000004.safetensors"),
                     str(exported)]) == 0
    before = load_file(str(files / "tiny.safetensors"))
    after = load_file(str(exported))
    assert before.keys() == after.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("tokenizer.decoder.") for k in changed)
    assert all(after[k].dtype == before[k].dtype for k in before)
    old, new = load(files / "tiny.safetensors"), load(exported)
    assert old.config == new.config
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert torch.equal(old.tokenizer.encode_to_indices(x), new.tokenizer.encode_to_indices(x))


def test_a_step_leaves_encoder_and_codebook_untouched(files):
    model = load(files / "tiny.safetensors")
    tok = model.tokenizer.float()
    frozen = {k: v.clone() for k, v in tok.state_dict().items() if not k.startswith("decoder.")}
    dec = {k: v.clone() for k, v in tok.decoder.state_dict().items()}
    trainer = decoder_gan.Trainer(_cfg(files), D.load_bank(files / "train.npz"), tok, None)
    for _ in range(2):
        parts = trainer.train_step()
    assert parts["lam"] > 0  # the adversarial term reached the decoder
    for k, v in tok.state_dict().items():
        if k in frozen:
            assert torch.equal(v, frozen[k]), k
    assert any(not torch.equal(v, dec[k]) for k, v in tok.decoder.state_dict().items())


def test_config_is_frozen_and_cli_covers_it():
    cfg = decoder_gan.GanConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0  # type: ignore[misc]
    args = cli.decoder_parser().parse_args(["--data", "x.npz", "--lr", "3e-4", "--no-amp"])
    assert args.lr == 3e-4 and args.amp is False and args.batch_size == cfg.batch_size
