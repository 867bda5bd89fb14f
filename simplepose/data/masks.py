"""Person masks from COCO polygons / RLE, computed on the fly with pycocotools (no HDF5
pre-build), at original-image resolution (SPEC 3.2)."""

from __future__ import annotations

import logging

import numpy as np

from ..errors import AnnotationError

__all__ = ["annotation_mask", "person_masks"]

LOG = logging.getLogger(__name__)


def annotation_mask(ann: dict, height: int, width: int) -> np.ndarray:
    """(H, W) uint8 0/1 mask of one annotation's ``segmentation`` (polygons, RLE or
    uncompressed RLE); an annotation without segmentation falls back to its bbox."""
    from pycocotools import mask as mask_utils

    segm = ann.get("segmentation")
    try:
        if isinstance(segm, list) and segm:
            polys = [p for p in segm if isinstance(p, list) and len(p) >= 6]
            if not polys:
                return _bbox_mask(ann, height, width)
            rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
        elif isinstance(segm, dict) and "counts" in segm:
            rle = mask_utils.frPyObjects(segm, height, width) if isinstance(segm["counts"], list) else segm
        else:
            return _bbox_mask(ann, height, width)
        return mask_utils.decode(rle).astype(np.uint8)
    except (TypeError, ValueError) as exc:
        raise AnnotationError(f"annotation id {ann.get('id')}: unreadable segmentation ({exc})") from exc


def _bbox_mask(ann: dict, height: int, width: int) -> np.ndarray:
    m = np.zeros((height, width), dtype=np.uint8)
    bbox = ann.get("bbox")
    if bbox and len(bbox) == 4:
        x, y, w, h = (float(v) for v in bbox)
        x0, y0 = max(int(np.floor(x)), 0), max(int(np.floor(y)), 0)
        x1, y1 = min(int(np.ceil(x + w)), width), min(int(np.ceil(y + h)), height)
        m[y0:y1, x0:x1] = 1
    return m


def person_masks(anns: list[dict], height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks of one image.

    Returns:
        mask_all: (H, W) uint8, 1 on every person including crowd regions.
        mask_miss: (H, W) uint8, 0 where the loss must ignore the prediction: persons
            without labelled keypoints, and crowd regions minus labelled persons' masks.
            Unlike the reference, any number of crowd annotations is supported.
    """
    mask_all = np.zeros((height, width), dtype=np.uint8)
    unlabelled = np.zeros((height, width), dtype=np.uint8)
    labelled = np.zeros((height, width), dtype=np.uint8)
    crowd = np.zeros((height, width), dtype=np.uint8)
    for ann in anns:
        m = annotation_mask(ann, height, width)
        mask_all |= m
        if ann.get("iscrowd", 0):
            crowd |= m
        elif ann.get("num_keypoints", 0) == 0:
            unlabelled |= m
        else:
            labelled |= m
    miss = unlabelled | (crowd & (1 - labelled))
    return mask_all, (1 - miss).astype(np.uint8)
