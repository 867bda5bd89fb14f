"""The neutral geometry module: bottom-up frames, affines, box formats and IoU."""

import numpy as np
import pytest

from simplepose.errors import InputError
from simplepose.geometry import (
    BottomUpGeometry,
    apply_affine,
    box_iou,
    cell_offset,
    compose_affine,
    hflip_matrix,
    invert_affine,
    xywh_to_xyxy,
    xyxy_to_xywh,
)


def test_cell_offset_is_the_centre_of_the_first_cell():
    assert cell_offset(4) == 1.5 and cell_offset(8) == 3.5 and cell_offset(1) == 0.0


def test_bottomup_geometry_frames_invert():
    g = BottomUpGeometry.for_image(640, 427, box_size=512)
    assert g.in_h == 512 and g.pad_w % 64 == 0 and g.pad_h % 64 == 0
    pts = np.array([[0.0, 0.0], [639.0, 426.0], [123.4, 56.7]])
    np.testing.assert_allclose(g.input_to_original(g.original_to_input(pts)), pts, atol=1e-9)
    np.testing.assert_allclose(g.heatmap_to_original(g.original_to_heatmap(pts)), pts, atol=1e-9)
    # heatmap cell centre 4i + 1.5 in input px
    np.testing.assert_allclose(
        g.heatmap_to_original([[0.0, 0.0]]), g.input_to_original([[1.5, 1.5]])
    )
    # the matrix form agrees with the point form
    np.testing.assert_allclose(
        apply_affine(pts, g.original_to_input_matrix()), g.original_to_input(pts), atol=1e-9
    )
    with pytest.raises(InputError, match="0x5"):
        BottomUpGeometry.for_image(0, 5)


def test_affines_invert_compose_and_apply_per_item():
    rng = np.random.default_rng(0)
    m = np.concatenate([rng.normal(size=(2, 2)) + 2 * np.eye(2), rng.normal(size=(2, 1))], 1)
    pts = rng.uniform(-50, 50, (5, 7, 2))
    np.testing.assert_allclose(apply_affine(apply_affine(pts, m), invert_affine(m)), pts,
                               atol=1e-9)
    flip = hflip_matrix(100)
    np.testing.assert_allclose(apply_affine([[0.0, 3.0], [99.0, 4.0]], flip),
                               [[99.0, 3.0], [0.0, 4.0]])
    np.testing.assert_allclose(apply_affine(pts, compose_affine(flip, m)),
                               apply_affine(apply_affine(pts, m), flip), atol=1e-9)
    per = np.stack([m, flip, m, flip, m])  # (N, 2, 3): one matrix per leading index
    out = apply_affine(pts, per)
    np.testing.assert_allclose(out[1], apply_affine(pts[1], flip))
    np.testing.assert_allclose(invert_affine(per)[1], invert_affine(flip))
    with pytest.raises(InputError, match="does not fit"):
        apply_affine(pts[:3], per)
    with pytest.raises(InputError, match="singular"):
        invert_affine(np.zeros((2, 3)))
    with pytest.raises(InputError, match="points"):
        apply_affine(np.zeros((4, 3)), m)


def test_box_formats_round_trip():
    xywh = np.array([[1.0, 2.0, 3.0, 4.0], [10.0, 0.0, 0.0, 5.0]])
    np.testing.assert_allclose(xywh_to_xyxy(xywh), [[1, 2, 4, 6], [10, 0, 10, 5]])
    np.testing.assert_allclose(xyxy_to_xywh(xywh_to_xyxy(xywh)), xywh)
    assert xywh_to_xyxy(np.zeros((0, 4))).shape == (0, 4)
    with pytest.raises(InputError, match="boxes"):
        xywh_to_xyxy([1, 2, 3])


def test_box_iou_hand_computed_pairwise():
    a = [[0, 0, 10, 10]]
    b = [[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10], [2, 2, 2, 8]]
    iou = box_iou(a, b)
    assert iou.shape == (1, 4)
    np.testing.assert_allclose(iou[0], [50 / 150, 0.0, 1.0, 0.0])  # a zero-width box: 0
    both = box_iou(b, b)
    np.testing.assert_allclose(both, both.T)
    np.testing.assert_allclose(np.diag(both), [1.0, 1.0, 1.0, 0.0])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 4)
