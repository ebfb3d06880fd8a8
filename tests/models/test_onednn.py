"""oneDNN's packed, fused kernels compute what the modules compute, and only where they may."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models import onednn
from models.engine import Engine, SamplingParams
from models.maskgit import MaskGIT, preset

pytestmark = pytest.mark.skipif(not onednn.available(), reason="torch built without oneDNN")


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
    with torch.inference_mode():
        want = (F.gelu(lin(x)), lin(x) + r, conv(img), conv(img) + res)
        onednn.pack(torch.nn.Sequential(lin, conv))
        assert onednn._packed(lin, x) is not None and onednn._packed(conv, img) is not None
        got = (onednn.linear(lin, x, F.gelu), onednn.linear(lin, x, add=r),
               onednn.conv(conv, img), onednn.conv(conv, img, add=res))
    for a, b in zip(got, want, strict=True):
        _close(a, b)
    # A window of another size and batch than any before: the packed weight is not tied to it.
    with torch.inference_mode():
        other = _bf16(1, 32, 30, 7, channels_last=True)
        _close(onednn.conv(conv, other), conv(other))


def test_autograd_and_float32_take_the_modules_own_forward():
    torch.manual_seed(0)
    lin = torch.nn.Linear(16, 8).bfloat16()
    onednn.pack(lin)
    x = _bf16(4, 16)
    y = onednn.linear(lin, x, add=x[:, :8])  # autograd on: training must see real modules
    assert y.requires_grad and torch.equal(y, lin(x) + x[:, :8])
    lin32 = torch.nn.Linear(16, 8)
    onednn.pack(lin32)  # float32 weights are not packed
    assert onednn._packed(lin32, x.float()) is None


def test_a_bf16_cpu_engine_packs_its_model_and_decodes_the_same_tokens():
    def engine(pack: bool) -> Engine:
        torch.manual_seed(0)
        e = Engine(MaskGIT(preset("tiny")).eval(), device="cpu", bf16=True)
        if not pack:
            for m in e.model.modules():
                if hasattr(m, "onednn_weight"):
                    del m.onednn_weight
        return e

    packed, plain = engine(True), engine(False)
    layers = [m for m in packed.model.modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)]
    assert all(hasattr(m, "onednn_weight") for m in layers if m.weight.dtype == torch.bfloat16)
    fp32 = Engine(MaskGIT(preset("tiny")).eval(), device="cpu", bf16=False)
    assert not any(hasattr(m, "onednn_weight") for m in fp32.model.modules())
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    mask = np.zeros((8, 8), bool)
    mask[2:6, 2:6] = True
    a = list(packed.edit(image, mask, 1, SamplingParams(), seed=3))[-1]
    b = list(plain.edit(image, mask, 1, SamplingParams(), seed=3))[-1]
    # bf16 rounding may tip a near-tie between two codes; nothing else may differ.
    assert (a.tokens == b.tokens).mean() >= 0.95
