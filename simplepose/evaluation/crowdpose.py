"""The CrowdPose keypoint evaluation, on pycocotools' ``COCOeval``.

The CrowdPose benchmark's own tool (``crowdposetools``, and ``xtcocotools`` with
``"keypoints_crowd"``) is a modified ``COCOeval``; ``xtcocotools`` does not import with numpy 2
(its latest wheel, 1.14.3, was built against numpy 1), so the same evaluation is run here on
pycocotools with these settings, which are the benchmark's:

* OKS with CrowdPose's 14 sigmas (:data:`~simplepose.skeleton.CROWDPOSE14`) and the OKS scale
  ``0.53 * box w * box h`` of each ground-truth person (the loader,
  :func:`~simplepose.data.crowdpose.load_crowdpose`, stores it as ``area``, so the area ranges
  see the same value);
* a ground-truth person is ignored when it is a crowd region or its ``num_keypoints`` (the
  12 body joints) is 0; at most 20 results per image;
* AP, AP50, AP75, AR, AR50, AR75 over all images;
* AP easy / medium / hard: the AP of the images whose ``crowdIndex`` is below 0.2, in
  [0.2, 0.8), and at least 0.8 (the thresholds the official tool passes; the paper's text
  says 0.1 / 0.8). Each is a separate evaluation on that image subset; -1 when the subset has
  no ground-truth person (as COCOeval reports an empty setting). The official tool rounds
  these three to 4 decimals; they are reported unrounded here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from simplepose.data.coco import CocoKeypoints
from simplepose.data.crowdpose import crowd_index, load_crowdpose
from simplepose.errors import AnnotationError, InputError

from .coco import evaluate_keypoints, load_results

__all__ = [
    "CROWD_SPLITS",
    "STAT_NAMES",
    "CrowdPoseMetrics",
    "crowd_split",
    "evaluate_crowdpose",
    "format_crowdpose_table",
]

LOG = logging.getLogger(__name__)

# (name, lower bound inclusive, upper bound exclusive) on the image's crowdIndex.
CROWD_SPLITS: tuple[tuple[str, float, float], ...] = (
    ("easy", 0.0, 0.2),
    ("medium", 0.2, 0.8),
    ("hard", 0.8, float("inf")),
)
STAT_NAMES: tuple[str, ...] = (
    "AP", "AP50", "AP75", "AR", "AR50", "AR75", "APeasy", "APmedium", "APhard",
)  # fmt: skip


@dataclass(frozen=True)
class CrowdPoseMetrics:
    """CrowdPose metrics of one evaluation.

    Attributes:
        stats: :data:`STAT_NAMES` -> value in [0, 1] (-1: no ground truth in that setting).
        summary: the text table.
        num_images: images evaluated; num_results: result records on them.
        split_images: images per crowd split.
    """

    stats: dict[str, float]
    summary: str = field(repr=False)
    num_images: int
    num_results: int
    split_images: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, key: str) -> float:
        return self.stats[key]

    def as_dict(self) -> dict:
        out = dict(self.stats)
        out["split_images"] = dict(self.split_images)
        return out


def crowd_split(ann: CocoKeypoints, image_ids=None) -> dict[str, list[int]]:
    """``{"easy": [...], "medium": [...], "hard": [...]}`` image ids by ``crowdIndex``."""
    ids = ann.image_ids if image_ids is None else sorted(image_ids)
    out: dict[str, list[int]] = {name: [] for name, _, _ in CROWD_SPLITS}
    for image_id in ids:
        c = crowd_index(ann, image_id)
        for name, lo, hi in CROWD_SPLITS:
            if lo <= c < hi:
                out[name].append(image_id)
                break
    return out


def evaluate_crowdpose(ann, results, image_ids=None) -> CrowdPoseMetrics:
    """Run the CrowdPose evaluation (module docstring).

    Args:
        ann: a CrowdPose :class:`~simplepose.data.coco.CocoKeypoints` (from
            :func:`~simplepose.data.crowdpose.load_crowdpose`) or a path to a CrowdPose file.
        results: result records with 14 keypoints, or a path to a results file.
        image_ids: the images to evaluate (default all).

    Raises:
        AnnotationError / InputError: a bad annotation or results file, a results keypoint
            count other than 14 (named with the file and record), an annotation file of
            another layout.
    """
    if not isinstance(ann, CocoKeypoints):
        ann = load_crowdpose(ann)
    if ann.layout.name != "crowdpose14":
        raise InputError(
            f"evaluate_crowdpose: {ann.source} has the {ann.layout.name} layout, not CrowdPose's"
        )
    if isinstance(results, (str, Path)):
        try:
            results = load_results(results, ann.layout.num_keypoints)
        except AnnotationError as exc:
            raise AnnotationError(f"{exc} (the crowdpose14 layout of {ann.source})") from None
    full = evaluate_keypoints(ann, results, image_ids=image_ids)
    ids = ann.image_ids if image_ids is None else sorted(set(image_ids))
    stats = {k: full.stats[k] for k in ("AP", "AP50", "AP75", "AR", "AR50", "AR75")}
    split_images = {}
    for name, subset in crowd_split(ann, ids).items():
        split_images[name] = len(subset)
        if not subset:
            stats[f"AP{name}"] = -1.0
            continue
        stats[f"AP{name}"] = float(evaluate_keypoints(ann, results, image_ids=subset).stats["AP"])
    splits = ", ".join(f"{n} {k}" for n, k in split_images.items())
    summary = (f"CrowdPose evaluation: {full.num_results} results on {full.num_images} images "
               f"(by crowdIndex: {splits})")
    metrics = CrowdPoseMetrics(
        stats=stats, summary=summary, num_images=full.num_images, num_results=full.num_results,
        split_images=split_images,
    )  # fmt: skip
    LOG.info("%s\n%s", summary, format_crowdpose_table(metrics))
    return metrics


def format_crowdpose_table(metrics) -> str:
    """A two-row Markdown table of :data:`STAT_NAMES`, three decimals."""
    stats = metrics.stats if isinstance(metrics, CrowdPoseMetrics) else metrics
    cells = ["-" if stats.get(n) is None else f"{float(stats[n]):.3f}" for n in STAT_NAMES]
    widths = [max(len(n), len(c)) for n, c in zip(STAT_NAMES, cells)]
    head = "| " + " | ".join(n.rjust(w) for n, w in zip(STAT_NAMES, widths)) + " |"
    rule = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    row = "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths)) + " |"
    return f"{head}\n{rule}\n{row}"
