"""PCKh against hand-computed cases (per-joint groups, Mean joints, 1-based .mat files)."""

import numpy as np
import pytest
import scipy.io

from simplepose.data.mpii import MPII_MAT_JOINTS, load_mpii_gt
from simplepose.errors import AnnotationError, InputError
from simplepose.evaluation.pckh import compute_pckh, format_pckh_table, match_people_to_records

HEAD_TOP, R_SHO, L_SHO, L_ANK, PELVIS, THORAX = 9, 12, 13, 5, 6, 7


def _case():
    """Two persons; head boxes (1-based corners) with diagonals 5 and 10 -> head sizes 3, 6."""
    rng = np.random.default_rng(0)
    gt = rng.uniform(20, 200, size=(2, 16, 2))
    visible = np.ones((2, 16), bool)
    visible[1, L_ANK] = False
    heads = np.array([[[1, 1], [4, 5]], [[11, 11], [17, 19]]], dtype=np.float64)
    err = np.zeros((2, 16))
    err[0, HEAD_TOP], err[0, R_SHO], err[0, L_SHO] = 1.5, 0.2, 1.6  # thresholds 1.5 / 0.3 px
    err[1, HEAD_TOP] = 3.1  # thresholds 3.0 / 0.6 px
    err[:, PELVIS] = err[:, THORAX] = 100.0  # not in the benchmark's Mean
    err[1, L_ANK] = 1000.0  # not labelled: not counted
    pred = gt.copy()
    pred[..., 0] += err
    return pred, gt, visible, heads


def test_pckh_hand_computed_groups_and_mean():
    pred, gt, visible, heads = _case()
    m = compute_pckh(pred, gt, visible, heads)
    assert m["Head"] == pytest.approx(50.0)  # head top: person 0 at exactly 0.5 h counts
    assert m["Shoulder"] == pytest.approx((100.0 + 50.0) / 2)
    assert m["Ankle"] == pytest.approx(100.0)  # left ankle: 1 of 1 labelled
    for group in ("Elbow", "Wrist", "Hip", "Knee"):
        assert m[group] == pytest.approx(100.0)
    # 14 joints (pelvis, thorax out; upper neck in) x 2 persons - 1 unlabelled = 27; 2 wrong
    assert m["Mean"] == pytest.approx(100.0 * 25 / 27)
    assert m["PCKh@0.5"] == m["Mean"]
    # at 0.1: person 0 head top and left shoulder, person 1 head top wrong
    assert m["Mean@0.1"] == pytest.approx(100.0 * 24 / 27)
    assert m.per_joint[0.5][PELVIS] == 0.0 and m.per_joint[0.5][L_ANK] == 100.0
    table = format_pckh_table(m)
    assert "Head" in table and "92.6" in table


def _write_mat(path, joints_1based, visible, heads_1based):
    n = joints_1based.shape[0]
    names = np.empty((1, 16), dtype=object)
    names[0, :] = list(MPII_MAT_JOINTS)
    scipy.io.savemat(str(path), {
        "dataset_joints": names,
        "jnt_missing": (~visible).T.astype(float),
        "pos_gt_src": np.transpose(joints_1based, (1, 2, 0)),
        "headboxes_src": np.transpose(heads_1based, (1, 2, 0)).reshape(2, 2, n),
    })  # fmt: skip


def test_one_based_mat_against_zero_based_predictions(tmp_path):
    _, gt0, visible, _ = _case()
    heads = np.array([[[10, 10], [11, 11]], [[10, 10], [11, 11]]], dtype=np.float64)  # h = 0.85 px
    path = tmp_path / "gt.mat"
    _write_mat(path, gt0 + 1.0, visible, heads)  # MATLAB: pixel (0, 0) is (1, 1)
    gt = load_mpii_gt(path)
    assert np.allclose(gt.joints[visible], gt0[visible]) and np.allclose(gt.head_boxes, heads - 1)
    exact = compute_pckh(gt0, gt.joints, gt.visible, gt.head_boxes)
    assert exact["Mean"] == 100.0
    # a 0-based prediction compared with the 1-based values as they stand would be 1.41 px off
    unconverted = compute_pckh(gt0 - 1.0, gt.joints, gt.visible, gt.head_boxes)
    assert unconverted["Mean"] == 0.0


def test_missing_predictions_count_wrong_and_matching():
    pred, gt, visible, heads = _case()
    pred[1] = np.nan
    m = compute_pckh(pred, gt, visible, heads)
    assert m.num_missing == 1 and m["Mean"] == pytest.approx(100.0 * 13 / 27)  # person 0: 13 of 14
    # two people on one image, given in swapped order with scores: matched by distance
    people = {"a.jpg": [(0.9, gt[1] + 0.1), (0.8, gt[0])]}
    out = match_people_to_records(people, {"a.jpg": [0, 1]}, gt, visible)
    assert np.allclose(out[0], gt[0]) and np.allclose(out[1], gt[1] + 0.1)
    out = match_people_to_records({}, {"a.jpg": [0, 1]}, gt, visible)
    assert np.isnan(out).all()


def test_bad_shapes_and_head_boxes(tmp_path):
    pred, gt, visible, heads = _case()
    with pytest.raises(InputError, match="one prediction of 16 joints"):
        compute_pckh(pred[:, :15], gt, visible, heads)
    _write_mat(
        tmp_path / "deg.mat", gt + 1, visible, np.array([[[1, 1], [4, 5]], [[3, 3], [3, 3]]], float)
    )
    with pytest.raises(AnnotationError, match=r"person 1: 'headboxes_src' head box .* degenerate"):
        load_mpii_gt(tmp_path / "deg.mat")
    scipy.io.savemat(str(tmp_path / "nohead.mat"), {
        "jnt_missing": np.zeros((16, 2)), "pos_gt_src": np.zeros((16, 2, 2))})  # fmt: skip
    with pytest.raises(
        AnnotationError, match=r"nohead.mat: missing head boxes \('headboxes_src'\)"
    ):
        load_mpii_gt(tmp_path / "nohead.mat")
    scipy.io.savemat(str(tmp_path / "j15.mat"), {
        "jnt_missing": np.zeros((15, 2)), "pos_gt_src": np.zeros((15, 2, 2)),
        "headboxes_src": np.ones((2, 2, 2))})  # fmt: skip
    with pytest.raises(AnnotationError, match=r"j15.mat: 'pos_gt_src' must be \(16, 2, N\)"):
        load_mpii_gt(tmp_path / "j15.mat")
