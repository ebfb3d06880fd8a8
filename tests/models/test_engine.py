"""The numpy Engine on a tiny random-weight model."""

import numpy as np
import pytest
import torch

from models.engine import Engine, SamplingParams
from models.maskgit import MaskGIT, preset


@pytest.fixture(scope="module")
def engine() -> Engine:
    torch.manual_seed(0)
    return Engine(MaskGIT(preset("tiny")), device="cpu", bf16=False)


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)


def box_mask() -> np.ndarray:
    m = np.zeros((8, 8), bool)
    m[2:5, 3:7] = True
    return m


def test_edit_yields_every_step_with_previews(engine, image):
    steps = list(engine.edit(image, box_mask(), 3, SamplingParams(steps=6, start_step=1), seed=1))
    assert [s.step for s in steps] == [1, 2, 3, 4, 5]
    assert all(s.total == 6 for s in steps) and steps[-1].done
    for s in steps:
        assert s.preview.shape == (32, 32, 3) and s.preview.dtype == np.uint8
        assert s.tokens.shape == (8, 8) and s.confidence.shape == (8, 8)
        assert ((s.confidence >= 0) & (s.confidence <= 1)).all()
    assert not steps[-1].masked.any()
    assert np.array_equal(steps[-1].preview, engine.decode(steps[-1].tokens))


def test_tokens_outside_the_mask_are_the_encoded_ones(engine, image):
    known = engine.encode(image)
    mask = box_mask()
    for s in engine.edit(image, mask, 7, SamplingParams(steps=4, start_step=0), seed=2):
        assert np.array_equal(s.tokens[~mask], known[~mask])


def test_same_seed_same_pixels(engine, image):
    p = SamplingParams(steps=5)
    a = [s.preview for s in engine.edit(image, box_mask(), 1, p, seed=9)]
    b = [s.preview for s in engine.edit(image, box_mask(), 1, p, seed=9)]
    c = [s.preview for s in engine.edit(image, box_mask(), 1, p, seed=10)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[-1], c[-1])


def test_candidates_are_decoded_together_and_differ(engine, image):
    last = list(engine.edit_many(image, box_mask(), 2, SamplingParams(steps=4), 0, 3))[-1]
    assert len(last) == 3
    assert len({s.tokens.tobytes() for s in last}) > 1


def test_candidates_of_one_picture_share_their_first_forward(engine, image):
    batches = []
    hook = engine.model.transformer.register_forward_hook(
        lambda _m, args, _out: batches.append(args[0].shape[0]))
    try:
        steps = list(engine.edit_many(image, box_mask(), 2, SamplingParams(steps=4), 0, 3))
    finally:
        hook.remove()
    assert batches[0] == 1, "the candidates' identical first step runs the transformer once"
    assert batches[1:] == [3] * (len(batches) - 1)
    assert len({s.tokens.tobytes() for s in steps[0]}) > 1, "each still draws its own tokens"


def test_each_candidate_can_continue_its_own_picture_in_one_batch(engine, image):
    others = np.stack([image, 255 - image, image[::-1].copy()])  # one picture per candidate
    mask = box_mask()
    *_, last = engine.edit_many(others, mask, 4, SamplingParams(steps=4), seed=3, candidates=3)
    assert len(last) == 3
    for pic, s in zip(others, last, strict=True):
        assert np.array_equal(s.tokens[~mask], engine.encode(pic)[~mask]), "its own known tokens"
    with pytest.raises(ValueError, match="2 images for 3 candidates"):
        next(engine.edit_many(others[:2], mask, 4, SamplingParams(steps=4), candidates=3))


def test_only_the_first_candidate_is_decoded_live_when_asked(image):
    torch.manual_seed(0)
    eng = Engine(MaskGIT(preset("tiny")), device="cpu", bf16=False)
    assert eng.live_previews is None, "small windows: every candidate live"
    eng.live_previews = 1  # what a 256 px model gets on a CPU
    steps = list(eng.edit_many(image, box_mask(), 2, SamplingParams(steps=4), seed=5,
                               candidates=3))
    for row in steps[:-1]:
        assert not np.array_equal(row[0].preview, image)
        assert all(np.array_equal(s.preview, image) for s in row[1:]), "input until the end"
    def decoded(s):  # batched and single decodes may differ by float rounding
        return np.abs(s.preview.astype(int) - eng.decode(s.tokens)).max() <= 2

    assert all(decoded(s) for s in steps[-1])
    others = np.stack([image, 255 - image, image])
    *_, last = eng.edit_many(others, box_mask(), 2, SamplingParams(steps=4), seed=5,
                             candidates=3)
    assert all(decoded(s) for s in last)


def test_generate_fills_every_token(engine):
    steps = list(engine.generate(5, SamplingParams(steps=4, start_step=0), seed=0))
    assert steps[0][0].masked.sum() > 0
    assert not steps[-1][0].masked.any()


def test_bad_shapes_are_clear_errors(engine, image):
    with pytest.raises(ValueError, match=r"image must be \(32, 32, 3\) uint8"):
        list(engine.edit(image[:16], box_mask(), 0))
    with pytest.raises(ValueError, match=r"token mask must be \(8, 8\)"):
        list(engine.edit(image, np.zeros((4, 4), bool), 0))
    with pytest.raises(ValueError, match="class id 1000"):
        list(engine.edit(image, box_mask(), 1000))


def test_bf16_stays_close_to_fp32(image):
    torch.manual_seed(0)
    fp32 = Engine(MaskGIT(preset("tiny")), device="cpu", bf16=False)
    torch.manual_seed(0)
    bf16 = Engine(MaskGIT(preset("tiny")), device="cpu", bf16=True)
    tokens = fp32.encode(image)
    a = fp32.decode(tokens).astype(int)
    b = bf16.decode(tokens).astype(int)
    assert np.abs(a - b).mean() < 3  # mean abs difference in 0..255 levels


def test_intermediate_previews_decode_only_around_the_mask(engine, image):
    mask = np.zeros((8, 8), bool)
    mask[0, 0] = True  # a corner cell: the preview crop is a small part of the window
    steps = list(engine.edit(image, mask, 3, SamplingParams(steps=4, start_step=0), seed=0))
    first = steps[0].preview
    # Away from the mask's cell and its one-token ring, the preview is the input image.
    assert np.array_equal(first[8:, :], image[8:, :]) and np.array_equal(first[:, 8:], image[:, 8:])
    assert not np.array_equal(first[:8, :8], image[:8, :8])
    # The last step is decoded in full.
    assert np.array_equal(steps[-1].preview, engine.decode(steps[-1].tokens))


def test_branch_shares_the_past_and_follows_the_original_schedule(engine, image):
    mask = np.ones((8, 8), bool)
    p = SamplingParams(steps=6, start_step=0)
    original = list(engine.edit(image, mask, 3, p, seed=1))
    k = 2
    branch = [s[0] for s in engine.branch(original[k], mask, 3, p, seed=77)]
    assert [s.step for s in branch] == [3, 4, 5]
    # Cells decided by step k stay decided; the schedule's counts match the original plan.
    decided = ~original[k].masked
    for b, o in zip(branch, original[k + 1 :], strict=True):
        assert np.array_equal(b.tokens[decided], original[k].tokens[decided])
        assert b.masked.sum() == o.masked.sum()
    assert not np.array_equal(branch[-1].tokens, original[-1].tokens)
    # Same seed from the same step reproduces the branch exactly.
    again = [s[0] for s in engine.branch(original[k], mask, 3, p, seed=77)]
    assert all(np.array_equal(a.tokens, b.tokens) for a, b in zip(again, branch, strict=True))
    with pytest.raises(ValueError, match="nothing left"):
        list(engine.branch(original[-1], mask, 3, p))


def test_reroll_changes_only_the_chosen_tokens(engine, image):
    done = list(engine.edit(image, box_mask(), 3, SamplingParams(steps=4), seed=1))[-1]
    weakest = np.zeros((8, 8), bool)
    inside = np.argwhere(box_mask())
    order = np.argsort(done.confidence[box_mask()])[:4]
    weakest[tuple(inside[order].T)] = True
    rerolled = list(engine.edit(None, weakest, 3, SamplingParams(steps=4), 5, done.tokens))[-1]
    assert np.array_equal(rerolled.tokens[~weakest], done.tokens[~weakest])
    assert not np.array_equal(rerolled.tokens[weakest], done.tokens[weakest])


def test_exemplar_start_keeps_the_likeliest_guesses_and_starts_part_way(engine, image):
    mask = box_mask()
    guess = engine.encode(image)
    plain = list(engine.edit(image, mask, 3, SamplingParams(steps=8, start_step=1), seed=2))
    params = SamplingParams(steps=8, start_step=1, remask=0.5)
    steps = list(engine.edit(image, mask, 3, params, seed=2))
    assert len(steps) < len(plain) and steps[-1].done
    first = steps[0]
    # Before the first step, (1 - remask) of the masked cells kept the image's own tokens.
    undecided_before = int(np.floor(mask.sum() * np.cos(np.pi / 2 * first.step / 8)))
    kept = mask.sum() - undecided_before
    assert kept >= mask.sum() // 3
    assert (first.tokens[mask] == guess[mask]).sum() >= kept
    assert np.array_equal(steps[-1].tokens[~mask], guess[~mask])


def test_exemplar_prior_is_a_sampling_parameter(engine, image):
    a = list(engine.edit(image, box_mask(), 3, SamplingParams(steps=4, start_step=1, prior=0.9),
                         seed=5))
    assert a[-1].done and not a[-1].masked.any()
    with pytest.raises(ValueError):
        SamplingParams(prior=1.0)
    with pytest.raises(ValueError):
        SamplingParams(remask=0.0)
