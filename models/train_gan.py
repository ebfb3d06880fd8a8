"""Adversarial fine-tuning of a trained tokenizer's decoder (VQGAN: Esser et al., "Taming
Transformers for High-Resolution Image Synthesis", CVPR 2021; the loss of taming-transformers'
`VQLPIPSWithDiscriminator`).

Only the decoder learns. The encoder and the codebook are frozen (and run in float32, as at
inference), so every image keeps its token ids: the transformer trained on those ids, and every
saved project, stay valid with the new decoder. The objective:

    rec  = l1 |x - x'| + l2 (x - x')^2 + p * perceptual(x, x')      (perceptual: EfficientNet-Lite0
                                                                     features, LPIPS-style, as in
                                                                     models/train.py)
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

import argparse
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from models import data as D
from models.checkpoint import load as load_model
from models.classifier import load_classifier, perceptual_distance
from models.tokenizer import VQGAN

CKPT_FORMAT = "maskgit-editor/train-decoder-1"
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
    # bf16 autocast. Off by default: on a CPU without AVX512-BF16 (this AMD EPYC has AVX2 only)
    # bf16 convolutions are emulated, a decoder forward took 87 s instead of 0.8 s in float32.
    amp: bool = False
    ckpt_minutes: float = 6.0  # wall-clock between checkpoints
    log_seconds: float = 60.0  # wall-clock between log lines
    val_crops: int = 32  # validation crops evaluated at each checkpoint (0: all)

    def to_dict(self) -> dict:
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
        return self.net(x * 2 - 1)  # (B, 1, h, w) logits


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1 - real).mean() + F.relu(1 + fake).mean())


# ----------------------------------------------------------------------------- one step


@torch.no_grad()
def quantized(tok: VQGAN, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(code vectors (B, D, h, w), ids (B, h, w)) of the frozen encoder, in float32 as the app."""
    ids = tok.encode_to_indices(x)
    return tok.quantizer.lookup(ids), ids


def reconstruction_loss(
    cfg: GanConfig, classifier, xr: torch.Tensor, x: torch.Tensor
) -> tuple[torch.Tensor, dict]:
    l1 = (xr - x).abs().mean()
    l2 = (xr - x).pow(2).mean()
    rec = cfg.l1_weight * l1 + cfg.l2_weight * l2
    perc = torch.zeros(())
    if cfg.perceptual_weight > 0:
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
    lam = g_rec.norm() / (g_gen.norm() + 1e-4)
    return lam.clamp(0, 1e4).detach() * cfg.disc_weight


class Trainer:
    """The decoder, the discriminator, their optimizers and the data stream of one run."""

    def __init__(self, cfg: GanConfig, train: D.CropBank, tok: VQGAN, classifier):
        self.cfg = cfg
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

    def autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cfg.amp)

    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        x, _ = self.sampler.next()
        zq, _ = quantized(self.tok, x)
        for g in self.opt_g.param_groups:
            g["lr"] = cfg.lr * min(1.0, (self.step + 1) / max(1, cfg.warmup_steps))
        # Decoder step. D is frozen here so this backward does not fill D's gradients.
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
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(self.decoder.parameters(), cfg.clip)
        self.opt_g.step()
        # Discriminator step: real crops against the reconstructions just made.
        self.disc.requires_grad_(True)
        with self.autocast():
            real = self.disc(x).float()
            fake = self.disc(xr.detach()).float()
        d_loss = hinge_d_loss(real, fake)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        self.step += 1
        mse = (xr.detach().clamp(0, 1) - x).pow(2).mean((1, 2, 3))
        out = {k: float(v.detach()) for k, v in parts.items()}
        out.update(loss=float(loss.detach()), gen=float(gen.detach()), lam=float(lam),
                   d_loss=float(d_loss.detach()), d_real=float(real.detach().mean()),
                   d_fake=float(fake.detach().mean()), grad_norm=float(gnorm),
                   psnr=float((-10 * torch.log10(mse.clamp_min(1e-10))).mean()))
        return out

    # ------------------------------------------------------------------------- checkpoints

    def _parts(self) -> tuple[tuple[str, nn.Module, torch.optim.Optimizer], ...]:
        return (("decoder", self.decoder, self.opt_g), ("disc", self.disc, self.opt_d))

    def save(self, path: Path) -> None:
        """Both networks, both optimizers, step, time and the data generator, in one file."""
        t: dict[str, torch.Tensor] = {}
        for name, mod, opt in self._parts():
            t.update({f"{name}.{k}": v.detach().float().contiguous()
                      for k, v in mod.state_dict().items()})
            names = {id(p): n for n, p in mod.named_parameters()}
            for p, st in opt.state.items():
                for k, v in st.items():
                    t[f"opt_{name}.{names[id(p)]}.{k}"] = v.detach().float().contiguous()
        t["generator"] = self.gen.get_state()
        meta = {"format": CKPT_FORMAT, "config": json.dumps(self.cfg.to_dict()),
                "state": json.dumps({"step": self.step, "elapsed": self.elapsed})}
        tmp = path.with_suffix(".tmp")
        save_file(t, str(tmp), metadata=meta)
        os.replace(tmp, path)  # a crash mid-write never destroys the last good checkpoint

    def restore(self, path: Path) -> None:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("format") != CKPT_FORMAT:
            raise SystemExit(f"{path}: not a decoder fine-tuning checkpoint")
        t = load_file(str(path))
        for name, mod, opt in self._parts():
            sd = mod.state_dict()
            mod.load_state_dict({k: t[f"{name}.{k}"].to(v.dtype) for k, v in sd.items()})
            for n, p in mod.named_parameters():
                prefix = f"opt_{name}.{n}."
                st = {k[len(prefix):]: v for k, v in t.items() if k.startswith(prefix)}
                if st:
                    opt.state[p] = st
        self.gen.set_state(t["generator"])
        state = json.loads(meta["state"])
        self.step, self.elapsed = state["step"], state["elapsed"]


def save_decoder(decoder: nn.Module, path: Path, meta: dict) -> None:
    """float32 decoder-only weights ('tokenizer.decoder.' keys), for selection and export."""
    t = {f"tokenizer.decoder.{k}": v.detach().float().contiguous()
         for k, v in decoder.state_dict().items()}
    save_file(t, str(path), metadata={k: json.dumps(v) for k, v in meta.items()})


@torch.no_grad()
def evaluate(
    tok: VQGAN, decoder: nn.Module, classifier, images: torch.Tensor, amp: bool
) -> tuple[dict, torch.Tensor]:
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


def save_grid(rows: list[torch.Tensor], path: Path) -> None:
    from models.train import save_grid as grid

    grid(rows, path)


# ----------------------------------------------------------------------------- the job


def run(cfg: GanConfig, data: str, val_data: str | None, out: Path, steps: int | None,
        minutes: float | None, classifier_weights: str | None = None) -> int:
    """Train until `steps` (total) or `minutes` (this invocation) run out; resumes from `out`."""
    from tqdm import tqdm

    torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    (out / "snapshots").mkdir(exist_ok=True)
    (out / "samples").mkdir(exist_ok=True)
    model = load_model(cfg.model)
    tok = model.tokenizer.float()
    start_decoder = {k: v.clone() for k, v in tok.decoder.state_dict().items()}
    train = D.load_bank(data)
    val = D.load_bank(val_data) if val_data else None
    # The perceptual network: EfficientNet-Lite0 (never Lite2, the selection's judge).
    classifier = (load_classifier("cpu", classifier_weights)
                  if cfg.perceptual_weight > 0 else None)
    trainer = Trainer(cfg, train, tok, classifier)
    ckpt = out / CKPT_NAME
    if ckpt.is_file():
        trainer.restore(ckpt)
        _log(out, {"resumed": str(ckpt), "step": trainer.step, "elapsed": trainer.elapsed})
    else:
        _log(out, {"config": cfg.to_dict(), "data": data, "val_data": val_data})

    val_x = None
    if val is not None:
        n = len(val) if not cfg.val_crops else min(cfg.val_crops, len(val))
        sel = torch.linspace(0, len(val) - 1, n).long()  # spread over every domain
        val_x = D.center(val.images[sel], trainer.size)
        if trainer.step == 0:
            metrics, _ = evaluate(tok, tok.decoder, classifier, val_x, cfg.amp)
            _log(out, {"checkpoint": 0, **metrics})

    def checkpoint() -> None:
        trainer.save(ckpt)
        save_decoder(trainer.decoder, out / "snapshots" / f"decoder-{trainer.step:06d}.safetensors",
                     {"step": trainer.step, "base_model": cfg.model, "config": cfg.to_dict()})
        rec = {"checkpoint": trainer.step, "elapsed": round(trainer.elapsed, 1)}
        if val_x is not None:
            metrics, recs = evaluate(tok, trainer.decoder, classifier, val_x, cfg.amp)
            rec.update(metrics)
            k = torch.linspace(0, len(val_x) - 1, min(8, len(val_x))).long()
            now = trainer.decoder.state_dict()
            before = {k2: v.clone() for k2, v in now.items()}
            trainer.decoder.load_state_dict(start_decoder)
            with torch.no_grad():
                base = trainer.decoder(quantized(tok, val_x[k])[0]).float()
            trainer.decoder.load_state_dict(before)
            save_grid([val_x[k], base, recs[k]], out / "samples" / f"{trainer.step:06d}.png")
        _log(out, rec)

    bar = tqdm(total=steps or None, initial=trainer.step, mininterval=30, desc="decoder",
               file=sys.stderr)
    t0 = time.monotonic()
    t_ckpt = t_log = t0
    base_elapsed = trainer.elapsed
    sums: dict[str, float] = {}
    n = 0
    trained = False
    while True:
        now = time.monotonic()
        if steps is not None and trainer.step >= steps:
            break
        if minutes is not None and now - t0 >= minutes * 60:
            break
        parts = trainer.train_step()
        trained = True
        trainer.elapsed = base_elapsed + time.monotonic() - t0
        bar.update(1)
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v
        n += 1
        now = time.monotonic()
        if now - t_log >= cfg.log_seconds:
            _log(out, {"step": trainer.step, "elapsed": round(trainer.elapsed, 1),
                       "s_per_step": round((now - t_log) / n, 3),
                       **{k: round(v / n, 5) for k, v in sums.items()}})
            sums, n, t_log = {}, 0, now
        if now - t_ckpt >= cfg.ckpt_minutes * 60:
            checkpoint()
            t_ckpt = time.monotonic()
    bar.close()
    if trained:
        checkpoint()
    return 0


def _log(out: Path, record: dict) -> None:
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **record}
    with open(out / "log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


def export(model_path: str, decoder_path: str, out: str) -> None:
    """`model_path` with its decoder replaced by `decoder_path`'s, in the same dtype and config.
    Every other tensor is copied byte for byte."""
    from models.checkpoint import read_config

    with safe_open(model_path, framework="pt") as f:
        meta = f.metadata() or {}
        t = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is no dict)
    read_config(Path(model_path))  # a MaskGIT file of ours, or raise
    new = load_file(decoder_path)
    missing = [k for k in t if k.startswith("tokenizer.decoder.") and k not in new]
    extra = [k for k in new if k not in t]
    if missing or extra:
        raise SystemExit(f"decoder keys do not match: missing {missing[:3]}, extra {extra[:3]}")
    for k, v in new.items():
        t[k] = v.to(t[k].dtype).contiguous()
    save_file(t, out, metadata=meta)


# ----------------------------------------------------------------------------- CLI


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="maskgit-editor train decoder",
                                     description=__doc__.split("\n")[0])
    p.add_argument("--data", help="training crop bank (.npz from `train pack`)")
    p.add_argument("--val-data", help="validation crop bank (.npz)")
    p.add_argument("--out", default="runs/decoder-gan", help="checkpoint, snapshots, samples, log")
    p.add_argument("--steps", type=int, help="total step budget (resumes included)")
    p.add_argument("--minutes", type=float, help="wall-clock budget of this invocation")
    p.add_argument("--classifier-weights",
                   help="EfficientNet-Lite0 weights for the perceptual loss")
    p.add_argument("--export", nargs=2, metavar=("DECODER", "OUT"),
                   help="write --model with the decoder of this snapshot to OUT, and stop")
    for f in dataclasses.fields(GanConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        elif f.name == "betas":
            p.add_argument(flag, type=float, nargs=2, default=f.default)
        else:
            typ = {"int": int, "float": float, "str": str}[f.type]
            p.add_argument(flag, type=typ, default=f.default)
    return p


def main(argv: list[str] | None = None, args: argparse.Namespace | None = None) -> int:
    if args is None:
        args = build_parser().parse_args(argv)
    if args.export:
        export(args.model, args.export[0], args.export[1])
        return 0
    if not args.data:
        raise SystemExit("--data is required")
    cfg = GanConfig(**{f.name: (tuple(getattr(args, f.name)) if f.name == "betas"
                                else getattr(args, f.name))
                       for f in dataclasses.fields(GanConfig)})
    return run(cfg, args.data, args.val_data, Path(args.out), args.steps, args.minutes,
               args.classifier_weights)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
