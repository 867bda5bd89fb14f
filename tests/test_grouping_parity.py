"""The C++ assignment returns the same people as the Python reference on every input."""

import numpy as np
import pytest

from simplepose.codecs.bottomup import OpenPosePafCodec, SimplePoseCodec
from simplepose.decode.grouping import group, load_extension
from simplepose.decode.params import REFERENCE_SIMPLEPOSE, GroupingParams
from simplepose.decode.reference_grouping import reference_find_peaks
from simplepose.skeleton import SIMPLEPOSE18


def assert_same(a, b):
    """Same people: ids identical, keypoints within 1e-4 px, scores within 1e-5."""
    assert a.peaks.shape == b.peaks.shape
    np.testing.assert_allclose(a.peaks, b.peaks, atol=1e-4, rtol=0)
    assert a.people.shape == b.people.shape
    np.testing.assert_array_equal(a.part_ids, b.part_ids)
    np.testing.assert_allclose(a.people[..., :2], b.people[..., :2], atol=1e-4, rtol=0)
    np.testing.assert_allclose(a.people[..., 2], b.people[..., 2], atol=1e-5, rtol=0)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(a.counts, b.counts)


def both(k, l, limbs, params=None, **kw):
    return group(k, l, limbs, params, backend="cpp", **kw), group(k, l, limbs, params, backend="reference", **kw)


def _oracle_parity(ann, image_ids):
    from simplepose.oracle.bottomup import render_oracle_sample

    codec = SimplePoseCodec()
    people = 0
    for image_id in image_ids:
        s = render_oracle_sample(ann, image_id, codec)
        k, l = codec.split(s.maps)
        sx, sy = s.geometry.heatmap_to_original_scale
        for params in (GroupingParams(), REFERENCE_SIMPLEPOSE, GroupingParams(limb_length_outlier=1.5)):
            a, b = both(k, l, SIMPLEPOSE18.limbs_array, params, scale_x=sx, scale_y=sy, image_height=s.geometry.orig_h)
            assert_same(a, b)
            people += len(a)
    return people


def test_cpp_equals_reference_on_committed_sample(sample_ann):
    assert _oracle_parity(sample_ann, sample_ann.image_ids) >= 10


@pytest.mark.slow
def test_cpp_equals_reference_on_all_shared_val_images(val_ann):
    assert _oracle_parity(val_ann, val_ann.image_ids) > 150


def random_people_maps(rng, kind: str, h: int, w: int, num_people: int, noise: float):
    """Maps rendered from random skeleton-like people plus uniform noise (heatmap grid)."""
    codec = SimplePoseCodec() if kind == "gaussian" else OpenPosePafCodec(stride=4)
    joints = np.zeros((num_people, 18, 3))
    for n in range(num_people):
        centre = rng.uniform([10, 10], [4 * w - 10, 4 * h - 10])
        joints[n, :, :2] = centre + rng.normal(0, rng.uniform(10, 60), (18, 2))
        joints[n, :, 2] = np.where(rng.random(18) < 0.8, 1, 2)
    maps = codec.encode(joints, (h, w))
    maps += rng.uniform(0, noise, maps.shape).astype(np.float32)
    heat, limbs = codec.split(maps)
    if kind == "paf":
        limbs = limbs - np.float32(noise / 2)  # signed noise on the vector fields
    return np.ascontiguousarray(heat), np.ascontiguousarray(limbs), codec.layout


@pytest.mark.parametrize("seed", range(24))
def test_cpp_equals_reference_on_seeded_random_cases(seed):
    rng = np.random.default_rng(seed)
    kind = "gaussian" if seed % 2 == 0 else "paf"
    h, w = int(rng.integers(8, 48)), int(rng.integers(8, 48))
    noise = float(rng.choice([0.0, 0.05, 0.3]))
    heat, limbs, layout = random_people_maps(rng, kind, h, w, int(rng.integers(0, 7)), noise)
    params = GroupingParams(
        peak_threshold=float(rng.choice([0.05, 0.1, 0.3])),
        # noisy maps have hundreds of peaks: cap them so the Python reference stays quick
        max_peaks_per_part=int(rng.choice([3, 8] if noise > 0.1 else [3, 8, 64])),
        limb_pass_ratio=float(rng.choice([0.5, 0.8])),
        min_parts=int(rng.choice([1, 2, 4])),
        min_mean_score=float(rng.choice([0.0, 0.45])),
        person_score=str(rng.choice(["mean", "one_minus_inv_total"])),
        attach_from_end=bool(rng.integers(0, 2)),
        length_prior=bool(rng.integers(0, 2)),
        limb_length_outlier=float(rng.choice([0.0, 1.5, 2.5])),
        limb_length_priors=tuple(rng.uniform(0.3, 2.5, len(layout.limbs))) if seed % 3 else (),
    )
    sx, sy = float(rng.uniform(0.5, 8)), float(rng.uniform(0.5, 8))
    a, b = both(heat, limbs, layout.limbs_array, params, scale_x=sx, scale_y=sy, image_height=float(rng.uniform(20, 900)))
    assert_same(a, b)


def test_find_peaks_parity_with_plateaus_and_cap():
    rng = np.random.default_rng(7)
    maps = rng.integers(0, 4, (3, 20, 30)).astype(np.float32) / 4  # many exact ties
    ext = load_extension()
    for cap in (1, 5, 1000):
        np.testing.assert_array_equal(ext.find_peaks(maps, 0.2, cap), reference_find_peaks(maps, 0.2, cap))


def test_tie_break_gives_one_peak_per_plateau():
    hm = np.zeros((1, 9, 9), np.float32)
    hm[0, 4, 3:5] = 1.0  # two equal neighbouring cells
    hm[0, 1:3, 7] = 0.5  # two equal cells stacked
    peaks = load_extension().find_peaks(hm, 0.1, 64)
    assert len(peaks) == 2


def test_grouping_synthetic_two_people_is_correct():
    """Hand-made: two people side by side, every limb map consistent; both come back whole."""
    from synthetic import PERSON

    from simplepose.codecs.bottomup import coco_to_internal

    codec = SimplePoseCodec()
    joints = coco_to_internal(np.stack([PERSON, PERSON + [120, 0, 0]]))
    maps = codec.encode(joints, (80, 80))
    k, l = codec.split(maps)
    res = group(k, l, SIMPLEPOSE18.limbs_array)
    assert len(res) == 2 and (res.counts == 18).all()
    xs = res.people[:, :, 0] * 4 + 1.5
    assert {round(float(x.mean())) for x in xs} == {round(float(joints[0, :, 0].mean())), round(float(joints[1, :, 0].mean()))}
