"""MaskGIT's iterative parallel decoder (Chang et al., CVPR 2022, section 3.2).

Follows the official `parallel_decode.decode`: at every step all positions are sampled at once,
known tokens are kept, and the least confident of the new tokens are masked again; how many is
set by a schedule counted on the tokens that were masked at the start (N0). Plain functions over
a `logits_fn`; nothing here knows about images.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

# ((B, N) ids, (R,) positions) -> (B, R, K) logits over codes at those positions
LogitsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# (B, N) current ids (mask id where undecided) -> (B, N, K) probabilities over codes
PriorFn = Callable[[torch.Tensor], torch.Tensor]

SCHEDULES = ("cosine", "arccos", "uniform", "pow2", "pow3", "log", "exp")
# Which masked tokens a step keeps: the most confident (MaskGIT) or the next ones of a fixed
# quasi-random spatial order (Halton-MaskGIT, Besnier et al. 2025), which spreads each step's
# tokens over the grid instead of growing them where the model is already sure.
ORDERS = ("confidence", "halton")


def _radical_inverse(i: int, base: int) -> float:
    f, out = 1.0, 0.0
    while i:
        f /= base
        out += f * (i % base)
        i //= base
    return out


def halton_rank(side: int) -> torch.Tensor:
    """(side * side,) long: each cell of a side x side grid's position in the 2-D Halton
    sequence (bases 2 and 3), first hit first; every cell gets a distinct rank."""
    rank = torch.full((side * side,), -1, dtype=torch.long)
    n, i = 0, 1
    while n < side * side:
        cell = int(_radical_inverse(i, 3) * side) * side + int(_radical_inverse(i, 2) * side)
        if rank[cell] < 0:
            rank[cell] = n
            n += 1
        i += 1
    return rank


def mask_ratio(ratio: float, schedule: str, total_unknown: int) -> float:
    """Share of the N0 start tokens still masked after a fraction `ratio` of the steps.

    `pow-k` is written `powK` (e.g. pow2). `log` and `exp` depend on N0, as in the official code.
    """
    r = float(ratio)
    n = max(int(total_unknown), 2)
    if schedule == "uniform":
        m = 1.0 - r
    elif schedule.startswith("pow"):
        m = 1.0 - r ** float(schedule[3:])
    elif schedule == "cosine":
        m = math.cos(math.pi / 2 * r)
    elif schedule == "arccos":  # from MAGE / Besnier & Chen 2023: fewer tokens early
        m = math.acos(min(max(r, 0.0), 1.0)) / (math.pi / 2)
    elif schedule == "log":
        m = -math.log2(r) / math.log2(n) if r > 0 else 1.0
    elif schedule == "exp":
        m = 1.0 - 2.0 ** (-math.log2(n) * (1.0 - r))
    else:
        raise ValueError(f"unknown schedule {schedule!r}; known: {', '.join(SCHEDULES)}")
    return min(max(m, 1e-6), 1.0)


# The 8 neighbours of a token, (row, column) offsets.
_NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def exemplar_prior(
    ids: torch.Tensor,
    decided: torch.Tensor,
    source: torch.Tensor,
    embed: torch.Tensor,
    side: int,
    slack: float = 0.1,
) -> torch.Tensor:
    """Non-parametric token prior (Efros & Leung, ICCV 1999, in token space): (B, N, K).

    For every position, a distribution over the codes of the `source` positions (B, N) bool,
    the window's known tokens, whose neighbourhoods match its own: the squared distance between
    the code vectors (`embed` (K, D)) of the 8 neighbours, over the neighbours `decided` (B, N)
    on both sides, averaged. As in Efros-Leung, the sources within (1 + `slack`) of the best
    distance share the mass (a soft version: exp(-(d - d_min) / (slack * d_min))). A position
    without decided neighbours gets the codes of all sources, by frequency.
    """
    b, n = ids.shape
    k = embed.shape[0]
    e = embed.float()[ids.clamp(0, k - 1)] * decided[..., None]  # (B, N, D)
    grid = e.view(b, side, side, -1)
    valid = decided.float().view(b, side, side)
    pe = torch.nn.functional.pad(grid, (0, 0, 1, 1, 1, 1))  # (B, side+2, side+2, D)
    pv = torch.nn.functional.pad(valid, (1, 1, 1, 1))
    dist = ids.new_zeros((b, n, n), dtype=torch.float32)  # (B, query, source)
    count = torch.zeros_like(dist)
    for dy, dx in _NEIGHBOURS:
        ne = pe[:, 1 + dy : 1 + dy + side, 1 + dx : 1 + dx + side].reshape(b, n, -1)
        nv = pv[:, 1 + dy : 1 + dy + side, 1 + dx : 1 + dx + side].reshape(b, n)
        sq = (ne * ne).sum(-1)  # (B, N)
        both = nv[:, :, None] * nv[:, None, :]
        d = sq[:, :, None] + sq[:, None, :] - 2 * ne @ ne.transpose(1, 2)
        dist += both * d
        count += both
    inf = torch.tensor(torch.inf)
    usable = source[:, None, :] & (count > 0)  # (B, query, source)
    d = torch.where(usable, dist / count.clamp_min(1), inf)
    dmin = d.min(-1, keepdim=True).values
    w = torch.exp(-(d - dmin) / (slack * dmin + 1e-6))
    w = torch.where(usable, w, 0.0)
    # No usable source (no decided neighbour): every source, equally.
    none = ~usable.any(-1, keepdim=True)
    w = torch.where(none, source[:, None, :].float(), w)
    w = w / w.sum(-1, keepdim=True).clamp_min(1e-12)
    prior = torch.zeros((b, n, k), dtype=torch.float32, device=ids.device)
    src_ids = ids.clamp(0, k - 1)[:, None, :].expand(b, n, n)
    return prior.scatter_add_(-1, src_ids, w)


@dataclass(frozen=True)
class DecodeStep:
    step: int  # index of this step in 0..total-1
    total: int  # number of steps of the schedule (including skipped ones when start_step > 0)
    tokens: torch.Tensor  # (B, N) long: every position sampled; the preview of this step
    masked: torch.Tensor  # (B, N) bool: positions masked again for the next step
    confidence: torch.Tensor  # (B, N) float: p(token) under this step's logits; 1 off the region


def gumbel(
    shape: tuple[int, ...], generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    u = torch.rand(shape, generator=generator, device=device, dtype=torch.float32)
    return -torch.log(-torch.log(u.clamp(1e-20, 1.0 - 1e-7)))


def decode(
    tokens: torch.Tensor,
    logits_fn: LogitsFn,
    mask_id: int,
    generator: torch.Generator,
    steps: int = 12,
    start_step: int = 0,
    schedule: str = "cosine",
    choice_temperature: float = 4.5,
    temperature: float = 1.0,
    n0: torch.Tensor | None = None,
    order: str = "confidence",
    prior_fn: PriorFn | None = None,
    prior_weight: float = 0.0,
    region: torch.Tensor | None = None,
) -> Iterator[DecodeStep]:
    """Decode the positions of `tokens` (B, N) that equal `mask_id`; yield every step.

    Every other position is known: it is kept as is and never re-masked. `start_step` > 0 runs
    only the tail of the schedule (the official editing mode starts at step 2 of 12). `n0` (B,)
    is the count the schedule is based on when resuming a decode part-way (branching from a
    step); by default it is the number of masked positions in `tokens`.
    """
    if not 0 <= start_step < steps:
        raise ValueError(f"start_step {start_step} must be in 0..{steps - 1}")
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; known: {', '.join(ORDERS)}")
    cur = tokens.clone()
    device = cur.device
    if n0 is None:
        n0 = (cur == mask_id).sum(-1)
    n0 = n0.reshape(-1, 1).expand(cur.shape[0], 1)  # (B, 1) tokens to generate, per row
    undecided = (cur == mask_id).any(0)
    rows = (undecided if region is None else undecided | region).nonzero()[:, 0]
    # Later in the sequence = less "confident": those are masked again first.
    halton = -_halton(cur.shape[1], device)[None] if order == "halton" else None
    for step in range(start_step, steps):
        unknown = cur == mask_id  # (B, N)
        sampled, conf = _draw(cur, unknown, rows, logits_fn, generator, temperature, prior_fn,
                              prior_weight)
        ratio = (step + 1) / steps
        if step == steps - 1:
            remask = torch.zeros_like(unknown)
        else:
            mask_len = _mask_len(n0, unknown, ratio, schedule)
            # Known tokens get +inf so they are never picked; the Gumbel term anneals to zero.
            if halton is not None:
                score = torch.where(unknown, halton, torch.inf)
            else:
                score = torch.where(unknown, torch.log(conf.clamp_min(1e-30)), torch.inf)
                score = score + choice_temperature * (1.0 - ratio) * gumbel(
                    tuple(score.shape), generator, device
                )
            cutoff = score.sort(-1).values.gather(-1, mask_len)
            remask = (score < cutoff) & unknown
        cur = torch.where(remask, torch.full_like(sampled, mask_id), sampled)
        yield DecodeStep(step, steps, sampled, remask, conf)


def _halton(n: int, device: torch.device) -> torch.Tensor:
    """(N,) float32 Halton rank of each position of a square grid of N tokens."""
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(f"halton order needs a square token grid, got {n}")
    return halton_rank(side).to(device=device, dtype=torch.float32)


def _draw(
    cur: torch.Tensor,
    unknown: torch.Tensor,
    rows: torch.Tensor,
    logits_fn: LogitsFn,
    generator: torch.Generator,
    temperature: float,
    prior_fn: PriorFn | None,
    prior_weight: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(every position sampled (B, N), its probability (B, N)); known positions keep theirs.

    Only `rows` are drawn: the others are known in every row, with confidence 1."""
    logits = logits_fn(cur, rows).float()  # (B, R, K)
    if temperature != 1.0:
        logits = logits / max(temperature, 1e-4)
    probs = torch.softmax(logits, -1)
    if prior_fn is not None and prior_weight > 0:
        probs = (1 - prior_weight) * probs + prior_weight * prior_fn(cur)[:, rows]
        logits = torch.log(probs.clamp_min(1e-30))
    # Gumbel-max is an exact categorical draw and takes our explicit generator.
    drawn = (logits + gumbel(tuple(logits.shape), generator, cur.device)).argmax(-1)
    sampled = cur.clone()
    sampled[:, rows] = torch.where(unknown[:, rows], drawn, cur[:, rows])
    conf = torch.ones(cur.shape, dtype=probs.dtype, device=cur.device)
    conf[:, rows] = probs.gather(-1, sampled[:, rows].clamp(max=logits.shape[-1] - 1)[..., None])[
        ..., 0]
    return sampled, conf


def _mask_len(n0: torch.Tensor, unknown: torch.Tensor, ratio: float, schedule: str) -> torch.Tensor:
    """(B, 1) how many tokens go back to the mask: floor(n0 * schedule(ratio)), clamped to
    [1, unknown - 1] so every step decides at least one token and keeps one for the next."""
    mask_len = torch.tensor(
        [math.floor(int(n) * mask_ratio(ratio, schedule, int(n))) for n in n0[:, 0]],
        device=unknown.device,
    )[:, None]
    return torch.maximum(
        torch.ones_like(mask_len),
        torch.minimum(unknown.sum(-1, keepdim=True) - 1, mask_len),
    )
