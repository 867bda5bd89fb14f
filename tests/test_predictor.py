"""Predictor facade: top-down checkpoints with the bundled detector or explicit boxes."""

import numpy as np
import pytest

from conftest import SHARED


def test_bundled_detector_ships_with_the_package():
    from simplepose.detect import PersonDetector, bundled_detector_path

    assert bundled_detector_path().is_file()
    rng = np.random.default_rng(0)
    boxes, scores = PersonDetector.bundled().detect(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    assert boxes.shape[1:] == (4,) and len(boxes) == len(scores)


def test_topdown_predictor_with_explicit_boxes_and_without_detector(tiny_rsn_checkpoint):
    from simplepose import Predictor
    from simplepose.errors import InputError

    predictor = Predictor.from_checkpoint(tiny_rsn_checkpoint, device="cpu", detector=None)
    assert predictor.mode == "topdown"
    image = np.full((200, 300, 3), 90, np.uint8)
    xyxy = [[20, 30, 80, 150], [150, 40, 200, 140]]
    people = predictor.predict(image, boxes_xyxy=xyxy, box_scores=[0.9, 0.5])
    assert len(people) == 2
    for p, box in zip(people, xyxy):
        np.testing.assert_allclose(p.box, box)  # Person.box is x1, y1, x2, y2 like the input
        assert p.keypoints.shape == (17, 3)
    with pytest.warns(DeprecationWarning, match="boxes_xyxy"):
        old = predictor.predict(image, boxes=[[20, 30, 60, 120], [150, 40, 50, 100]], box_scores=[0.9, 0.5])
    for a, b in zip(old, people):  # the deprecated x, y, w, h spelling finds the same people
        np.testing.assert_allclose(a.keypoints, b.keypoints)
        np.testing.assert_allclose(a.box, b.box)
    with pytest.raises(InputError, match="needs boxes or a detector"):
        predictor.predict(image)


def test_topdown_predictor_runs_the_bundled_detector(tiny_rsn_checkpoint):
    import cv2

    from simplepose import Predictor

    path = SHARED / "data" / "demo" / "rtmlib_demo.jpg"
    if not path.exists():
        pytest.skip(f"{path} not found")
    image = cv2.imread(str(path))
    predictor = Predictor.from_checkpoint(tiny_rsn_checkpoint, device="cpu")  # detector="bundled"
    boxes, _ = predictor.detector.detect(image)
    assert len(boxes) >= 3
    assert len(predictor.predict(image)) == len(boxes)
