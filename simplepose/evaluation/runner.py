"""What ``evaluate.py`` runs: score a results file, or run an oracle, and write the
results and metrics files atomically. Library code: it logs, the script prints."""

from __future__ import annotations

import json
import logging
import platform
import time
from pathlib import Path

from ..data.coco import CocoKeypoints, load_coco_keypoints
from ..utils.io import atomic_write_json
from .coco import KeypointMetrics, evaluate_keypoints, write_results

__all__ = ["score_results", "run_oracle", "write_metrics", "default_results_path"]

LOG = logging.getLogger(__name__)


def default_results_path(metrics_path) -> Path:
    """``m.json`` -> ``m_results.json`` beside it."""
    p = Path(metrics_path)
    return p.with_name(p.stem + "_results.json")


def write_metrics(path, metrics: KeypointMetrics, **meta) -> dict:
    """Write ``{AP, AP50, ..., ARl, num_images, num_results, ...meta}`` atomically."""
    record = dict(metrics.as_dict())
    record.update(num_images=metrics.num_images, num_results=metrics.num_results)
    record.update(meta)
    atomic_write_json(path, record, indent=2)
    return record


def score_results(results_path, ann_path) -> KeypointMetrics:
    """COCOeval of an existing results file (any producer's) against ``ann_path``."""
    return evaluate_keypoints(load_coco_keypoints(ann_path), results_path)


def run_oracle(kind: str, ann: CocoKeypoints | str, progress: bool = True, **options):
    """Run an oracle over every image of ``ann``.

    Args:
        kind: ``"bottomup"`` (SimplePose maps at the inference resolution, C++ grouping).
        options: ``box_size`` (int), ``backend`` (``"cpp"``/``"reference"``),
            ``params`` (GroupingParams), ``codec`` (SimplePoseCodec).

    Returns:
        (results list, KeypointMetrics, seconds).
    """
    if not isinstance(ann, CocoKeypoints):
        ann = load_coco_keypoints(ann)
    start = time.perf_counter()
    if kind == "bottomup":
        from ..oracle.bottomup import run_bottomup_oracle

        results = run_bottomup_oracle(ann, progress=progress, **options)
    else:
        raise ValueError(f"unknown oracle {kind!r}; available: bottomup")
    seconds = time.perf_counter() - start
    return results, evaluate_keypoints(ann, results), seconds


def environment() -> dict:
    """Small provenance record stored with metrics."""
    import numpy

    return {"python": platform.python_version(), "numpy": numpy.__version__, "machine": platform.machine()}


def save_run(results, metrics: KeypointMetrics, results_path, metrics_path, **meta) -> dict:
    write_results(results, results_path)
    return write_metrics(metrics_path, metrics, results_file=str(results_path), **meta, environment=environment())


def dumps_params(obj) -> str:
    return json.dumps(obj, sort_keys=True)
