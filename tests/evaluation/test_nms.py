"""OKS, OKS-NMS, soft OKS-NMS and box soft-NMS (SPEC 1.3)."""

import math

import numpy as np
import pytest

from simplepose.errors import InputError
from simplepose.evaluation.nms import box_iou, oks_iou, oks_nms, soft_nms, soft_oks_nms
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


def test_soft_oks_nms_decays_monotonically_with_overlap():
    top = _pose(100, 100, seed=5)
    shifts = [1.0, 3.0, 6.0, 12.0]
    kpts = np.stack([top] + [top + [s, 0.0, 0.0] for s in shifts])
    scores = np.array([0.9, 0.8, 0.8, 0.8, 0.8])
    areas = np.full(5, 4000.0)
    keep, new = soft_oks_nms(kpts, scores, areas, sigma=0.5)
    assert keep[0] == 0 and new[0] == pytest.approx(0.9)
    assert np.all(np.diff(new) <= 0)  # kept in non-increasing rescored order
    assert np.all(new <= scores[keep] + 1e-12)  # scores never increase
    # After the first pick the further a pose is from it, the less it is decayed, so the
    # poses come out by decreasing shift.
    assert keep.tolist()[1] == 4
    # The first follower was picked right after the top pose, so it was rescored once.
    oks = oks_iou(top, kpts[4:5], 4000.0, [4000.0])[0]
    assert oks > 0
    assert new[1] == pytest.approx(0.8 * math.exp(-(oks**2) / 0.5))


def test_soft_oks_nms_distinct_people_keep_scores_and_min_score_drops():
    a = _pose(100, 100, seed=6)
    b = _pose(600, 600, seed=7)
    keep, new = soft_oks_nms(np.stack([a, b]), [0.5, 0.9], [2500.0, 2500.0])
    assert keep.tolist() == [1, 0]
    np.testing.assert_allclose(new, [0.9, 0.5])
    # An exact duplicate decays by exp(-1 / sigma); with a high min_score it is dropped.
    keep, new = soft_oks_nms(np.stack([a, a]), [0.9, 0.8], [2500.0, 2500.0], sigma=0.5)
    np.testing.assert_allclose(new, [0.9, 0.8 * math.exp(-2.0)])
    keep, _ = soft_oks_nms(np.stack([a, a]), [0.9, 0.8], [2500.0, 2500.0], min_score=0.2)
    assert keep.tolist() == [0]
    keep, _ = soft_oks_nms(np.stack([a, b, a]), [0.9, 0.8, 0.7], np.full(3, 2500.0), max_dets=1)
    assert keep.tolist() == [0]


def test_box_iou_hand_computed():
    iou = box_iou([0, 0, 10, 10], [[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    np.testing.assert_allclose(iou, [50 / 150, 0.0, 1.0])
    # Inclusive-pixel convention: [0, 9] is 10 px wide.
    np.testing.assert_allclose(box_iou([0, 0, 9, 9], [[5, 0, 14, 9]], plus_one=True), [50 / 150])


BOXES = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], dtype=float)
SCORES = np.array([0.9, 0.8, 0.7])


def test_box_soft_nms_gaussian_hand_computed():
    keep, new = soft_nms(BOXES, SCORES, method="gaussian", sigma=0.5)
    # IoU(box0, box1) = 1/3: 0.8 * exp(-(1/9) / 0.5); box2 overlaps nothing.
    assert keep.tolist() == [0, 2, 1]
    np.testing.assert_allclose(new, [0.9, 0.7, 0.8 * math.exp(-2.0 / 9.0)])


def test_box_soft_nms_linear_and_hard():
    keep, new = soft_nms(BOXES, SCORES, method="linear", iou_thresh=0.3)
    assert keep.tolist() == [0, 2, 1]
    np.testing.assert_allclose(new, [0.9, 0.7, 0.8 * (1 - 1 / 3)])
    # IoU 1/3 is not above Nt = 0.4: unchanged.
    keep, new = soft_nms(BOXES, SCORES, method="linear", iou_thresh=0.4)
    np.testing.assert_allclose(new, [0.9, 0.8, 0.7])
    keep, new = soft_nms(BOXES, SCORES, method="hard", iou_thresh=0.3)
    assert keep.tolist() == [0, 2]  # box 1 went to 0 < 0.001 and was dropped


def test_box_soft_nms_drops_below_min_score():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], dtype=float)
    # Identical box: 0.002 * exp(-2) = 0.00027 < 0.001 -> dropped.
    keep, _ = soft_nms(boxes, [0.9, 0.002])
    assert keep.tolist() == [0]
    keep, _ = soft_nms(boxes, [0.9, 0.01])
    assert keep.tolist() == [0, 1]


def _reference_cpu_soft_nms(dets, sigma=0.5, nt=0.3, threshold=0.001, method=2):
    """A line-by-line Python port of TFCPN's Cython ``cpu_soft_nms`` (+1 box sizes)."""
    boxes = dets.copy()
    n = boxes.shape[0]
    i = 0
    while i < n:
        maxpos = i + int(np.argmax(boxes[i:n, 4]))
        boxes[[i, maxpos]] = boxes[[maxpos, i]]
        tx1, ty1, tx2, ty2, _ = boxes[i]
        pos = i + 1
        while pos < n:
            x1, y1, x2, y2, _ = boxes[pos]
            area = (x2 - x1 + 1) * (y2 - y1 + 1)
            iw = min(tx2, x2) - max(tx1, x1) + 1
            if iw > 0:
                ih = min(ty2, y2) - max(ty1, y1) + 1
                if ih > 0:
                    ua = (tx2 - tx1 + 1) * (ty2 - ty1 + 1) + area - iw * ih
                    ov = iw * ih / ua
                    if method == 1:
                        weight = 1 - ov if ov > nt else 1
                    elif method == 2:
                        weight = np.exp(-(ov * ov) / sigma)
                    else:
                        weight = 0 if ov > nt else 1
                    boxes[pos, 4] *= weight
                    if boxes[pos, 4] < threshold:
                        boxes[pos] = boxes[n - 1]
                        n -= 1
                        pos -= 1
            pos += 1
        i += 1
    return boxes[:n]


@pytest.mark.parametrize("method,code", [("gaussian", 2), ("linear", 1), ("hard", 0)])
def test_box_soft_nms_matches_reference_kernel(method, code):
    rng = np.random.default_rng(11)
    xy = rng.uniform(0, 100, (40, 2))
    wh = rng.uniform(5, 40, (40, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    scores = rng.uniform(0.0, 1.0, 40)
    ref = _reference_cpu_soft_nms(np.concatenate([boxes, scores[:, None]], axis=1), method=code)
    keep, new = soft_nms(boxes, scores, method=method, plus_one=True)
    ours = np.concatenate([boxes[keep], new[:, None]], axis=1)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


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
