"""What ``evaluate.py`` runs: score a results file, or run an oracle, and write the
results and metrics files atomically. Library code: it logs, the script prints."""

from __future__ import annotations

import logging
import platform
import time
from pathlib import Path

from ..data.coco import CocoKeypoints
from ..data.datasets import load_annotations
from ..geometry import xywh_to_xyxy
from ..utils.io import atomic_write_json
from .benchmarks import check_benchmark_inputs, evaluate_benchmark
from .coco import KeypointMetrics, write_results

__all__ = [
    "check_benchmark_inputs",
    "default_results_path",
    "run_oracle",
    "score_results",
    "write_metrics",
]

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


def score_results(results_path, ann_path, mpii_gt=None) -> KeypointMetrics:
    """The benchmark metric of an existing results file (any producer's) against ``ann_path``
    (COCO / OCHuman, CrowdPose or MPII, :func:`~.benchmarks.evaluate_benchmark`)."""
    return evaluate_benchmark(load_annotations(ann_path), results_path, mpii_gt=mpii_gt)


def run_oracle(kind: str, ann: CocoKeypoints | str, progress: bool = True, mpii_gt=None, **options):
    """Run an oracle over every image of ``ann``.

    Args:
        kind: ``"bottomup"`` (SimplePose maps at the inference resolution, C++ grouping) or
            ``"topdown"`` (targets on ground-truth box crops, top-down decode).
        mpii_gt: MPII only: the ground truth with head boxes for PCKh.
        options: passed to the oracle; bottom-up: ``box_size``, ``backend``, ``params``,
            ``codec``; top-down: ``flip``, ``codec``. Without a codec, the layout's own.

    Returns:
        (results list, KeypointMetrics, seconds).
    """
    if not isinstance(ann, CocoKeypoints):
        ann = load_annotations(ann)
    check_benchmark_inputs(ann, mpii_gt)
    start = time.perf_counter()
    if kind == "bottomup":
        from ..oracle.bottomup import run_bottomup_oracle

        results = run_bottomup_oracle(ann, progress=progress, **options)
    elif kind == "topdown":
        from ..oracle.topdown import run_topdown_oracle

        results = run_topdown_oracle(ann, progress=progress, **options)
    else:
        raise ValueError(f"unknown oracle {kind!r}; available: bottomup, topdown")
    seconds = time.perf_counter() - start
    return results, evaluate_benchmark(ann, results, mpii_gt=mpii_gt), seconds


def environment() -> dict:
    """Small provenance record stored with metrics."""
    import numpy

    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "machine": platform.machine(),
    }


def save_run(results, metrics: KeypointMetrics, results_path, metrics_path, num_keypoints: int = 17,
             **meta) -> dict:
    """Write the results, then the metrics naming them (``results_file`` and its
    ``results_sha256``): metrics are written last, so a run killed between the two writes
    leaves metrics whose hash does not match the new results file."""
    from ..utils.io import file_sha256

    write_results(results, results_path, num_keypoints)
    return write_metrics(metrics_path, metrics, results_file=str(results_path),
                         results_sha256=file_sha256(results_path), **meta,
                         environment=environment())


# ------------------------------------------------------------------ model evaluation
def shard(items: list, rank: int, world: int) -> list:
    """Round-robin share of ``items`` for ``rank`` of ``world`` processes."""
    return items[rank::world]


def run_predictor(
    predictor,
    ann: CocoKeypoints,
    images_dir,
    boxes: dict | None = None,
    skip_bad: bool = False,
    image_ids=None,
    progress: bool = True,
) -> tuple[list[dict], list[str]]:
    """Predict every image of ``ann`` (or ``image_ids``) and return (COCO results, bad images).

    Args:
        predictor: a :class:`simplepose.Predictor`.
        boxes: top-down only: ``{image_id: (boxes_xywh (N, 4), scores (N,))}``; an image
            without an entry has no detections (no people; its ground truth counts as missed).
            ``None``: the predictor's detector.
        skip_bad: report and skip missing/corrupt images instead of failing the run.
    """
    from tqdm import tqdm

    from ..errors import InputError

    ids = ann.image_ids if image_ids is None else list(image_ids)
    results, bad = [], []
    for image_id in tqdm(ids, desc="evaluate", unit="img", disable=not progress):
        path = ann.image_path(image_id, images_dir)
        try:
            image = ann.read_image(image_id, images_dir)
        except InputError as exc:
            if not skip_bad:
                raise
            LOG.warning("skipping %s", exc)
            bad.append(str(path))
            continue
        if boxes is not None and predictor.mode == "topdown":
            xywh, scores = boxes.get(image_id, (None, None))
            if xywh is None or len(xywh) == 0:
                continue
            # COCO detection boxes are (x, y, w, h)
            people = predictor.predict(image, boxes_xyxy=xywh_to_xyxy(xywh), box_scores=scores)
        else:
            people = predictor.predict(image)
        results.extend(p.to_coco(image_id) for p in people)
    if bad:
        LOG.warning("%d image(s) could not be read and were skipped", len(bad))
    return results, bad


def gather_results(results: list, bad: list) -> tuple[list, list]:
    """All ranks' results on every rank (identity outside torch.distributed)."""
    from .. import dist

    if not dist.is_dist():
        return results, bad
    gathered = dist.all_gather_object((results, bad))
    return [r for part, _ in gathered for r in part], [b for _, part in gathered for b in part]


def write_test_dev_submission(
    results: list, info: CocoKeypoints, out_dir, name: str, processed_ids
) -> tuple[Path, Path]:
    """Write ``person_keypoints_test-dev2017_<name>_results.json`` and its zip for the COCO
    evaluation server, after checking that every image id of the info file was processed and
    that no result names an image outside it."""
    import zipfile

    from ..errors import InputError
    from ..utils.io import atomic_path

    expected, processed = set(info.image_ids), set(processed_ids)
    missing = expected - processed
    if missing:
        raise InputError(
            f"{len(missing)} image(s) of the image-info file were not processed, "
            f"e.g. {sorted(missing)[:5]}"
        )
    stray = {r["image_id"] for r in results} - expected
    if stray:
        raise InputError(
            f"results name {len(stray)} image id(s) not in the image-info file, "
            f"e.g. {sorted(stray)[:5]}"
        )
    without = len(expected - {r["image_id"] for r in results})
    if without:
        LOG.info("%d of %d images have no detected person", without, len(expected))
    out_dir = Path(out_dir)
    json_path = out_dir / f"person_keypoints_test-dev2017_{name}_results.json"
    write_results(results, json_path)
    zip_path = json_path.with_suffix(".zip")
    with atomic_path(zip_path) as tmp, zipfile.ZipFile(
        tmp, "w", compression=zipfile.ZIP_DEFLATED
    ) as zf:
        zf.write(json_path, arcname=json_path.name)
    return json_path, zip_path
