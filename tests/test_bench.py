"""The benchmark runs end to end (on the tiny preset; speed itself is never asserted)."""

from bench.run import run, transformer_flops
from models.maskgit import preset

KEYS = (
    "matmul_peak_gflops_fp32",
    "step_fraction_of_peak_tiny",
    "edit_seconds_tiny",
    "edit_best_seconds_tiny",
    "first_preview_seconds_tiny",
    "edit_seconds_fp32_eager_tiny",
    "edit_seconds_fp32_tiny",
    "speedup_packed_kernels_fp32_tiny",
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
    assert "edit_fraction_of_floor_median_tiny" in results
    # The fraction is read on the fastest edit (as the peak is the best reading), never on
    # a slower one than the median the user waits.
    assert results["edit_best_seconds_tiny"] <= results["edit_seconds_tiny"]


def test_flop_count_of_the_official_model():
    # 24 layers x (4 d^2 + 2 d f) x 2 x 257 tokens + attention + head: about 93 GFLOP a step.
    assert 85e9 < transformer_flops(preset("imagenet-256").transformer, 257) < 100e9


def test_user_wait_inputs_are_committed_photos_at_512():
    from bench.user_wait import PHOTOS, box_mask, photo, stroke_mask

    for name in PHOTOS:
        image = photo(name)
        assert image.shape == (384, 512, 3) and image.dtype.name == "uint8"
    assert box_mask(384, 512).mean() == 0.25
    assert 0.02 < stroke_mask(384, 512).mean() < 0.25
