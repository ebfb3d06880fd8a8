"""The benchmark runs end to end (on the tiny preset; speed itself is never asserted)."""

from bench.run import run, transformer_flops
from models.maskgit import preset

KEYS = (
    "matmul_peak_gflops_fp32",
    "step_fraction_of_peak_tiny",
    "edit_seconds_tiny",
    "first_preview_seconds_tiny",
    "edit_seconds_fp32_eager_tiny",
    "edit_floor_seconds_tiny",
    "maskgit_vs_autoregressive_speedup",
    "peak_rss_mb",
)


def test_bench_produces_every_key():
    results = run(("tiny",), runs=1)
    for key in KEYS:
        assert results[key] > 0, key
    assert results["first_preview_seconds_tiny"] <= results["edit_seconds_tiny"]
    # The floor is the edit's FLOPs at the full matmul peak: no run can beat it.
    assert 0 < results["edit_fraction_of_floor_tiny"] < 1


def test_flop_count_of_the_official_model():
    # 24 layers x (4 d^2 + 2 d f) x 2 x 257 tokens + attention + head: about 93 GFLOP a step.
    assert 85e9 < transformer_flops(preset("imagenet-256").transformer, 257) < 100e9
