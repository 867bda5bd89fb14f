"""COCO keypoint evaluation: results files and the pycocotools COCOeval wrapper (SPEC 1.2).

Importing this package does not import pycocotools; :func:`evaluate_keypoints` does.
"""

from simplepose.evaluation.coco import (
    STAT_NAMES,
    KeypointMetrics,
    evaluate_keypoints,
    format_metrics_table,
    load_results,
    write_results,
)

__all__ = [
    "STAT_NAMES",
    "KeypointMetrics",
    "evaluate_keypoints",
    "format_metrics_table",
    "load_results",
    "write_results",
]
