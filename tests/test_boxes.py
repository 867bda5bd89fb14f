"""Person boxes for top-down evaluation (simplepose.data.boxes)."""

import json
import logging

import numpy as np
import pytest
from conftest import SHARED

from simplepose.data.boxes import count_boxes, gt_boxes, gt_instances, load_detections
from simplepose.errors import AnnotationError

DETECTIONS = (
    SHARED / "data" / "coco" / "detections" / "COCO_val2017_detections_AP_H_56_person_subset.json"
)


def _write(tmp_path, records, name="det.json"):
    path = tmp_path / name
    path.write_text(json.dumps(records))  # json.dumps writes NaN / Infinity literals as Python does
    return path


def _det(image_id, bbox, score=0.9, category_id=1):
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox, "score": score}


def test_load_detections(tmp_path, sample_ann, caplog):
    records = [
        _det(40083, [10.0, 20.0, 30.0, 40.0], 0.9),
        _det(40083, [50, 60, 70, 80], 0.2),
        _det(252219, [1, 2, 3, 4], 0.5),
        _det(252219, [1, 2, 3, 4], 0.99, category_id=3),  # not a person: skipped
        _det(463730, [5, 5, 10, 10], 0.05),
    ]
    path = _write(tmp_path, records)
    with caplog.at_level(logging.WARNING):
        boxes = load_detections(path, sample_ann)
    assert not [r for r in caplog.records if "sanitize_boxes" in r.getMessage()]
    assert sorted(boxes) == [40083, 252219, 463730]
    b, s = boxes[40083]
    assert b.dtype == np.float64 and b.shape == (2, 4) and s.shape == (2,)
    np.testing.assert_allclose(b, [[10, 20, 30, 40], [50, 60, 70, 80]])
    np.testing.assert_allclose(s, [0.9, 0.2])
    assert count_boxes(boxes) == 4

    thr = load_detections(path, sample_ann, score_threshold=0.3)
    assert count_boxes(thr) == 2
    assert thr[463730][0].shape == (0, 4)  # the image stays, with no boxes


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "not valid JSON"),
        ('{"image_id": 40083}', "top level must be a list"),
        (json.dumps([_det(40083, [1, 2, 3, 4]), {"image_id": 40083, "score": 1}]), "record 1"),
        (json.dumps([_det(40083, [1, 2, 3])]), "'bbox' must be 4 numbers"),
        (json.dumps([_det(40083, [1, 2, 3, 4], "high")]), "'score' must be a number"),
        (json.dumps([_det("40083", [1, 2, 3, 4])]), "'image_id' must be an integer"),
        (json.dumps([7]), "record 0: must be an object"),
    ],
)
def test_malformed_detection_files(tmp_path, sample_ann, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(AnnotationError, match=match):
        load_detections(path, sample_ann)


def test_missing_file(tmp_path, sample_ann):
    with pytest.raises(AnnotationError, match="does not exist"):
        load_detections(tmp_path / "nope.json", sample_ann)


def test_no_overlap_is_an_error(tmp_path, sample_ann):
    path = _write(tmp_path, [_det(1, [1, 2, 3, 4]), _det(2, [1, 2, 3, 4])])
    with pytest.raises(AnnotationError, match="none of its 2 image ids"):
        load_detections(path, sample_ann)
    with pytest.raises(AnnotationError, match="no person detections"):
        load_detections(_write(tmp_path, [], "empty.json"), sample_ann)


def test_partial_overlap_warns_with_counts(tmp_path, sample_ann, caplog):
    path = _write(tmp_path, [_det(40083, [1, 2, 3, 4]), _det(999, [1, 2, 3, 4]),
                             _det(998, [1, 2, 3, 4])])  # fmt: skip
    with caplog.at_level(logging.WARNING):
        boxes = load_detections(path, sample_ann)
    assert list(boxes) == [40083]
    msgs = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("covers 1 of the 3 annotation images" in m and "2 of its 3 image ids are not" in m
               for m in msgs), msgs  # fmt: skip


def test_bad_boxes_are_dropped_in_one_warning(tmp_path, sample_ann, caplog):
    _h, w = sample_ann.image_size(40083)
    records = [
        _det(40083, [10, 10, 50, 50]),  # fine
        _det(40083, [10, 10, 0, 50]),  # zero width
        _det(40083, [10, 10, 50, -5]),  # negative height
        _det(40083, [float("nan"), 10, 50, 50]),  # non-finite box
        _det(40083, [10, 10, 50, 50], float("inf")),  # non-finite score
        _det(40083, [w + 5, 10, 50, 50]),  # right of the image
        _det(252219, [-100, -100, 50, 50]),  # above-left of the image
        _det(252219, [w - 1, 0, 50, 50]),  # overlaps its own image: kept (252219 is wider)
    ]
    path = _write(tmp_path, records)
    with caplog.at_level(logging.WARNING):
        boxes = load_detections(path, sample_ann)
    dropped = [r.getMessage() for r in caplog.records if "sanitize_boxes" in r.getMessage()]
    assert len(dropped) == 1 and "dropped 6 of 8" in dropped[0], dropped
    np.testing.assert_allclose(boxes[40083][0], [[10, 10, 50, 50]])
    assert boxes[252219][0].shape == (1, 4)


def test_gt_boxes(sample_ann):
    boxes = gt_boxes(sample_ann)
    assert sorted(boxes) == sorted(sample_ann.image_ids)
    for image_id, (b, s) in boxes.items():
        anns = [a for a in sample_ann.annotations_by_image[image_id]
                if not a["iscrowd"] and a["num_keypoints"] > 0]  # fmt: skip
        np.testing.assert_allclose(b, np.asarray([a["bbox"] for a in anns]).reshape(-1, 4))
        np.testing.assert_array_equal(s, np.ones(len(anns)))
        gb, gk = gt_instances(sample_ann, image_id)
        np.testing.assert_array_equal(gb, b)
        assert gk.shape == (len(anns), 17, 3)
    assert count_boxes(boxes) == 9


def test_shared_detections(val_ann):
    if not DETECTIONS.is_file():
        pytest.skip(f"{DETECTIONS} not found")
    boxes = load_detections(DETECTIONS, val_ann)
    assert len(boxes) == 41 and count_boxes(boxes) == 1385
    thr = load_detections(DETECTIONS, val_ann, score_threshold=0.5)
    assert 0 < count_boxes(thr) < 1385
