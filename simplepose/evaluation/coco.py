"""COCO keypoint results files and the pycocotools keypoint evaluation (SPEC 1.2, 3.9 D).

A results file is a JSON list of records
``{"image_id": int, "category_id": 1, "keypoints": [x1, y1, v1, ..., x17, y17, v17],
"score": float}`` with keypoints in original-image pixels (K triplets for an annotation file
of another layout, e.g. 14 for CrowdPose; the OKS sigmas are then the layout's). The evaluator
ignores the ``v`` values and keeps, per image, the 20 highest-scoring records (``maxDets = 20``).

:func:`evaluate_keypoints` runs pycocotools' ``COCOeval(..., "keypoints")`` on indexes
built in memory from the validated annotation dict (no temp files). pycocotools prints
progress and the summary table; that output is captured, the table is returned in
:class:`KeypointMetrics` and logged at INFO. Capturing swaps ``sys.stdout`` for the
duration of the call, so do not evaluate from several threads at once.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simplepose.data.coco import NUM_KEYPOINTS, CocoKeypoints, load_coco_keypoints
from simplepose.errors import AnnotationError, InputError
from simplepose.utils.io import atomic_write_json, read_json

__all__ = [
    "STAT_NAMES",
    "KeypointMetrics",
    "evaluate_keypoints",
    "format_metrics_table",
    "load_results",
    "write_results",
]

LOG = logging.getLogger(__name__)

# The ten COCOeval keypoint summary stats, in pycocotools' order (all at maxDets = 20).
STAT_NAMES: tuple[str, ...] = (
    "AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl",
)  # fmt: skip
_RESULT_KEYS = ("image_id", "category_id", "keypoints", "score")
_PLAIN_NUMBER_TYPES = {int, float}


@dataclass(frozen=True)
class KeypointMetrics:
    """COCO keypoint metrics of one evaluation.

    Attributes:
        stats: the ten COCOeval summary stats keyed by :data:`STAT_NAMES`, in that order.
            As in pycocotools, a stat is -1.0 when no ground truth falls in its area range
            (e.g. APm on images without medium-size persons).
        summary: pycocotools' summary table, as it prints it.
        num_images: number of images evaluated.
        num_results: number of result records evaluated (those on the evaluated images).
    """

    stats: dict[str, float]
    summary: str = field(repr=False)
    num_images: int
    num_results: int

    def __getitem__(self, key: str) -> float:
        return self.stats[key]

    def as_dict(self) -> dict[str, float]:
        """A copy of :attr:`stats`."""
        return dict(self.stats)


# ----------------------------------------------------------------------- result records
def _record_problem(rec, num_keypoints: int = NUM_KEYPOINTS) -> str | None:
    """What is wrong with one result record, or None when it is valid."""
    if not isinstance(rec, Mapping):
        return f"must be an object, got {type(rec).__name__}"
    missing = [k for k in _RESULT_KEYS if k not in rec]
    if missing:
        return f"missing key(s) {missing} (has {sorted(map(str, rec))})"
    for key in ("image_id", "category_id"):
        value = rec[key]
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            return f"'{key}' must be an integer, got {value!r}"
    kps = rec["keypoints"]
    if isinstance(kps, np.ndarray):
        kps = kps.ravel().tolist()
    if not isinstance(kps, Sequence) or isinstance(kps, (str, bytes)):
        return (
            f"'keypoints' must be a list of {3 * num_keypoints} numbers, "
            f"got {type(kps).__name__}"
        )
    if len(kps) != 3 * num_keypoints:
        got = len(kps)
        hint = f" ({got // 3} keypoints)" if got % 3 == 0 else ""
        return (
            f"'keypoints' must hold {3 * num_keypoints} numbers ({num_keypoints} x, y, v), "
            f"got {got}{hint}"
        )
    # Fast path for plain ints and floats (what json.load gives); the loop below names
    # the offending value and also accepts numpy scalars.
    plain = set(map(type, kps)) <= _PLAIN_NUMBER_TYPES and all(map(math.isfinite, kps))
    if not plain:
        for v in kps:
            if not isinstance(v, numbers.Real) or isinstance(v, bool):
                return f"'keypoints' holds a non-number {v!r}"
            if not math.isfinite(v):
                return f"'keypoints' holds a non-finite value {v!r}"
    score = rec["score"]
    if not isinstance(score, numbers.Real) or isinstance(score, bool):
        return f"'score' must be a number, got {score!r}"
    if not math.isfinite(score):
        return f"'score' must be finite, got {score!r}"
    return None


def _plain_record(rec: Mapping) -> dict:
    """The four standard keys as plain JSON types (numpy scalars converted)."""
    kps = rec["keypoints"]
    if isinstance(kps, np.ndarray):
        kps = kps.ravel()
    return {
        "image_id": int(rec["image_id"]),
        "category_id": int(rec["category_id"]),
        "keypoints": [float(v) for v in kps],
        "score": float(rec["score"]),
    }


def _check_result_list(
    results, source: str | None, num_keypoints: int = NUM_KEYPOINTS
) -> list[dict]:
    """Validate a list of records; return plain copies of their four standard keys.

    ``source`` is the file name for records read from disk (AnnotationError) or None for
    an in-memory list (InputError).
    """
    if not isinstance(results, list):
        where = f"results file {source}" if source else "results"
        exc = AnnotationError if source else InputError
        raise exc(f"{where}: must be a list of result records, got {type(results).__name__}")
    out = []
    for i, rec in enumerate(results):
        problem = _record_problem(rec, num_keypoints)
        if problem is not None:
            if source:
                raise AnnotationError(f"results file {source}: record {i}: {problem}")
            raise InputError(f"results[{i}]: {problem}")
        out.append(_plain_record(rec))
    return out


def write_results(results, path, num_keypoints: int = NUM_KEYPOINTS) -> None:
    """Write result records to a JSON file atomically (temp file, fsync, rename).

    Records are validated first and written with their four standard keys as plain JSON
    types; any other keys are dropped.

    Raises:
        InputError: a record is malformed (the message gives its index).
        FileNotFoundError: the destination folder does not exist.
    """
    plain = _check_result_list(results, None, num_keypoints)
    atomic_write_json(path, plain)
    LOG.info("wrote %d keypoint results to %s", len(plain), path)


def load_results(path, num_keypoints: int = NUM_KEYPOINTS) -> list[dict]:
    """Read and validate a COCO keypoint results file.

    Returns:
        The records, each reduced to ``image_id``, ``category_id``, ``keypoints`` (51
        floats) and ``score``.

    Raises:
        AnnotationError: naming the file, for a missing or unreadable file, invalid JSON,
            a top level other than a list, or (with the record index) a record that is
            not an object, lacks a key, has a keypoint list of the wrong length, or holds
            non-numeric or non-finite values.
    """
    path = Path(path)
    data = read_json(path, "results")
    return _check_result_list(data, str(path), num_keypoints)


# ---------------------------------------------------------------------------- evaluation
def _coco_from_dict(dataset: dict):
    """A pycocotools COCO index built from an in-memory dataset dict (stdout captured)."""
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = dataset
    coco.createIndex()
    return coco


def _select_image_ids(ann: CocoKeypoints, image_ids) -> list[int]:
    if image_ids is None:
        return list(ann.image_ids)
    ids = []
    for v in image_ids:
        if not isinstance(v, numbers.Integral) or isinstance(v, bool):
            raise InputError(f"evaluate_keypoints: image ids must be integers, got {v!r}")
        ids.append(int(v))
    unknown = sorted(set(ids) - set(ann.images))
    if unknown:
        raise InputError(
            f"evaluate_keypoints: {len(unknown)} image id(s) are not in {ann.source}: "
            f"{unknown[:10]}"
        )
    return sorted(set(ids))


def evaluate_keypoints(ann, results, image_ids=None) -> KeypointMetrics:
    """Run the COCO keypoint evaluation (pycocotools ``COCOeval(..., "keypoints")``).

    Args:
        ann: the ground truth: a :class:`CocoKeypoints` or a path to an annotation file.
        results: a list of result records (as :meth:`simplepose.structures.Person.to_coco`
            writes them) or a path to a results file. Only ``image_id``, ``category_id``,
            ``keypoints`` and ``score`` are passed on, so an extra ``bbox`` key cannot make
            pycocotools treat the records as box results.
        image_ids: the images to evaluate (default: every image of ``ann``). Records of
            other images of ``ann`` are left out; an image with ground truth but no
            records counts as all misses.

    Returns:
        :class:`KeypointMetrics`. An empty results list gives AP = AR = 0 (pycocotools'
        ``loadRes`` cannot take an empty list, so the empty detection index is built
        directly).

    Raises:
        AnnotationError: a bad annotation or results file.
        InputError: a malformed in-memory record, an image id that is not in ``ann``
            (in ``image_ids`` or in a record), or a record of a category other than the
            person category of ``ann``.
    """
    from pycocotools.cocoeval import COCOeval

    if not isinstance(ann, CocoKeypoints):
        ann = load_coco_keypoints(ann)
    k = ann.layout.num_keypoints
    try:
        if isinstance(results, (str, Path)):
            records = load_results(results, k)
        else:
            records = _check_result_list(results, None, k)
    except (AnnotationError, InputError) as exc:
        if ann.layout.name == "coco17":
            raise
        raise type(exc)(f"{exc} (the {ann.layout.name} layout of {ann.source})") from None

    ids = _select_image_ids(ann, image_ids)
    id_set = set(ids)
    unknown = sorted({r["image_id"] for r in records} - set(ann.images))
    if unknown:
        raise InputError(
            f"evaluate_keypoints: results refer to {len(unknown)} image id(s) that are not "
            f"in {ann.source}: {unknown[:10]}"
        )
    person_id = ann.person_category_id
    wrong_cat = sorted({r["category_id"] for r in records} - {person_id})
    if wrong_cat:
        raise InputError(
            f"evaluate_keypoints: results have category id(s) {wrong_cat}; the person "
            f"category of {ann.source} is {person_id}"
        )
    selected = [r for r in records if r["image_id"] in id_set]
    if len(selected) < len(records):
        LOG.info(
            "evaluating %d of %d result records (the rest are on images outside image_ids)",
            len(selected),
            len(records),
        )

    # Shallow copies: COCOeval writes 'ignore' into ground-truth dicts and loadRes writes
    # 'area', 'bbox' and 'id' into result dicts.
    gt_dataset = {
        "images": [ann.images[i] for i in ids],
        "annotations": [dict(a) for i in ids for a in ann.annotations_by_image[i]],
        "categories": [dict(ann.person_category)],
    }
    log = io.StringIO()
    table = io.StringIO()
    with contextlib.redirect_stdout(log):
        coco_gt = _coco_from_dict(gt_dataset)
        if selected:
            coco_dt = coco_gt.loadRes(selected)  # `selected` holds fresh dicts already
        else:
            coco_dt = _coco_from_dict(
                {"images": gt_dataset["images"], "annotations": [],
                 "categories": gt_dataset["categories"]}
            )
        coco_eval = COCOeval(coco_gt, coco_dt, "keypoints")
        coco_eval.params.kpt_oks_sigmas = ann.layout.sigmas_array
        coco_eval.params.imgIds = ids
        coco_eval.params.catIds = [person_id]
        coco_eval.evaluate()
        coco_eval.accumulate()
    with contextlib.redirect_stdout(table):
        coco_eval.summarize()
    LOG.debug("pycocotools output:\n%s", log.getvalue().rstrip())
    summary = table.getvalue()
    stats = {name: float(v) for name, v in zip(STAT_NAMES, coco_eval.stats)}
    metrics = KeypointMetrics(
        stats=stats, summary=summary, num_images=len(ids), num_results=len(selected)
    )
    LOG.info(
        "COCO keypoint evaluation on %d images, %d results:\n%s",
        len(ids),
        len(selected),
        summary.rstrip(),
    )
    return metrics


def format_metrics_table(metrics) -> str:
    """A two-row Markdown table of the ten stats, three decimals.

    Args:
        metrics: a :class:`KeypointMetrics` or a mapping with the keys of
            :data:`STAT_NAMES` (missing keys are shown as ``-``).
    """
    stats = metrics.stats if isinstance(metrics, KeypointMetrics) else metrics
    if not isinstance(stats, Mapping):
        raise InputError(
            "format_metrics_table: expected KeypointMetrics or a mapping, "
            f"got {type(metrics).__name__}"
        )
    cells = []
    for name in STAT_NAMES:
        value = stats.get(name)
        cells.append("-" if value is None else f"{float(value):.3f}")
    widths = [max(len(n), len(c)) for n, c in zip(STAT_NAMES, cells)]
    head = "| " + " | ".join(n.rjust(w) for n, w in zip(STAT_NAMES, widths)) + " |"
    rule = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    row = "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths)) + " |"
    return f"{head}\n{rule}\n{row}"
