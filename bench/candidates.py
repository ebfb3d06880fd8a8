"""N candidates in one batched decode vs N separate decodes, on the real default model.

    .venv/bin/python -m bench.candidates [--n 4] [--device auto] [--repeats 3] [--model PATH]

Times Engine.edit_many(candidates=N) against N calls of Engine.edit_many(candidates=1) with the
editor's default sampling (12 steps, starting at step 2, every step previewed, as the app runs
it) on a 128 px window with a centred 64 px hole. Prints both times and their ratio; < 1 means
the batch is cheaper. Best of `repeats` after one warm-up, so model loading and first-call
allocations are not counted. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

DEFAULT = Path(__file__).resolve().parents[1] / "resources/models/default-128.safetensors"


def run(n: int = 4, device: str = "auto", repeats: int = 3, model: str | Path = DEFAULT,
        ) -> dict[str, float]:
    import torch

    from models.engine import Engine, SamplingParams

    engine = Engine.from_file(model, device=device)
    w, t = engine.window, engine.tokens_per_side
    rng = np.random.default_rng(0)
    # A smooth image rather than noise: closer to a photo for the tokenizer.
    yy, xx = np.mgrid[0:w, 0:w] / w
    image = np.stack([yy, xx, 0.5 + 0.5 * np.sin(6 * xx * yy)], -1) * 255
    image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
    mask = np.zeros((t, t), bool)
    mask[t // 4 : 3 * t // 4, t // 4 : 3 * t // 4] = True
    params = SamplingParams()

    def sync() -> None:
        if engine.device.type == "cuda":
            torch.cuda.synchronize()

    def batched() -> None:
        for _ in engine.edit_many(image, mask, 207, params, 0, n):
            pass
        sync()

    def separate() -> None:
        for c in range(n):
            for _ in engine.edit_many(image, mask, 207, params, c, 1):
                pass
        sync()

    def best(fn) -> float:
        fn()  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    tb, ts = best(batched), best(separate)
    return {"n": n, "batched_s": tb, "separate_s": ts, "ratio": tb / ts,
            "device": str(engine.device), "bf16": float(engine.bf16),
            "threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default=str(DEFAULT))
    a = ap.parse_args()
    r = run(a.n, a.device, a.repeats, a.model)
    print(f"device {r['device']} (bf16 {bool(r['bf16'])}, {r['threads']} threads), "
          f"{a.n} candidates, 12-step edit of a 128 px window")
    print(f"  one batched decode : {r['batched_s'] * 1000:8.1f} ms")
    print(f"  {a.n} separate decodes: {r['separate_s'] * 1000:8.1f} ms")
    print(f"  ratio batched / separate = {r['ratio']:.2f}")


if __name__ == "__main__":
    main()
