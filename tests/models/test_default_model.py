"""The shipped default model file (resources/models/default-128.safetensors) loads and edits."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from models.checkpoint import load
from models.engine import Engine, SamplingParams
from models.registry import DEFAULT_MODEL, RESOURCES, resolve

SAMPLE = RESOURCES.parent / "samples" / "dog.jpg"


@pytest.fixture(scope="module")
def engine() -> Engine:
    assert resolve("default") == DEFAULT_MODEL and DEFAULT_MODEL.is_file()
    return Engine(load(DEFAULT_MODEL), device="cpu", bf16=False)


@pytest.fixture(scope="module")
def window(engine: Engine) -> np.ndarray:
    w = engine.window
    img = Image.open(SAMPLE).convert("RGB")
    side = min(img.size)
    return np.array(img.crop((0, 0, side, side)).resize((w, w), Image.Resampling.BILINEAR))


def test_the_file_is_the_documented_128_px_model(engine: Engine):
    cfg = engine.config
    assert (cfg.window, cfg.tokens_per_side) == (128, 16)
    # Same vocabulary layout as the official models, so class ids mean ImageNet classes.
    assert cfg.transformer.codebook_size == 1024 and cfg.transformer.num_classes == 1000
    assert cfg.transformer.mask_token_id == 2024


def test_one_small_edit_decodes(engine: Engine, window: np.ndarray):
    mask = np.zeros((16, 16), bool)
    mask[6:10, 6:10] = True
    known = engine.encode(window)
    params = SamplingParams(steps=4, start_step=0)
    steps = list(engine.edit(window, mask, 207, params, seed=3))  # 207: golden retriever
    last = steps[-1]
    assert last.done and not last.masked.any()
    assert np.array_equal(last.tokens[~mask], known[~mask])  # known tokens kept
    assert last.preview.shape == (128, 128, 3) and last.preview.dtype == np.uint8
    # Away from the edited cells the decode reconstructs the photo (the shipped tokenizer
    # reaches about 21 dB on held-out crops; a broken file lands near 10 dB).
    far = np.ones((128, 128), bool)
    far[32:96, 32:96] = False
    mse = np.mean((last.preview[far].astype(float) - window[far].astype(float)) ** 2)
    assert 10 * np.log10(255**2 / mse) > 16
    again = list(engine.edit(window, mask, 207, params, seed=3))[-1]
    assert np.array_equal(again.preview, last.preview)  # same seed, same pixels
