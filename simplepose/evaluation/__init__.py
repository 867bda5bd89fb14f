"""COCO keypoint evaluation: results files, the pycocotools COCOeval wrapper, and pose /
box NMS (SPEC 1.2-1.3).

Importing this package does not import pycocotools; :func:`evaluate_keypoints` does.
"""

from simplepose.evaluation.coco import (
    STAT_NAMES,
    KeypointMetrics,
    evaluate_keypoints,
    format_metrics_table,
    load_results,
    make_result,
    write_results,
)
from simplepose.evaluation.nms import box_iou, oks_iou, oks_nms, soft_nms, soft_oks_nms

__all__ = [
    "STAT_NAMES",
    "KeypointMetrics",
    "evaluate_keypoints",
    "format_metrics_table",
    "load_results",
    "make_result",
    "write_results",
    "box_iou",
    "oks_iou",
    "oks_nms",
    "soft_nms",
    "soft_oks_nms",
]
