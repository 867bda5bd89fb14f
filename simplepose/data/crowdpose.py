"""CrowdPose annotation files (14 keypoints, :data:`~simplepose.skeleton.CROWDPOSE14`).

A CrowdPose file is COCO-style JSON (``images``, ``annotations``, ``categories``) with
``keypoints`` = 14 ``(x, y, v)`` triplets in original px, in the order of the layout
(``left_shoulder ... right_ankle, head, neck``), and one extra field per image record:
``crowdIndex`` in [0, 1], the image's crowding, by which the benchmark splits its AP into
easy / medium / hard (:mod:`simplepose.evaluation.crowdpose`).

Differences from COCO handled here:

* ``crowdIndex`` is required on every image record: a missing or non-numeric one, or one
  outside [0, 1], is an :class:`~simplepose.errors.AnnotationError` naming the file, the
  image record and the field.
* CrowdPose annotations carry no segment ``area``. The benchmark's OKS scale is
  ``0.53 * box w * box h`` (the CrowdPose evaluation ignores any ``area``), so the loader
  sets ``area`` to that value on every annotation; the file's own ``area``, if any, is kept
  as ``segment_area``.
* The file's ``num_keypoints`` counts only the 12 body joints (head and neck left out). The
  benchmark's evaluation ignores a person whose ``num_keypoints`` is 0, so that value is kept
  (and checked against the body joints' flags); a person with only head and neck labelled is
  therefore ignored, as in the official evaluation, and gets no ground-truth box.
* The file's category ``skeleton`` is COCO's (17-point, 1-based) in the public release; it is
  ignored, the layout's own skeleton is used for drawing.

Everything else (records, visibility flags, boxes, ids) is checked as in
:func:`simplepose.data.coco.load_coco_keypoints`.
"""

from __future__ import annotations

import logging
import math

from simplepose.data.coco import (
    CocoKeypoints,
    _build,
    _find_person_category,
    _read_json_object,
    _require_keys,
)
from simplepose.errors import AnnotationError
from simplepose.skeleton import CROWDPOSE14

__all__ = ["BODY_JOINTS", "crowd_index", "load_crowdpose"]

LOG = logging.getLogger(__name__)

BODY_JOINTS = tuple(range(12))  # the joints CrowdPose's num_keypoints counts (not head, neck)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _box_area(bbox) -> float | None:
    if isinstance(bbox, list) and len(bbox) == 4 and all(map(_is_number, bbox)):
        return float(bbox[2]) * float(bbox[3])
    return None  # malformed: the common record check names it


def load_crowdpose(path) -> CocoKeypoints:
    """Load and validate a CrowdPose annotation file.

    Returns:
        A :class:`~simplepose.data.coco.CocoKeypoints` with ``layout`` = CrowdPose-14; each
        image record keeps its ``crowdIndex`` (:func:`crowd_index`), each annotation's
        ``area`` is the benchmark's OKS scale ``0.53 w h`` (original px squared).

    Raises:
        AnnotationError: naming the file and record: an image without a valid
            ``crowdIndex``, a person category without the 14 CrowdPose keypoints, or any
            problem :func:`~simplepose.data.coco.load_coco_keypoints` reports.
    """
    path, data = _read_json_object(path)
    return _load_parsed(path, data)


def _load_parsed(path, data) -> CocoKeypoints:
    """:func:`load_crowdpose` of an already parsed file."""
    name = str(path)
    _require_keys(data, ("images", "annotations", "categories"), name)
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict):
            continue  # the common image check names it
        where = f"annotation file {name}: images[{i}] (id {img.get('id', '?')})"
        if "crowdIndex" not in img:
            raise AnnotationError(f"{where} has no 'crowdIndex' (required by CrowdPose)")
        value = img["crowdIndex"]
        if not _is_number(value) or not 0.0 <= value <= 1.0:
            raise AnnotationError(f"{where}: 'crowdIndex' must be a number in [0, 1], got {value!r}")
    person = _find_person_category(data["categories"], name, required=True, layout=CROWDPOSE14)
    factor = CROWDPOSE14.oks_area_from_box
    annotations = []
    for ann in data["annotations"]:
        if isinstance(ann, dict):
            ann = dict(ann)
            if "area" in ann:
                ann["segment_area"] = ann["area"]
            box_area = _box_area(ann.get("bbox"))
            ann["area"] = factor * box_area if box_area is not None else 0.0
            if "num_keypoints" in ann:
                ann["body_num_keypoints"] = ann.pop("num_keypoints")
        annotations.append(ann)
    out = _build(path, data, annotations, person, CROWDPOSE14)
    body = len(BODY_JOINTS)
    for i, ann in enumerate(out.annotations):
        labelled = sum(1 for v in ann["keypoints"][2 : 3 * body : 3] if v > 0)
        given = ann.pop("body_num_keypoints", labelled)
        if given != labelled:
            raise AnnotationError(
                f"annotation file {name}: annotations[{i}] (id {ann['id']}): 'num_keypoints' is "
                f"{given} but {labelled} of the {body} body joints have v > 0"
            )
        ann["num_keypoints"] = labelled
    return out


def crowd_index(ann: CocoKeypoints, image_id: int) -> float:
    """The ``crowdIndex`` of an image of a CrowdPose file."""
    return float(ann.images[image_id]["crowdIndex"])
