"""Parity with the official Flax modules, through our msgpack reader (fixture official-small)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from models.checkpoint import CheckpointError, load_official, read_flax_msgpack, write_flax_msgpack

FIXTURE = Path(__file__).parent.parent / "fixtures" / "official-small"


@pytest.fixture(scope="module")
def official():
    model = load_official(FIXTURE / "tokenizer_checkpoint", FIXTURE / "maskgit_checkpoint")
    return model, np.load(FIXTURE / "expected.npz")


def test_config_is_inferred_from_parameter_shapes(official):
    cfg = official[0].config
    assert cfg.tokenizer.filters == 32
    assert cfg.tokenizer.channel_multipliers == (1, 1, 2, 2, 4)
    assert cfg.tokenizer.num_res_blocks == 2
    assert (cfg.tokenizer.codebook_size, cfg.tokenizer.embedding_dim) == (1024, 256)
    assert cfg.transformer.hidden_size == 64 and cfg.transformer.num_layers == 2
    assert cfg.transformer.num_heads == 4 and cfg.transformer.intermediate_size == 128
    assert cfg.transformer.vocab_size == 2025 and cfg.transformer.max_positions == 257
    assert cfg.window == 256 and cfg.tokens_per_side == 16


def test_tokenizer_indices_match_exactly(official):
    model, e = official
    image = torch.from_numpy(e["image"]).permute(0, 3, 1, 2)
    ids = model.tokenizer.encode_to_indices(image)
    assert np.array_equal(ids.numpy(), e["indices"])


def test_tokenizer_decode_matches(official):
    model, e = official
    decoded = model.tokenizer.decode_from_indices(torch.from_numpy(e["indices"]).long())
    # Measured 4.8e-5 to 7.3e-5 (1 or 2 threads) on pixels up to 5.9: float32 convolutions summed
    # in another order than XLA's.
    assert np.abs(decoded.permute(0, 2, 3, 1).numpy() - e["decoded"]).max() <= 2e-4


def test_transformer_logits_match(official):
    model, e = official
    tokens = torch.from_numpy(e["tokens"]).long()
    # Flax indexes the embedding with -1, which wraps to the last row: our mask id.
    tokens[tokens < 0] = model.config.transformer.mask_token_id
    with torch.no_grad():
        logits = model.transformer(tokens)
    assert logits.shape == e["logits"].shape
    # Measured 1.9e-6 on logits up to 3.8 (a few float32 ulps).
    assert np.abs(logits.numpy() - e["logits"]).max() <= 5e-6


@pytest.mark.parametrize(
    ("file", "key"),
    [
        ("tokenizer_checkpoint", "quantizer/ema_cluster_size"),
        ("maskgit_checkpoint", "TransformerLayer_1/Attention_0/self_attention/rotary/kernel"),
    ],
)
def test_a_parameter_the_loader_does_not_map_is_an_error(tmp_path, file, key):
    # A checkpoint with more than the official layout (here one extra array) must not load with
    # that array silently dropped.
    for name in ("tokenizer_checkpoint", "maskgit_checkpoint"):
        flat = read_flax_msgpack(FIXTURE / name)
        if name == file:
            flat[key] = np.zeros((4, 4), np.float32)
        write_flax_msgpack(flat, tmp_path / name)
    with pytest.raises(CheckpointError, match="does not map") as err:
        load_official(tmp_path / "tokenizer_checkpoint", tmp_path / "maskgit_checkpoint")
    assert key in str(err.value) and file in str(err.value)
