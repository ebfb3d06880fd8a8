"""The numpy facade over a MaskGIT model: what the editor's worker and the CLI call.

numpy in, numpy out: images are (H, W, 3) uint8 windows of the model's size, token masks are
(h, w) bool with True = regenerate. Every call takes a seed; the same seed gives the same pixels.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from models import onednn, sampler
from models.maskgit import MaskGIT
from models.tokenizer import with_memory_format

if TYPE_CHECKING:
    from models.classifier import Classifier


@dataclass(frozen=True)
class SamplingParams:
    steps: int = 12  # schedule length (the paper: 8 @256 px, 12 @512 px)
    start_step: int = 2  # edits skip the first steps of the schedule, as the official editor
    schedule: str = "cosine"  # one of sampler.SCHEDULES
    choice_temperature: float = 4.5  # Gumbel noise on confidences, annealed to 0
    temperature: float = 1.0  # softmax temperature of the token draw
    order: str = "confidence"  # which tokens a step keeps: one of sampler.ORDERS
    # Exemplar start: below 1, the masked cells start from the tokens the image already has
    # there (the caller puts an exemplar fill of the hole in the image), and only this share of
    # them, the least likely under the transformer, is decoded again; the schedule starts at
    # the step that leaves that share masked (MaskGIT's editing mode, part-way in).
    remask: float = 1.0
    # Weight of the exemplar token prior (sampler.exemplar_prior over the window's known
    # tokens) mixed into the transformer's probabilities; 0 = the transformer alone.
    prior: float = 0.0

    def __post_init__(self) -> None:
        if self.steps < 1 or not 0 <= self.start_step < self.steps:
            raise ValueError(f"need steps >= 1 and 0 <= start_step < steps, got {self}")
        if self.schedule not in sampler.SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; known: {sampler.SCHEDULES}")
        if self.order not in sampler.ORDERS:
            raise ValueError(f"unknown order {self.order!r}; known: {sampler.ORDERS}")
        if not 0 < self.remask <= 1 or not 0 <= self.prior < 1:
            raise ValueError(f"need 0 < remask <= 1 and 0 <= prior < 1, got {self}")


GENERATE = SamplingParams(steps=16, start_step=0)  # a whole new image from nothing


@dataclass(frozen=True)
class Step:
    step: int  # index in 0..total-1
    total: int  # schedule length
    tokens: np.ndarray  # (h, w) int64: every position sampled at this step
    masked: np.ndarray  # (h, w) bool: positions still to be decided after this step
    # (H, W, 3) uint8: the decoded window of `tokens`. Before the last step, only the cells
    # around the mask are decoded and the rest is the input image (see Engine._preview_region).
    preview: np.ndarray
    confidence: np.ndarray  # (h, w) float32: p(token) under this step's logits

    @property
    def done(self) -> bool:
        return self.step == self.total - 1


def fast_bf16_cpu() -> bool:
    """True when the CPU multiplies bf16 natively (AMX tiles or AVX512-BF16), where bf16 autocast
    beats fp32 (measured 2.4-2.5x per transformer step on a 2-core AVX512-BF16 EPYC, weights
    stored in bf16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' was asked for but Metal is not available")
    return torch.device(name)


class Engine:
    """Owns `model`: with bf16 its weights are converted in place, and on a CPU packed for
    oneDNN (models.onednn), after which it runs through this Engine only (give each its own)."""

    def __init__(self, model: MaskGIT, device: str = "auto", bf16: bool | None = None,
                 pack: bool = True):
        if onednn.is_packed(model):
            raise ValueError("this model belongs to another Engine (its weights are packed for "
                             "oneDNN): give each Engine its own, e.g. load the file again")
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.config = model.config
        if bf16 is None:
            bf16 = self.device.type == "cuda" or (self.device.type == "cpu" and fast_bf16_cpu())
        self.bf16 = bf16
        if bf16:
            # Stored in bf16 once, instead of autocast casting every weight at every step. The
            # codebook stays fp32 so nearest-code search is exact; autocast still runs LayerNorm,
            # GroupNorm and softmax in fp32.
            for part in (model.transformer, model.tokenizer.encoder, model.tokenizer.decoder):
                part.to(torch.bfloat16)
        # Convolutions on NHWC are markedly faster with oneDNN (and cuDNN).
        with_memory_format(model.tokenizer, torch.channels_last)
        if pack and self.device.type == "cpu" and onednn.available(
                torch.bfloat16 if bf16 else torch.float32):
            # GELU and residual adds fused, weights reordered once; the model is this
            # Engine's only from now on (see models.onednn.pack). False: PyTorch's kernels.
            onednn.pack(model)
        self._encoded: tuple[bytes, torch.Tensor] | None = None
        # How many candidates get a decoded preview at intermediate steps (None: all). A
        # 256 px VQGAN decode costs ~270 ms on a 2-core CPU, more than a transformer step, so
        # there only the first candidate (the one on the canvas) is decoded live; the others
        # show their input until the last step, which decodes every candidate.
        big_cpu = self.device.type == "cpu" and self.window >= 256
        self.live_previews: int | None = 1 if big_cpu else None

    @classmethod
    def from_file(cls, path: str | Path, device: str = "auto", bf16: bool | None = None) -> Engine:
        from models.checkpoint import load

        return cls(load(path), device=device, bf16=bf16)

    # ------------------------------------------------------------------ geometry
    @property
    def window(self) -> int:
        return self.config.window

    @property
    def tokens_per_side(self) -> int:
        return self.config.tokens_per_side

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _check_image(self, image: np.ndarray) -> None:
        w = self.window
        if image.dtype != np.uint8 or image.shape != (w, w, 3):
            raise ValueError(f"image must be ({w}, {w}, 3) uint8, got {image.shape} {image.dtype}")

    def _check_mask(self, token_mask: np.ndarray) -> None:
        t = self.tokens_per_side
        if token_mask.shape != (t, t):
            raise ValueError(f"token mask must be ({t}, {t}), got {token_mask.shape}")

    # ------------------------------------------------------------------ tokens <-> pixels
    @torch.inference_mode()
    def encode(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 window -> (h, w) token ids. The last window is cached."""
        self._check_image(image)
        key = hashlib.blake2b(image.tobytes(), digest_size=16).digest()
        if self._encoded is None or self._encoded[0] != key:
            x = torch.from_numpy(image).to(self.device).permute(2, 0, 1)[None].float() / 255
            with self._autocast():
                ids = self.model.tokenizer.encode_to_indices(x)[0]
            self._encoded = (key, ids)
        return self._encoded[1].cpu().numpy()

    @torch.inference_mode()
    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """(B, h, w) or (h, w) token ids -> uint8 image(s)."""
        ids = torch.as_tensor(tokens, device=self.device).long()
        return self._decode(ids[None] if ids.dim() == 2 else ids).squeeze(0)

    def _decode(self, ids: torch.Tensor) -> np.ndarray:
        with self._autocast():
            x = self.model.tokenizer.decode_from_indices(ids)
        x = (x.float().clamp(0, 1) * 255).round().to(torch.uint8)
        return x.permute(0, 2, 3, 1).cpu().numpy()  # (B, H, W, 3)

    # ------------------------------------------------------------------ previews
    PREVIEW_MARGIN = 3  # tokens of context around the changed cells for the decoder to see

    def _preview_region(self, token_mask: np.ndarray) -> tuple[slice, slice, slice, slice] | None:
        """(inner rows, inner cols, crop rows, crop cols) of the token grid to decode for an
        intermediate preview, or None when that crop is most of the window anyway.

        Only masked cells change, so a preview needs only them decoded (plus context); the decoder
        is most of a step's cost for the official models. GroupNorm sees crop statistics, so
        intermediate previews differ slightly from a full decode; the last step is always full.
        """
        rows, cols = np.nonzero(token_mask)
        if rows.size == 0:
            return None
        t, m = self.tokens_per_side, self.PREVIEW_MARGIN

        def span(lo: int, hi: int, pad: int) -> slice:
            return slice(max(0, lo - pad), min(t, hi + 1 + pad))

        inner_r, inner_c = span(rows.min(), rows.max(), 1), span(cols.min(), cols.max(), 1)
        crop_r, crop_c = span(rows.min(), rows.max(), 1 + m), span(cols.min(), cols.max(), 1 + m)
        if (crop_r.stop - crop_r.start) * (crop_c.stop - crop_c.start) > 0.6 * t * t:
            return None
        return inner_r, inner_c, crop_r, crop_c

    def _unchanged(self, image: np.ndarray | None, candidates: int) -> np.ndarray:
        """(candidates, H, W, 3): what a candidate without a live preview shows."""
        if image is None:
            w = self.window
            return np.full((candidates, w, w, 3), 127, np.uint8)
        return image if image.ndim == 4 else np.repeat(image[None], candidates, 0)

    def _decode_region(
        self, grid: torch.Tensor, region: tuple[slice, slice, slice, slice], image: np.ndarray
    ) -> np.ndarray:
        inner_r, inner_c, crop_r, crop_c = region
        f = self.window // self.tokens_per_side
        patch = self._decode(grid[:, crop_r, crop_c])  # (B, crop_h*f, crop_w*f, 3)
        b = grid.shape[0]
        out = image[:b].copy() if image.ndim == 4 else np.repeat(image[None], b, 0)
        y0, x0 = (inner_r.start - crop_r.start) * f, (inner_c.start - crop_c.start) * f
        h, w = (inner_r.stop - inner_r.start) * f, (inner_c.stop - inner_c.start) * f
        out[:, inner_r.start * f : inner_r.stop * f, inner_c.start * f : inner_c.stop * f] = patch[
            :, y0 : y0 + h, x0 : x0 + w
        ]
        return out

    # ------------------------------------------------------------------ decoding
    def _logits_fn(self, class_tokens: torch.Tensor) -> sampler.LogitsFn:
        k = self.config.transformer.codebook_size

        def logits_fn(ids: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            seq = torch.cat([class_tokens[:, None], ids], 1)  # (B, 1+N)
            # Candidates of one picture start from the same tokens: their first forward is one
            # row's (a quarter of the first step with 4 candidates); the sampling noise differs.
            same = seq.shape[0] > 1 and bool((seq == seq[:1]).all())
            with self._autocast():  # image positions `rows` (after the class token), codes only
                logits: torch.Tensor = self.model.transformer(
                    seq[:1] if same else seq, rows + 1, vocab=k)
            return logits.expand(seq.shape[0], -1, -1) if same else logits

        return logits_fn

    @torch.inference_mode()
    def edit_many(
        self,
        image: np.ndarray | None,
        token_mask: np.ndarray,
        class_id: int | None,
        params: SamplingParams = SamplingParams(),
        seed: int = 0,
        candidates: int = 1,
        tokens: np.ndarray | None = None,
    ) -> Iterator[list[Step]]:
        """Regenerate the masked tokens of a window as `candidates` samples decoded in one batch.

        The known tokens come from `tokens` (h, w) when given (re-rolling, locked cells), else from
        encoding `image`. `class_id` None picks the class automatically from the image.
        `image` may also be (candidates, H, W, 3) and `tokens` (candidates, h, w): one picture
        per candidate, for the later windows of an edit where every candidate has continued its
        own picture; they still decode as one batch.
        """
        self._check_mask(token_mask)
        if image is not None and image.ndim == 4 and image.shape[0] != candidates:
            raise ValueError(f"{image.shape[0]} images for {candidates} candidates")
        if tokens is None:
            if image is None:
                raise ValueError("edit needs an image or its tokens")
            tokens = self.encode(image) if image.ndim == 3 else np.stack(
                [self.encode(im) for im in image])
        yield from self._run(image, tokens, token_mask, class_id, params, seed, candidates, None)

    @torch.inference_mode()
    def branch(
        self,
        step: Step,
        start_mask: np.ndarray,
        class_id: int | None,
        params: SamplingParams = SamplingParams(),
        seed: int = 0,
        candidates: int = 1,
        image: np.ndarray | None = None,
    ) -> Iterator[list[Step]]:
        """Continue a decode from `step` with a new seed, class or temperature.

        The cells still masked at `step` are decoded again from step `step.step + 1` on, and the
        schedule keeps counting on the cells masked at the start (`start_mask`), so the branch
        follows the original plan: steps up to `step` are shared, what comes after is new.
        """
        if step.done:
            raise ValueError("the last step has nothing left to decode; regenerate instead")
        self._check_mask(start_mask)
        params = replace(params, steps=step.total, start_step=step.step + 1)
        n0 = int(np.count_nonzero(start_mask))
        yield from self._run(
            image, step.tokens, step.masked, class_id, params, seed, candidates, n0, start_mask
        )

    def _run(
        self,
        image: np.ndarray | None,
        tokens: np.ndarray,
        token_mask: np.ndarray,
        class_id: int | None,
        params: SamplingParams,
        seed: int,
        candidates: int,
        n0: int | None,
        region_mask: np.ndarray | None = None,
    ) -> Iterator[list[Step]]:
        cfg = self.config.transformer
        cls = self._class_tokens(image, token_mask, class_id, candidates)
        t = self.tokens_per_side
        ids = torch.as_tensor(tokens, device=self.device).long().reshape(-1, t * t)
        if ids.shape[0] not in (1, candidates):
            raise ValueError(f"{ids.shape[0]} token grids for {candidates} candidates")
        mask = torch.as_tensor(token_mask, device=self.device).flatten()
        guess = ids.expand(candidates, -1)  # (B, N) what the image has in the masked cells
        ids = torch.where(mask, cfg.mask_token_id, ids).expand(candidates, -1).clone()  # (B, N)
        gen = torch.Generator(self.device).manual_seed(int(seed))
        region_mask = token_mask if region_mask is None else region_mask
        region = self._preview_region(region_mask) if image is not None else None
        logits_fn = self._logits_fn(cls)
        start_step = params.start_step
        if params.remask < 1 and n0 is None and image is not None and bool(mask.any()):
            ids, start_step = self._exemplar_start(ids, guess, mask, logits_fn, params, gen)
            n0 = int(mask.sum())
        prior_fn = self._prior_fn(region_mask) if params.prior > 0 else None
        for s in sampler.decode(
            ids,
            logits_fn,
            cfg.mask_token_id,
            gen,
            steps=params.steps,
            start_step=start_step,
            schedule=params.schedule,
            choice_temperature=params.choice_temperature,
            temperature=params.temperature,
            order=params.order,
            n0=None if n0 is None else torch.tensor([n0], device=self.device),
            prior_fn=prior_fn,
            prior_weight=params.prior,
            region=torch.as_tensor(region_mask, device=self.device).flatten(),
        ):
            yield self._steps(s, image, region, candidates)

    def _class_tokens(
        self, image: np.ndarray | None, token_mask: np.ndarray, class_id: int | None,
        candidates: int,
    ) -> torch.Tensor:
        """(B,) class token ids; `class_id` None: the automatic class of the (first) image."""
        if class_id is None:
            first = image if image is None or image.ndim == 3 else image[0]
            class_id = self.auto_class(first, token_mask) if first is not None else 0
        token = self.config.transformer.class_token(class_id)
        return torch.full((candidates,), token, device=self.device)

    def _prior_fn(self, region_mask: np.ndarray) -> sampler.PriorFn:
        """The exemplar token prior over the tokens outside `region_mask`."""
        mask_id, t = self.config.transformer.mask_token_id, self.tokens_per_side
        source = ~torch.as_tensor(region_mask, device=self.device).flatten()[None]
        codebook = self.model.tokenizer.quantizer.codebook.detach()

        def prior_fn(cur: torch.Tensor) -> torch.Tensor:
            return sampler.exemplar_prior(cur, cur != mask_id, source.expand_as(cur), codebook, t)

        return prior_fn

    def _steps(
        self,
        s: sampler.DecodeStep,
        image: np.ndarray | None,
        region: tuple[slice, slice, slice, slice] | None,
        candidates: int,
    ) -> list[Step]:
        """One decoding step as numpy Steps, with the previews this step gets."""
        t = self.tokens_per_side
        grid = s.tokens.view(-1, t, t)
        last = s.step == s.total - 1
        live = grid if last or self.live_previews is None else grid[: self.live_previews]
        if region is None or last or image is None:
            previews = self._decode(live)
        else:
            previews = self._decode_region(live, region, image)
        if len(previews) < candidates:
            previews = np.concatenate([previews, self._unchanged(image, candidates)[
                len(previews):]])
        return [
            Step(
                s.step,
                s.total,
                s.tokens[b].view(t, t).cpu().numpy(),
                s.masked[b].view(t, t).cpu().numpy(),
                previews[b],
                s.confidence[b].view(t, t).float().cpu().numpy(),
            )
            for b in range(candidates)
        ]

    def _exemplar_start(
        self,
        ids: torch.Tensor,
        guess: torch.Tensor,
        mask: torch.Tensor,
        logits_fn: sampler.LogitsFn,
        params: SamplingParams,
        gen: torch.Generator,
    ) -> tuple[torch.Tensor, int]:
        """(ids with the kept guesses filled in, the step to start at).

        Each guessed token is scored by the transformer with the whole hole masked (it was
        trained to predict masked tokens only), ranked like a decode step's confidences (log p
        plus annealed Gumbel noise, so candidates keep different guesses), and the least likely
        `remask` share goes back to the mask."""
        n0 = int(mask.sum())
        start = params.start_step
        while start < params.steps - 1 and sampler.mask_ratio(
                start / params.steps, params.schedule, n0) > params.remask:
            start += 1
        n_masked = max(1, math.floor(n0 * sampler.mask_ratio(start / params.steps,
                                                              params.schedule, n0)))
        if start == 0 or n_masked >= n0:
            return ids, params.start_step
        rows = mask.nonzero()[:, 0]
        logp = torch.log_softmax(logits_fn(ids, rows).float(), -1)  # (B, R, K)
        score = torch.full(ids.shape, torch.inf, device=ids.device)
        score[:, rows] = logp.gather(-1, guess[:, rows].clamp(0, logp.shape[-1] - 1)[..., None])[
            ..., 0]
        # Off the hole the score stays inf (inf plus noise): never masked again.
        score = score + params.choice_temperature * (1 - start / params.steps) * sampler.gumbel(
            tuple(score.shape), gen, ids.device)
        cutoff = score.sort(-1).values[:, n_masked - 1 : n_masked]
        keep = mask[None] & (score > cutoff)
        return torch.where(keep, guess, ids), start

    def edit(
        self,
        image: np.ndarray | None,
        token_mask: np.ndarray,
        class_id: int | None,
        params: SamplingParams = SamplingParams(),
        seed: int = 0,
        tokens: np.ndarray | None = None,
    ) -> Iterator[Step]:
        """The DESIGN.md contract: one candidate, one Step per decoding step."""
        for steps in self.edit_many(image, token_mask, class_id, params, seed, 1, tokens):
            yield steps[0]

    def generate(
        self, class_id: int, params: SamplingParams = GENERATE, seed: int = 0, candidates: int = 1
    ) -> Iterator[list[Step]]:
        """A whole new window of class `class_id`: every token masked (class-conditional)."""
        t = self.tokens_per_side
        full = np.ones((t, t), bool)
        return self.edit_many(
            None, full, class_id, params, seed, candidates, tokens=np.zeros((t, t), np.int64)
        )

    # ------------------------------------------------------------------ classes
    @torch.inference_mode()
    def prepare(self) -> None:
        """Load the automatic-class classifier now (once per process, ~0.5 s). Building it holds
        the GIL for tens of ms; done right after the model loads, that pause does not land in
        the middle of the first edit, where the GUI thread would feel it."""
        clf = _classifier(str(self.device))
        w = self.window
        clf.predict(torch.full((1, 3, w, w), 0.5, device=self.device))

    @torch.inference_mode()
    def auto_class(self, image: np.ndarray, token_mask: np.ndarray | None = None) -> int:
        """The ImageNet class the visible context looks like.

        Uses the EfficientNet-Lite0 classifier on the window with the masked area greyed out, so
        the answer comes from what is left of the image, not from what will be replaced. When the
        model's file records the classes its transformer was trained on, the answer is the most
        likely of those (files without the record: any of the 1000).
        """
        x = image.astype(np.float32) / 255
        if token_mask is not None and token_mask.any():
            f = self.window // self.tokens_per_side
            pix = np.kron(token_mask, np.ones((f, f), bool))
            x[pix] = 0.5
        clf = _classifier(str(self.device))
        probs = clf.predict(torch.from_numpy(x).permute(2, 0, 1)[None].to(self.device))[0]
        trained = self.model.trained_classes
        if trained is None:
            return int(probs.argmax())
        # A class the transformer never saw conditions it on an untrained embedding: the most
        # likely class among those it was trained on instead.
        ids = torch.tensor(trained, device=probs.device)
        return int(ids[probs[ids].argmax()])


@functools.cache
def _classifier(device: str) -> Classifier:
    from models.classifier import load_classifier

    return load_classifier(torch.device(device))
