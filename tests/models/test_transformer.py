"""The bf16 inference shortcuts of models/transformer.py agree with the fp32 reference."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.transformer import attention, gelu_approximation


def gelu(x: torch.Tensor) -> torch.Tensor:  # the model's GELU for activations of x's dtype
    return F.gelu(x, approximate=gelu_approximation(x.dtype))


def test_cpu_bf16_attention_matches_fp32_sdpa():
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, 65, 48, generator=gen) for _ in range(3))
    ref = F.scaled_dot_product_attention(q, k, v)
    with torch.inference_mode():
        fast = attention(q.bfloat16(), k.bfloat16(), v.bfloat16()).float()
    assert fast.shape == ref.shape
    assert (fast - ref).abs().max() < 0.03  # bf16 keeps ~3 significant digits
    # fp32 and autograd take SDPA, exactly.
    assert torch.equal(attention(q, k, v), ref)


def test_bf16_gelu_is_the_tanh_gelu_up_to_bf16_rounding():
    x = torch.linspace(-6, 6, 4001)
    assert torch.equal(gelu(x), F.gelu(x, approximate="tanh"))
    xb = x.bfloat16()
    ref = F.gelu(xb.float(), approximate="tanh")  # the official function on the same inputs
    got = gelu(xb).float()
    # Within one bf16 rounding step of the output (2^-8 relative) plus the two functions' own
    # difference (at most ~5e-4, in the negative tail).
    assert ((got - ref).abs() <= ref.abs() * 2**-8 + 1e-3).all()
