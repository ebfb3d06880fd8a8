"""The tokenizer loop (`train tokenizer`): VQGAN (Esser et al. CVPR 2021, as used by MaskGIT).

L1 + L2 reconstruction, a perceptual loss on EfficientNet-Lite0 features (the one ImageNet
network available offline, in place of LPIPS's VGG), the VQ codebook loss and commitment loss
(beta 0.25) with the straight-through estimator, codebook initialised from encoder outputs and
dead codes restarted from the current batch so usage stays high. No discriminator here: at our
compute budget it did not pay (`train decoder` adds one to a trained decoder).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models import data as D
from models.classifier import Classifier, load_classifier, perceptual_distance
from models.maskgit import MaskGIT, MaskGITConfig, preset
from models.tokenizer import VQGAN, with_memory_format
from models.training.checkpoint import read_weights, restore_state, save_shards, save_state
from models.training.data import load_banks, psnr, save_grid, spread
from models.training.env import (
    Budget,
    Env,
    Progress,
    TrainingError,
    log,
    lr_at,
    make_optimizer,
    set_lr,
)

CKPT_NAME = "tokenizer.ckpt.safetensors"


def _vq(tok: VQGAN, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Quantize in float32: (straight-through z_q, ids, codebook + commitment loss parts)."""
    z = z.float()
    ids = tok.quantizer.quantize(z.detach())  # (B, h, w)
    zq = tok.quantizer.lookup(ids).float()  # (B, D, h, w)
    codebook_loss = F.mse_loss(zq, z.detach())
    commit = F.mse_loss(z, zq.detach())
    return z + (zq - z).detach(), ids, torch.stack([codebook_loss, commit])


class TokenizerStep(nn.Module):
    """One forward of the tokenizer objective (wrapped whole by DDP)."""

    def __init__(self, tok: VQGAN, classifier: Classifier | None, args: argparse.Namespace):
        super().__init__()
        self.tok = tok
        # Frozen, and kept out of the module tree so DDP neither syncs nor broadcasts it.
        self._classifier = [classifier]
        self.args = args

    def forward(
        self, x: torch.Tensor, autocast: Callable[[], torch.autocast]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        a = self.args
        with autocast():
            z = self.tok.encoder(x)
        zq, ids, vq = _vq(self.tok, z)
        with autocast():
            xr = self.tok.decoder(zq)
        xr = xr.float()
        l1 = (xr - x).abs().mean()
        l2 = (xr - x).pow(2).mean()
        loss = a.l1_weight * l1 + a.l2_weight * l2 + vq[0] + a.beta * vq[1]
        perc = torch.zeros((), device=x.device)
        classifier = self._classifier[0]
        if classifier is not None and a.perceptual_weight > 0:
            with autocast():
                perc = perceptual_distance(classifier, xr, x, a.perceptual_size).mean()
            loss = loss + a.perceptual_weight * perc.float()
        parts = {"l1": l1, "l2": l2, "codebook": vq[0], "commit": vq[1], "perceptual": perc}
        return loss, parts, ids, xr


@torch.no_grad()
def restart_dead_codes(
    tok: VQGAN, usage: torch.Tensor, z: torch.Tensor, generator: torch.Generator, env: Env
) -> int:
    """Move codes unused since the last restart onto random encoder outputs of this batch."""
    dead = (usage == 0).nonzero().squeeze(1)
    n = int(dead.numel())
    if n:
        flat = z.detach().float().permute(0, 2, 3, 1).reshape(-1, z.shape[1])  # (B*h*w, D)
        pick = torch.randint(0, flat.shape[0], (n,), generator=generator, device=flat.device)
        noise = torch.randn(n, flat.shape[1], generator=generator, device=flat.device)
        new = flat[pick] + 0.01 * flat.std() * noise
        tok.quantizer.codebook.data[dead] = new.to(tok.quantizer.codebook.dtype)
    env.broadcast(tok.quantizer.codebook.data)
    return n


@torch.no_grad()
def eval_tokenizer(
    tok: VQGAN, val: D.CropBank, size: int, env: Env, batch: int = 64
) -> dict[str, float]:
    tok.eval()
    ps, counts = [], torch.zeros(tok.config.codebook_size, device=env.device)
    for i in range(0, len(val), batch):
        x = D.center(val.images[i : i + batch], size)
        with env.autocast():
            z = tok.encoder(x)
        ids = tok.quantizer.quantize(z.float())
        with env.autocast():
            xr = tok.decoder(tok.quantizer.lookup(ids))
        ps.append(psnr(xr, x))
        counts += torch.bincount(ids.flatten(), minlength=counts.numel())
    tok.train()
    return {
        "val_psnr": float(torch.cat(ps).mean()),
        "val_codebook_usage": float((counts > 0).float().mean()),
    }


@dataclass
class TokenizerRun:
    """Everything one tokenizer run holds between steps."""

    env: Env
    args: argparse.Namespace
    config: MaskGITConfig
    tok: VQGAN
    opt: torch.optim.AdamW
    gen: torch.Generator
    sampler: D.BatchSampler
    val: D.CropBank | None
    out: Path
    ckpt_dir: Path
    budget: Budget
    step: int
    stepper: nn.Module = field(init=False)
    usage: torch.Tensor = field(init=False)

    @property
    def size(self) -> int:
        return self.config.tokenizer.image_size


def _config(args: argparse.Namespace) -> MaskGITConfig:
    """The preset, with --norm-groups when given."""
    config = preset(args.preset)
    if args.norm_groups:
        try:
            tok = dataclasses.replace(config.tokenizer, norm_groups=args.norm_groups)
        except ValueError as e:
            raise TrainingError(str(e)) from e
        config = dataclasses.replace(config, tokenizer=tok)
    return config


def _build(args: argparse.Namespace, env: Env) -> TokenizerRun:
    config = _config(args)
    out = Path(args.out)
    ckpt_dir = Path(args.ckpt_dir or args.out)
    if env.main:
        out.mkdir(parents=True, exist_ok=True)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)  # parameter init only; draws below use explicit generators
    gen = torch.Generator(device=env.device).manual_seed(args.seed + 1000 * env.rank)
    train, val = load_banks(args, config.tokenizer.image_size, False, env.device)
    sampler = D.BatchSampler(train, args.batch_size, config.tokenizer.image_size, gen)
    tok = MaskGIT(config).tokenizer.to(env.device)
    if env.device.type == "cuda":
        tok = with_memory_format(tok, torch.channels_last)
    classifier = None
    if args.perceptual_weight > 0:
        classifier = load_classifier(env.device, args.classifier_weights)
    if args.init:
        tok.load_state_dict(read_weights(args.init, "tokenizer").tensors)
    if args.decoder_only:
        # Token ids stay exactly as they are, so a transformer trained on them remains valid.
        tok.encoder.requires_grad_(False)
        tok.quantizer.requires_grad_(False)
    opt = make_optimizer(tok, args, no_decay=("codebook",))
    state: dict[str, Any] = {"step": 0, "elapsed": 0.0}
    resume = args.resume or (ckpt_dir / CKPT_NAME)
    if args.resume or Path(resume).is_file():
        state, extra = restore_state(resume, {"tokenizer": (tok, opt)})
        if "generator" in extra:
            gen.set_state(extra["generator"])
        log(env, out, {"resumed": str(resume), **state})
    run = TokenizerRun(env, args, config, tok, opt, gen, sampler, val, out, ckpt_dir,
                       Budget(args.steps, args.minutes, state["elapsed"]), state["step"])
    run.stepper = env.wrap(TokenizerStep(tok, classifier, args))
    run.usage = torch.zeros(config.tokenizer.codebook_size, device=env.device)
    return run


def _train_step(run: TokenizerRun, x: torch.Tensor, progress: float, log_: Progress) -> None:
    env, args, tok, opt = run.env, run.args, run.tok, run.opt
    if run.step == 0 and not args.resume and not args.init:
        # Codebook init from encoder outputs: every code starts where data is.
        with torch.no_grad(), env.autocast():
            z0 = tok.encoder(x)
        run.usage.zero_()
        restart_dead_codes(tok, run.usage, z0, run.gen, env)
    set_lr(opt, lr_at(args, run.step, progress))
    loss, parts, ids, xr = run.stepper(x, env.autocast)
    opt.zero_grad(set_to_none=True)
    torch.autograd.backward(loss)
    gnorm = torch.nn.utils.clip_grad_norm_(tok.parameters(), args.clip)
    opt.step()
    run.usage += env.all_sum(torch.bincount(ids.flatten(), minlength=run.usage.numel()).float())
    run.step += 1
    log_.add({**parts, "loss": loss, "psnr": psnr(xr.detach(), x).mean()})
    if run.step % args.restart_every == 0 and not args.decoder_only:
        used = float((run.usage > 0).float().mean())
        with torch.no_grad(), env.autocast():
            z = tok.encoder(x)
        restarted = restart_dead_codes(tok, run.usage, z, run.gen, env)
        log_.note(usage=used, restarted=restarted)
        run.usage.zero_()
    log_.maybe_write(run.step, run.budget, opt.param_groups[0]["lr"], gnorm)


def train_tokenizer(args: argparse.Namespace) -> None:
    env = Env(args.device, not args.no_amp)
    run = _build(args, env)
    last_ckpt = time.monotonic()
    progress_log = Progress(env, run.out, "tokenizer", args, run.step)
    x: torch.Tensor | None = None  # the last batch (stays None when the budget was spent)
    while True:
        progress = run.budget.progress(run.step)
        if env.stop_flag(progress >= 1.0):
            break
        x, _ = run.sampler.next()
        if env.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        _train_step(run, x, progress, progress_log)
        if (run.budget.progress(run.step) < 1.0
                and time.monotonic() - last_ckpt > args.ckpt_minutes * 60):
            checkpoint_tokenizer(run, x)
            last_ckpt = time.monotonic()
    progress_log.close()
    if x is not None:  # resuming a finished run trains nothing and has nothing new to save
        checkpoint_tokenizer(run, x)
    env.close()


def checkpoint_tokenizer(run: TokenizerRun, x: torch.Tensor) -> None:
    env, tok, val = run.env, run.tok, run.val
    if not env.main:
        return
    state = {"step": run.step, "elapsed": run.budget.elapsed}
    save_state(run.ckpt_dir / CKPT_NAME, "tokenizer", {"tokenizer": (tok, run.opt)}, state,
               config=run.config, extra={"generator": run.gen.get_state()})
    if run.args.shard_mb:
        save_shards(tok, "tokenizer", run.config, run.out, "tokenizer",
                    int(run.args.shard_mb * 2**20), state)
    metrics = eval_tokenizer(tok, val, run.size, env) if val is not None else {}
    if val is not None:
        show = D.center(val.images[spread(len(val), 8, env.device)], run.size)
    else:
        show = x[:8].float()
    with torch.no_grad():
        rec = tok.decode_from_indices(tok.encode_to_indices(show))
    save_grid([show, rec], run.out / "tokenizer_samples.png")
    log(env, run.out, {"kind": "tokenizer", "checkpoint": run.step,
                       "elapsed": round(run.budget.elapsed, 1), **metrics})
