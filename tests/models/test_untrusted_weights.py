"""Weight files from strangers (issue 16): a config that declares a million layers, a billion-wide
hidden state or a malformed value is refused with a CheckpointError before any module or tensor
exists, quickly and in little memory; fuzzed configs give a model or a CheckpointError, never a
hang, a traceback of another kind or a large allocation."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from models.checkpoint import (
    CheckpointError,
    load,
    load_official,
    read_config,
    read_flax_msgpack,
    write_flax_msgpack,
)
from models.maskgit import preset

FIXTURE = Path(__file__).parent.parent / "fixtures" / "official-small"
TINY = preset("tiny").to_dict()


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _file_with(path: Path, config: object) -> Path:
    """A 100-byte .safetensors whose metadata declares `config`."""
    save_file({"x": torch.zeros(1)}, str(path),
              metadata={"format": "maskgit-editor/1", "config": json.dumps(config)})
    return path


def _with(**changes: object) -> dict:
    cfg = json.loads(json.dumps(TINY))
    for key, value in changes.items():
        part, name = key.split("__")
        cfg[part][name] = value
    return cfg


@pytest.mark.timeout(60)
@pytest.mark.parametrize("changes", [
    {"transformer__num_layers": 100_000},
    {"transformer__num_layers": 10**6},
    {"tokenizer__num_res_blocks": 10**6},
    {"tokenizer__channel_multipliers": [1] * 10_000},
    {"transformer__hidden_size": 10**9, "transformer__num_heads": 1},
    {"transformer__max_positions": 10**9},
    {"tokenizer__codebook_size": 10**9, "transformer__codebook_size": 10**9},
    {"tokenizer__norm_groups": 0},
    {"transformer__num_heads": 0},
    {"transformer__num_layers": "24"},
    {"transformer__layer_norm_eps": float("nan")},
])
def test_a_config_beyond_any_model_is_refused_before_anything_is_built(tmp_path, changes):
    path = _file_with(tmp_path / "evil.safetensors", _with(**changes))
    assert path.stat().st_size < 50_000  # bytes declaring gigabytes
    start, peak = time.perf_counter(), _peak_mb()
    with pytest.raises(CheckpointError, match="config"):
        load(path)
    with pytest.raises(CheckpointError, match="config"):
        read_config(path)  # what the model list and `weights verify` read first
    assert time.perf_counter() - start < 5
    assert _peak_mb() - peak < 200


@pytest.mark.timeout(60)
def test_an_official_checkpoint_declaring_a_million_layers_is_refused(tmp_path):
    flat = read_flax_msgpack(FIXTURE / "maskgit_checkpoint")
    flat["TransformerLayer_999999/Mlp_0/layer_output/bias"] = np.zeros(1, np.float32)
    evil = tmp_path / "maskgit"
    write_flax_msgpack(flat, evil)
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match="num_layers"):
        load_official(FIXTURE / "tokenizer_checkpoint", evil)
    assert time.perf_counter() - start < 10


FIELDS = {f"{part}__{name}" for part in ("tokenizer", "transformer") for name in TINY[part]}
values = st.one_of(st.integers(-2, 2**40), st.integers(0, 64), st.floats(), st.none(),
                   st.text(max_size=4), st.booleans(), st.lists(st.integers(-1, 2**20), max_size=8))


@pytest.mark.timeout(300)
@settings(max_examples=100, deadline=20_000, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(sorted(FIELDS)), values, min_size=1, max_size=4))
def test_fuzzed_configs_load_or_are_refused_within_bounds(tmp_path_factory, changes):
    path = _file_with(tmp_path_factory.mktemp("c") / "w.safetensors", _with(**changes))
    peak = _peak_mb()
    with pytest.raises(CheckpointError):  # the file holds no weights: never a model
        load(path)
    assert _peak_mb() - peak < 300, "a config reader allocation beyond the file's size"


@pytest.mark.timeout(300)
@settings(max_examples=60, deadline=20_000, database=None)
@given(config=st.recursive(st.none() | st.integers() | st.floats() | st.text(max_size=6),
                           lambda c: st.lists(c, max_size=4)
                           | st.dictionaries(st.text(max_size=12), c, max_size=4), max_leaves=20))
def test_any_json_as_config_is_refused_cleanly(tmp_path_factory, config):
    path = _file_with(tmp_path_factory.mktemp("j") / "w.safetensors", config)
    with pytest.raises(CheckpointError):
        load(path)
