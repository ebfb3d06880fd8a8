"""VQGAN tokenizer of MaskGIT (Chang et al., "MaskGIT: Masked Generative Image Transformer",
CVPR 2022).

A port of the official Flax `vqgan_tokenizer.py` (google-research/maskgit): a convolutional
encoder with no attention, a nearest-neighbour vector quantizer, and a mirrored decoder. Images are
NCHW floats in [0, 1]; tokens are (B, h, w) codebook ids with h = H / 2**(levels - 1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from models import onednn


@dataclass(frozen=True)
class TokenizerConfig:
    filters: int = 128  # width of the first level; level i has filters * channel_multipliers[i]
    channel_multipliers: tuple[int, ...] = (1, 1, 2, 2, 4)  # one entry per level; f = 2**(n-1)
    num_res_blocks: int = 2  # ResBlocks per level (and in the bottleneck)
    embedding_dim: int = 256  # width of a codebook vector
    codebook_size: int = 1024  # number of codes; token ids are 0..codebook_size-1
    image_size: int = 256  # the window the model was trained on (informational)
    # GroupNorm groups, as Flax's default. With few filters 32 groups is per-channel instance
    # normalisation, which cannot carry a global colour cast (the first default-128: a +40 red
    # cast came back as +13); new small presets use fewer groups.
    norm_groups: int = 32

    def __post_init__(self) -> None:
        widths = {self.filters * m for m in self.channel_multipliers}
        if any(w % self.norm_groups for w in widths):
            raise ValueError(f"every level's width {sorted(widths)} must be a multiple of "
                             f"norm_groups={self.norm_groups}")

    @property
    def downsample(self) -> int:
        """Pixels per token side (f)."""
        return int(2 ** (len(self.channel_multipliers) - 1))

    @property
    def tokens_per_side(self) -> int:
        return self.image_size // self.downsample

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channel_multipliers"] = list(self.channel_multipliers)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TokenizerConfig:
        d = dict(d)
        d["channel_multipliers"] = tuple(d["channel_multipliers"])
        return cls(**d)


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    # Flax GroupNorm defaults: 32 groups, eps 1e-6 (torch's default eps is 1e-5).
    return nn.GroupNorm(groups, channels, eps=1e-6)


def _silu(x: torch.Tensor) -> torch.Tensor:
    # `x` is always a fresh normalised tensor: without autograd it can be overwritten, which
    # saves an allocation and a pass over memory per call (bf16 SiLU is memory-bound: in place
    # it took 149 ms of an imagenet-256 edit instead of 274).
    return F.silu(x, inplace=not torch.is_grad_enabled())


class ResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, groups: int = 32):
        super().__init__()
        self.norm1 = _norm(in_ch, groups)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
        self.norm2 = _norm(out_ch, groups)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        # The official block applies its 1x1 shortcut to its *own output*, not to the input
        # (h + conv(h)). Checkpoints were trained that way, so we keep the quirk.
        self.shortcut = nn.Conv2d(out_ch, out_ch, 1, bias=False) if in_ch != out_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = onednn.conv(self.conv1, _silu(self.norm1(x)))
        if self.shortcut is None:
            return onednn.conv(self.conv2, _silu(self.norm2(h)), add=x)
        h = onednn.conv(self.conv2, _silu(self.norm2(h)))
        return onednn.conv(self.shortcut, h, add=h)


def _through(blocks: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    # nn.Sequential, its bare convolutions (a level's upsampling) through models.onednn too:
    # once packed, a convolution has no weight of its own left to run.
    for b in blocks:
        x = onednn.conv(b, x) if isinstance(b, nn.Conv2d) else b(x)
    return x


class Encoder(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        f, mults, n, g = cfg.filters, cfg.channel_multipliers, cfg.num_res_blocks, cfg.norm_groups
        self.conv_in = nn.Conv2d(3, f, 3, padding=1, bias=False)
        blocks: list[nn.Module] = []
        ch = f
        for i, m in enumerate(mults):
            for _ in range(n):
                blocks.append(ResBlock(ch, f * m, g))
                ch = f * m
            if i < len(mults) - 1:
                blocks.append(nn.AvgPool2d(2))
        blocks += [ResBlock(ch, ch, g) for _ in range(n)]
        self.blocks = nn.Sequential(*blocks)
        self.norm_out = _norm(ch, g)
        self.conv_out = nn.Conv2d(ch, cfg.embedding_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = _through(self.blocks, onednn.conv(self.conv_in, x))
        return onednn.conv(self.conv_out, _silu(self.norm_out(h)))  # (B, D, h, w)


class Decoder(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        f, mults, n, g = cfg.filters, cfg.channel_multipliers, cfg.num_res_blocks, cfg.norm_groups
        ch = f * mults[-1]
        self.conv_in = nn.Conv2d(cfg.embedding_dim, ch, 3, padding=1)
        blocks: list[nn.Module] = [ResBlock(ch, ch, g) for _ in range(n)]
        for i in reversed(range(len(mults))):
            for _ in range(n):
                blocks.append(ResBlock(ch, f * mults[i], g))
                ch = f * mults[i]
            if i > 0:
                blocks.append(nn.Upsample(scale_factor=2, mode="nearest"))
                blocks.append(nn.Conv2d(ch, ch, 3, padding=1))
        self.blocks = nn.Sequential(*blocks)
        self.norm_out = _norm(ch, g)
        self.conv_out = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = _through(self.blocks, onednn.conv(self.conv_in, z))
        return onednn.conv(self.conv_out, _silu(self.norm_out(h)))  # (B, 3, H, W)


class VectorQuantizer(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.codebook = nn.Parameter(torch.randn(cfg.codebook_size, cfg.embedding_dim) * 0.02)

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D, h, w) features -> (B, h, w) ids of the nearest codes (squared L2)."""
        b, d, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d).float()  # (B*h*w, D)
        cb = self.codebook.float()
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ cb.t() + cb.pow(2).sum(1)[None]
        return dist.argmin(1).view(b, h, w)

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, h, w) ids -> (B, D, h, w) code vectors."""
        return F.embedding(ids, self.codebook).permute(0, 3, 1, 2)


class VQGAN(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.quantizer = VectorQuantizer(cfg)
        self.decoder = Decoder(cfg)

    @torch.no_grad()
    def encode_to_indices(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, H/f, W/f) long token ids."""
        return self.quantizer.quantize(self.encoder(images))

    @torch.no_grad()
    def decode_from_indices(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, h, w) token ids -> (B, 3, h*f, w*f) images (not clipped, like the original)."""
        x: torch.Tensor = self.decoder(self.quantizer.lookup(ids))
        return x


PRESETS: dict[str, TokenizerConfig] = {
    "imagenet-256": TokenizerConfig(),
    "imagenet-512": TokenizerConfig(image_size=512),
    # Embedded default: f = 8 at a 128 px window gives 16 x 16 tokens, as the official 256 model.
    "default-128": TokenizerConfig(
        # 32 filters keeps the per-step preview decode cheap on a 2-core CPU and the file small;
        # 8 groups (4 channels each, as the official 128 / 32) keep colour. The shipped weights
        # predate this and say norm_groups=32 (their file's config wins over the preset).
        filters=32,
        channel_multipliers=(1, 2, 2, 4),
        num_res_blocks=2,
        embedding_dim=64,
        codebook_size=1024,
        image_size=128,
        norm_groups=8,
    ),
    "tiny": TokenizerConfig(
        filters=32,
        channel_multipliers=(1, 1, 2),
        num_res_blocks=1,
        embedding_dim=16,
        codebook_size=1024,
        image_size=32,
    ),
}


M = TypeVar("M", bound=nn.Module)


def with_memory_format(module: M, memory_format: torch.memory_format) -> M:
    """`module.to(memory_format=...)` in place (NHWC convolutions are faster with oneDNN and
    cuDNN); torch's type stubs of Module.to leave the keyword out."""
    return module.to(memory_format=memory_format)  # type: ignore[call-overload,no-any-return]
