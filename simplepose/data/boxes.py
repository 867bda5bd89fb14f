"""Person boxes for top-down evaluation: COCO detection results files and ground-truth boxes.

Both loaders return the same structure, ``{image_id: (boxes_xywh, scores)}`` with
``boxes_xywh`` (N, 4) float64 ``(x, y, w, h)`` in original px and ``scores`` (N,) float64,
boxes in file order. A detection results file is the COCO *bbox* results format: a JSON list
of ``{"image_id": int, "category_id": int, "bbox": [x, y, w, h], "score": float}``; records of
categories other than the annotation's person category are skipped.
"""

from __future__ import annotations

import logging
import numbers
from pathlib import Path

import numpy as np

from simplepose.data.coco import CocoKeypoints
from simplepose.data.topdown_transforms import sanitize_boxes
from simplepose.errors import AnnotationError, InputError
from simplepose.utils.io import read_json

__all__ = ["BoxesByImage", "count_boxes", "gt_boxes", "gt_instances", "load_detections"]

LOG = logging.getLogger(__name__)

#: ``{image_id: (boxes_xywh (N, 4) float64 original px, scores (N,) float64)}``
BoxesByImage = dict


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _record_problem(rec) -> str | None:
    if not isinstance(rec, dict):
        return f"must be an object, got {type(rec).__name__}"
    missing = [k for k in ("image_id", "bbox", "score") if k not in rec]
    if missing:
        return f"missing key(s) {missing} (has {sorted(map(str, rec))})"
    if not _is_int(rec["image_id"]):
        return f"'image_id' must be an integer, got {rec['image_id']!r}"
    if "category_id" in rec and not _is_int(rec["category_id"]):
        return f"'category_id' must be an integer, got {rec['category_id']!r}"
    bbox = rec["bbox"]
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(map(_is_number, bbox)):
        return f"'bbox' must be 4 numbers [x, y, w, h], got {bbox!r}"
    if not _is_number(rec["score"]):
        return f"'score' must be a number, got {rec['score']!r}"
    return None


def _read_records(path: Path) -> list:
    data = read_json(path, "detections")
    if not isinstance(data, list):
        raise AnnotationError(
            f"detections file {path}: top level must be a list of COCO detection results "
            f"{{image_id, category_id, bbox, score}}, got a JSON {type(data).__name__}"
        )
    return data


def load_detections(path, ann: CocoKeypoints, score_threshold: float = 0.0) -> BoxesByImage:
    """Read person boxes from a COCO detection results file.

    Args:
        path: the JSON file (list of ``{image_id, category_id, bbox, score}``).
        ann: the annotations the boxes belong to (image ids, sizes, person category id).
        score_threshold: boxes scoring below it are dropped.

    Returns:
        ``{image_id: (boxes_xywh (N, 4) float64 original px, scores (N,) float64)}`` for every
        annotation image that has at least one person record in the file (possibly with N = 0
        after the threshold / sanitising).

    Box sanitising: records with a non-finite box or score, ``w <= 0`` or ``h <= 0``, or no
    overlap with their image are dropped through
    :func:`~simplepose.data.topdown_transforms.sanitize_boxes`, which logs one warning with
    the count for the whole file.

    Raises:
        AnnotationError: missing / unreadable file, invalid JSON, a top level other than a
            list, a malformed record (its index is named), or no image id of the file in
            ``ann``. When only some ids overlap, a warning gives the counts and the records
            of unknown images are ignored.
    """
    path = Path(path)
    records = _read_records(path)
    person_id = ann.person_category_id
    image_ids, boxes, scores = [], [], []
    other_category = 0
    for i, rec in enumerate(records):
        problem = _record_problem(rec)
        if problem is not None:
            raise AnnotationError(f"detections file {path}: record {i}: {problem}")
        if rec.get("category_id", person_id) != person_id:
            other_category += 1
            continue
        image_ids.append(int(rec["image_id"]))
        boxes.append(rec["bbox"])
        scores.append(rec["score"])
    if other_category:
        LOG.info("%s: skipped %d records of categories other than person (%d)",
                 path, other_category, person_id)  # fmt: skip
    file_ids = set(image_ids)
    known = file_ids & set(ann.images)
    if not known:
        raise AnnotationError(
            f"detections file {path}: none of its {len(file_ids)} image ids (e.g. "
            f"{sorted(file_ids)[:5]}) is an image of {ann.source} ({ann.num_images} images); "
            "are the detections for another split?"
            if file_ids else f"detections file {path} holds no person detections"
        )
    problems = []
    if len(known) < ann.num_images:
        problems.append(f"covers {len(known)} of the {ann.num_images} annotation images")
    if len(known) < len(file_ids):
        problems.append(
            f"{len(file_ids) - len(known)} of its {len(file_ids)} image ids are not in "
            f"{ann.source} (their records are ignored)"
        )
    if problems:
        LOG.warning("detections file %s %s", path, "; ".join(problems))

    ids = np.asarray(image_ids, dtype=np.int64)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s = np.asarray(scores, dtype=np.float64)
    in_ann = np.fromiter((i in known for i in image_ids), dtype=bool, count=len(image_ids))
    ids, b, s = ids[in_ann], b[in_ann], s[in_ann]
    # One sanitize_boxes call for the whole file (one warning): boxes are expressed in units of
    # their own image's size, so the image-overlap test becomes [0, 1) x [0, 1); the record's
    # row number rides along as its "score" (NaN where the real score is not finite) so the kept
    # rows come back identified.
    hw = np.array([ann.image_size(int(i)) for i in ids], dtype=np.float64).reshape(-1, 2)
    wh = hw[:, ::-1]
    unit = b / np.concatenate([wh, wh], axis=1) if len(b) else b
    rows = np.where(np.isfinite(s), np.arange(len(s), dtype=np.float64), np.nan)
    _, kept_rows, _ = sanitize_boxes(unit, rows, image_size=(1.0, 1.0))
    kept = np.zeros(len(s), dtype=bool)
    kept[kept_rows.astype(np.int64)] = True
    below = kept & (s < score_threshold)
    if below.any():
        LOG.info("%s: %d boxes below score_threshold %g dropped", path, int(below.sum()),
                 score_threshold)  # fmt: skip
    kept &= ~below

    out: BoxesByImage = {}
    for image_id in sorted(known):
        sel = (ids == image_id) & kept
        out[image_id] = (b[sel].copy(), s[sel].copy())
    LOG.info("loaded %d person boxes on %d images from %s", int(kept.sum()), len(out), path)
    return out


def gt_boxes(ann: CocoKeypoints) -> BoxesByImage:
    """Ground-truth person boxes: non-crowd annotations with ``num_keypoints > 0``, score 1.

    Returns ``{image_id: (boxes_xywh (N, 4) float64 original px, ones (N,))}`` for every image
    of ``ann`` (N = 0 for images without such persons), boxes in annotation order. Boxes with
    zero width or height are dropped (one warning).
    """
    out: BoxesByImage = {}
    dropped = 0
    for image_id in ann.image_ids:
        anns = [a for a in ann.annotations_by_image[image_id]
                if not a.get("iscrowd", 0) and a.get("num_keypoints", 0) > 0]  # fmt: skip
        b = np.asarray([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(b).all(axis=1) & (b[:, 2] > 0) & (b[:, 3] > 0)
        dropped += int((~ok).sum())
        out[image_id] = (b[ok], np.ones(int(ok.sum())))
    if dropped:
        LOG.warning("gt_boxes: dropped %d ground-truth boxes with zero width or height", dropped)
    return out


def gt_instances(ann: CocoKeypoints, image_id: int) -> tuple[np.ndarray, np.ndarray]:
    """The persons :func:`gt_boxes` keeps for one image, in the same order.

    Returns ``(boxes_xywh (N, 4), keypoints (N, K, 3) original px (x, y, v))``, K of
    ``ann.layout``.
    """
    anns = [a for a in ann.annotations_by_image[image_id]
            if not a.get("iscrowd", 0) and a.get("num_keypoints", 0) > 0]  # fmt: skip
    b = np.asarray([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
    k = np.asarray([a["keypoints"] for a in anns], dtype=np.float64).reshape(
        -1, ann.layout.num_keypoints, 3
    )
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(b).all(axis=1) & (b[:, 2] > 0) & (b[:, 3] > 0)
    return b[ok], k[ok]


def count_boxes(boxes: BoxesByImage) -> int:
    """Total number of boxes in a ``{image_id: (boxes, scores)}`` dict."""
    total = 0
    for image_id, entry in boxes.items():
        if not isinstance(entry, tuple) or len(entry) != 2:
            raise InputError(f"boxes[{image_id}] must be a (boxes_xywh, scores) tuple")
        total += len(entry[0])
    return total

