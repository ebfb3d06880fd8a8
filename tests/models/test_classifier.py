"""EfficientNet-Lite0 wrapper (models/classifier.py): shapes, determinism, perceptual distance."""

from __future__ import annotations

import pytest
import torch

from models.classifier import FEATURE_DIM, load_classifier, perceptual_distance

pytest.importorskip("efficientnet_lite_pytorch")


@pytest.fixture(scope="module")
def clf():
    return load_classifier("cpu")


def test_predict_is_a_distribution_and_top_k_agrees(clf):
    x = torch.rand(2, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    p = clf.predict(x)
    assert p.shape == (2, 1000)
    assert torch.allclose(p.sum(-1), torch.ones(2), atol=1e-4)
    assert torch.equal(clf.top_k(x, 3)[:, 0], p.argmax(-1))


def test_features_shape_and_eval_mode_kept(clf):
    clf.train()  # a training loop calling .train() must not switch BatchNorm to batch stats
    x = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    f1 = clf.features(x)
    f2 = clf.features(x[:1])
    assert f1.shape == (3, FEATURE_DIM)
    assert torch.allclose(f1[:1], f2, atol=1e-4)


def test_perceptual_distance_is_zero_on_identical_images_and_grows_with_noise(clf):
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 64, 64, generator=g)
    small = (x + 0.02 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    large = (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    d0 = perceptual_distance(clf, x, x, size=64)
    assert torch.allclose(d0, torch.zeros(2), atol=1e-5)
    assert (perceptual_distance(clf, x, small, 64) < perceptual_distance(clf, x, large, 64)).all()
