"""Top-down geometry (simplepose.data.topdown_transforms): affines, boxes, augmentation,
box sanitising."""

import logging

import cv2
import numpy as np
import pytest

from simplepose.data.topdown_transforms import (
    CPN_TEST_PADDING,
    TopDownAugParams,
    box_to_center_scale,
    get_affine_transform,
    half_body_center_scale,
    sample_topdown_aug,
    sanitize_boxes,
    topdown_affine,
    transform_keypoints,
    warp_image,
)
from simplepose.errors import InputError
from simplepose.geometry import apply_affine, invert_affine
from simplepose.skeleton import COCO_FLIP_INDEX

OUT = (192, 256)  # (W_in, H_in)


def _three_point_reference(center, scale_w, rot, output_size):
    """The MSPN / HRNet construction (three points + cv2.getAffineTransform), scale in px."""
    dw, dh = output_size
    r = np.deg2rad(rot)
    sn, cs = np.sin(r), np.cos(r)
    src_dir = np.array([0 * cs - (-0.5 * scale_w) * sn, 0 * sn + (-0.5 * scale_w) * cs])

    def third(a, b):
        d = a - b
        return b + np.array([-d[1], d[0]])

    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0] = center
    src[1] = np.asarray(center) + src_dir
    dst[0] = [dw * 0.5, dh * 0.5]
    dst[1] = np.array([dw * 0.5, dh * 0.5]) + [0, -0.5 * dw]
    src[2] = third(src[0], src[1])
    dst[2] = third(dst[0], dst[1])
    return cv2.getAffineTransform(src, dst)


@pytest.mark.parametrize("rot", [0.0, 17.0, -45.0, 90.0, 180.0])
def test_affine_matches_three_point_reference(rot):
    center, scale = np.array([321.5, 207.25]), np.array([150.0, 200.0])
    m = get_affine_transform(center, scale, rot, OUT)
    ref = _three_point_reference(center, scale[0], rot, OUT)
    np.testing.assert_allclose(m, ref, atol=1e-3)  # the reference builds it in float32
    np.testing.assert_allclose(apply_affine(center, m), [96, 128], atol=1e-9)
    # s_w original px map onto W_in input px
    assert np.linalg.norm(m[:, :2] @ [1.0, 0.0]) * scale[0] == pytest.approx(OUT[0])


def test_affine_inverse_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(20):
        c = rng.uniform(0, 640, 2)
        s = rng.uniform(20, 400, 2)
        rot = rng.uniform(-180, 180)
        m = get_affine_transform(c, s, rot, OUT)
        inv = get_affine_transform(c, s, rot, OUT, inv=True)
        np.testing.assert_allclose(inv, invert_affine(m), atol=1e-12)
        np.testing.assert_allclose(inv, cv2.invertAffineTransform(m), atol=1e-9)
        pts = rng.uniform(-100, 700, (5, 17, 2))
        np.testing.assert_allclose(apply_affine(apply_affine(pts, m), inv), pts, atol=1e-9)
        # batched matrices
        mats = np.stack([m, inv])
        out = apply_affine(pts[:2], mats)
        np.testing.assert_allclose(out[1], apply_affine(pts[1], inv))
    with pytest.raises(InputError):
        get_affine_transform([0, 0], [0, 10], 0, OUT)
    with pytest.raises(InputError):
        invert_affine(np.zeros((2, 3)))


def test_box_to_center_scale_fixes_aspect_and_pads():
    boxes = np.array([[10, 20, 100, 50], [0, 0, 30, 300], [5, 5, 75, 100]], float)
    c, s = box_to_center_scale(boxes, 192 / 256)
    np.testing.assert_allclose(c, [[60, 45], [15, 150], [42.5, 55]])
    np.testing.assert_allclose(s[:, 0] / s[:, 1], 0.75)
    assert s[0, 0] == pytest.approx(109.0)  # wide box: width * 1.09 kept, height enlarged
    assert s[1, 1] == pytest.approx(340.5)  # tall box: height * 1.135 kept
    assert (s >= boxes[:, 2:] * [1.09, 1.135] - 1e-9).all()
    c1, s1 = box_to_center_scale(boxes[0], 0.75, padding=CPN_TEST_PADDING)
    assert c1.shape == (2,) and s1[0] == pytest.approx(120.0)


def test_warp_image_moves_a_point_where_apply_affine_says():
    img = np.zeros((480, 640), np.float32)
    p = np.array([400.0, 150.0])
    img[150, 400] = 1.0
    m = get_affine_transform([380, 170], [100, 133.3], 30.0, OUT)
    crop = warp_image(cv2.GaussianBlur(img, (31, 31), 6), m, OUT)
    assert crop.shape == (256, 192)
    y, x = np.unravel_index(crop.argmax(), crop.shape)
    np.testing.assert_allclose([x, y], apply_affine(p, m), atol=1.0)
    with pytest.raises(InputError):
        warp_image(np.zeros((0, 5)), m, OUT)


def test_flip_is_folded_into_the_matrix():
    rng = np.random.default_rng(1)
    img = (rng.random((120, 160, 3)) * 255).astype(np.uint8)
    c, s = np.array([70.0, 60.0]), np.array([90.0, 120.0])
    params = TopDownAugParams(scale_mult=1.1, rotation=12.0, flip=True)
    m = topdown_affine(c, s, params, OUT, image_width=160)
    # MSPN: flip the image, mirror the centre, then crop
    m_ref = get_affine_transform([160 - 1 - c[0], c[1]], s * 1.1, 12.0, OUT)
    a = warp_image(img, m, OUT, interpolation=cv2.INTER_NEAREST)
    b = warp_image(cv2.flip(img, 1), m_ref, OUT, interpolation=cv2.INTER_NEAREST)
    assert np.mean(a != b) < 0.01  # identical up to nearest-neighbour rounding ties
    kp = rng.uniform(20, 100, (17, 2))
    vis = np.full(17, 2.0)
    kp_in, _vis_in = transform_keypoints(kp, vis, m, OUT, flip_index=COCO_FLIP_INDEX)
    ref = apply_affine(np.stack([160 - 1 - kp[:, 0], kp[:, 1]], 1), m_ref)[list(COCO_FLIP_INDEX)]
    np.testing.assert_allclose(kp_in, ref, atol=1e-9)


def test_transform_keypoints_invalidates_outside():
    m = get_affine_transform([100, 100], [96, 128], 0, OUT)  # 2x zoom
    kp = np.array([[100, 100], [0, 0], [147.4, 163.4], [148.0, 100], [np.nan, 1]])
    kp_in, vis = transform_keypoints(kp, np.array([2, 2, 1, 2, 2]), m, OUT)
    np.testing.assert_allclose(kp_in[0], [96, 128])
    np.testing.assert_array_equal(vis, [2, 0, 1, 0, 0])


def test_half_body_and_random_params():
    rng = np.random.default_rng(0)
    kp = np.stack([np.arange(17) * 10.0, np.arange(17) * 20.0], 1)
    vis = np.full(17, 2)
    out = half_body_center_scale(kp, vis, 0.75, rng, upper_prob=0.0)  # forced lower body
    assert out is not None
    c, s = out
    np.testing.assert_allclose(c, kp[13:].mean(0))
    assert s[0] / s[1] == pytest.approx(0.75) and s[1] >= 60.0
    c, s = half_body_center_scale(kp, vis, 0.75, rng, upper_prob=1.0)
    np.testing.assert_allclose(c, kp[:13].mean(0))
    vis2 = np.zeros(17)
    vis2[[0, 14]] = 2
    assert half_body_center_scale(kp, vis2, 0.75, rng) is None
    for _ in range(50):
        p = sample_topdown_aug(rng)
        assert 0.8 * 0.75 <= p.scale_mult <= 0.8 * 1.25 and -45 <= p.rotation <= 45
    assert not sample_topdown_aug(rng, rot_prob=0, flip_prob=0).flip


def test_sanitize_boxes_drops_and_counts(caplog):
    boxes = [
        [10, 10, 50, 80],  # good
        [np.nan, 0, 10, 10],  # NaN
        [5, 5, -1, 30],  # negative width
        [5, 5, 30, 0],  # zero height
        [700, 10, 20, 20],  # right of a 640-wide image
        [-50, -50, 40, 40],  # above-left, no overlap
        [-10, -10, 40, 40],  # partly inside: kept
        [0, 0, np.inf, 5],  # inf
        [20, 20, 10, 10],  # good box, NaN score
    ]
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, np.nan]
    with caplog.at_level(logging.WARNING, logger="simplepose.data.topdown_transforms"):
        kept, kept_scores, n = sanitize_boxes(boxes, scores, image_size=(640, 480))
    assert n == 7
    np.testing.assert_array_equal(kept, [[10, 10, 50, 80], [-10, -10, 40, 40]])
    np.testing.assert_array_equal(kept_scores, [0.9, 0.3])
    assert "dropped 7 of 9" in caplog.text
    # without scores / image size, empty input, bad shape
    k2, s2, n2 = sanitize_boxes(boxes[:4])
    assert n2 == 3 and s2 is None and len(k2) == 1
    k3, _s3, n3 = sanitize_boxes([], [], (10, 10))
    assert k3.shape == (0, 4) and n3 == 0
    with pytest.raises(InputError):
        sanitize_boxes(np.zeros((3, 5)))
    with pytest.raises(InputError):
        sanitize_boxes(np.zeros((3, 4)), [1.0])
