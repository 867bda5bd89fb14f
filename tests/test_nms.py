"""OKS, OKS-NMS, soft OKS-NMS and box soft-NMS (SPEC 1.3)."""

import math

import numpy as np
import pytest

from simplepose.decode.nms import oks_iou, oks_nms
from simplepose.errors import InputError
from simplepose.skeleton import COCO_SIGMAS


def _pose(cx, cy, scale=50.0, seed=0, score=1.0):
    """A (17, 3) pose with reproducible layout around (cx, cy) and uniform keypoint scores."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-1, 1, (17, 2)) * scale + [cx, cy]
    return np.concatenate([xy, np.full((17, 1), score)], axis=1)


def test_oks_of_identical_poses_is_one():
    p = _pose(100, 100)
    assert oks_iou(p, p[None], 2500.0, [2500.0])[0] == pytest.approx(1.0)
    assert oks_iou(p, p[None], 2500.0, [2500.0], vis_thresh=None)[0] == pytest.approx(1.0)


def test_oks_hand_computed_one_keypoint_moved():
    a = _pose(100, 100)
    b = a.copy()
    b[11, 0] += 10.0  # left hip, sigma 0.107
    area_a, area_b = 3000.0, 5000.0
    var = (2 * COCO_SIGMAS[11]) ** 2
    e = 10.0**2 / var / ((area_a + area_b) / 2 + np.spacing(1)) / 2
    expected = (16 + math.exp(-e)) / 17
    got = oks_iou(a, b[None], area_a, [area_b])[0]
    assert got == pytest.approx(expected, rel=1e-12)
    assert got < 1.0


def test_oks_compares_only_keypoints_visible_in_both_poses():
    a = _pose(100, 100)
    b = a.copy()
    b[0, :2] += 500.0  # the nose is far off ...
    a[0, 2] = 0.1  # ... but below the visibility threshold in `a` only
    assert oks_iou(a, b[None], 2500.0, [2500.0], vis_thresh=0.2)[0] == pytest.approx(1.0)
    # The same holds when only `b` has the low score.
    a2, b2 = a.copy(), b.copy()
    a2[0, 2], b2[0, 2] = 1.0, 0.1
    assert oks_iou(a2, b2[None], 2500.0, [2500.0], vis_thresh=0.2)[0] == pytest.approx(1.0)
    # Without the threshold the far nose counts.
    assert oks_iou(a, b[None], 2500.0, [2500.0], vis_thresh=None)[0] == pytest.approx(16 / 17)


def test_oks_is_zero_without_common_visible_keypoints():
    a = _pose(100, 100)
    b = a.copy()
    a[:8, 2] = 0.0
    b[8:, 2] = 0.0
    assert oks_iou(a, b[None], 2500.0, [2500.0])[0] == 0.0


def test_oks_decreases_with_distance_and_is_vectorised():
    a = _pose(100, 100)
    shifts = np.array([0.0, 2.0, 5.0, 10.0, 40.0])
    others = np.stack([a + [s, 0.0, 0.0] for s in shifts])
    oks = oks_iou(a, others, 2500.0, np.full(5, 2500.0))
    assert oks.shape == (5,)
    assert np.all(np.diff(oks) < 0)
    for i, s in enumerate(shifts):
        assert oks[i] == pytest.approx(oks_iou(a, others[i : i + 1], 2500.0, [2500.0])[0])


def test_oks_nms_keeps_best_of_duplicates_and_distinct_people():
    a = _pose(100, 100, seed=1)
    a_dup = a + [1.0, -1.0, 0.0]  # same person, 1 px off
    b = _pose(400, 120, seed=2)  # another person far away
    b_dup = b + [0.5, 0.5, 0.0]
    kpts = np.stack([a_dup, b, a, b_dup])
    scores = np.array([0.6, 0.7, 0.9, 0.8])
    areas = np.full(4, 10000.0)
    keep = oks_nms(kpts, scores, areas)
    assert keep.dtype == np.int64
    assert keep.tolist() == [2, 3]  # the best of each pair, highest score first
    # Threshold 1.0 disables suppression (OKS <= 1 always).
    assert oks_nms(kpts, scores, areas, thresh=1.0).tolist() == [2, 3, 1, 0]


def test_oks_nms_keeps_people_side_by_side():
    a = _pose(100, 100, seed=3)
    b = _pose(150, 100, seed=4)  # overlapping boxes, different keypoints
    keep = oks_nms(np.stack([a, b]), [0.9, 0.5], [10000.0, 10000.0])
    assert keep.tolist() == [0, 1]


def test_oks_nms_empty_and_bad_shapes():
    assert oks_nms(np.zeros((0, 17, 3)), np.zeros(0), np.zeros(0)).tolist() == []
    with pytest.raises(InputError, match="scores"):
        oks_nms(np.zeros((2, 17, 3)), np.zeros(3), np.zeros(2))
    with pytest.raises(InputError, match="kpts"):
        oks_nms(np.zeros((2, 17)), np.zeros(2), np.zeros(2))


def test_oks_is_symmetric_and_bounded():
    """With the mean-area scale and the both-visible mask, OKS(a, b) == OKS(b, a)."""
    rng = np.random.default_rng(3)
    poses = np.concatenate(
        [rng.uniform(0, 200, (30, 17, 2)), rng.uniform(0, 1, (30, 17, 1))], axis=2
    )
    areas = rng.uniform(100, 20000, 30)
    forward = np.stack([oks_iou(poses[i], poses, areas[i], areas) for i in range(30)])
    np.testing.assert_allclose(forward, forward.T, rtol=1e-12, atol=1e-15)
    assert forward.min() >= 0.0 and forward.max() <= 1.0
