"""The process a training job runs in: device, precision, DistributedDataParallel when launched
by `torchrun` (WORLD_SIZE > 1), JSON log lines, the progress bar, the budget in steps and/or
wall-clock minutes, and AdamW with linear warmup and a cosine decay."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


class TrainingError(ValueError):
    """A job that cannot run as asked; the message says why. The CLI turns it into exit code 2."""


class Env:
    """Device, precision and the distributed context of this process."""

    def __init__(self, device: str, amp: bool):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda":
            device = f"cuda:{local}"
            torch.cuda.set_device(local)
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True
        self.device = torch.device(device)
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.amp = amp

    @property
    def main(self) -> bool:
        return self.rank == 0

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def wrap(self, module: nn.Module) -> nn.Module:
        if self.world == 1:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            dist.all_reduce(t)
        return t

    def broadcast(self, t: torch.Tensor) -> None:
        if self.world > 1:
            dist.broadcast(t, 0)

    def stop_flag(self, stop: bool) -> bool:
        """Every rank stops when rank 0 says so (time budgets differ slightly between ranks)."""
        if self.world == 1:
            return stop
        t = torch.tensor([1.0 if stop else 0.0], device=self.device)
        dist.broadcast(t, 0)
        return bool(t.item())

    def close(self) -> None:
        if self.world > 1:
            dist.destroy_process_group()


def log(env: Env, out: Path | None, record: dict[str, Any]) -> None:
    if not env.main:
        return
    line = json.dumps(record)
    print(line, flush=True)
    if out is not None:
        with open(out / "log.jsonl", "a") as f:
            f.write(line + "\n")


class Budget:
    """Progress in [0, 1] from steps and/or wall-clock minutes, whichever runs out first."""

    def __init__(self, steps: int | None, minutes: float | None, elapsed: float = 0.0):
        if not steps and not minutes:
            raise TrainingError("give --steps and/or --minutes")
        self.steps, self.seconds = steps, (minutes * 60 if minutes else None)
        self.start = time.monotonic() - elapsed

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def progress(self, step: int) -> float:
        p = 0.0
        if self.steps:
            p = max(p, step / self.steps)
        if self.seconds:
            p = max(p, self.elapsed / self.seconds)
        return p


class Progress:
    """The progress bar and the periodic log line of one training loop.

    Metrics are summed on the device and averaged when a line is written: a float() per step
    would sync the GPU every step. `note` values are written as they are (latest, not mean).
    """

    def __init__(
        self, env: Env, out: Path | None, kind: str, args: argparse.Namespace, step: int
    ) -> None:
        from tqdm import tqdm

        self.env, self.out, self.kind = env, out, kind
        self.seconds: float = args.log_seconds
        self.bar = tqdm(
            total=args.steps or None,
            initial=step,
            disable=not env.main,
            mininterval=10,
            desc=kind,
            file=sys.stderr,
        )
        self.sums: dict[str, torch.Tensor] = {}
        self.notes: dict[str, float] = {}
        self.n = 0
        self.t_log = time.monotonic()

    def add(self, values: dict[str, torch.Tensor]) -> None:
        self.bar.update(1)
        for k, v in values.items():
            v = v.detach().float()
            self.sums[k] = self.sums[k] + v if k in self.sums else v
        self.n += 1

    def note(self, **values: float) -> None:
        self.notes.update(values)

    def maybe_write(self, step: int, budget: Budget, lr: float, grad_norm: torch.Tensor) -> None:
        if time.monotonic() - self.t_log <= self.seconds or not self.env.main or not self.n:
            return
        rec: dict[str, Any] = {
            "kind": self.kind,
            "step": step,
            "elapsed": round(budget.elapsed, 1),
            "lr": lr,
            "grad_norm": float(grad_norm),
        }
        rec.update({k: round(float(v) / self.n, 5) for k, v in self.sums.items()})
        rec.update(self.notes)
        log(self.env, self.out, rec)
        self.sums, self.notes, self.n, self.t_log = {}, {}, 0, time.monotonic()

    def close(self) -> None:
        self.bar.close()


def lr_at(args: argparse.Namespace, step: int, progress: float) -> float:
    warm = min(1.0, (step + 1) / max(1, args.warmup_steps))
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return float(args.lr * warm * (args.min_lr_ratio + (1 - args.min_lr_ratio) * cos))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr


def make_optimizer(
    module: nn.Module, args: argparse.Namespace, no_decay: Iterable[str] = ()
) -> torch.optim.AdamW:
    decay, plain = [], []
    for n, p in module.named_parameters():
        if not p.requires_grad:
            continue
        # Norms, biases, embeddings of codes/positions and the codebook are not decayed.
        if p.ndim < 2 or any(s in n for s in no_decay):
            plain.append(p)
        else:
            decay.append(p)
    groups = [
        {"params": decay, "weight_decay": args.weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]
    fused = next(module.parameters()).device.type == "cuda"
    return torch.optim.AdamW(groups, lr=args.lr, betas=tuple(args.betas), fused=fused)
