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
    # How the timings compare (first preview before the edit ends, a fraction of the FLOP
    # floor) is bench/'s to report, never a test's to assert: wall clocks vary.
    assert "edit_fraction_of_floor_tiny" in results


def test_flop_count_of_the_official_model():
    # 24 layers x (4 d^2 + 2 d f) x 2 x 257 tokens + attention + head: about 93 GFLOP a step.
    assert 85e9 < transformer_flops(preset("imagenet-256").transformer, 257) < 100e9
