"""Bidirectional token transformer of MaskGIT (Chang et al., CVPR 2022).

A port of the official Flax `maskgit_transformer.py`: a post-LayerNorm BERT with learned
positions and a tied masked-language-model head. The sequence is [class token, image tokens...];
the vocabulary is codebook ids, then 1000 class ids (class c is token codebook_size + c), then one
mask token (the last id, which is where the official code's -1 lands after Flax's wrap-around).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models import onednn


@dataclass(frozen=True)
class TransformerConfig:
    codebook_size: int = 1024  # image token ids 0..codebook_size-1
    num_classes: int = 1000  # ImageNet classes; token codebook_size + c is class c
    hidden_size: int = 768  # width of the residual stream
    num_layers: int = 24  # post-LN transformer layers
    num_heads: int = 16  # attention heads; head dim = hidden_size / num_heads
    intermediate_size: int = 3072  # MLP width
    max_positions: int = 257  # 1 class token + h*w image tokens
    layer_norm_eps: float = 1e-12  # BERT's value; the checkpoints were trained with it

    @property
    def vocab_size(self) -> int:
        return self.codebook_size + self.num_classes + 1

    @property
    def mask_token_id(self) -> int:
        return self.vocab_size - 1

    @property
    def num_image_tokens(self) -> int:
        return self.max_positions - 1

    def class_token(self, class_id: int) -> int:
        if not 0 <= class_id < self.num_classes:
            raise ValueError(f"class id {class_id} outside 0..{self.num_classes - 1}")
        return self.codebook_size + class_id

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TransformerConfig:
        return cls(**d)


def gelu_approximation(dtype: torch.dtype) -> str:
    """F.gelu's `approximate` (oneDNN names its GELUs alike) for activations of `dtype`."""
    # Flax's nn.gelu defaults to the tanh approximation; exact GELU moves fp32 logits by ~1.5e-2.
    # In bfloat16 that is lost in the format's own error (default-128, real weights, logits vs
    # fp32: mean abs 0.0115 with erf, 0.0117 with tanh; top-1 agreement 95.7 vs 95.4 %), while
    # PyTorch's CPU tanh GELU is 6x slower than the erf one (0.52 vs 0.09 ms on 257 x 3072,
    # 2 cores): 10 ms of an imagenet-256 step. So bfloat16 activations take erf.
    return "none" if dtype == torch.bfloat16 else "tanh"


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Softmax attention over (B, heads, N, head_dim) tensors."""
    if q.device.type == "cpu" and q.dtype == torch.bfloat16 and not torch.is_grad_enabled():
        # PyTorch's CPU flash-attention kernel runs at ~15 % of the matmul peak on these short
        # sequences (1.43 ms for 12 heads x 257 tokens); two bf16 matmuls and a softmax take
        # 0.53 ms. Inference only: training keeps SDPA's memory-saving backward.
        scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)
        return torch.softmax(scores, -1) @ v
    return F.scaled_dot_product_attention(q, k, v)


class Layer(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        d = cfg.hidden_size
        self.num_heads = cfg.num_heads
        self.qkv = nn.Linear(d, 3 * d)  # the official q, k, v kernels fused into one matmul
        self.attn_out = nn.Linear(d, d)
        self.attn_ln = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.mlp_in = nn.Linear(d, cfg.intermediate_size)
        self.mlp_out = nn.Linear(cfg.intermediate_size, d)
        self.mlp_ln = nn.LayerNorm(d, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """(B, N, D) -> (B, N, D), or (B, R, D) at `rows` (R,) only: every position is still a
        key, but only those rows are queried and carried on (the last layer of a decode, whose
        other rows nothing reads)."""
        b, n, d = x.shape
        h, dh = self.num_heads, d // self.num_heads
        # Heads first, made contiguous in one copy: the attention matmuls then read k
        # transposed in place instead of copying each of q, k and v (12 % of attention's time).
        qkv = onednn.linear(self.qkv, x)
        q, k, v = qkv.view(b, n, 3, h, dh).permute(2, 0, 3, 1, 4).contiguous().unbind(0)
        if rows is not None:  # q of every row is 1/3 of one projection of 24 layers: kept simple
            q, x = q[:, :, rows], x[:, rows]
        a = attention(q, k, v)  # (B, heads, R, dh)
        x = self.attn_ln(onednn.linear(self.attn_out, a.transpose(1, 2).reshape(x.shape), add=x))
        out: torch.Tensor = self.mlp_ln(
            onednn.linear(self.mlp_out, onednn.linear(self.mlp_in, x, gelu_approximation(x.dtype)),
                          add=x))
        return out


class Transformer(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.config = cfg
        d = cfg.hidden_size
        self.word_embeddings = nn.Embedding(cfg.vocab_size, d)
        self.position_embeddings = nn.Embedding(cfg.max_positions, d)
        self.embed_ln = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.layers = nn.ModuleList(Layer(cfg) for _ in range(cfg.num_layers))
        self.head_dense = nn.Linear(d, d)
        self.head_ln = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.head_bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        # BERT-style truncated normal(0.02), as the official initialisers.
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.trunc_normal_(m.weight, std=0.02, a=-0.04, b=0.04)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(
        self, tokens: torch.Tensor, rows: torch.Tensor | None = None, vocab: int | None = None
    ) -> torch.Tensor:
        """(B, 1+N) long token ids -> (B, 1+N, vocab_size) logits over the full vocabulary.

        A decode reads the logits of a few positions over the codebook only: `rows` (R,) gives
        (B, R, ...) logits at those sequence positions and `vocab` the first `vocab` ids. The
        other rows then skip the last layer after its keys and values, and the head."""
        n = tokens.shape[1]
        pos = torch.arange(n, device=tokens.device)
        x = self.embed_ln(self.word_embeddings(tokens) + self.position_embeddings(pos))  # (B, N, D)
        *body, last = self.layers
        for layer in body:
            x = layer(x)
        x = last(x, rows)
        x = self.head_ln(onednn.linear(self.head_dense, x, gelu_approximation(x.dtype)))
        # Tied output projection: logits are similarities to the input embeddings.
        logits: torch.Tensor = F.linear(x, self.word_embeddings.weight[:vocab],
                                        self.head_bias[:vocab])
        return logits


PRESETS: dict[str, TransformerConfig] = {
    "imagenet-256": TransformerConfig(),
    "imagenet-512": TransformerConfig(max_positions=1025),
    "default-128": TransformerConfig(
        hidden_size=384, num_layers=8, num_heads=6, intermediate_size=1536, max_positions=257
    ),
    "tiny": TransformerConfig(
        hidden_size=64, num_layers=2, num_heads=4, intermediate_size=128, max_positions=65
    ),
}
