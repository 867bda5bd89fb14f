"""Top-down oracle (simplepose.oracle.topdown) and the evaluation loop (evaluation.runner)."""

import logging

import numpy as np
import pytest

from simplepose.codecs.topdown import build_codec
from simplepose.data.boxes import gt_boxes, gt_instances
from simplepose.errors import InputError
from simplepose.evaluation.coco import evaluate_keypoints
from simplepose.evaluation.runner import run_predictor
from simplepose.inference.topdown import crop_affines
from simplepose.oracle.topdown import (
    match_boxes_to_gt,
    oracle_people,
    render_topdown_targets,
    run_topdown_oracle,
)

# Measured on the shared val subset (158 persons), GT boxes, 256x192; the clean decode and the
# default crop padding (1.25, 1.25), with or without flip: 0.965 (MSPN and CPN codecs).
VAL_AP_FLOOR = 0.95


@pytest.mark.parametrize("name", ["mspn_256x192", "cpn_256x192"])
def test_oracle_on_sample(sample_ann, name):
    results = run_topdown_oracle(sample_ann, build_codec(name))
    assert len(results) == 9  # the non-crowd persons with keypoints
    assert evaluate_keypoints(sample_ann, results)["AP"] == pytest.approx(1.0)


def test_oracle_keypoints_close_to_ground_truth(sample_ann):
    codec = build_codec("mspn_256x192")
    for image_id in sample_ann.image_ids:
        boxes, kps = gt_instances(sample_ann, image_id)
        people = oracle_people(sample_ann, image_id, codec, flip=True)
        mats, _ = crop_affines(boxes, codec)
        for p, k, m in zip(people, kps, mats):
            labelled = k[:, 2] > 0
            err = np.linalg.norm(p.keypoints[labelled, :2] - k[labelled, :2], axis=1)
            # within the cell quantisation: 2 sqrt(2) input px, in original px
            assert (err <= 2 * np.sqrt(2) / m[0, 0] + 1e-6).all(), err
            # box score 1 x mean keypoint score: perfect peaks 255/255 + 0.5, empty maps 0.5
            np.testing.assert_allclose(p.keypoints[:, 2], np.where(labelled, 1.5, 0.5))
            assert p.score == pytest.approx(np.where(labelled, 1.5, 0.5).mean())


def test_render_targets_flip_mirror():
    codec = build_codec("mspn_256x192")
    kp = np.zeros((1, 17, 3))
    kp[0, 5] = [43.5, 100.0, 2]  # left shoulder, cell (10, 25)
    maps, fmaps = render_topdown_targets(codec, kp, flip=True)
    assert maps.shape == fmaps.shape == (1, 17, 64, 48)
    assert np.unravel_index(maps[0, 5].argmax(), (64, 48)) == (25, 10)
    # mirrored to x = 192 - 43.5 = 148.5 (cell 37 = 47 - 10) in the right-shoulder channel
    assert np.unravel_index(fmaps[0, 6].argmax(), (64, 48)) == (25, 37)
    assert fmaps[0, 5].max() == 0
    np.testing.assert_allclose(codec.flip_back(fmaps), maps)  # exact mirror: flip-back = identity
    _, ref = render_topdown_targets(codec, kp, flip=True, reference_flip=True)
    assert np.unravel_index(ref[0, 6].argmax(), (64, 48)) == (25, 36)  # 191 - 43.5 = 147.5


def test_oracle_with_detection_boxes(sample_ann):
    """Boxes that are not GT boxes render the GT person they overlap (IoU >= 0.5), else nothing."""
    image_id = 252219
    gb, _ = gt_instances(sample_ann, image_id)
    jitter = gb + np.array([2.0, -3.0, 4.0, 2.0])
    boxes = np.concatenate([jitter, [[0.0, 0.0, 5.0, 5.0]]])
    np.testing.assert_array_equal(match_boxes_to_gt(boxes, gb), [0, 1, 2, -1])
    people = oracle_people(sample_ann, image_id, build_codec("mspn_256x192"), boxes,
                           np.array([0.9, 0.8, 0.7, 0.6]))  # fmt: skip
    assert len(people) == 4
    assert people[-1].score == pytest.approx(0.6 * 0.5)  # empty maps: keypoint scores 0.5
    box_dict = {image_id: (boxes, np.array([0.9, 0.8, 0.7, 0.6]))}
    results = run_topdown_oracle(sample_ann, "mspn_256x192", boxes=box_dict)
    assert {r["image_id"] for r in results} == {image_id} and len(results) == 4
    assert evaluate_keypoints(sample_ann, results, image_ids=[image_id])["AP"] > 0.9


class _StubPredictor:
    """A top-down predictor that returns nothing; records what it was called with."""

    mode = "topdown"

    def __init__(self):
        self.calls = []

    def predict(self, image, boxes_xyxy=None, box_scores=None):
        self.calls.append((image.shape, len(boxes_xyxy)))
        return []


def test_runner_bad_images(sample_ann, tmp_path, caplog):
    # two images absent, one corrupt: fails by default, skipped and counted with skip_bad
    corrupt = sample_ann.image_path(40083, tmp_path)
    corrupt.write_bytes(b"not an image")
    boxes = gt_boxes(sample_ann)
    with pytest.raises(InputError, match="cannot be decoded"):
        run_predictor(_StubPredictor(), sample_ann, tmp_path, boxes, progress=False)
    stub = _StubPredictor()
    with caplog.at_level(logging.WARNING):
        results, bad = run_predictor(stub, sample_ann, tmp_path, boxes, skip_bad=True,
                                     progress=False)
    assert results == [] and len(bad) == 3 and stub.calls == []
    assert any("3 image(s) could not be read" in r.getMessage() for r in caplog.records)


def test_runner_reads_images(sample_ann, tmp_path):
    import cv2

    for image_id in sample_ann.image_ids:
        h, w = sample_ann.image_size(image_id)
        cv2.imwrite(str(sample_ann.image_path(image_id, tmp_path)), np.zeros((h, w, 3), np.uint8))
    stub = _StubPredictor()
    results, bad = run_predictor(stub, sample_ann, tmp_path, gt_boxes(sample_ann), progress=False)
    assert sorted(n for _, n in stub.calls) == [2, 3, 4] and results == [] and bad == []


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mspn_256x192", "cpn_256x192"])
@pytest.mark.parametrize("flip", [False, True])
def test_oracle_val_subset_ap(val_ann, name, flip):
    results = run_topdown_oracle(val_ann, build_codec(name), flip=flip)
    assert len(results) == 158
    ap = evaluate_keypoints(val_ann, results)["AP"]
    assert ap >= VAL_AP_FLOOR, ap
