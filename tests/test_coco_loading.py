"""Loading and validating COCO annotation, image-info, image and results files."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from simplepose.data.coco import load_coco_keypoints, load_image, load_image_info
from simplepose.errors import AnnotationError, InputError
from simplepose.evaluation import load_results
from simplepose.skeleton import COCO_KEYPOINTS
from simplepose.structures import Person

SAMPLE = Path(__file__).resolve().parent / "data" / "coco_sample" / "annotations.json"


@pytest.fixture(scope="module")
def raw():
    return json.loads(SAMPLE.read_text())


def _write(tmp_path, obj, name="ann.json"):
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def _expect_error(path, pattern, loader=load_coco_keypoints, exc=AnnotationError):
    with pytest.raises(exc, match=pattern) as info:
        loader(path)
    assert str(path) in str(info.value)
    return info.value


# --------------------------------------------------------------------- annotation files
def test_sample_loads(raw):
    coco = load_coco_keypoints(SAMPLE)
    assert coco.image_ids == [40083, 252219, 463730]
    assert coco.person_category_id == 1
    assert tuple(coco.person_category["keypoints"]) == COCO_KEYPOINTS
    assert len(coco.annotations) == len(raw["annotations"])
    assert [len(coco.annotations_by_image[i]) for i in coco.image_ids] == [3, 3, 14]
    kps = coco.keypoints_array(252219)
    assert kps.shape == (3, 17, 3)
    assert kps[0].ravel().tolist() == raw["annotations"][3]["keypoints"]
    assert coco.image_path(40083, "/imgs") == Path("/imgs/000000040083.jpg")
    assert coco.image_size(40083) == (raw["images"][0]["height"], raw["images"][0]["width"])
    with pytest.raises(InputError, match="777"):
        coco.image_path(777, "/imgs")


def test_missing_file(tmp_path):
    _expect_error(tmp_path / "nope.json", "does not exist")


def test_invalid_json(tmp_path):
    _expect_error(_write(tmp_path, '{"images": [}'), "not valid JSON")


def test_top_level_not_a_dict(tmp_path):
    _expect_error(_write(tmp_path, [1, 2]), "JSON object.*list")


@pytest.mark.parametrize("key", ["images", "annotations", "categories"])
def test_missing_top_level_key(tmp_path, raw, key):
    data = copy.deepcopy(raw)
    del data[key]
    _expect_error(_write(tmp_path, data), f"missing top-level key.*{key}")


def _mutated(raw, fn):
    data = copy.deepcopy(raw)
    fn(data)
    return data


def _set_ann(index, key, value):
    def fn(d):
        d["annotations"][index][key] = value

    return fn


def _del_ann(index, key):
    def fn(d):
        del d["annotations"][index][key]

    return fn


def _swap_keypoint_names(d):
    names = d["categories"][0]["keypoints"]
    names[1], names[2] = names[2], names[1]


def _dup_image(d):
    d["images"].append(dict(d["images"][0]))


def _dup_ann_id(d):
    d["annotations"][1]["id"] = d["annotations"][0]["id"]


def _visibility_3(d):
    d["annotations"][0]["keypoints"][2] = 3


def _nan_keypoint(d):
    d["annotations"][0]["keypoints"][0] = float("nan")


BAD_CASES = {
    "no_person_category": (lambda d: d["categories"][0].update(keypoints=COCO_KEYPOINTS[:16]),
                           "no person category with the 17"),
    "no_categories_at_all": (lambda d: d.update(categories=[]), "no person category"),
    "keypoint_order": (_swap_keypoint_names, "order other than COCO"),
    "keypoints_50": (_set_ann(2, "keypoints", [0] * 50), r"annotations\[2\].*51 numbers.*got 50"),
    "keypoints_not_list": (_set_ann(0, "keypoints", "x"), r"annotations\[0\].*'keypoints'"),
    "keypoints_string": (_set_ann(1, "keypoints", ["1"] + [0] * 50), "non-number '1'"),
    "keypoints_nan": (_nan_keypoint, "non-finite"),
    "visibility_3": (_visibility_3, "visibility flags"),
    "missing_image_id": (_del_ann(4, "image_id"), r"annotations\[4\].*'image_id'"),
    "missing_bbox": (_del_ann(0, "bbox"), "missing required field 'bbox'"),
    "missing_area": (_del_ann(0, "area"), "missing required field 'area'"),
    "missing_keypoints": (_del_ann(0, "keypoints"), "missing required field 'keypoints'"),
    "bad_bbox": (_set_ann(0, "bbox", [1, 2, 3]), "'bbox' must be 4"),
    "negative_area": (_set_ann(0, "area", -1.0), "'area' must be"),
    "unknown_image": (_set_ann(5, "image_id", 424242), r"annotations\[5\].*image id 424242"),
    "wrong_num_keypoints": (_set_ann(0, "num_keypoints", 3), "'num_keypoints' is 3 but 14"),
    "bad_iscrowd": (_set_ann(0, "iscrowd", 2), "'iscrowd' must be 0 or 1"),
    "duplicate_image": (_dup_image, "repeats image id 40083"),
    "duplicate_ann_id": (_dup_ann_id, "used twice"),
    "image_without_file_name": (lambda d: d["images"][1].pop("file_name"), "file_name"),
    "annotation_not_object": (lambda d: d["annotations"].append(5), r"annotations\[20\]"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_annotation_raises(tmp_path, raw, case):
    mutate, pattern = BAD_CASES[case]
    _expect_error(_write(tmp_path, _mutated(raw, mutate)), pattern)


def test_defaultable_fields_are_filled(tmp_path, raw):
    def strip(d):
        for a in d["annotations"]:
            del a["num_keypoints"], a["iscrowd"], a["category_id"]
        del d["annotations"][0]["id"]

    coco = load_coco_keypoints(_write(tmp_path, _mutated(raw, strip)))
    ref = raw["annotations"]
    assert [a["num_keypoints"] for a in coco.annotations] == [a["num_keypoints"] for a in ref]
    assert all(a["iscrowd"] == 0 and a["category_id"] == 1 for a in coco.annotations)
    ids = [a["id"] for a in coco.annotations]
    assert len(set(ids)) == len(ids)
    assert ids[0] == max(a["id"] for a in ref[1:]) + 1


def test_other_categories_are_skipped(tmp_path, raw):
    def add_dog(d):
        d["categories"].append({"id": 18, "name": "dog", "supercategory": "animal"})
        d["annotations"].append(
            {"id": 1, "image_id": 40083, "category_id": 18, "bbox": [0, 0, 1, 1]}
        )

    coco = load_coco_keypoints(_write(tmp_path, _mutated(raw, add_dog)))
    assert len(coco.annotations) == len(raw["annotations"])


# ---------------------------------------------------------------------- image-info files
def test_image_info_file(tmp_path, raw):
    info = {
        "info": raw["info"],
        "images": raw["images"],
        "categories": [
            {"supercategory": "person", "id": 1, "name": "person"},
            {"supercategory": "vehicle", "id": 2, "name": "bicycle"},
        ],
    }
    coco = load_image_info(_write(tmp_path, info))
    assert coco.image_ids == [40083, 252219, 463730]
    assert coco.person_category_id == 1
    assert all(coco.annotations_by_image[i] == [] for i in coco.image_ids)
    assert coco.image_path(463730, tmp_path) == tmp_path / "000000463730.jpg"


def test_image_info_errors(tmp_path, raw):
    _expect_error(_write(tmp_path, {"categories": []}), "missing top-level key.*images",
                  loader=load_image_info)
    _expect_error(_write(tmp_path, {"images": [{"id": 1}]}), r"images\[0\] has no 'width'",
                  loader=load_image_info)
    _expect_error(tmp_path / "absent.json", "does not exist", loader=load_image_info)


# ------------------------------------------------------------------------------- images
def test_load_image_reads_bgr_uint8(tmp_path):
    import cv2

    img = np.zeros((8, 12, 3), dtype=np.uint8)
    img[..., 0] = 255  # blue in BGR
    path = tmp_path / "blue.png"
    assert cv2.imwrite(str(path), img)
    out = load_image(path)
    assert out.dtype == np.uint8 and out.shape == (8, 12, 3)
    assert (out[..., 0] == 255).all() and (out[..., 1:] == 0).all()


def test_load_image_errors(tmp_path):
    _expect_error(tmp_path / "missing.jpg", "does not exist", loader=load_image, exc=InputError)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    _expect_error(empty, "empty", loader=load_image, exc=InputError)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not an image" * 10)
    _expect_error(junk, "cannot be decoded", loader=load_image, exc=InputError)
    _expect_error(tmp_path, "not a regular file", loader=load_image, exc=InputError)


# ------------------------------------------------------------------------- results files
GOOD = Person.from_keypoints(np.ones((17, 3)), 0.9).to_coco(40083)

BAD_RESULTS = {
    "invalid_json": ("[{", "not valid JSON"),
    "not_a_list": ({"image_id": 1}, "must be a list"),
    "record_not_object": ([GOOD, 3], "record 1: must be an object"),
    "missing_score": ([GOOD, {k: v for k, v in GOOD.items() if k != "score"}],
                      r"record 1: missing key\(s\) \['score'\]"),
    "short_keypoints": ([dict(GOOD, keypoints=[1.0] * 34)], "record 0: 'keypoints' must hold 51"),
    "string_image_id": ([dict(GOOD, image_id="40083")], "record 0: 'image_id' must be an integer"),
    "nan_keypoint": ('[{"image_id": 1, "category_id": 1, "score": 1, "keypoints": [NaN'
                     + ", 0" * 50 + "]}]", "record 0: 'keypoints' holds a non-finite"),
    "infinite_score": ([dict(GOOD, score=float("inf"))], "record 0: 'score' must be finite"),
    "bool_score": ([dict(GOOD, score=True)], "record 0: 'score' must be a number"),
}


@pytest.mark.parametrize("case", sorted(BAD_RESULTS))
def test_bad_results_file_raises(tmp_path, case):
    content, pattern = BAD_RESULTS[case]
    _expect_error(_write(tmp_path, content, "res.json"), pattern, loader=load_results)


def test_missing_results_file(tmp_path):
    _expect_error(tmp_path / "none.json", "does not exist", loader=load_results)


def test_results_file_loads(tmp_path):
    path = _write(tmp_path, [GOOD, dict(GOOD, bbox=[1, 2, 3, 4], score=1)], "res.json")
    records = load_results(path)
    assert records[0] == GOOD
    assert set(records[1]) == {"image_id", "category_id", "keypoints", "score"}
    assert type(records[1]["score"]) is float
