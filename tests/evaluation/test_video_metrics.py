"""Synthetic video ground truth and the tracking metrics (trackeval by OKS, jitter)."""

from __future__ import annotations

import numpy as np
import pytest

from simplepose.evaluation.video import (
    keypoint_jitter,
    oks_matrix,
    oracle_identities,
    synthesize_sequence,
    tracking_metrics,
)
from simplepose.tracking import TrackedPerson

pytest.importorskip("trackeval")


def _annotations():
    anns = []
    for i, (x0, y0) in enumerate([(40, 60), (160, 70), (260, 50)]):
        k = np.zeros((17, 3))
        k[:, 0] = x0 + np.linspace(0, 40, 17)
        k[:, 1] = y0 + np.linspace(0, 120, 17)
        k[:, 2] = 2
        anns.append(
            {
                "id": 100 + i,
                "keypoints": k.reshape(-1).tolist(),
                "num_keypoints": 17,
                "area": 40 * 120.0,
                "bbox": [x0, y0, 40, 120],
                "iscrowd": 0,
                "category_id": 1,
            }
        )
    return anns


def _image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (240, 320, 3)).astype(np.uint8)


def _sequence(seed=0, frames=12):
    return synthesize_sequence(
        _image(),
        _annotations(),
        np.random.default_rng(seed),
        num_frames=frames,
        size=(160, 120),
        max_zoom=1.6,
    )


def test_same_seed_same_sequence_and_ground_truth_follows_the_camera():
    a, b, c = _sequence(0), _sequence(0), _sequence(1)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames))
    assert a.annotations == b.annotations
    assert not all(np.array_equal(x, y) for x, y in zip(a.frames, c.frames))
    src = {ann["id"]: np.asarray(ann["keypoints"]).reshape(17, 3) for ann in _annotations()}
    for m, anns in zip(a.matrices, a.annotations):
        for ann in anns:
            k = np.asarray(ann["keypoints"]).reshape(17, 3)
            vis = k[:, 2] > 0
            want = src[ann["track_id"]][:, :2] @ m[:, :2].T + m[:, 2]
            np.testing.assert_allclose(k[vis, :2], want[vis], atol=1e-3)
            assert ann["num_keypoints"] == int(vis.sum())
            inside = (want[:, 0] >= 0) & (want[:, 0] < 160) & (want[:, 1] >= 0) & (want[:, 1] < 120)
            assert (vis == inside).all()  # visible exactly when inside the frame


def _as_people(anns, ids=None):
    return [
        TrackedPerson(
            keypoints=np.asarray(a["keypoints"], float).reshape(17, 3),
            score=1.0,
            box=np.zeros(4),
            track_id=(ids or {}).get(a["track_id"], a["track_id"]),
        )
        for a in anns
    ]


def test_ground_truth_as_tracks_scores_perfectly():
    seq = _sequence(2, frames=10)
    gt = [seq.annotations]
    preds = [[_as_people([a for a in anns if a["num_keypoints"] > 0]) for anns in seq.annotations]]
    m = tracking_metrics(gt, preds)
    assert m["hota"] == pytest.approx(1.0) and m["assa"] == pytest.approx(1.0)
    assert (
        m["idf1"] == pytest.approx(1.0)
        and m["mota"] == pytest.approx(1.0)
        and m["id_switches"] == 0
    )
    assert keypoint_jitter(gt, preds)["jitter"] == pytest.approx(0.0, abs=1e-9)
    # the oracle relabelling of the same poses scores the same
    assert tracking_metrics(gt, oracle_identities(gt, preds))["assa"] == pytest.approx(1.0)


def test_an_identity_swap_is_counted():
    seq = _sequence(3, frames=10)
    gt = [seq.annotations]
    preds = []
    for t, anns in enumerate(seq.annotations):
        present = [a for a in anns if a["num_keypoints"] > 0]
        preds.append(_as_people(present, {100: 101, 101: 100} if t >= 5 else None))
    m = tracking_metrics(gt, [preds])
    assert m["id_switches"] >= 2 and m["assa"] < 0.9 and m["mota"] < 1.0


def test_oks_matrix_matches_the_coco_definition():
    ann = _annotations()[0]
    k = np.asarray(ann["keypoints"], float).reshape(17, 3)
    moved = k.copy()
    moved[:, 0] += 3.0
    sim = oks_matrix(
        [ann], [TrackedPerson(keypoints=moved, score=1.0, box=np.zeros(4), track_id=1)]
    )
    from simplepose.skeleton import COCO_SIGMAS

    want = np.mean(np.exp(-9.0 / (2 * ann["area"] * (2 * COCO_SIGMAS) ** 2)))
    assert sim[0, 0] == pytest.approx(want)


def test_jitter_measures_acceleration_error():
    ann = {**_annotations()[0], "track_id": 7}
    base = np.asarray(ann["keypoints"], float).reshape(17, 3)
    gt = [[[ann], [ann], [ann]]]
    wobble = base.copy()
    wobble[:, 1] += 2.0  # middle frame off by 2 px in y: acceleration error 4 px
    preds = [
        [
            _as_people([ann]),
            [TrackedPerson(keypoints=wobble, score=1.0, box=np.zeros(4), track_id=1)],
            _as_people([ann]),
        ]
    ]
    out = keypoint_jitter(gt, preds)
    assert out["triplets"] == 17 and out["jitter"] == pytest.approx(4.0)
