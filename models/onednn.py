"""oneDNN's fused CPU kernels for inference: what the Engine runs on a CPU, in bf16 or float32.

Eager PyTorch leaves two things on the table at these models' sizes:
- every nn.Linear and nn.Conv2d call reorders its weight into oneDNN's blocked layout; packed
  once, the weight is read as it is;
- a GELU or a residual add after a matmul is a second pass over memory; as the matmul's
  post-op it is done while the result is still in cache.

Measured on 2 cores of an AMD EPYC with native bf16. In bf16: an imagenet-256 MLP (257 tokens,
768 -> 3072 -> 768, GELU and the residual add) 3.98 -> 3.36 ms; a 3x3 convolution plus the
residual add at 128 channels and 256 x 256 px 30.0 -> 22.4 ms, at 512 channels and 16 x 16 px
2.28 -> 1.38 ms. In float32, where eager PyTorch's matmul is slow on this CPU: 768 -> 3072 with
GELU 7.49 -> 2.87 ms, as exact (error 2.5e-6 against float64, eager 1.1e-6). A whole 12-step
edit with its previews (median of 2-6, interleaved): bf16 default-128 0.368 -> 0.320 s,
imagenet-256 4.88 -> 4.52 s; float32 default-128 0.80 -> 0.53 s, imagenet-256 11.8 -> 8.2 s,
with the same tokens and pixels.

The packed weight replaces the module's own, so memory stays as it was (an imagenet-256 bf16
Engine: 678 MB resident once freed memory is trimmed, as unpacked; beside its own weights it held
1118 MB). A packed model is therefore inference-only, run through this module's linear() and
conv(): the Engine packs the model it owns, and a packed module called any other way raises.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

_OPS = torch.ops.mkldnn
_ATTR = "onednn_weight"  # where pack() puts a module's packed weight


@functools.cache
def available(dtype: torch.dtype) -> bool:
    """Whether this torch build runs oneDNN's packed, fused ops in `dtype` on this CPU: tried
    once on a small layer against its own forward (a build may have the ops and not the
    kernels, as some ARM builds lack bf16 ones). Where not, the modules run as they are."""
    if not (torch.backends.mkldnn.is_available()  # type: ignore[no-untyped-call]
            and hasattr(_OPS, "_linear_pointwise") and hasattr(_OPS, "_convolution_pointwise")):
        return False
    gen = torch.Generator().manual_seed(0)
    lin, cnv = nn.Linear(16, 16).to(dtype), nn.Conv2d(16, 16, 3, padding=1).to(dtype)
    x = torch.randn(2, 16, 4, 4, generator=gen).to(dtype)
    rows = x.permute(0, 2, 3, 1)
    with torch.inference_mode():
        want = (lin(rows) + rows, cnv(x) + x)
        try:
            pack(nn.Sequential(lin, cnv))
            got = (linear(lin, rows, add=rows), conv(cnv, x, add=x))
        except RuntimeError:
            return False
    return all(torch.allclose(a.float(), b.float(), atol=0.1, rtol=0.05)
               for a, b in zip(got, want, strict=True))


def pack(model: nn.Module) -> None:
    """Pack every bf16 or float32 nn.Linear and nn.Conv2d weight of `model` for oneDNN; the
    packed copy becomes the only one (the module keeps a weightless "meta" weight of its shape):
    from then on the model runs through linear() and conv() without autograd, on the CPU, and
    nothing else (the Engine owns its model and only decodes with it). Packed already: left."""
    for m in model.modules():
        w = getattr(m, "weight", None)
        if (not isinstance(w, torch.Tensor) or w.dtype not in (torch.bfloat16, torch.float32)
                or hasattr(m, _ATTR)):
            continue
        if isinstance(m, nn.Linear):
            packed = _OPS._reorder_linear_weight(w.detach())
        elif isinstance(m, nn.Conv2d) and isinstance(m.padding, tuple):
            packed = torch._C._nn.mkldnn_reorder_conv2d_weight(
                w.detach().to_mkldnn(), list(m.padding), list(m.stride), list(m.dilation),
                m.groups)
        else:
            continue
        setattr(m, _ATTR, packed)
        m.weight = nn.Parameter(torch.empty_like(w, device="meta"), requires_grad=False)
        # A meta weight would not fail by itself: PyTorch returns an uninitialised result.
        m.register_forward_pre_hook(_refuse)


def is_packed(model: nn.Module) -> bool:
    """Whether pack() has been run on `model` (which then belongs to the Engine that did)."""
    return any(hasattr(m, _ATTR) for m in model.modules())


def _refuse(m: nn.Module, _args: object) -> None:
    raise RuntimeError(f"{type(m).__name__} is packed for oneDNN (models.onednn.pack): it runs "
                       "only through models.onednn, without autograd, on the CPU")


def _packed(m: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    w = getattr(m, _ATTR, None)
    if w is None or torch.is_grad_enabled() or x.device.type != "cpu":
        return None  # the module's own forward (which a packed module no longer has: it fails)
    return w  # type: ignore[no-any-return]


def linear(lin: nn.Linear, x: torch.Tensor, gelu: str | None = None,
           add: torch.Tensor | None = None) -> torch.Tensor:
    """`F.gelu(lin(x), approximate=gelu)` ("none" is exact, "tanh"; oneDNN names its GELUs
    alike), or `lin(x) + add`."""
    w = _packed(lin, x)
    if w is None:
        y: torch.Tensor = lin(x)
        if gelu is not None:
            y = F.gelu(y, approximate=gelu)
        return y if add is None else y + add
    x = x.to(w.dtype)  # as autocast would: the packed weight's dtype is the one computed in
    if add is not None:
        return _OPS._linear_pointwise.binary(x, add.to(w.dtype), w, lin.bias, "add")  # type: ignore[no-any-return]
    if gelu is not None:
        return _OPS._linear_pointwise(x, w, lin.bias, "gelu", [], gelu)  # type: ignore[no-any-return]
    return _OPS._linear_pointwise(x, w, lin.bias, "none", [], "")  # type: ignore[no-any-return]


def conv(c: nn.Conv2d, x: torch.Tensor, add: torch.Tensor | None = None) -> torch.Tensor:
    """`c(x)`, or `c(x) + add`."""
    w = _packed(c, x)
    if w is None:
        y: torch.Tensor = c(x)
        return y if add is None else y + add
    x = x.to(w.dtype)  # as autocast would (an image or a codebook's float32 into bf16)
    args = (w, c.bias, c.padding, c.stride, c.dilation, c.groups)
    if add is None:
        return _OPS._convolution_pointwise(x, *args, "none", [], "")  # type: ignore[no-any-return]
    return _OPS._convolution_pointwise.binary(  # type: ignore[no-any-return]
        x, add.to(w.dtype), *args, "add", None, None, [], None)
