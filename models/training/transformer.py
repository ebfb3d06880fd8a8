"""The transformer loop (`train transformer`): MaskGIT (Chang et al. CVPR 2022).

Tokens of augmented crops are masked with a ratio cos(pi/2 * r), r ~ U(0, 1); the class token
(ImageNet pseudo-label of the crop) sits at position 0; cross-entropy with label smoothing 0.1 on
the masked positions only. The classes of the training crops are recorded with every checkpoint
and go into the exported model file (the app's automatic class keeps to them).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models import data as D
from models.checkpoint import save as save_model
from models.maskgit import MaskGIT, MaskGITConfig, preset
from models.tokenizer import VQGAN, with_memory_format
from models.training.checkpoint import read_weights, restore_state, save_shards, save_state
from models.training.data import load_banks, save_grid, spread
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
from models.transformer import TransformerConfig

CKPT_NAME = "transformer.ckpt.safetensors"


def mask_tokens(
    tokens: torch.Tensor, mask_id: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """MaskGIT training mask: per sequence r ~ U(0,1), ceil(cos(pi/2 r) * N) random positions.

    Returns (masked input ids, (B, N) bool mask)."""
    b, n = tokens.shape
    r = torch.rand(b, generator=generator, device=tokens.device)
    n_mask = torch.ceil(torch.cos(math.pi / 2 * r) * n).clamp(1, n)  # (B,)
    noise = torch.rand(b, n, generator=generator, device=tokens.device)
    rank = noise.argsort(1).argsort(1)  # a random permutation rank per position
    mask = rank < n_mask[:, None]
    return torch.where(mask, torch.full_like(tokens, mask_id), tokens), mask


def transformer_loss(
    net: nn.Module,
    tokens: torch.Tensor,
    labels: torch.Tensor,
    cfg: TransformerConfig,
    generator: torch.Generator,
    smoothing: float,
    autocast: Callable[[], torch.autocast],
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss on masked positions, accuracy of the argmax on them)."""
    inp, mask = mask_tokens(tokens, cfg.mask_token_id, generator)
    cls = (cfg.codebook_size + labels)[:, None]
    with autocast():
        logits = net(torch.cat([cls, inp], 1))[:, 1:, : cfg.codebook_size]  # (B, N, K)
    sel = logits[mask].float()
    target = tokens[mask]
    loss = F.cross_entropy(sel, target, label_smoothing=smoothing)
    acc = (sel.argmax(-1) == target).float().mean()
    return loss, acc


@torch.no_grad()
def encode(tok: VQGAN, x: torch.Tensor, env: Env) -> torch.Tensor:
    with env.autocast():
        z = tok.encoder(x)
    ids: torch.Tensor = tok.quantizer.quantize(z.float())
    return ids.flatten(1)  # (B, N)


def _remask_cut(
    probs: torch.Tensor, sampled: torch.Tensor, unknown: torch.Tensor, n0: torch.Tensor,
    ratio: float, generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(confidences, the per-row cut below which a token goes back to the mask)."""
    b, n, _ = probs.shape
    mask_len = torch.floor(n0 * math.cos(math.pi / 2 * ratio))
    mask_len = torch.maximum(
        torch.ones_like(mask_len), torch.minimum(unknown.sum(1, keepdim=True) - 1, mask_len)
    )
    u = torch.rand(b, n, generator=generator, device=probs.device).clamp(1e-20, 1 - 1e-7)
    conf = torch.log(probs.gather(-1, sampled[..., None]).squeeze(-1).clamp_min(1e-30))
    conf = conf + 4.5 * (1 - ratio) * -torch.log(-torch.log(u))
    conf = torch.where(unknown, conf, torch.full_like(conf, float("inf")))
    return conf, conf.sort(1).values.gather(1, mask_len.long().clamp_min(0))


@torch.no_grad()
def preview_decode(
    net: nn.Module,
    cfg: TransformerConfig,
    labels: torch.Tensor,
    tokens: torch.Tensor,
    mask: torch.Tensor,
    steps: int,
    generator: torch.Generator,
    env: Env,
) -> torch.Tensor:
    """A plain MaskGIT decode (cosine schedule, choice temperature 4.5) for sample grids; the
    app uses models.sampler."""
    cls = (cfg.codebook_size + labels)[:, None]
    cur = torch.where(mask, torch.full_like(tokens, cfg.mask_token_id), tokens)
    n0 = mask.sum(1, keepdim=True).float()
    for s in range(steps):
        unknown = cur == cfg.mask_token_id
        if not unknown.any():
            break
        with env.autocast():
            logits = net(torch.cat([cls, cur], 1))[:, 1:, : cfg.codebook_size].float()
        probs = logits.softmax(-1)
        b, n, k = probs.shape
        sampled = torch.multinomial(probs.view(-1, k), 1, generator=generator).view(b, n)
        sampled = torch.where(unknown, sampled, cur)
        conf, cut = _remask_cut(probs, sampled, unknown, n0, (s + 1) / steps, generator)
        remask = (conf < cut) & (s < steps - 1)
        cur = torch.where(remask, torch.full_like(cur, cfg.mask_token_id), sampled)
    return cur


@torch.no_grad()
def eval_transformer(
    net: nn.Module,
    cfg: TransformerConfig,
    val_tokens: torch.Tensor,
    val_labels: torch.Tensor,
    env: Env,
    batch: int = 128,
) -> dict[str, float]:
    net.eval()
    g = torch.Generator(device=env.device).manual_seed(1234)  # same masks at every evaluation
    losses, accs, ws = [], [], []
    for i in range(0, len(val_tokens), batch):
        t, lab = val_tokens[i : i + batch], val_labels[i : i + batch]
        loss, acc = transformer_loss(net, t, lab, cfg, g, 0.0, env.autocast)
        losses.append(float(loss) * len(t))
        accs.append(float(acc) * len(t))
        ws.append(len(t))
    net.train()
    n = sum(ws)
    return {"val_loss": sum(losses) / n, "val_acc": sum(accs) / n}


@dataclass
class TransformerRun:
    """Everything one transformer run holds between steps."""

    env: Env
    args: argparse.Namespace
    model: MaskGIT  # .tokenizer frozen on the device, .transformer the one trained
    opt: torch.optim.AdamW
    gen: torch.Generator
    sampler: D.BatchSampler
    val: D.CropBank | None
    out: Path
    ckpt_dir: Path
    classes: list[int]  # ImageNet classes of the training crops
    budget: Budget = field(init=False)
    step: int = 0
    ddp: nn.Module = field(init=False)
    val_tokens: torch.Tensor | None = None
    best_val_loss: float = float("inf")  # of the float16 shards written so far

    @property
    def config(self) -> MaskGITConfig:
        return self.model.config

    @property
    def size(self) -> int:
        return self.config.tokenizer.image_size


def _config(args: argparse.Namespace) -> tuple[MaskGITConfig, dict[str, torch.Tensor]]:
    """(the config to train, the tokenizer weights it starts from)."""
    tok = read_weights(args.tokenizer, "tokenizer")
    config = preset(args.preset) if args.preset else tok.config
    if config.tokenizer != tok.config.tokenizer:
        raise TrainingError("the tokenizer checkpoint does not match --preset")
    return config, tok.tensors


def _model(config: MaskGITConfig, tok_state: dict[str, torch.Tensor], env: Env) -> MaskGIT:
    """The MaskGIT to train: its tokenizer loaded and frozen on the device."""
    model = MaskGIT(config)
    model.tokenizer.load_state_dict(tok_state)
    model.tokenizer = model.tokenizer.to(env.device).eval().requires_grad_(False)
    if env.device.type == "cuda":
        model.tokenizer = with_memory_format(model.tokenizer, torch.channels_last)
    model.transformer = model.transformer.to(env.device)
    return model


def _build(args: argparse.Namespace, env: Env) -> TransformerRun:
    config, tok_state = _config(args)
    size = config.tokenizer.image_size
    out, ckpt_dir = Path(args.out), Path(args.ckpt_dir or args.out)
    if env.main:
        out.mkdir(parents=True, exist_ok=True)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    gen = torch.Generator(device=env.device).manual_seed(args.seed + 1000 * env.rank)
    train, val = load_banks(args, size, True, env.device)
    assert train.labels is not None
    model = _model(config, tok_state, env)
    opt = make_optimizer(model.transformer, args, no_decay=("embeddings", "head_bias"))
    run = TransformerRun(env, args, model, opt, gen,
                         D.BatchSampler(train, args.batch_size, size, gen), val, out, ckpt_dir,
                         sorted(set(train.labels.tolist())))
    state: dict[str, Any] = {"step": 0, "elapsed": 0.0}
    resume = args.resume or (ckpt_dir / CKPT_NAME)
    if args.resume or Path(resume).is_file():
        state, extra = restore_state(resume, {"transformer": (model.transformer, opt)})
        if "generator" in extra:
            gen.set_state(extra["generator"])
        log(env, out, {"resumed": str(resume), **state})
    run.ddp = env.wrap(model.transformer)
    if val is not None:
        run.val_tokens = torch.cat([encode(model.tokenizer, D.center(val.images[i : i + 128],
                                                                     size), env)
                                    for i in range(0, len(val), 128)])
    run.budget = Budget(args.steps, args.minutes, state["elapsed"])
    run.step = state["step"]
    return run


def _train_step(run: TransformerRun, progress: float, log_: Progress) -> None:
    env, args, net, opt = run.env, run.args, run.model.transformer, run.opt
    x, labels = run.sampler.next()
    if env.device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    tokens = encode(run.model.tokenizer, x, env)
    set_lr(opt, lr_at(args, run.step, progress))
    loss, acc = transformer_loss(run.ddp, tokens, labels, run.config.transformer, run.gen,
                                 args.label_smoothing, env.autocast)
    opt.zero_grad(set_to_none=True)
    torch.autograd.backward(loss)
    gnorm = torch.nn.utils.clip_grad_norm_(net.parameters(), args.clip)
    opt.step()
    run.step += 1
    log_.add({"loss": loss, "acc": acc})
    log_.maybe_write(run.step, run.budget, opt.param_groups[0]["lr"], gnorm)


def train_transformer(args: argparse.Namespace) -> None:
    env = Env(args.device, not args.no_amp)
    run = _build(args, env)
    last_ckpt = time.monotonic()
    progress_log = Progress(env, run.out, "transformer", args, run.step)
    while True:
        progress = run.budget.progress(run.step)
        if env.stop_flag(progress >= 1.0):
            break
        _train_step(run, progress, progress_log)
        if (run.budget.progress(run.step) < 1.0
                and time.monotonic() - last_ckpt > args.ckpt_minutes * 60):
            checkpoint_transformer(run)
            last_ckpt = time.monotonic()
    progress_log.close()
    checkpoint_transformer(run)
    if env.main and args.export:
        model = run.model
        model.transformer = model.transformer.cpu()
        model.tokenizer = with_memory_format(model.tokenizer.cpu(), torch.contiguous_format)
        model.trained_classes = tuple(run.classes)
        save_model(model, args.export, dtype=torch.float16)
        log(env, run.out, {"exported": str(args.export)})
    env.close()


def checkpoint_transformer(run: TransformerRun) -> None:
    env, args, config, net = run.env, run.args, run.config, run.model.transformer
    if not env.main:
        return
    state = {"step": run.step, "elapsed": run.budget.elapsed, "classes": run.classes}
    save_state(run.ckpt_dir / CKPT_NAME, "transformer", {"transformer": (net, run.opt)}, state,
               config=config, extra={"generator": run.gen.get_state()})
    metrics: dict[str, Any] = {}
    if run.val_tokens is not None:
        assert run.val is not None and run.val.labels is not None
        metrics = eval_transformer(net, config.transformer, run.val_tokens, run.val.labels, env)
    # The float16 shards keep the best validation loss so far: on a small corpus a long run can
    # overfit, and the shards are what a time-limited remote run brings back.
    if args.shard_mb and metrics.get("val_loss", -1.0) <= run.best_val_loss:
        save_shards(net, "transformer", config, run.out, "transformer",
                    int(args.shard_mb * 2**20), state)
        run.best_val_loss = metrics.get("val_loss", run.best_val_loss)
        metrics["shards"] = "saved"
    if run.val_tokens is not None:
        _sample_grid(run)
    log(env, run.out, {"kind": "transformer", "checkpoint": run.step,
                       "elapsed": round(run.budget.elapsed, 1), **metrics})


def _sample_grid(run: TransformerRun) -> None:
    """Originals, centre box masked, inpainted with the crop's class, and unconditional-start
    generations with the same classes."""
    env, config, net, tok = run.env, run.config, run.model.transformer, run.model.tokenizer
    assert run.val is not None and run.val.labels is not None and run.val_tokens is not None
    g = torch.Generator(device=env.device).manual_seed(7)
    sel = spread(len(run.val_tokens), 8, env.device)
    t, lab = run.val_tokens[sel], run.val.labels[sel]
    k, side = len(sel), config.tokens_per_side
    box = torch.zeros(side, side, dtype=torch.bool, device=env.device)
    box[side // 4 : side - side // 4, side // 4 : side - side // 4] = True
    box = box.flatten()[None].expand(k, -1)
    net.eval()
    inpaint = preview_decode(net, config.transformer, lab, t, box, 12, g, env)
    gen_ids = preview_decode(net, config.transformer, lab, t, torch.ones_like(box), 12, g, env)
    net.train()

    def dec(ids: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = tok.decode_from_indices(ids.view(-1, side, side))
        return out

    orig = D.center(run.val.images[sel], run.size)
    f = config.tokenizer.downsample
    holed = orig.clone()
    pix = box[0].view(side, side).repeat_interleave(f, 0).repeat_interleave(f, 1)
    holed[:, :, pix] = 0.5
    save_grid([orig, holed, dec(inpaint), dec(gen_ids)], run.out / "transformer_samples.png")
