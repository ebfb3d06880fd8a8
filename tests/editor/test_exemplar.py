"""editor.exemplar: exemplar fills and detail transfer take what they paint from the photo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from test_selection import disc_on_grass

from editor.core import exemplar, fill, pipeline
from editor.core.jobs import Job, Sampling


def two_halves(h: int = 96, w: int = 128) -> np.ndarray:
    """Red left half, blue right half, with fine noise (texture)."""
    rng = np.random.default_rng(0)
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = (200, 30, 30)
    img[:, w // 2 :] = (30, 30, 200)
    noise = rng.integers(-20, 21, (h, w, 1))
    return np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)


def box(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


@pytest.fixture
def unfused(monkeypatch):
    """The copies as shift-map placed them: fuse_pieces then offsets their tone (test_fuse),
    so a copied pixel is no longer byte for byte one of the photo's."""
    monkeypatch.setattr(exemplar, "fuse_pieces", lambda image, mask, out, shift, copied: out)


@pytest.mark.parametrize("max_side", [None, 48])
def test_fill_keeps_known_pixels_and_fills_from_the_surroundings(max_side):
    img = two_halves()
    hole = box(96, 128, 30, 60, 8, 40)  # inside the red half
    src = img.copy()
    src[hole] = 128
    out, rough = exemplar.fill(src, hole, max_side)
    assert np.array_equal(out[~hole], src[~hole])
    assert not rough[~hole].any()
    red = out[hole].astype(int)
    assert red[:, 0].mean() > 150 and red[:, 2].mean() < 80  # red, not the grey that was there


def test_thin_strokes_take_telea_and_regions_take_shift_map():
    line = np.zeros((64, 64), bool)
    line[30:33, 5:60] = True
    region = box(64, 64, 10, 40, 10, 40)
    assert exemplar.thickness(line) <= exemplar.THIN < exemplar.thickness(region)
    img = two_halves(64, 64)
    telea = cv2.inpaint(img[..., ::-1].copy(), line.astype(np.uint8) * 255,
                        exemplar.TELEA_RADIUS, cv2.INPAINT_TELEA)[..., ::-1]
    out, rough = exemplar.fill(img, line)
    assert np.array_equal(out, telea)
    assert np.array_equal(rough, line), "Telea copies nothing: all of it is rough"


def test_a_downscaled_fill_is_carried_to_full_size_as_copies_of_full_size_pixels(unfused):
    rng = np.random.default_rng(1)
    img = cv2.resize(two_halves(48, 64), (256, 192), interpolation=cv2.INTER_NEAREST)
    img = np.clip(img + rng.integers(-25, 26, img.shape), 0, 255).astype(np.uint8)  # fine grain
    hole = box(192, 256, 60, 130, 20, 110)  # inside the red half
    out, rough = exemplar.fill(img, hole, max_side=64)
    copied = hole & ~rough
    assert copied.sum() > 0.5 * hole.sum()
    known = {bytes(p) for p in img[~hole]}
    assert all(bytes(p) in known for p in out[copied]), "a copy is a pixel of the photo"
    # The photo's grain, not the blur of a 64 px fill upsampled 4x.
    assert high_energy(out, copied) > 0.8 * high_energy(img, ~hole)
    up = cv2.resize(cv2.resize(img, (64, 48), interpolation=cv2.INTER_AREA), (256, 192))
    assert high_energy(up, copied) < 0.5 * high_energy(img, ~hole)


@pytest.mark.parametrize("max_side", [None, 96])  # 96: downscaled (48 px with the keep-out)
def test_kept_out_pixels_are_never_copied_and_stay_as_they_are(max_side, unfused):
    img = two_halves()
    hole = box(96, 128, 30, 60, 8, 40)  # inside the red half: shift-map would paint red
    keep_out = np.zeros((96, 128), bool)
    keep_out[:, :64] = True  # the red half (a subject the user does not want twice)
    out, rough = exemplar.fill(img, hole, max_side, keep_out & ~hole)
    assert np.array_equal(out[~hole], img[~hole]), "the kept-out pixels are put back"
    blue = out[hole].astype(int)
    assert blue[:, 2].mean() > 150 and blue[:, 0].mean() < 80  # from the blue half only
    copied = hole & ~rough
    allowed = {bytes(p) for p in img[~hole & ~keep_out]}
    assert copied.sum() > 0.5 * hole.sum()
    assert all(bytes(p) in allowed for p in out[copied])
    # Through fill.region: its tone match pulls the copies towards the red around the hole,
    # but what it copied is the blue half.
    plain, _ = fill.region(img, hole, max_side)
    filled, _ = fill.region(img, hole, max_side, keep_out=keep_out)
    assert filled[hole][:, 2].mean() > plain[hole][:, 2].mean() + 20


def test_a_keep_out_that_leaves_nothing_to_copy_is_ignored():
    img = two_halves()
    hole = box(96, 128, 30, 60, 8, 40)
    plain = exemplar.fill(img, hole)[0]
    assert np.array_equal(exemplar.fill(img, hole, keep_out=~hole)[0], plain)


def test_fill_refuses_a_mask_with_nothing_known():
    with pytest.raises(ValueError, match="nothing to fill from"):
        exemplar.fill(two_halves(), np.ones((96, 128), bool))


def stripes(h: int = 128, w: int = 160) -> np.ndarray:
    """Vertical 3 px stripes on a horizontal colour ramp: detail that a blur removes."""
    x = np.arange(w)
    ramp = np.linspace(60, 190, w)
    lum = ramp + np.where((x // 3) % 2 == 0, 40, -40)
    return np.repeat(np.clip(lum, 0, 255)[None, :, None], h, 0).repeat(3, 2).astype(np.uint8)


def high_energy(a: np.ndarray, mask: np.ndarray) -> float:
    f = a.astype(np.float32)
    return float(np.abs(f - cv2.GaussianBlur(f, (0, 0), 2.0))[mask].mean())


def test_detail_comes_back_from_the_known_region_and_the_rest_is_untouched():
    img = stripes()
    hole = box(128, 160, 40, 90, 50, 110)
    blurred = img.copy()
    blurred[hole] = cv2.GaussianBlur(img, (0, 0), 4)[hole]  # what a blurry decode looks like
    out = exemplar.restore_detail(blurred, hole, sigma=3.0)
    assert np.array_equal(out[~hole], blurred[~hole])
    inner = box(128, 160, 48, 82, 58, 102)
    assert high_energy(blurred, inner) < 0.3 * high_energy(img, inner)
    assert high_energy(out, inner) > 0.7 * high_energy(img, inner)
    # The fill's low band (its layout and colour) is kept.
    low = lambda a: cv2.GaussianBlur(a.astype(np.float32), (0, 0), 6)[inner]  # noqa: E731
    assert np.abs(low(out) - low(blurred)).mean() < 6


def test_detail_transfer_of_an_empty_mask_is_the_identity():
    img = stripes()
    assert np.array_equal(exemplar.restore_detail(img, np.zeros(img.shape[:2], bool)), img)


def test_a_hole_shift_map_cannot_reach_is_never_left_black():
    img = two_halves(128, 128)
    hole = box(128, 128, 8, 128, 0, 128)  # all but a thin strip at the top
    out = exemplar.fill(img, hole)[0]
    assert out[hole].any(-1).all(), "no black pixel where the photo has none"


def test_a_photo_with_black_pixels_gets_its_misses_filled_too():
    img = two_halves(128, 128)
    img[:4, :16] = 0  # a black corner: a black fill pixel no longer proves a miss by itself
    hole = box(128, 128, 8, 128, 0, 128)
    out = exemplar.fill(img, hole)[0]
    black = hole & ~out.any(-1)
    # Black in the fill is a copy of the corner (no more pixels than it has), not missed
    # pixels left black (319 of them when shift-map is not run again).
    assert black.sum() <= (~img.any(-1)).sum(), "misses are not left black"
    assert np.array_equal(out[~hole], img[~hole])


@pytest.mark.parametrize(("hole", "length"), [
    (box(60, 100, 0, 60, 70, 100), 60),  # right
    (box(60, 100, 0, 60, 0, 30), 60),  # left
    (box(60, 100, 40, 60, 0, 100), 100),  # bottom
    (box(60, 100, 10, 50, 20, 80), 0),  # a box
    (box(60, 100, 0, 60, 20, 80), 0),  # top to bottom, but not at the picture's edge
])
def test_an_outpaint_strip_is_told_from_a_region(hole, length):
    assert fill.edge_strip(hole) == length


def test_a_strip_at_the_edge_reads_context_as_deep_as_it_is_long():
    img = two_halves(64, 256)
    strip = box(64, 256, 0, 64, 216, 256)  # 40 px: half its size would be 52 px of context
    _, rect = fill.region(img, strip, 64)
    assert rect == (256 - 40 - 64, 0, 256, 64)
    hole = box(64, 256, 16, 48, 100, 140)  # a box keeps half its size
    _, rect = fill.region(img, hole, 64)
    assert rect == (100 - 36, 0, 140 + 36, 64)


def sky(h: int = 96, w: int = 128) -> np.ndarray:
    """A vertical sky gradient with fine noise: the same texture everywhere, a different tone
    at every height (what shift-map copies from the wrong height shows as a step)."""
    rng = np.random.default_rng(1)
    tone = np.linspace(80, 200, h)[:, None, None] + rng.integers(-12, 13, (h, w, 1))
    return np.clip(np.broadcast_to(tone, (h, w, 3)), 0, 255).astype(np.uint8)


def test_a_copy_from_other_light_meets_its_surroundings_in_tone_and_keeps_its_texture():
    img = sky()
    hole = box(96, 128, 30, 66, 40, 90)
    pasted = img.copy()
    pasted[hole] = np.clip(img[hole].astype(int) + 45, 0, 255)  # texture from brighter sky
    out = exemplar.match_boundary(pasted, hole)
    assert np.array_equal(out[~hole], img[~hole])
    err = lambda a: np.abs(a.astype(float) - img.astype(float))[hole].mean()  # noqa: E731
    assert err(pasted) > 40 and err(out) < 8, "the tone step is gone"
    inner = box(96, 128, 36, 60, 46, 84)  # off the edge, where the step itself was detail
    assert high_energy(out, inner) > 0.9 * high_energy(pasted, inner), "the texture stays"


def test_a_thin_bright_structure_along_the_hole_does_not_glow_into_the_fill():
    img = np.full((96, 128, 3), (20, 30, 60), np.uint8)  # a night sky
    img[:, 37:40] = 230  # a white pole right at the hole's left edge, all along it
    hole = box(96, 128, 0, 96, 40, 128)  # a strip: the fill is already the sky
    out = exemplar.match_boundary(img, hole)
    glow = out.astype(float)[:, 40:60].mean() - img.astype(float)[:, 40:60].mean()
    assert glow < 8, f"the pole's tone spread into the sky by {glow:.0f} levels"


def test_a_structure_edge_at_the_hole_does_not_bleed_into_the_fill():
    img = sky()
    img[:, :40] = 20  # a dark wall left of the hole
    hole = box(96, 128, 30, 66, 40, 90)
    out = exemplar.match_boundary(img, hole)  # a fill that already matches the sky
    step = np.abs(out.astype(float) - img.astype(float))[hole].mean()
    assert step < 6, "the wall's edge is structure, not a change of light"


def test_kept_out_pixels_set_no_tone_for_the_fill():
    img = np.full((64, 64, 3), 100, np.uint8)
    hole = box(64, 64, 24, 40, 24, 40)
    ring = box(64, 64, 16, 48, 16, 48) & ~hole
    img[ring] = 200  # a bright subject around the hole, kept out of the fill
    matched = exemplar.match_boundary(img, hole)
    assert matched[hole].mean() > 150, "without the keep-out the fill takes the ring's tone"
    kept = exemplar.match_boundary(img, hole, keep_out=ring)
    assert np.array_equal(kept, img), "nothing known but the kept-out ring touches the hole"


def subject_photo(radius: int = 26, h: int = 120, w: int = 200, strip: int = 48,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(photo, subject, strip): grass with a red disc standing in the middle of its known part,
    and a strip at its right to outpaint (grey)."""
    img, subject = disc_on_grass(h, w, (100, 60), radius)
    todo = box(h, w, 0, h, w - strip, w)
    img[todo] = 128
    return img, subject, todo


def red_share(guide: np.ndarray, todo: np.ndarray) -> float:
    return float((guide[todo][:, 0] > 150).mean())


def test_an_outpaint_keeps_the_photos_subject_out_of_its_first_guide():
    img, subject, todo = subject_photo()
    kept = fill.subject_kept_out(img, todo)
    assert kept is not None and kept[subject].all(), "the whole subject, its outline grown"
    assert not kept[todo].any() and kept.sum() < 1.5 * subject.sum()
    assert fill.subject_kept_out(img, box(120, 200, 30, 90, 40, 120)) is None  # not a strip
    stroke = np.zeros_like(todo)
    cv2.line(stroke.view(np.uint8), (0, 0), (100, 119), 1, 20)  # top to bottom, at its left
    assert fill.edge_strip(stroke) and fill.subject_kept_out(img, stroke) is None
    assert red_share(pipeline._make_guide(img, todo, 0), todo) == 0.0
    # The next candidate's guide copies from the whole photo: a second red disc.
    assert red_share(pipeline._make_guide(img, todo, 1), todo) > 0.2


def test_a_subject_that_fills_the_frame_is_not_kept_out():
    img, _, todo = subject_photo(radius=56)
    assert fill.subject_kept_out(img, todo) is None


def test_a_painted_keep_out_replaces_the_subject_and_fill_from_surroundings_keeps_it_out_too():
    img, subject, todo = subject_photo()
    painted = box(120, 200, 0, 20, 0, 20)
    assert pipeline.kept_out(img, todo, painted) is painted
    for none in (None, np.zeros_like(todo)):
        kept = pipeline.kept_out(img, todo, none)
        assert kept is not None and kept[subject].all()
    job = Job("fill", img, todo, [], None, Sampling(), 0)
    assert red_share(pipeline.fill_job(job).images[0], todo) == 0.0


def test_the_subject_of_a_photo_is_found_once_for_all_who_ask(monkeypatch):
    from collections import OrderedDict

    from editor.core import selection

    calls, find = [], selection.subject

    def counted(photo: np.ndarray) -> np.ndarray:
        calls.append(photo.shape)
        return find(photo)

    monkeypatch.setattr(fill, "_SUBJECTS", OrderedDict())
    monkeypatch.setattr(fill.selection, "subject", counted)
    img, _, todo = subject_photo()
    first = fill.subject_kept_out(img, todo)
    assert first is not None and np.array_equal(fill.subject_kept_out(img, todo), first)
    assert len(calls) == 1
    other = img.copy()
    other[:4, :4] = 0  # another photo
    fill.subject_kept_out(other, todo)
    assert len(calls) == 2
