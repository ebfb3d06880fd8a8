"""oneDNN's packed, fused kernels compute what the modules compute, and only where they may."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models import onednn
from models.engine import Engine, SamplingParams
from models.maskgit import MaskGIT, preset
from models.transformer import gelu_approximation

pytestmark = pytest.mark.skipif(not onednn.available(torch.float32),
                                reason="torch built without oneDNN")


def _bf16(*shape: int, channels_last: bool = False) -> torch.Tensor:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(len(shape))).bfloat16()
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    # bf16 keeps 8 bits: a post-op rounds once where eager rounds twice.
    torch.testing.assert_close(a.float(), b.float(), atol=0.05, rtol=0.02)


def test_packed_linear_and_conv_compute_the_modules_sums():
    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 96).bfloat16()
    conv = torch.nn.Conv2d(32, 32, 3, padding=1, bias=False).bfloat16()
    conv = conv.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    x, r = _bf16(2, 9, 64), _bf16(2, 9, 96)
    img, res = _bf16(3, 32, 11, 14, channels_last=True), _bf16(3, 32, 11, 14, channels_last=True)
    unpacked = copy.deepcopy(conv)
    with torch.inference_mode():
        want = (F.gelu(lin(x)), lin(x) + r, conv(img), conv(img) + res)
        onednn.pack(torch.nn.Sequential(lin, conv))
        assert onednn._packed(lin, x) is not None and onednn._packed(conv, img) is not None
        got = (onednn.linear(lin, x, "none"), onednn.linear(lin, x, add=r),
               onednn.conv(conv, img), onednn.conv(conv, img, add=res))
    for a, b in zip(got, want, strict=True):
        _close(a, b)
    # A window of another size and batch than any before: the packed weight is not tied to it.
    with torch.inference_mode():
        other = _bf16(1, 32, 30, 7, channels_last=True)
        _close(onednn.conv(conv, other), unpacked(other))


def test_packed_float32_is_as_exact_and_its_gelu_is_the_transformers():
    torch.manual_seed(0)
    lin = torch.nn.Linear(48, 64)
    x = torch.randn(5, 48)
    with torch.inference_mode():
        want = F.gelu(lin(x), approximate=gelu_approximation(x.dtype))  # tanh, as Flax
        onednn.pack(lin)
        assert onednn._packed(lin, x) is not None
        got = onednn.linear(lin, x, gelu_approximation(x.dtype))
    # erf GELU would be ~1e-3 away.
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-5)


def test_a_packed_module_is_inference_only_and_holds_no_second_weight():
    torch.manual_seed(0)
    lin = torch.nn.Linear(16, 8).bfloat16()
    x = _bf16(4, 16)
    with torch.inference_mode():
        want = lin(x)
        onednn.pack(lin)
        onednn.pack(lin)  # again: left as it is
        _close(onednn.linear(lin, x), want)
        _close(onednn.linear(lin, x.float()), want)  # float32 in: computed in bf16, as autocast
    assert lin.weight.is_meta and lin.weight.shape == (8, 16)  # no storage: memory not doubled
    with pytest.raises((RuntimeError, NotImplementedError)):  # autograd: no silent wrong answer
        onednn.linear(lin, x)


@pytest.mark.parametrize("bf16", [True, False])
def test_a_cpu_engine_packs_its_model_and_decodes_the_same_tokens(bf16):
    if not onednn.available(torch.bfloat16 if bf16 else torch.float32):
        pytest.skip("no oneDNN kernels for this dtype here")
    def engine(pack: bool) -> Engine:
        torch.manual_seed(0)
        return Engine(MaskGIT(preset("tiny")).eval(), device="cpu", bf16=bf16, pack=pack)

    packed, plain = engine(True), engine(False)
    layers = [m for m in packed.model.modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)]
    with torch.inference_mode():
        assert layers and all(onednn._packed(m, torch.zeros(1)) is not None for m in layers)
    assert not any(hasattr(m, "onednn_weight") for m in plain.model.modules())
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    mask = np.zeros((8, 8), bool)
    mask[2:6, 2:6] = True
    a = list(packed.edit(image, mask, 1, SamplingParams(), seed=3))[-1]
    b = list(plain.edit(image, mask, 1, SamplingParams(), seed=3))[-1]
    # bf16 rounding may tip a near-tie between two codes; nothing else may differ.
    assert (a.tokens == b.tokens).mean() >= (0.95 if bf16 else 1.0)


def test_where_the_kernels_fail_the_engine_runs_the_modules_as_they_are(monkeypatch):
    def broken(*_args: object, **_kwargs: object) -> torch.Tensor:
        raise RuntimeError("no kernel for this dtype")  # as a build without them answers

    monkeypatch.setattr(onednn, "conv", broken)
    assert not onednn.available.__wrapped__(torch.float32)
    monkeypatch.setattr(onednn, "available", lambda dtype: False)
    e = Engine(MaskGIT(preset("tiny")).eval(), device="cpu", bf16=False)
    assert not any(hasattr(m, "onednn_weight") for m in e.model.modules())


def test_an_engine_will_not_take_another_engines_packed_model():
    model = MaskGIT(preset("tiny")).eval()
    Engine(model, device="cpu", bf16=False)
    with pytest.raises(ValueError, match="another Engine"):
        Engine(model, device="cpu", bf16=True)  # its dtype would not match the packed weights
