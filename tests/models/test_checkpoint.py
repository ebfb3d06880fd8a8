"""Our .safetensors format and the refusal of bad weight files."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from models.checkpoint import (
    CheckpointError,
    load,
    load_official,
    load_torch_state_dict,
    read_config,
    save,
)
from models.maskgit import MaskGIT, preset

FIXTURE = Path(__file__).parent.parent / "fixtures" / "official-small"


@pytest.fixture
def tiny() -> MaskGIT:
    torch.manual_seed(0)
    return MaskGIT(preset("tiny")).eval()


def _outputs(model: MaskGIT) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, 32, 32, generator=g)
    tokens = torch.randint(0, 1024, (2, 65), generator=g)
    with torch.no_grad():
        ids = model.tokenizer.encode_to_indices(image)
        return model.tokenizer.decode_from_indices(ids), model.transformer(tokens)


def test_round_trip_gives_identical_outputs(tiny, tmp_path):
    save(tiny, tmp_path / "m.safetensors")
    loaded = load(tmp_path / "m.safetensors")
    assert loaded.config == tiny.config
    for a, b in zip(_outputs(tiny), _outputs(loaded), strict=True):
        assert torch.equal(a, b)


def test_norm_groups_round_trip_and_older_files_mean_32(tmp_path):
    from dataclasses import replace

    from models.maskgit import MaskGITConfig
    from models.tokenizer import TokenizerConfig

    cfg = preset("tiny")
    grouped = MaskGITConfig(cfg.name, replace(cfg.tokenizer, norm_groups=8), cfg.transformer)
    torch.manual_seed(0)
    model = MaskGIT(grouped).eval()
    assert model.tokenizer.decoder.norm_out.num_groups == 8
    save(model, tmp_path / "g.safetensors")
    again = load(tmp_path / "g.safetensors")
    assert again.config.tokenizer.norm_groups == 8
    for a, b in zip(_outputs(model), _outputs(again), strict=True):
        assert torch.equal(a, b)
    # A config written before the field existed (the shipped default-128) means 32 groups.
    d = cfg.tokenizer.to_dict()
    del d["norm_groups"]
    assert TokenizerConfig.from_dict(d).norm_groups == 32
    with pytest.raises(ValueError, match="multiple of norm_groups=24"):
        replace(cfg.tokenizer, norm_groups=24)


def test_file_describes_itself(tiny, tmp_path):
    save(tiny, tmp_path / "m.safetensors")
    assert read_config(tmp_path / "m.safetensors") == tiny.config


def test_official_round_trip_through_safetensors(tmp_path):
    model = load_official(FIXTURE / "tokenizer_checkpoint", FIXTURE / "maskgit_checkpoint")
    save(model, tmp_path / "official.safetensors")
    again = load(tmp_path / "official.safetensors")
    e = np.load(FIXTURE / "expected.npz")
    tokens = torch.from_numpy(e["tokens"]).long()
    tokens[tokens < 0] = again.config.transformer.mask_token_id
    with torch.no_grad():
        assert np.abs(again.transformer(tokens).numpy() - e["logits"]).max() <= 1e-3


def test_wrong_shape_is_refused_naming_the_parameter(tiny, tmp_path):
    sd = {k: v.clone() for k, v in tiny.state_dict().items()}
    sd["transformer.head_bias"] = torch.zeros(7)
    meta = {"config": json.dumps(tiny.config.to_dict())}
    save_file(sd, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match=r"transformer\.head_bias.*shape \(7,\)"):
        load(tmp_path / "bad.safetensors")


def test_missing_parameter_is_refused(tiny, tmp_path):
    sd = {k: v for k, v in tiny.state_dict().items() if k != "tokenizer.quantizer.codebook"}
    meta = {"config": json.dumps(tiny.config.to_dict())}
    save_file(sd, str(tmp_path / "partial.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="missing parameter 'tokenizer.quantizer.codebook'"):
        load(tmp_path / "partial.safetensors")


def test_truncated_file_is_refused(tiny, tmp_path):
    save(tiny, tmp_path / "m.safetensors")
    data = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.safetensors"):
        load(tmp_path / "cut.safetensors")


def test_file_without_config_is_refused(tmp_path):
    save_file({"x": torch.zeros(2)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(CheckpointError, match="no MaskGIT config"):
        load(tmp_path / "x.safetensors")


class _RunsCode:
    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def test_pickle_that_runs_code_is_refused(tmp_path):
    payload = _RunsCode()
    payload.target = str(tmp_path / "pwned")
    torch.save({"state_dict": {"w": torch.zeros(1)}, "evil": payload}, tmp_path / "evil.ckpt")
    with pytest.raises(CheckpointError, match="refused: the file holds Python objects"):
        load_torch_state_dict(tmp_path / "evil.ckpt")
    assert not (tmp_path / "pwned").exists()


def test_plain_state_dict_is_read(tmp_path):
    torch.save({"state_dict": {"w": torch.ones(3)}}, tmp_path / "ok.ckpt")
    assert torch.equal(load_torch_state_dict(tmp_path / "ok.ckpt")["w"], torch.ones(3))


def test_pickle_is_never_read_as_safetensors(tmp_path):
    (tmp_path / "p.safetensors").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError):
        load(tmp_path / "p.safetensors")


def test_official_reader_refuses_garbage_and_partial_trees(tmp_path):
    (tmp_path / "garbage").write_bytes(b"\x00\x01not msgpack at all" * 10)
    with pytest.raises(CheckpointError, match="garbage"):
        load_official(tmp_path / "garbage", FIXTURE / "maskgit_checkpoint")
    data = (FIXTURE / "maskgit_checkpoint").read_bytes()
    (tmp_path / "cut").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="cut"):
        load_official(FIXTURE / "tokenizer_checkpoint", tmp_path / "cut")


def test_official_tree_missing_a_parameter_names_it(tmp_path):
    from models.checkpoint import read_flax_msgpack, write_flax_msgpack

    flat = read_flax_msgpack(FIXTURE / "maskgit_checkpoint")
    write_flax_msgpack(flat, tmp_path / "same")
    assert load_official(FIXTURE / "tokenizer_checkpoint", tmp_path / "same") is not None
    del flat["TransformerLayer_1/Mlp_0/layer_output/bias"]
    write_flax_msgpack(flat, tmp_path / "partial")
    with pytest.raises(CheckpointError, match="TransformerLayer_1/Mlp_0/layer_output/bias"):
        load_official(FIXTURE / "tokenizer_checkpoint", tmp_path / "partial")
