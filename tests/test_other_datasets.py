"""Readers of MPII (converted JSON), CrowdPose and OCHuman files, and their bad input."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from simplepose.data.coco import load_coco_keypoints
from simplepose.data.crowdpose import load_crowdpose
from simplepose.data.datasets import load_annotations
from simplepose.data.mpii import load_mpii_json, mpii_to_coco
from simplepose.errors import AnnotationError

DATA = Path(__file__).resolve().parent / "data"
MPII = DATA / "mpii" / "test_mpii.json"
CROWDPOSE = DATA / "crowdpose" / "test_crowdpose.json"
OCHUMAN = DATA / "ochuman" / "test_ochuman.json"


def test_mpii_json_is_read_zero_based_with_boxes():
    records, sizes = load_mpii_json(MPII)
    assert len(records) == 5 and sizes == {"052475643.jpg": (480, 854)}
    raw = json.loads(MPII.read_text())
    r = records[2]
    assert np.allclose(r.joints[r.visible], np.asarray(raw[2]["joints"])[r.visible] - 1.0)
    assert not r.visible[0] and (r.joints[0] == 0).all()  # joints_vis 0 -> unlabelled
    assert np.allclose(r.center, np.asarray(raw[2]["center"]) - 1.0)
    ann = mpii_to_coco(records, sizes, MPII)
    assert ann.layout.name == "mpii16" and ann.num_images == 5
    kp = ann.keypoints_array(3)
    assert kp.shape == (1, 16, 3) and kp[0, 0, 2] == 0 and kp[0, 1, 2] == 2
    x, _, w, h = ann.annotations[2]["bbox"]
    assert w == h == pytest.approx(200 * raw[2]["scale"]) and x + w / 2 == pytest.approx(r.center[0])


def _mpii_copy(tmp_path, mutate):
    raw = json.loads(MPII.read_text())
    mutate(raw)
    shutil.copy(DATA / "mpii" / "052475643.jpg", tmp_path)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(raw))
    return path


def test_mpii_bad_input(tmp_path):
    def joints15(raw):
        raw[1]["joints"] = raw[1]["joints"][:15]

    with pytest.raises(AnnotationError, match=r"bad.json: record 1 \(image '052475643.jpg'\): 'joints' must hold 16 joints \(MPII\), got 15"):
        load_mpii_json(_mpii_copy(tmp_path, joints15))

    def outside(raw):
        raw[1]["joints"][4] = [900.0, 100.0]  # the image is 854 px wide

    with pytest.raises(AnnotationError, match=r"record 1 \(image '052475643.jpg'\): 'joints' \[4\] \(left_knee\) = \(900, 100\) \(1-based\) lies outside the 854x480 image"):
        load_mpii_json(_mpii_copy(tmp_path, outside))

    def no_scale(raw):
        del raw[3]["scale"]

    with pytest.raises(AnnotationError, match=r"record 3 \(image '004645041.jpg'\): missing field 'scale'"):
        load_mpii_json(_mpii_copy(tmp_path, no_scale))
    path = tmp_path / "obj.json"
    path.write_text("{}")
    with pytest.raises(AnnotationError, match="top level must be a list of person records"):
        load_mpii_json(path)


def test_crowdpose_sample():
    ann = load_crowdpose(CROWDPOSE)
    assert ann.layout.name == "crowdpose14" and ann.image_ids == [103319, 106848]
    a = ann.annotations[0]
    assert a["area"] == pytest.approx(0.53 * a["bbox"][2] * a["bbox"][3])
    assert a["num_keypoints"] == 5  # the file's count: 12 body joints only (7 flags > 0)
    assert ann.keypoints_array(106848).shape == (3, 14, 3)
    with pytest.raises(AnnotationError, match="no person category with the 17 coco17 keypoints"):
        load_coco_keypoints(CROWDPOSE)


def test_ochuman_sample_is_coco17_with_masks():
    ann = load_coco_keypoints(OCHUMAN)
    assert ann.layout.name == "coco17" and ann.num_images == 3 and len(ann.annotations) == 5
    assert all(isinstance(a["segmentation"], dict) for a in ann.annotations)


def test_load_annotations_dispatches_on_the_format():
    assert load_annotations(MPII).layout.name == "mpii16"
    assert load_annotations(CROWDPOSE).layout.name == "crowdpose14"
    assert load_annotations(OCHUMAN).layout.name == "coco17"
    assert load_annotations(DATA / "coco_sample" / "annotations.json").layout.name == "coco17"


def test_dispatch_keeps_the_crowdpose_error_for_missing_crowd_index(tmp_path):
    data = json.loads(CROWDPOSE.read_text())
    del data["images"][0]["crowdIndex"]
    path = tmp_path / "cp.json"
    path.write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match=r"cp.json: images\[0\] \(id 106848\) has no 'crowdIndex'"):
        load_annotations(path)
