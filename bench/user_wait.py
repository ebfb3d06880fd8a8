"""What a user waits for: Generate in the real window, and `maskgit-editor inpaint` over a folder.

Real photos (resources/samples, committed) at 512 px wide, the default model, the app's defaults
(4 candidates, automatic class, photo guidance with its exemplar fill, colour harmonisation,
every step previewed). A Generate is timed from the click to the repaint after the result is
committed (bench.gui_stall.probe_generate); the first step from the click to the controller's
step_painted. Every figure is a median over the sample photos.

    QT_QPA_PLATFORM=offscreen .venv/bin/python -m bench.user_wait [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.gui_stall import SAMPLE, make_window, probe_generate

PHOTOS = ("canyon.jpg", "dog.jpg", "kingfisher.jpg")
# Rounds of the app keys: on a shared machine one Generate of a box took 1.5-2.4 s within an
# hour (the guides' shift-map moves with the machine's load), so one round's median of three
# photos was a draw.
RUNS = 3
WIDTH = 512


def photo(name: str, width: int = WIDTH) -> np.ndarray:
    """Sample `name` centre-cropped to 4:3 and resized to `width` px wide, RGB uint8."""
    import cv2

    from editor.core.imageio import load

    rgb = load(SAMPLE.parent / name).rgb
    h, w = rgb.shape[:2]
    ch, cw = min(h, w * 3 // 4), min(w, h * 4 // 3)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    crop = np.ascontiguousarray(rgb[y0 : y0 + ch, x0 : x0 + cw])
    return cv2.resize(crop, (width, width * 3 // 4), interpolation=cv2.INTER_AREA)


def box_mask(h: int, w: int) -> np.ndarray:
    """A central box of 25 % of the picture's area."""
    m = np.zeros((h, w), bool)
    m[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = True
    return m


def stroke_mask(h: int, w: int) -> np.ndarray:
    """Three brush strokes of the default brush (32 px): a removal of wires or a branch."""
    import cv2

    m = np.zeros((h, w), np.uint8)
    cv2.line(m, (w // 8, h // 3), (7 * w // 8, h // 4), 1, 32)
    cv2.line(m, (w // 5, 2 * h // 3), (w // 2, 3 * h // 4), 1, 32)
    cv2.line(m, (3 * w // 5, h // 2), (4 * w // 5, 5 * h // 6), 1, 32)
    return m.astype(bool)


def settle(ms: int = 200) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()  # replans and repaints after a new picture or mask: not decoding
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


# A user takes a moment between painting a mask and pressing Generate, and the app makes the
# photo guide in it (editor.state.prefetch): 1.5 s, reaching the button or a shortcut.
PAUSE_MS = 1500
CASES = {"box": "box512", "strokes": "strokes512", "outpaint": "outpaint512",
         "pause": "box512_after_pause"}


def _prepare(win: Any, image: np.ndarray, case: str) -> None:
    """The document as the user leaves it before pressing Generate in `case`."""
    h, w = image.shape[:2]
    win.controller.accept()
    win.doc.reset(image)
    if case == "outpaint":  # 30 % to the right, generated on Generate
        win.controller.fill_on_release = False
        win.controller.extend(0, 0, round(0.3 * w), 0)
    elif case == "strokes":
        win.doc.set_mask(stroke_mask(h, w), "mask")
    else:  # the paused box lies 16 px to the right: its guide is not the first box's
        win.doc.set_mask(np.roll(box_mask(h, w), 16 if case == "pause" else 0, 1), "mask")
    settle(PAUSE_MS if case == "pause" else 200)


def app_keys(photos: tuple[str, ...] = PHOTOS, model: str = "default",
             runs: int = RUNS) -> dict[str, float]:
    """generate_seconds_{box,strokes,outpaint}512, first_step_seconds_box512, the same two for a
    box Generate pressed PAUSE_MS after the mask, and the GUI stall of those Generates, in the
    real window with the app's defaults: medians over `runs` rounds of the photos."""
    from editor.core import fill
    from editor.core.pipeline import GUIDES

    win = make_window(model)
    times: dict[str, list[float]] = {}
    try:
        for name in [p for _ in range(runs) for p in photos]:
            image = photo(name)
            for case, tag in CASES.items():
                GUIDES.clear()  # a round again on the same mask must not find its guides made
                fill.forget_subjects()  # nor an outpaint its subject found
                _prepare(win, image, case)
                p = probe_generate(win)
                times.setdefault(f"generate_seconds_{tag}", []).append(p.repainted)
                times.setdefault("gui_max_stall_ms_user_edits512", []).append(p.max_ms)
                times.setdefault("gui_max_busy_ms_user_edits512", []).append(p.max_cpu_ms)
                if case in ("box", "pause"):
                    times.setdefault(f"first_step_seconds_{tag}", []).append(p.steps[0])
                print(f"  {name} {case}: {p.repainted:.2f} s ({p.windows} windows, first step "
                      f"{p.steps[0]:.2f} s, max GUI gap {p.max_ms:.1f} ms, of it GUI-thread "
                      f"CPU {p.max_cpu_ms:.1f} ms; load {os.getloadavg()[0]:.2f})", file=sys.stderr)
    finally:
        win.close()
        win._bench_app.processEvents()
    out = {k: statistics.median(v) for k, v in times.items()}
    out["gui_max_stall_ms_user_edits512"] = max(times["gui_max_stall_ms_user_edits512"])
    out["gui_max_busy_ms_user_edits512"] = max(times["gui_max_busy_ms_user_edits512"])
    return out


def cli_keys(photos: tuple[str, ...] = PHOTOS) -> dict[str, float]:
    """`maskgit-editor inpaint` over a folder of the photos with 25 % box masks: seconds per
    photo (start-up shared), and one photo alone (start-up included)."""
    import cv2

    exe = Path(sys.executable).with_name("maskgit-editor")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "editor.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for sub in ("images", "masks", "one", "one_mask", "out", "out1"):
            (d / sub).mkdir()
        for name in photos:
            image = photo(name)
            stem = Path(name).stem + ".png"
            cv2.imwrite(str(d / "images" / stem), image[..., ::-1])
            mask = box_mask(*image.shape[:2]).astype(np.uint8) * 255
            cv2.imwrite(str(d / "masks" / stem), mask)
        first = Path(photos[0]).stem + ".png"
        (d / "one" / first).write_bytes((d / "images" / first).read_bytes())
        (d / "one_mask" / first).write_bytes((d / "masks" / first).read_bytes())

        def run(images: str, masks: str, out: str) -> float:
            t = time.perf_counter()
            subprocess.run([*cmd, "inpaint", "--images", str(d / images), "--masks",
                            str(d / masks), "--out", str(d / out)], check=True,
                           stdout=subprocess.DEVNULL)
            return time.perf_counter() - t

        one = run("one", "one_mask", "out1")
        folder = run("images", "masks", "out")
    return {"cli_seconds_per_photo512": folder / len(photos),
            "cli_seconds_one_photo512": one}


def machine() -> dict[str, Any]:
    """What the figures were measured on, and how busy it was."""
    import platform

    import torch

    from models.engine import fast_bf16_cpu

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    # Machines of one name differ (and a neighbour may share the host): the float32 matmul
    # rate, taken now, says how fast this one was, so figures of two sessions compare.
    a = torch.randn(1024, 1024)
    a @ a
    t = time.perf_counter()
    for _ in range(10):
        a @ a
    gflops = 10 * 2 * 1024**3 / (time.perf_counter() - t) / 1e9
    return {"cpu": cpu, "cores": cores, "loadavg_1_5_15": list(os.getloadavg()),
            "matmul_gflops_fp32": round(gflops, 1),
            "torch_threads_default": torch.get_num_threads(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", ""),
            "bf16": float(fast_bf16_cpu()), "torch": torch.__version__}


def busy_process(threads: int) -> subprocess.Popen:
    """A second PyTorch process multiplying matrices with `threads` threads until killed."""
    code = (f"import torch\ntorch.set_num_threads({threads})\na = torch.randn(1024, 1024)\n"
            "while True:\n    a = (a @ a).clamp(-1, 1)\n")
    return subprocess.Popen([sys.executable, "-c", code])


def shared_cpu_keys(threads: tuple[int, ...], runs: int = 2) -> dict[str, float]:
    """A 4-candidate guided box edit of one photo through the pipeline (no window), with each
    engine thread count, alone and while a second busy PyTorch process (as many threads as
    cores) shares the CPU; runs interleaved. Shows whether the engine collapses when the
    machine is shared (a thread team spin-waiting for its descheduled members)."""
    import torch

    from editor.batch import load_engine
    from editor.core import geometry as g
    from editor.core.jobs import Job, Sampling
    from editor.core.pipeline import run_job
    from models.colour import harmonize
    from models.engine import SamplingParams

    engine = load_engine("default", "cpu")
    engine.prepare()
    image = photo(PHOTOS[0])
    mask = box_mask(*image.shape[:2])
    wins = g.plan(mask, engine.window, engine.tokens_per_side, g.INPAINT_MAX_WINDOWS)
    s = Sampling()
    params = SamplingParams(**s.engine_fields())

    def once() -> float:
        t = time.perf_counter()
        run_job(engine, Job("edit", image, mask, wins, None, s, 0, 4), params,
                colour_fix=harmonize)
        return time.perf_counter() - t

    once()  # warm-up
    times: dict[str, list[float]] = {}
    cores = machine()["cores"] or 1
    for _ in range(runs):
        for busy in (False, True):
            other = busy_process(cores) if busy else None
            try:
                for n in threads:
                    torch.set_num_threads(n)
                    key = f"pipeline_seconds_box512_threads{n}" + ("_busy" if busy else "")
                    times.setdefault(key, []).append(once())
            finally:
                if other is not None:
                    other.kill()
                    other.wait()
    return {k: statistics.median(v) for k, v in times.items()}


def run(photos: tuple[str, ...] = PHOTOS, threads: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    out: dict[str, Any] = {"machine_before": machine()}
    out.update(app_keys(photos))
    out.update(cli_keys(photos))
    out.update(shared_cpu_keys(threads))
    out["machine_after"] = machine()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    results = run()
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
