"""The committed speed figures (bench/results/speed-*.json), measured in parts so a shared
machine's quiet minutes can go to the part that needs them:

    QT_QPA_PLATFORM=offscreen .venv/bin/python -m bench.speed_report --json FILE --part PART

PART: `model` (bench.run: the engine alone, FLOP floor, autoregressive comparison), `user`
(bench.user_wait: Generate and the CLI as a user waits for them, a second busy process), `stall`
(bench.gui_stall: both stall keys, `--repeats` runs each, interleaved). Every part adds its keys
to FILE and records the machine and its load before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


def stall_part(repeats: int) -> dict[str, Any]:
    from bench.gui_stall import probe

    keys = ("gui_max_stall_ms", "gui_max_stall_ms_outpaint_4_candidates")
    runs: dict[str, list[float]] = {k: [] for k in keys}
    cpu: dict[str, list[float]] = {k: [] for k in keys}
    loads: list[float] = []
    for _ in range(repeats):
        for key, outpaint in zip(keys, (False, True), strict=True):
            loads.append(os.getloadavg()[0])
            p = probe(outpaint=outpaint)
            runs[key].append(p.max_ms)
            cpu[key].append(p.longest_gap_cpu_ms)
            print(f"  {key}: {runs[key][-1]:.1f} ms, {cpu[key][-1]:.1f} ms of it the GUI "
                  f"thread's CPU (load {loads[-1]:.2f})", file=sys.stderr)
    out: dict[str, Any] = {k: max(v) for k, v in runs.items()}
    out.update({f"{k}_runs": v for k, v in runs.items()})
    # Which gaps were the GUI thread's own work, and which waited for a core.
    out.update({f"{k}_gui_cpu_ms_runs": v for k, v in cpu.items()})
    out["stall_loadavg_1min_per_run"] = loads
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--part", choices=("model", "user", "stall"), required=True)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--photos", nargs="+", help="user part: these samples (default: all three)")
    args = ap.parse_args()
    from models.memory import keep_freed_memory

    keep_freed_memory()  # as `maskgit-editor` does at start
    from bench.user_wait import machine

    before = machine()
    if args.part == "model":
        from bench.run import run

        keys: dict[str, Any] = run()
    elif args.part == "user":
        from bench.user_wait import run as user_run

        keys = user_run(tuple(args.photos)) if args.photos else user_run()
    else:
        keys = stall_part(args.repeats)
    results = json.loads(args.json.read_text()) if args.json.exists() else {}
    results.update(keys)
    results[f"machine_{args.part}"] = {"before": before, "after": machine()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(keys, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
