"""Presets build, shapes hold, and attention sees both directions."""

import pytest
import torch

from models.maskgit import MaskGIT, MaskGITConfig, preset
from models.tokenizer import TokenizerConfig
from models.transformer import TransformerConfig


@pytest.mark.parametrize(
    ("name", "window", "side"), [("tiny", 32, 8), ("default-128", 128, 16)]
)
def test_preset_shapes(name, window, side):
    model = MaskGIT(preset(name)).eval()
    cfg = model.config
    assert (cfg.window, cfg.tokens_per_side) == (window, side)
    assert cfg.transformer.max_positions == side * side + 1
    ids = model.tokenizer.encode_to_indices(torch.rand(2, 3, window, window))
    assert ids.shape == (2, side, side) and ids.dtype == torch.long
    assert model.tokenizer.decode_from_indices(ids).shape == (2, 3, window, window)
    tokens = torch.full((2, side * side + 1), cfg.transformer.mask_token_id)
    tokens[:, 0] = cfg.transformer.class_token(1)
    with torch.no_grad():
        assert model.transformer(tokens).shape == (2, side * side + 1, 2025)


def test_official_presets_match_the_paper():
    for name, side in (("imagenet-256", 16), ("imagenet-512", 32)):
        cfg = preset(name)
        assert cfg.tokens_per_side == side
        assert cfg.transformer.vocab_size == 2025 and cfg.transformer.mask_token_id == 2024
        assert (cfg.transformer.num_layers, cfg.transformer.hidden_size) == (24, 768)


def test_attention_is_bidirectional():
    model = MaskGIT(preset("tiny")).eval()
    tokens = torch.randint(0, 1024, (1, 65))
    changed = tokens.clone()
    changed[0, -1] = (changed[0, -1] + 1) % 1024
    with torch.no_grad():
        a, b = model.transformer(tokens), model.transformer(changed)
    assert not torch.allclose(a[0, 1], b[0, 1])  # an early position sees a late change


def test_mismatched_codebooks_are_refused():
    with pytest.raises(ValueError, match="codebook"):
        MaskGITConfig("x", TokenizerConfig(codebook_size=512), TransformerConfig())
    with pytest.raises(KeyError, match="unknown preset"):
        preset("huge")


@pytest.mark.parametrize("bf16", [False, True])
def test_logits_at_some_rows_are_those_of_the_full_forward(bf16):
    # A decode reads a few positions over the codebook only; skipping the rest must not change
    # those logits (fp32 and the engine's bf16 autocast).
    model = MaskGIT(preset("tiny")).eval()
    tokens = torch.randint(0, 1024, (3, 65), generator=torch.Generator().manual_seed(0))
    rows = torch.tensor([1, 7, 8, 40, 64])
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        full = model.transformer(tokens).float()
        some = model.transformer(tokens, rows, vocab=1024).float()
    assert some.shape == (3, 5, 1024)
    tol = 0.01 * full.abs().max().item() if bf16 else 1e-5
    assert (some - full[:, rows, :1024]).abs().max().item() <= tol
