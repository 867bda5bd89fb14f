"""Person masks from COCO polygons / RLE, computed on the fly with pycocotools (no HDF5
pre-build), at original-image resolution (SPEC 3.2)."""

from __future__ import annotations

import logging

import numpy as np

from ..errors import AnnotationError

__all__ = ["annotation_mask", "annotation_rle", "person_masks"]

LOG = logging.getLogger(__name__)


def annotation_rle(ann: dict, height: int, width: int):
    """One annotation's ``segmentation`` (polygons, RLE or uncompressed RLE) as a single
    pycocotools RLE of an (H, W) image; an annotation without a usable segmentation falls
    back to its bbox.

    Raises:
        AnnotationError: naming the annotation id, when pycocotools cannot read it.
    """
    from pycocotools import mask as mask_utils

    segm = ann.get("segmentation")
    try:
        if isinstance(segm, list) and segm:
            polys = [p for p in segm if isinstance(p, list) and len(p) >= 6]
            if polys:
                return mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
        elif isinstance(segm, dict) and "counts" in segm:
            if isinstance(segm["counts"], list):
                return mask_utils.frPyObjects(segm, height, width)
            mask_utils.area(segm)  # checks a compressed RLE without decoding it
            return segm
    except (TypeError, ValueError) as exc:
        raise AnnotationError(
            f"annotation id {ann.get('id')}: unreadable segmentation ({exc})"
        ) from exc
    return mask_utils.encode(np.asfortranarray(_bbox_mask(ann, height, width)))


def annotation_mask(ann: dict, height: int, width: int) -> np.ndarray:
    """(H, W) uint8 0/1 mask of one annotation (:func:`annotation_rle` decoded)."""
    from pycocotools import mask as mask_utils

    return np.ascontiguousarray(mask_utils.decode(annotation_rle(ann, height, width)), np.uint8)


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
    """Masks of one image, original px.

    The annotations' RLEs are merged per group (all / crowd / unlabelled / labelled) with
    pycocotools and only the unions are decoded, instead of every annotation at full size.

    Returns:
        mask_all: (H, W) uint8, 1 on every person including crowd regions.
        mask_miss: (H, W) uint8, 0 where the loss must ignore the prediction: persons
            without labelled keypoints, and crowd regions minus labelled persons' masks.
            Unlike the reference, any number of crowd annotations is supported.
    """
    from pycocotools import mask as mask_utils

    groups: dict[str, list] = {"all": [], "crowd": [], "unlabelled": [], "labelled": []}
    for ann in anns:
        rle = annotation_rle(ann, height, width)
        groups["all"].append(rle)
        if ann.get("iscrowd", 0):
            groups["crowd"].append(rle)
        elif ann.get("num_keypoints", 0) == 0:
            groups["unlabelled"].append(rle)
        else:
            groups["labelled"].append(rle)

    def union(name):
        rles = groups[name]
        if not rles:
            return None
        merged = rles[0] if len(rles) == 1 else mask_utils.merge(rles, intersect=False)
        return np.ascontiguousarray(mask_utils.decode(merged))

    mask_all = union("all")
    if mask_all is None:
        mask_all = np.zeros((height, width), dtype=np.uint8)
    crowd, unlabelled = union("crowd"), union("unlabelled")
    miss = np.zeros((height, width), dtype=np.uint8) if unlabelled is None else unlabelled
    if crowd is not None:
        labelled = union("labelled")
        miss = miss | (crowd if labelled is None else crowd & (1 - labelled))
    return mask_all, (1 - miss).astype(np.uint8)
