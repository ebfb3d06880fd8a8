"""A weighted Poisson solve on a pixel grid (Qt-free): conjugate gradients preconditioned by a
multigrid V-cycle, for gradient-domain fusion of copied pieces (exemplar.fuse_pieces).

Plain Jacobi or conjugate gradients need as many sweeps as the region is wide to carry a change
of tone across it (a 300 x 300 hole: 160-240 sweeps, 0.5-1 s, still 25 grey levels off on a
large hole); each V-cycle carries it across all scales at once.

The system: for every `active` pixel p, sum over its 4 neighbours q of w_pq (x_p - x_q) =
rhs_p, with x = 0 at inactive pixels (they are the fixed boundary). Coarse levels join 2 x 2
cells (aggregation, Galerkin weights)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SMOOTH = 2  # Jacobi sweeps before and after each coarse correction
OMEGA = 0.8  # Jacobi damping
COARSEST = 8  # px: solved directly at this side or below


@dataclass(frozen=True)
class _Level:
    active: np.ndarray  # (H, W) bool
    diag: np.ndarray  # (H, W): the sum of the weights of every edge at an active pixel
    ch: np.ndarray  # (H, W - 1): weight between active horizontal neighbours, else 0
    cv: np.ndarray  # (H - 1, W): the same, vertical

    def apply(self, x: np.ndarray) -> np.ndarray:
        y: np.ndarray = self.diag[..., None] * x
        y[:, :-1] -= self.ch[..., None] * x[:, 1:]
        y[:, 1:] -= self.ch[..., None] * x[:, :-1]
        y[:-1] -= self.cv[..., None] * x[1:]
        y[1:] -= self.cv[..., None] * x[:-1]
        return y

    def coarser(self) -> _Level:
        """The level whose cells join 2 x 2 of this one's (P: a cell's value on its active
        pixels; R = P transposed; the operator R A P)."""
        h, w = self.active.shape
        eh, ew = h + h % 2, w + w % 2
        act, diag = _pad(self.active, eh, ew), _pad(self.diag, eh, ew)
        ch, cv = _pad(self.ch, eh, ew - 1), _pad(self.cv, eh - 1, ew)
        inside = ch[0::2, 0::2] + ch[1::2, 0::2] + cv[0::2, 0::2] + cv[0::2, 1::2]
        inner = _sum2(diag) - 2 * inside
        return _Level(active=_sum2(act.astype(np.float32)) > 0, diag=inner,
                      ch=ch[0::2, 1::2] + ch[1::2, 1::2], cv=cv[1::2, 0::2] + cv[1::2, 1::2])

    def direct(self, r: np.ndarray) -> np.ndarray:
        """The exact solution on this (small) level."""
        idx = np.flatnonzero(self.active)
        n = len(idx)
        x = np.zeros_like(r)
        if not n:
            return x
        eye = np.zeros((n, *self.active.shape), np.float32)
        eye.reshape(n, -1)[np.arange(n), idx] = 1
        a = np.stack([self.apply(e[..., None])[..., 0].ravel()[idx] for e in eye])
        sol = np.linalg.lstsq(a, r.reshape(-1, r.shape[-1])[idx], rcond=None)[0]
        x.reshape(-1, r.shape[-1])[idx] = sol
        return x


def _pad(a: np.ndarray, h: int, w: int) -> np.ndarray:
    return np.pad(a, ((0, h - a.shape[0]), (0, w - a.shape[1])))


def _sum2(a: np.ndarray) -> np.ndarray:
    out: np.ndarray = a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]
    return out


def _levels(active: np.ndarray, wh: np.ndarray, wv: np.ndarray) -> list[_Level]:
    a = active.astype(np.float32)
    diag = np.zeros(active.shape, np.float32)
    diag[:, :-1] += wh
    diag[:, 1:] += wh
    diag[:-1] += wv
    diag[1:] += wv
    levels = [_Level(active, diag * a, wh * a[:, :-1] * a[:, 1:], wv * a[:-1] * a[1:])]
    while max(levels[-1].active.shape) > COARSEST:
        levels.append(levels[-1].coarser())
    return levels


def _vcycle(levels: list[_Level], r: np.ndarray, k: int = 0) -> np.ndarray:
    lv = levels[k]
    if k == len(levels) - 1:
        return lv.direct(r)
    inv = np.where(lv.active, 1 / np.maximum(lv.diag, 1e-6), 0)[..., None]
    x: np.ndarray = OMEGA * inv * r
    for _ in range(SMOOTH - 1):
        x += OMEGA * inv * (r - lv.apply(x))
    h, w = lv.active.shape
    res = r - lv.apply(x)
    res = np.pad(res, ((0, h % 2), (0, w % 2), (0, 0)))
    coarse = _vcycle(levels, _sum2(res), k + 1)
    x += np.repeat(np.repeat(coarse, 2, 0), 2, 1)[:h, :w] * lv.active[..., None]
    for _ in range(SMOOTH):
        x += OMEGA * inv * (r - lv.apply(x))
    return x


def solve(active: np.ndarray, wh: np.ndarray, wv: np.ndarray, rhs: np.ndarray,
          tol: float = 1e-3, max_iter: int = 50) -> np.ndarray:
    """(H, W, C) float32 x with A x = `rhs` on the `active` (H, W) pixels, 0 elsewhere; `wh`
    (H, W - 1) and `wv` (H - 1, W) are the weights of the horizontal and vertical edges (>= 0).
    Stops when the residual is `tol` of the right-hand side's."""
    levels = _levels(active, wh.astype(np.float32), wv.astype(np.float32))
    r = (rhs * active[..., None]).astype(np.float32)
    x: np.ndarray = np.zeros_like(r)
    start = float(np.sqrt((r * r).sum()))
    if start == 0:
        return x
    z = _vcycle(levels, r)
    p, rz = z.copy(), float((r * z).sum())
    for _ in range(max_iter):
        ap = levels[0].apply(p)
        step = rz / max(float((p * ap).sum()), 1e-20)
        x += step * p
        r -= step * ap
        if np.sqrt((r * r).sum()) <= tol * start:
            break
        z = _vcycle(levels, r)
        rz, last = float((r * z).sum()), rz
        p = z + (rz / last) * p
    return x
