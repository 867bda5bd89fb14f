"""Score results with the metric of the annotation file's benchmark.

:func:`evaluate_benchmark` picks the evaluation from ``ann.layout``:

* COCO-17 (COCO, OCHuman): the COCO keypoint metric (:func:`~.coco.evaluate_keypoints`);
* CrowdPose-14: AP, AP50, AP75, AR and AP easy / medium / hard (:mod:`.crowdpose`);
* MPII-16: PCKh (:mod:`.pckh`) against the benchmark's ground truth with head boxes
  (``gt_valid.mat`` format, :func:`~simplepose.data.mpii.load_mpii_gt`), whose persons are
  those of the annotation file in the same order.

Results are COCO-style records with the layout's K keypoints (K = 17, 14 or 16); for MPII a
``.mat`` file with ``preds`` (N, 16, 2) in 1-based px, in ground-truth order (the format the
MPII evaluation scripts take), is accepted too.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path

import numpy as np

from simplepose.data.coco import CocoKeypoints
from simplepose.errors import AnnotationError, InputError

from .coco import evaluate_keypoints, format_metrics_table, load_results
from .crowdpose import CrowdPoseMetrics, evaluate_crowdpose, format_crowdpose_table
from .pckh import PckhMetrics, compute_pckh, format_pckh_table, match_people_to_records

__all__ = [
    "check_benchmark_inputs",
    "evaluate_benchmark",
    "evaluate_mpii",
    "format_table",
    "load_mpii_predictions",
]


def load_mpii_predictions(path, num_persons: int) -> np.ndarray:
    """``preds`` (N, 16, 2) of a predictions .mat (1-based px) -> (N, 16, 2) 0-based px.

    Raises:
        AnnotationError: naming the file: missing or unreadable, no ``preds``, or a shape other than
            (N, 16, 2) / (16, 2, N) with N = ``num_persons``.
    """
    from simplepose.data.mpii import read_mat

    path = Path(path)
    mat = read_mat(path, "MPII predictions")
    if "preds" not in mat:
        raise AnnotationError(f"MPII predictions file {path}: no 'preds' variable")
    preds = np.asarray(mat["preds"], dtype=np.float64)
    if preds.shape[:3] == (16, 2, num_persons) and preds.ndim == 3:
        preds = np.transpose(preds, (2, 0, 1))
    if (
        preds.ndim != 3
        or preds.shape[0] != num_persons
        or preds.shape[1] != 16
        or preds.shape[2] < 2
    ):
        raise AnnotationError(
            f"MPII predictions file {path}: 'preds' must be ({num_persons}, 16, 2) (one prediction "
            f"per ground-truth person), got {preds.shape}"
        )
    return preds[:, :, :2] - 1.0


def check_benchmark_inputs(ann: CocoKeypoints, mpii_gt=None) -> None:
    """Fail before any work when the benchmark of ``ann`` needs a file that was not given.

    Raises:
        InputError: an MPII file without ``mpii_gt`` (the head boxes PCKh needs).
    """
    if ann.layout.name == "mpii16" and mpii_gt is None:
        raise InputError(
            f"PCKh on {ann.source} needs the MPII head boxes: pass the benchmark's ground truth "
            "(gt_valid.mat format) with --head-boxes"
        )


def evaluate_mpii(ann: CocoKeypoints, results, gt) -> PckhMetrics:
    """PCKh of results on an MPII file.

    Args:
        ann: the MPII annotations (:func:`~simplepose.data.datasets.load_annotations` of the
            converted JSON): annotation ``id - 1`` is the person's index in ``gt``.
        results: COCO-style records with 16 keypoints (a list or a JSON path), assigned to the
            annotated persons of their image (:func:`~.pckh.match_people_to_records`), or a
            predictions .mat (:func:`load_mpii_predictions`).
        gt: an :class:`~simplepose.data.mpii.MpiiGroundTruth` or the path of a ``gt_valid.mat``.

    Raises:
        InputError: no head boxes given, or a ground truth whose person count differs from the
            annotation file's.
        AnnotationError: a bad results or ground-truth file.
    """
    from simplepose.data.mpii import MpiiGroundTruth, load_mpii_gt

    check_benchmark_inputs(ann, gt)
    if not isinstance(gt, MpiiGroundTruth):
        gt = load_mpii_gt(gt)
    n = len(ann.annotations)
    if gt.num_persons != n:
        raise InputError(
            f"{gt.path} holds {gt.num_persons} persons but {ann.source} {n}: the head boxes must "
            "be those of the same persons, in the same order"
        )
    if isinstance(results, (str, Path)) and str(results).endswith(".mat"):
        preds = load_mpii_predictions(results, n)
        num_results = n
    else:
        records = load_results(results, 16) if isinstance(results, (str, Path)) else results
        people = defaultdict(list)
        for r in records:
            kps = np.asarray(r["keypoints"], dtype=np.float64).reshape(-1, 3)
            if kps.shape[0] != 16:
                raise InputError(
                    f"MPII results: a record of image {r['image_id']} has {kps.shape[0]} "
                    "keypoints, "
                    f"the mpii16 layout of {ann.source} 16"
                )
            people[r["image_id"]].append((float(r["score"]), kps[:, :2]))
        by_image = {i: [a["id"] - 1 for a in ann.annotations_by_image[i]] for i in ann.image_ids}
        preds = match_people_to_records(people, by_image, gt.joints, gt.visible)
        num_results = len(records)
    metrics = compute_pckh(preds, gt.joints, gt.visible, gt.head_boxes)
    return dataclasses.replace(metrics, num_images=ann.num_images, num_results=num_results)


def evaluate_benchmark(ann: CocoKeypoints, results, image_ids=None, mpii_gt=None):
    """The benchmark metric of ``ann.layout`` (module docstring).

    Returns:
        :class:`~.coco.KeypointMetrics`, :class:`~.crowdpose.CrowdPoseMetrics` or
        :class:`~.pckh.PckhMetrics`; each has ``stats``, ``summary``, ``as_dict()``,
        ``num_images`` and ``num_results``.
    """
    name = ann.layout.name
    if name == "crowdpose14":
        return evaluate_crowdpose(ann, results, image_ids=image_ids)
    if name == "mpii16":
        if image_ids is not None and sorted(image_ids) != ann.image_ids:
            raise InputError(
                "PCKh is computed over every person of the MPII file: drop --image-ids"
            )
        return evaluate_mpii(ann, results, mpii_gt)
    return evaluate_keypoints(ann, results, image_ids=image_ids)


def format_table(metrics) -> str:
    """The Markdown table of any of the three metric kinds."""
    if isinstance(metrics, PckhMetrics):
        return format_pckh_table(metrics)
    if isinstance(metrics, CrowdPoseMetrics):
        return format_crowdpose_table(metrics)
    return format_metrics_table(metrics)
