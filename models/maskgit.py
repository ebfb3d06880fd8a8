"""A MaskGIT model: the VQGAN tokenizer and the token transformer that share one vocabulary.

Chang et al., "MaskGIT: Masked Generative Image Transformer", CVPR 2022.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from models.tokenizer import PRESETS as TOKENIZER_PRESETS
from models.tokenizer import VQGAN, TokenizerConfig
from models.transformer import PRESETS as TRANSFORMER_PRESETS
from models.transformer import Transformer, TransformerConfig


@dataclass(frozen=True)
class MaskGITConfig:
    name: str  # shown in the app's model menu
    tokenizer: TokenizerConfig
    transformer: TransformerConfig

    def __post_init__(self) -> None:
        t, m = self.tokenizer, self.transformer
        if t.codebook_size != m.codebook_size:
            raise ValueError(
                f"tokenizer codebook ({t.codebook_size}) != "
                f"transformer codebook ({m.codebook_size})"
            )

    @property
    def window(self) -> int:
        """Side of the square pixel window the model decodes at once."""
        return self.tokenizer.image_size

    @property
    def tokens_per_side(self) -> int:
        return self.tokenizer.tokens_per_side

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tokenizer": self.tokenizer.to_dict(),
            "transformer": self.transformer.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MaskGITConfig:
        return cls(
            name=d["name"],
            tokenizer=TokenizerConfig.from_dict(d["tokenizer"]),
            transformer=TransformerConfig.from_dict(d["transformer"]),
        )


class MaskGIT(nn.Module):
    def __init__(self, config: MaskGITConfig):
        super().__init__()
        self.config = config
        self.tokenizer = VQGAN(config.tokenizer)
        self.transformer = Transformer(config.transformer)
        # The ImageNet classes the transformer was trained on, when its file records them (None:
        # unknown, e.g. the official models, trained on all 1000).
        self.trained_classes: tuple[int, ...] | None = None


def preset(name: str) -> MaskGITConfig:
    """Named configurations: imagenet-256, imagenet-512, default-128, tiny."""
    if name not in TOKENIZER_PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(TOKENIZER_PRESETS)}")
    return MaskGITConfig(name, TOKENIZER_PRESETS[name], TRANSFORMER_PRESETS[name])
