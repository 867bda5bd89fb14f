"""RTMDet-nano person detector (simplepose.detect) on the shared demo and COCO val images."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from simplepose.detect import PersonDetector, letterbox
from simplepose.errors import InputError

cv2 = pytest.importorskip("cv2")
pytest.importorskip("onnxruntime")

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
MODEL = SHARED / "models" / "rtmdet_nano_person" / "end2end.onnx"
DEMO = SHARED / "data" / "demo" / "rtmlib_demo.jpg"
COCO = SHARED / "data" / "coco"
VAL_ANN = COCO / "annotations" / "person_keypoints_val2017_subset.json"

LOG = logging.getLogger(__name__)

needs_shared = pytest.mark.skipif(
    not (MODEL.is_file() and DEMO.is_file()),
    reason=f"shared model/data not found under {SHARED.resolve()}",
)

N_RECALL_IMAGES = 12
# Measured here with score_threshold 0.3: recall 0.933 (42/45) on the first 12 images, 0.83
# (132/159) on all 54 val-subset images with such persons. Floor set a bit below.
RECALL_FLOOR = 0.85


@pytest.fixture(scope="module")
def detector():
    if not MODEL.is_file():
        pytest.skip(f"detector model not found: {MODEL.resolve()}")
    return PersonDetector(MODEL, score_threshold=0.3)


def _iou_xyxy(a, b):
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def _matched(gt, det, thr=0.5):
    """Greedy one-to-one matching by IoU; returns the number of matched GT boxes."""
    if len(gt) == 0 or len(det) == 0:
        return 0
    iou = _iou_xyxy(gt, det)
    used, hits = set(), 0
    for g in np.argsort(-iou.max(axis=1), kind="stable"):
        for d in np.argsort(-iou[g], kind="stable"):
            if iou[g, d] < thr:
                break
            if d not in used:
                used.add(d)
                hits += 1
                break
    return hits


def test_letterbox_top_left_pad_114():
    img = np.full((100, 200, 3), 7, np.uint8)
    canvas, ratio = letterbox(img, 320)
    assert ratio == pytest.approx(1.6) and canvas.shape == (320, 320, 3)
    assert (canvas[:160] == 7).all() and (canvas[160:] == 114).all()


@needs_shared
def test_detects_people_on_demo_image(detector):
    img = cv2.imread(str(DEMO))
    boxes, scores = detector.detect(img)
    h, w = img.shape[:2]
    assert boxes.shape == (len(scores), 4) and boxes.dtype == np.float32
    assert (scores >= 0.3).all() and (np.diff(scores) <= 0).all()
    assert (boxes[:, [0, 2]] >= 0).all() and (boxes[:, [0, 2]] <= w).all()
    assert (boxes[:, [1, 3]] >= 0).all() and (boxes[:, [1, 3]] <= h).all()
    # the three players in the foreground, each box covering a sizeable part of the image
    big = (scores > 0.5) & ((boxes[:, 3] - boxes[:, 1]) > 0.5 * h)
    assert big.sum() >= 3, (boxes, scores)
    # gray and batch input give the same kind of answer
    gray_boxes, _ = detector.detect(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    assert len(gray_boxes) >= 1
    (b2, _s2), = detector.detect_batch([img])
    np.testing.assert_array_equal(b2, boxes)


@needs_shared
def test_recall_on_coco_val_subset(detector, caplog):
    if not VAL_ANN.is_file():
        pytest.skip(f"annotations not found: {VAL_ANN.resolve()}")
    ann = json.loads(VAL_ANN.read_text())
    images = {im["id"]: im for im in ann["images"]}
    gt = {}
    for a in ann["annotations"]:
        if a["category_id"] == 1 and not a["iscrowd"] and a["area"] > 32**2:
            gt.setdefault(a["image_id"], []).append(a["bbox"])
    ids = [i for i in sorted(gt) if (COCO / "val2017" / images[i]["file_name"]).is_file()]
    ids = ids[:N_RECALL_IMAGES]
    if not ids:
        pytest.skip("no val images with non-crowd persons found")
    hits = total = 0
    for iid in ids:
        img = cv2.imread(str(COCO / "val2017" / images[iid]["file_name"]))
        boxes, _ = detector.detect(img)
        g = np.asarray(gt[iid], dtype=np.float64)
        g[:, 2:] += g[:, :2]
        hits += _matched(g, boxes.astype(np.float64))
        total += len(g)
    recall = hits / total
    LOG.warning("RTMDet-nano recall@IoU0.5 on %d val images (%d non-crowd persons, area > 32^2): "
                "%.3f", len(ids), total, recall)  # fmt: skip
    assert recall >= RECALL_FLOOR


def test_missing_model_raises_file_not_found(tmp_path):
    missing = tmp_path / "nope" / "end2end.onnx"
    with pytest.raises(FileNotFoundError, match="end2end.onnx"):
        PersonDetector(missing)


def test_corrupt_model_raises_input_error(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not an onnx model" * 10)
    with pytest.raises(InputError, match="broken.onnx"):
        PersonDetector(bad)


@needs_shared
def test_invalid_images_raise_input_error(detector):
    for bad in (None, np.zeros((0, 0, 3), np.uint8), np.zeros((10, 10, 5), np.uint8),
                "image.jpg", np.full((8, 8, 3), np.nan)):  # fmt: skip
        with pytest.raises(InputError):
            detector.detect(bad)
