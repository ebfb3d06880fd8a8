"""Measure the longest GUI-thread stall of a real Generate (not collected by pytest).

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/editor/stall_probe.py [MODEL] [--outpaint]
        [--runs=N] [-v]

MODEL: a .safetensors path, 'default', or a preset name (default-128, tiny) for random weights of
that size, which cost the same compute as trained ones. bench.gui_stall does the work: a QTimer
fires every 5 ms on the GUI thread and records the gap since its previous tick, from the click
through the decode, the commit of the result and the canvas's repaint after it. The window is
shown, live steps are painted. Exits 1 when the decode fails or commits nothing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2]))

from bench.gui_stall import ProbeFailed, make_window, prepare, probe_generate


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    spec = args[0] if args else "default-128"
    outpaint = "--outpaint" in sys.argv
    runs = int(next((a.split("=")[1] for a in sys.argv if a.startswith("--runs=")), 1))
    win = make_window(spec)
    try:
        for _ in range(runs):
            win.controller.accept()
            prepare(win, outpaint)
            try:
                p = probe_generate(win)
            except ProbeFailed as e:
                print(f"probe failed: {e}")
                return 1
            g = sorted(p.gaps_ms)
            print(f"model {spec} ({win.controller.window_px} px window), "
                  f"{'outpaint' if outpaint else 'inpaint'}, {p.windows} window(s), "
                  f"{len(p.steps)} steps painted, committed at {p.committed:.2f} s, repainted "
                  f"at {p.repainted:.2f} s; {len(g)} ticks: max gap {p.max_ms:.1f} ms, "
                  f"median {g[len(g) // 2]:.1f} ms, most GUI-thread CPU in a gap "
                  f"{p.max_cpu_ms:.1f} ms; load {os.getloadavg()[0]:.2f}", flush=True)
            if "-v" in sys.argv:
                for gap, cpu, end in zip(p.gaps_ms, p.cpu_ms, p.tick_ends, strict=True):
                    if gap > 15:
                        near = min(p.steps, key=lambda s: abs(s - end), default=0.0)
                        print(f"  gap {gap:.1f} ms (GUI-thread CPU {cpu:.1f} ms) ending at "
                              f"{end:.3f} s; nearest step at {near:.3f} s")
    finally:
        win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
