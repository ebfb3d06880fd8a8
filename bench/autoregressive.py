"""An autoregressive baseline of the same size as a MaskGIT transformer, for the speed comparison.

It reuses a `Transformer`'s weights with a causal mask and a key/value cache, and samples the
image tokens one at a time in raster order (the VQGAN-transformer way MaskGIT replaces). The
weights are MaskGIT's, so the samples are meaningless: only the time is measured.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models import onednn
from models.transformer import Transformer, gelu_approximation


@torch.inference_mode()
def generate(model: Transformer, class_token: int, n_tokens: int, gen: torch.Generator) -> list:
    cfg = model.config
    d, h = cfg.hidden_size, cfg.num_heads
    caches: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * cfg.num_layers
    token = torch.tensor([[class_token]])
    out = []
    for pos in range(n_tokens + 1):
        x = model.embed_ln(
            model.word_embeddings(token) + model.position_embeddings.weight[pos : pos + 1]
        )  # (1, 1, D)
        for i, layer in enumerate(model.layers):
            # The same kernels as MaskGIT's decode (packed oneDNN weights on a CPU).
            q, k, v = onednn.linear(layer.qkv, x).view(1, 1, 3, h, d // h).unbind(2)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            if caches[i] is not None:
                k = torch.cat([caches[i][0], k], 2)
                v = torch.cat([caches[i][1], v], 2)
            caches[i] = (k, v)
            a = F.scaled_dot_product_attention(q, k, v)  # attends to the past only: causal
            x = layer.attn_ln(onednn.linear(layer.attn_out, a.transpose(1, 2).reshape(1, 1, d),
                                            add=x))
            mid = onednn.linear(layer.mlp_in, x, gelu_approximation(x.dtype))
            x = layer.mlp_ln(onednn.linear(layer.mlp_out, mid, add=x))
        if pos == n_tokens:
            break
        y = model.head_ln(onednn.linear(model.head_dense, x, gelu_approximation(x.dtype)))
        logits = (y @ model.word_embeddings.weight.t() + model.head_bias)[
            0, -1, : cfg.codebook_size
        ]
        token = torch.multinomial(torch.softmax(logits.float(), -1), 1, generator=gen)[None]
        out.append(int(token))
    return out
