"""Adversarial fine-tuning of a trained tokenizer's decoder (`train decoder`). VQGAN: Esser et
al., "Taming Transformers for High-Resolution Image Synthesis", CVPR 2021; the loss of
taming-transformers' `VQLPIPSWithDiscriminator`.

Only the decoder learns. The encoder and the codebook are frozen (and run in float32, as at
inference), so every image keeps its token ids: the transformer trained on those ids, and every
saved project, stay valid with the new decoder. The objective:

    rec  = l1 |x - x'| + l2 (x - x')^2 + p * perceptual(x, x')      (perceptual: EfficientNet-Lite0
                                                                     features, LPIPS-style, as in
                                                                     the tokenizer loop)
    gen  = -D(x')                                                    (hinge generator loss)
    loss = rec + w * lambda * gen,  lambda = ||d rec / d W|| / (||d gen / d W|| + 1e-4)

with W the decoder's last convolution (the adaptive weight of VQGAN), and a PatchGAN
discriminator D (pix2pix's NLayerDiscriminator) trained with the hinge loss on real crops against
reconstructions. D learns from the first step; its gradient reaches the decoder only after
`disc_start` steps, when D has caught up with a decoder that is already good at L1.

    maskgit-editor train decoder --data BANK/train.npz --val-data BANK/val.npz --out runs/gan

The job is resumable (one checkpoint with both networks, both optimizers and the generator state,
written every `ckpt_minutes`), keeps a float32 snapshot of the decoder at every checkpoint for
later selection (bench/tokenizer_quality.py), and writes a sample grid (input | start | now) each
time. EfficientNet-Lite2 is never used here: it is the judge of the selection.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models import data as D
from models.checkpoint import load as load_model
from models.classifier import Classifier, load_classifier, perceptual_distance
from models.maskgit import MaskGITConfig
from models.tokenizer import VQGAN
from models.training.checkpoint import restore_state, save_state
from models.training.data import save_grid, spread

CKPT_NAME = "decoder-gan.ckpt.safetensors"


@dataclass(frozen=True)
class GanConfig:
    model: str = "resources/models/default-128.safetensors"  # MaskGIT whose decoder is tuned
    batch_size: int = 4  # crops per step (a step of 4 takes about 9 s on one shared core)
    # Decoder (Adam), after warmup. 1e-4 with batch 4 cost 0.6 dB validation PSNR in 33 steps
    # before the discriminator had any say: the trained decoder is disturbed by noisy steps.
    lr: float = 3e-5
    disc_lr: float = 2e-4  # discriminator (Adam)
    betas: tuple[float, float] = (0.5, 0.9)  # taming-transformers' GAN betas
    warmup_steps: int = 20  # linear lr warmup of the decoder
    disc_start: int = 60  # steps of discriminator-only training before the decoder sees it
    disc_weight: float = 0.5  # w: scale of the adaptive weight (taming's ImageNet VQGAN)
    disc_channels: int = 64  # first layer width of the PatchGAN
    disc_layers: int = 3  # stride-2 layers of the PatchGAN (receptive field 70 px at 3)
    # The discriminator sees luminance only. The tokens of the shipped default-128 lost much of
    # the input's hue (its encoder's GroupNorm is per channel), so an RGB discriminator made
    # the decoder invent saturated colours (green and magenta patches; Lite2 KID 19 -> 26 after
    # 128 steps): on luma it can only ask for sharper detail, while colour stays with L1/L2.
    disc_luma: bool = True
    l1_weight: float = 1.0
    l2_weight: float = 1.0
    # On models.classifier.perceptual_distance; 0.1 as the decoder's own training (with L1 + L2),
    # so the reconstruction part starts at its optimum and only the adversarial term moves it.
    perceptual_weight: float = 0.1
    perceptual_size: int = 128  # side EfficientNet-Lite0 sees for the perceptual loss
    clip: float = 1.0  # gradient norm clip of the decoder
    seed: int = 0
    threads: int = 1  # torch threads (the job shares 2 cores with everything else)
    # bf16 autocast. Off by default: on a CPU without AVX512-BF16 or AMX bf16 convolutions are
    # emulated (a decoder forward took 87 s instead of 0.8 s in float32). With AMX, --amp
    # --threads 2 --batch-size 8 runs a step in 0.8 s on 2 cores.
    amp: bool = False
    ckpt_minutes: float = 6.0  # wall-clock between checkpoints
    log_seconds: float = 60.0  # wall-clock between log lines
    val_crops: int = 32  # validation crops evaluated at each checkpoint (0: all)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d


# ----------------------------------------------------------------------------- discriminator


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al. 2017, as in taming-transformers): a grid of real/fake logits, each
    judging one overlapping patch. Inputs (B, 3, H, W) in [0, 1]."""

    def __init__(
        self,
        channels: int = 64,
        layers: int = 3,
        generator: torch.Generator | None = None,
        luma: bool = False,
    ):
        super().__init__()
        self.luma = luma
        seq: list[nn.Module] = [nn.Conv2d(1 if luma else 3, channels, 4, 2, 1), nn.LeakyReLU(0.2)]
        ch = channels
        for n in range(1, layers + 1):
            out = channels * min(2**n, 8)
            stride = 2 if n < layers else 1
            seq += [nn.Conv2d(ch, out, 4, stride, 1, bias=False), nn.BatchNorm2d(out),
                    nn.LeakyReLU(0.2)]
            ch = out
        seq.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.net = nn.Sequential(*seq)
        for m in self.modules():  # pix2pix's init, from an explicit generator
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02, generator=generator)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02, generator=generator)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.luma:  # Rec. 601 luma
            x = (x * x.new_tensor([0.299, 0.587, 0.114])[:, None, None]).sum(1, keepdim=True)
        out: torch.Tensor = self.net(x * 2 - 1)  # (B, 1, h, w) logits
        return out


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1 - real).mean() + F.relu(1 + fake).mean())


# ----------------------------------------------------------------------------- one step


@torch.no_grad()
def quantized(tok: VQGAN, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(code vectors (B, D, h, w), ids (B, h, w)) of the frozen encoder, in float32 as the app."""
    ids = tok.encode_to_indices(x)
    return tok.quantizer.lookup(ids), ids


def reconstruction_loss(
    cfg: GanConfig, classifier: Classifier | None, xr: torch.Tensor, x: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    l1 = (xr - x).abs().mean()
    l2 = (xr - x).pow(2).mean()
    rec = cfg.l1_weight * l1 + cfg.l2_weight * l2
    perc = torch.zeros(())
    if cfg.perceptual_weight > 0 and classifier is not None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.amp):
            perc = perceptual_distance(classifier, xr, x, cfg.perceptual_size).mean()
        rec = rec + cfg.perceptual_weight * perc.float()
    return rec, {"l1": l1, "l2": l2, "perceptual": perc}


def adaptive_weight(
    rec: torch.Tensor, gen: torch.Tensor, last: torch.Tensor, cfg: GanConfig
) -> torch.Tensor:
    """VQGAN's lambda: balance the two gradients at the decoder's last layer."""
    g_rec = torch.autograd.grad(rec, last, retain_graph=True)[0]
    g_gen = torch.autograd.grad(gen, last, retain_graph=True)[0]
    lam: torch.Tensor = g_rec.norm() / (g_gen.norm() + 1e-4)
    return lam.clamp(0, 1e4).detach() * cfg.disc_weight


class Trainer:
    """The decoder, the discriminator, their optimizers and the data stream of one run."""

    def __init__(
        self,
        cfg: GanConfig,
        train: D.CropBank,
        tok: VQGAN,
        classifier: Classifier | None,
        config: MaskGITConfig | None = None,
    ):
        self.cfg = cfg
        self.config = config  # of the model the decoder belongs to, recorded in checkpoints
        self.tok = tok
        self.classifier = classifier
        self.size = tok.config.image_size
        tok.encoder.requires_grad_(False).eval()
        tok.quantizer.requires_grad_(False).eval()
        self.decoder = tok.decoder.train()
        init = torch.Generator().manual_seed(cfg.seed)
        self.disc = PatchDiscriminator(cfg.disc_channels, cfg.disc_layers, init,
                                       cfg.disc_luma).train()
        self.opt_g = torch.optim.Adam(self.decoder.parameters(), lr=cfg.lr, betas=cfg.betas)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=cfg.disc_lr, betas=cfg.betas)
        self.gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.sampler = D.BatchSampler(train, cfg.batch_size, self.size, self.gen)
        self.step = 0
        self.elapsed = 0.0

    def autocast(self) -> torch.autocast:
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cfg.amp)

    def _decoder_step(
        self, x: torch.Tensor, zq: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One update of the decoder; (its reconstructions, the loss parts)."""
        cfg = self.cfg
        for g in self.opt_g.param_groups:
            g["lr"] = cfg.lr * min(1.0, (self.step + 1) / max(1, cfg.warmup_steps))
        # D is frozen here so this backward does not fill D's gradients.
        self.disc.requires_grad_(False)
        with self.autocast():
            xr = self.decoder(zq)
        xr = xr.float()
        rec, parts = reconstruction_loss(cfg, self.classifier, xr, x)
        loss = rec
        lam = torch.zeros(())
        gen = torch.zeros(())
        if self.step >= cfg.disc_start:
            with self.autocast():
                gen = -self.disc(xr).float().mean()
            lam = adaptive_weight(rec, gen, self.decoder.conv_out.weight, cfg)
            loss = rec + lam * gen
        self.opt_g.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        gnorm = torch.nn.utils.clip_grad_norm_(self.decoder.parameters(), cfg.clip)
        self.opt_g.step()
        return xr, {**parts, "loss": loss, "gen": gen, "lam": lam, "grad_norm": gnorm}

    def train_step(self) -> dict[str, float]:
        x, _ = self.sampler.next()
        zq, _ = quantized(self.tok, x)
        xr, parts = self._decoder_step(x, zq)
        # Discriminator step: real crops against the reconstructions just made.
        self.disc.requires_grad_(True)
        with self.autocast():
            real = self.disc(x).float()
            fake = self.disc(xr.detach()).float()
        d_loss = hinge_d_loss(real, fake)
        self.opt_d.zero_grad(set_to_none=True)
        torch.autograd.backward(d_loss)
        self.opt_d.step()
        self.step += 1
        mse = (xr.detach().clamp(0, 1) - x).pow(2).mean((1, 2, 3))
        parts.update(d_loss=d_loss, d_real=real.mean(), d_fake=fake.mean(),
                     psnr=(-10 * torch.log10(mse.clamp_min(1e-10))).mean())
        order = ("l1", "l2", "perceptual", "loss", "gen", "lam", "d_loss", "d_real", "d_fake",
                 "grad_norm", "psnr")
        return {k: float(parts[k].detach()) for k in order}

    # ------------------------------------------------------------------------- checkpoints

    def _parts(self) -> dict[str, tuple[nn.Module, torch.optim.Optimizer]]:
        return {"tokenizer.decoder": (self.decoder, self.opt_g), "disc": (self.disc, self.opt_d)}

    def save(self, path: Path) -> None:
        """Both networks, both optimizers, step, time and the data generator, in one file."""
        save_state(path, "decoder", self._parts(), {"step": self.step, "elapsed": self.elapsed},
                   config=self.config, extra={"generator": self.gen.get_state()},
                   run=self.cfg.to_dict())

    def restore(self, path: Path) -> None:
        state, extra = restore_state(path, self._parts())
        self.gen.set_state(extra["generator"])
        self.step, self.elapsed = state["step"], state["elapsed"]

    def snapshot(self, path: Path) -> None:
        """float32 decoder-only weights ('tokenizer.decoder.' keys), for selection and export."""
        save_state(path, "decoder", {"tokenizer.decoder": (self.decoder, None)},
                   {"step": self.step}, config=self.config,
                   run={"base_model": self.cfg.model, **self.cfg.to_dict()})


@torch.no_grad()
def evaluate(
    tok: VQGAN, decoder: nn.Module, classifier: Classifier | None, images: torch.Tensor, amp: bool
) -> tuple[dict[str, float], torch.Tensor]:
    """(PSNR and Lite0 perceptual distance on central crops, the reconstructions)."""
    decoder.eval()
    ps, perc, recs = [], [], []
    for i in range(0, len(images), 32):
        x = images[i:i + 32]
        zq, _ = quantized(tok, x)
        xr = decoder(zq).float()  # float32, as the app decodes
        mse = (xr.clamp(0, 1) - x).pow(2).mean((1, 2, 3))
        ps.append(-10 * torch.log10(mse.clamp_min(1e-10)))
        if classifier is not None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                perc.append(perceptual_distance(classifier, xr.clamp(0, 1), x).float())
        recs.append(xr.clamp(0, 1))
    decoder.train()
    metrics = {"val_psnr": float(torch.cat(ps).mean())}
    if perc:
        metrics["val_perceptual"] = float(torch.cat(perc).mean())
    return metrics, torch.cat(recs)


# ----------------------------------------------------------------------------- the job


@dataclass
class GanRun:
    """One invocation of the job: the trainer and what its checkpoints compare against."""

    cfg: GanConfig
    out: Path
    trainer: Trainer
    start_decoder: dict[str, torch.Tensor]  # the decoder before any fine-tuning
    val_x: torch.Tensor | None  # central validation crops

    def checkpoint(self) -> None:
        trainer, out = self.trainer, self.out
        trainer.save(out / CKPT_NAME)
        trainer.snapshot(out / "snapshots" / f"decoder-{trainer.step:06d}.safetensors")
        rec: dict[str, Any] = {"checkpoint": trainer.step, "elapsed": round(trainer.elapsed, 1)}
        if self.val_x is not None:
            metrics, recs = evaluate(trainer.tok, trainer.decoder, trainer.classifier, self.val_x,
                                     self.cfg.amp)
            rec.update(metrics)
            k = spread(len(self.val_x), 8)
            before = {k2: v.clone() for k2, v in trainer.decoder.state_dict().items()}
            trainer.decoder.load_state_dict(self.start_decoder)
            with torch.no_grad():
                base = trainer.decoder(quantized(trainer.tok, self.val_x[k])[0]).float()
            trainer.decoder.load_state_dict(before)
            save_grid([self.val_x[k], base, recs[k]], out / "samples" / f"{trainer.step:06d}.png")
        _log(out, rec)


def _start(cfg: GanConfig, data: str, val_data: str | None, out: Path,
           classifier_weights: str | None) -> GanRun:
    torch.set_num_threads(cfg.threads)
    (out / "snapshots").mkdir(parents=True, exist_ok=True)
    (out / "samples").mkdir(exist_ok=True)
    model = load_model(cfg.model)
    tok = model.tokenizer.float()
    start_decoder = {k: v.clone() for k, v in tok.decoder.state_dict().items()}
    train = D.load_bank(data)
    val = D.load_bank(val_data) if val_data else None
    # The perceptual network: EfficientNet-Lite0 (never Lite2, the selection's judge).
    classifier = (load_classifier("cpu", classifier_weights)
                  if cfg.perceptual_weight > 0 else None)
    trainer = Trainer(cfg, train, tok, classifier, model.config)
    ckpt = out / CKPT_NAME
    if ckpt.is_file():
        trainer.restore(ckpt)
        _log(out, {"resumed": str(ckpt), "step": trainer.step, "elapsed": trainer.elapsed})
    else:
        _log(out, {"config": cfg.to_dict(), "data": data, "val_data": val_data})
    val_x = None
    if val is not None:
        sel = spread(len(val), cfg.val_crops or len(val))  # spread over every domain
        val_x = D.center(val.images[sel], trainer.size)
        if trainer.step == 0:
            metrics, _ = evaluate(tok, tok.decoder, classifier, val_x, cfg.amp)
            _log(out, {"checkpoint": 0, **metrics})
    return GanRun(cfg, out, trainer, start_decoder, val_x)


def run(cfg: GanConfig, data: str, val_data: str | None, out: Path, steps: int | None,
        minutes: float | None, classifier_weights: str | None = None) -> None:
    """Train until `steps` (total) or `minutes` (this invocation) run out; resumes from `out`."""
    from tqdm import tqdm

    job = _start(cfg, data, val_data, out, classifier_weights)
    trainer = job.trainer
    bar = tqdm(total=steps or None, initial=trainer.step, mininterval=30, desc="decoder",
               file=sys.stderr)
    t0 = time.monotonic()
    t_ckpt = t_log = t0
    base_elapsed = trainer.elapsed
    sums: dict[str, float] = {}
    n = 0
    trained = False
    while (steps is None or trainer.step < steps) and (
            minutes is None or time.monotonic() - t0 < minutes * 60):
        for k, v in trainer.train_step().items():
            sums[k] = sums.get(k, 0.0) + v
        n += 1
        trained = True
        trainer.elapsed = base_elapsed + time.monotonic() - t0
        bar.update(1)
        now = time.monotonic()
        if now - t_log >= cfg.log_seconds:
            _log(out, {"step": trainer.step, "elapsed": round(trainer.elapsed, 1),
                       "s_per_step": round((now - t_log) / n, 3),
                       **{k: round(v / n, 5) for k, v in sums.items()}})
            sums, n, t_log = {}, 0, now
        if now - t_ckpt >= cfg.ckpt_minutes * 60:
            job.checkpoint()
            t_ckpt = time.monotonic()
    bar.close()
    if trained:  # a run whose budget was already spent has nothing new to save
        job.checkpoint()


def _log(out: Path, record: dict[str, Any]) -> None:
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **record}
    with open(out / "log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
