"""The parallel decoder: known tokens, the schedule on N0, determinism, schedule shapes."""

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models.sampler import ORDERS, SCHEDULES, decode, exemplar_prior, halton_rank, mask_ratio

MASK = 99
K = 16  # codes


def random_logits(seed: int):
    g = torch.Generator().manual_seed(seed)

    def fn(ids: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return torch.randn(ids.shape[0], len(rows), K, generator=g) * 3

    return fn


def run(tokens, seed=0, **kw):
    gen = torch.Generator().manual_seed(seed)
    return list(decode(tokens, random_logits(seed + 1), MASK, gen, **kw))


masks = st.integers(2, 4).flatmap(
    lambda b: st.lists(st.lists(st.booleans(), min_size=25, max_size=25), min_size=b, max_size=b)
)


@settings(max_examples=60, deadline=None)
@given(
    mask=masks,
    seed=st.integers(0, 2**31 - 1),
    schedule=st.sampled_from(SCHEDULES),
    steps=st.integers(1, 10),
    start=st.integers(0, 9),
    order=st.sampled_from(ORDERS),
)
def test_known_tokens_never_change_and_schedule_is_followed(
    mask, seed, schedule, steps, start, order
):
    start = start % steps
    m = torch.tensor(mask)
    known = torch.randint(0, K, m.shape, generator=torch.Generator().manual_seed(seed))
    tokens = torch.where(m, MASK, known)
    n0 = m.sum(-1)
    unknown = m.clone()
    out = run(tokens, seed, steps=steps, start_step=start, schedule=schedule, order=order)
    assert [s.step for s in out] == list(range(start, steps))
    for s in out:
        # Known tokens are kept in every preview and are never masked again.
        assert torch.equal(s.tokens[~m], known[~m])
        assert not (s.masked & ~m).any()
        assert (s.tokens != MASK).all() and (s.tokens < K).all()
        # Masked tokens are only ever a subset of what was still unknown.
        assert not (s.masked & ~unknown).any()
        ratio = (s.step + 1) / steps
        for b in range(m.shape[0]):
            if s.step == steps - 1:
                want = 0
            else:
                target = math.floor(int(n0[b]) * mask_ratio(ratio, schedule, int(n0[b])))
                want = max(1, min(int(unknown[b].sum()) - 1, target))
                want = min(want, int(unknown[b].sum()))  # a row with nothing left stays empty
            assert int(s.masked[b].sum()) == want
        unknown = s.masked


def test_same_seed_same_tokens_other_seed_differs():
    tokens = torch.full((2, 64), MASK)
    a = run(tokens, seed=3, steps=8)
    b = run(tokens, seed=3, steps=8)
    c = run(tokens, seed=4, steps=8)
    assert all(torch.equal(x.tokens, y.tokens) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[-1].tokens, c[-1].tokens)


def test_every_token_is_decided_by_the_last_step():
    out = run(torch.full((1, 256), MASK), steps=12)
    assert not out[-1].masked.any()
    assert out[0].masked.sum() > out[5].masked.sum() > 0


def test_low_choice_temperature_remasks_the_least_confident():
    out = run(torch.full((1, 64), MASK), steps=4, choice_temperature=0.0)
    conf, masked = out[0].confidence[0], out[0].masked[0]
    assert conf[masked].max() <= conf[~masked].min()


@settings(deadline=None)  # a loaded CI machine is no reason to fail
@given(side=st.integers(1, 40))
def test_halton_rank_orders_every_cell_once(side):
    assert sorted(halton_rank(side).tolist()) == list(range(side * side))


def test_halton_order_keeps_the_earliest_cells_whatever_the_confidence():
    side = 8
    tokens = torch.full((1, side * side), MASK)
    tokens[0, ::3] = 5  # some known cells: the order skips them
    rank = halton_rank(side)
    for seed in (0, 1):
        out = run(tokens, seed=seed, steps=6, order="halton")
        kept = (tokens[0] == MASK) & ~out[0].masked[0]
        still = out[0].masked[0]
        assert kept.any() and still.any()
        assert rank[kept].max() < rank[still].min()
    with pytest.raises(ValueError, match="square"):
        run(torch.full((1, 24), MASK), order="halton")
    with pytest.raises(ValueError, match="unknown order"):
        run(tokens, order="zigzag")


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_schedules_are_monotone_and_in_unit_interval(schedule):
    ratios = np.linspace(0, 1, 101)
    for n in (1, 16, 256, 1024):
        values = [mask_ratio(r, schedule, n) for r in ratios]
        assert all(0.0 <= v <= 1.0 for v in values)
        assert all(a >= b - 1e-12 for a, b in itertools.pairwise(values))
        # Everything is masked at the start; the official `exp` only reaches 1 - 1/N0 there.
        assert values[0] >= (1 - 1 / max(n, 2) if schedule == "exp" else 1.0) - 1e-9


def test_unknown_schedule_and_bad_start_are_errors():
    with pytest.raises(ValueError, match="unknown schedule"):
        mask_ratio(0.5, "zigzag", 10)
    with pytest.raises(ValueError, match="start_step"):
        run(torch.full((1, 4), MASK), steps=4, start_step=4)


def test_exemplar_prior_follows_the_pattern_of_the_known_tokens():
    # Columns alternate codes 1 and 2; the middle column is masked and undecided.
    side, k = 6, 8
    ids = torch.tensor([[1 if c % 2 == 0 else 2 for c in range(side)] * side])  # (1, 36)
    embed = torch.eye(k)
    hole = torch.zeros(1, side * side, dtype=torch.bool)
    hole[0, [r * side + 2 for r in range(1, 5)]] = True  # column 2 (a "1" column)
    decided = ~hole
    prior = exemplar_prior(ids, decided, ~hole, embed, side)
    assert prior.shape == (1, side * side, k)
    assert torch.allclose(prior.sum(-1), torch.ones(1, side * side))
    assert (prior[0, hole[0], 1] > 0.9).all()  # neighbours "2 _ 2" are found around 1s only
    # Without decided neighbours a position gets the known codes by frequency.
    none = exemplar_prior(ids, torch.zeros_like(decided), ~hole, embed, side)
    assert torch.allclose(none[0, 0, 1] + none[0, 0, 2], torch.tensor(1.0))


def test_a_zero_prior_weight_changes_nothing():
    tokens = torch.full((2, 25), MASK)
    tokens[:, :5] = 3

    def prior_fn(cur):
        return torch.full((*cur.shape, K), 1.0 / K)

    plain = run(tokens, seed=4, steps=6)
    mixed = run(tokens, seed=4, steps=6, prior_fn=prior_fn, prior_weight=0.0)
    assert all(torch.equal(a.tokens, b.tokens) for a, b in zip(plain, mixed, strict=True))
    pulled = run(tokens, seed=4, steps=6, prior_fn=lambda c: torch.nn.functional.one_hot(
        torch.full(c.shape, 7), K).float(), prior_weight=0.99)
    assert (pulled[-1].tokens[:, 5:] == 7).float().mean() > 0.9
