"""CrowdPose AP / AP easy-medium-hard against hand-computed cases."""

import json
from pathlib import Path

import numpy as np
import pytest

from simplepose.data.crowdpose import load_crowdpose
from simplepose.errors import AnnotationError, InputError
from simplepose.evaluation.crowdpose import crowd_split, evaluate_crowdpose
from simplepose.skeleton import CROWDPOSE14

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "crowdpose" / "test_crowdpose.json"


def _dataset(crowd_indices, box=(10.0, 10.0, 100.0, 100.0)):
    rng = np.random.default_rng(1)
    images, anns = [], []
    for i, c in enumerate(crowd_indices, start=1):
        images.append(
            {"id": i, "file_name": f"{i}.jpg", "width": 200, "height": 200, "crowdIndex": c}
        )
        kps = np.concatenate([rng.uniform(20, 100, (14, 2)), np.full((14, 1), 2.0)], axis=1)
        anns.append({"id": i, "image_id": i, "category_id": 1, "iscrowd": 0, "num_keypoints": 12,
                     "bbox": list(box), "keypoints": kps.ravel().tolist()})  # fmt: skip
    cat = {"id": 1, "name": "person", "keypoints": list(CROWDPOSE14.keypoints), "skeleton": []}
    return {"images": images, "annotations": anns, "categories": [cat]}


def _write(tmp_path, data, name="gt.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def _result(ann, score, far=()):
    kps = np.reshape(ann["keypoints"], (14, 3)).astype(np.float64)
    kps[list(far), :2] += 1000.0  # these keypoints contribute exp(-huge) = 0 to the OKS
    kps[:, 2] = 1.0
    return {
        "image_id": ann["image_id"],
        "category_id": 1,
        "keypoints": kps.ravel().tolist(),
        "score": score,
    }


def test_easy_medium_hard_hand_computed(tmp_path):
    data = _dataset([0.1, 0.5, 0.9])  # one person per image: easy, medium, hard
    ann = load_crowdpose(_write(tmp_path, data))
    assert crowd_split(ann) == {"easy": [1], "medium": [2], "hard": [3]}
    easy, medium, _ = data["annotations"]
    # easy: exact (OKS 1); medium: 10 of 14 keypoints exact -> OKS 10/14 = 0.714, a match at
    # the IoU thresholds 0.50 ... 0.70 (5 of 10); hard: no result.
    results = [_result(easy, 0.9), _result(medium, 0.8, far=(0, 1, 2, 3))]
    m = evaluate_crowdpose(ann, results)
    assert m["APeasy"] == pytest.approx(1.0)
    assert m["APmedium"] == pytest.approx(0.5)
    assert m["APhard"] == pytest.approx(0.0)
    # all images: at t <= 0.70 recall 2/3 at precision 1 (recall thresholds 0.00 ... 0.66:
    # 67 of 101); at t > 0.70 recall 1/3 (34 of 101)
    assert m["AP50"] == pytest.approx(67 / 101)
    assert m["AP75"] == pytest.approx(34 / 101)
    assert m["AP"] == pytest.approx((5 * 67 + 5 * 34) / 1010)
    assert m["AR"] == pytest.approx((5 * 2 / 3 + 5 * 1 / 3) / 10)
    assert m.split_images == {"easy": 1, "medium": 1, "hard": 1}


def test_empty_split_is_minus_one_and_split_boundaries(tmp_path):
    ann = load_crowdpose(_write(tmp_path, _dataset([0.2, 0.79, 0.8])))
    assert crowd_split(ann) == {"easy": [], "medium": [1, 2], "hard": [3]}
    m = evaluate_crowdpose(ann, [])
    assert m["APeasy"] == -1.0 and m["APmedium"] == 0.0 and m["AP"] == 0.0


def test_oks_uses_crowdpose_sigmas_and_053_box_scale(tmp_path):
    data = _dataset([0.5])
    ann = load_crowdpose(_write(tmp_path, data))
    assert ann.annotations[0]["area"] == pytest.approx(0.53 * 100 * 100)
    # every keypoint moved by d along x: OKS = mean_i exp(-d^2 / (2 * 0.53 w h * (2 sigma_i)^2))
    d = 13.0
    sig = CROWDPOSE14.sigmas_array
    oks = np.mean(np.exp(-(d**2) / (2 * 0.53 * 100 * 100 * (2 * sig) ** 2)))
    oks_area = np.mean(np.exp(-(d**2) / (2 * 100 * 100 * (2 * sig) ** 2)))
    assert 0.5 < oks < 0.55 < oks_area  # the 0.53 scale decides AP55
    res = _result(data["annotations"][0], 1.0)
    kps = np.reshape(res["keypoints"], (14, 3))
    kps[:, 0] += d
    res["keypoints"] = kps.ravel().tolist()
    m = evaluate_crowdpose(ann, [res])
    assert m["AP50"] == pytest.approx(1.0) and m["AP"] == pytest.approx(0.1)  # t = 0.50 only


def test_ground_truth_as_results_on_the_sample():
    ann = load_crowdpose(SAMPLE)
    results = [_result(a, 1.0) for a in ann.annotations if a["num_keypoints"] > 0]
    m = evaluate_crowdpose(ann, results)
    assert m["AP"] == pytest.approx(1.0) and m["APmedium"] == pytest.approx(1.0)
    assert m["APeasy"] == -1.0 and m["APhard"] == -1.0  # crowd indices 0.33 and 0.39


def test_bad_input_names_file_record_and_field(tmp_path):
    data = _dataset([0.5, 0.5])
    del data["images"][1]["crowdIndex"]
    with pytest.raises(AnnotationError, match=r"gt.json: images\[1\] \(id 2\) has no 'crowdIndex'"):
        load_crowdpose(_write(tmp_path, data))
    data = _dataset([0.5])
    data["images"][0]["crowdIndex"] = 1.5
    with pytest.raises(
        AnnotationError, match=r"images\[0\] \(id 1\): 'crowdIndex' must be a number in \[0, 1\]"
    ):
        load_crowdpose(_write(tmp_path, data))
    ann = load_crowdpose(_write(tmp_path, _dataset([0.5])))
    coco_like = [{"image_id": 1, "category_id": 1, "keypoints": [1.0] * 51, "score": 1.0}]
    path = _write(tmp_path, coco_like, "res.json")
    with pytest.raises(
        AnnotationError,
        match=r"res.json: record 0: 'keypoints' must hold 42 numbers "
              r".*got 51 \(17 keypoints\).*crowdpose14",
    ):
        evaluate_crowdpose(ann, path)
    with pytest.raises(InputError, match=r"results\[0\]: 'keypoints' must hold 42"):
        evaluate_crowdpose(ann, coco_like)
