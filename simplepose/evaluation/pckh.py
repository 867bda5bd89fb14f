"""PCKh on MPII, as the MPII benchmark defines it.

For person n and joint j, labelled in the ground truth (``jnt_missing == 0``):

* head size ``h_n = 0.6 * ||(x2, y2) - (x1, y1)||``: the benchmark's scale factor 0.6 times
  the diagonal of the person's annotated head rectangle (``headboxes_src``);
* the joint is correct at threshold t when ``||p_nj - g_nj|| <= t * h_n``, with prediction and
  ground truth in the same pixel convention. The ground-truth files are MATLAB's, 1-based;
  simplepose predicts in 0-based px, so a prediction ``p`` is compared as ``p + 1`` with the
  file's values (:func:`compute_pckh` takes both in 0-based px: :mod:`simplepose.data.mpii`
  subtracts 1 when it reads the .mat, which is the same comparison).
* PCKh of joint j = 100 * correct / labelled over all persons.
* The table of the RSN and MSPN papers: Head (the ``head`` joint, i.e. head top), Shoulder,
  Elbow, Wrist, Hip, Knee, Ankle (each the mean of the left and right joint's PCKh), and
  Mean: correct / labelled pooled over the benchmark's 14 joints, every joint but pelvis and
  thorax (upper neck counts in the Mean though it has no column). ``Mean@0.1`` is the Mean at
  t = 0.1.

A person with no prediction (NaN) counts as wrong on every labelled joint.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from simplepose.errors import InputError
from simplepose.skeleton import MPII16

__all__ = [
    "HEAD_SIZE_FACTOR",
    "MEAN_JOINTS",
    "PCKH_GROUPS",
    "PckhMetrics",
    "compute_pckh",
    "format_pckh_table",
    "match_people_to_records",
]

LOG = logging.getLogger(__name__)

HEAD_SIZE_FACTOR = 0.6
_I = MPII16.index
PCKH_GROUPS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("Head", (_I("head_top"),)),
    ("Shoulder", (_I("left_shoulder"), _I("right_shoulder"))),
    ("Elbow", (_I("left_elbow"), _I("right_elbow"))),
    ("Wrist", (_I("left_wrist"), _I("right_wrist"))),
    ("Hip", (_I("left_hip"), _I("right_hip"))),
    ("Knee", (_I("left_knee"), _I("right_knee"))),
    ("Ankle", (_I("left_ankle"), _I("right_ankle"))),
)
MEAN_JOINTS: tuple[int, ...] = tuple(
    j for j in range(MPII16.num_keypoints) if j not in (_I("pelvis"), _I("thorax"))
)
TABLE_COLUMNS = tuple(name for name, _ in PCKH_GROUPS) + ("Mean", "Mean@0.1")


@dataclass(frozen=True)
class PckhMetrics:
    """PCKh of one evaluation.

    Attributes:
        stats: ``PCKh@0.5`` (= Mean), ``PCKh@0.1`` (= Mean@0.1) and the table columns
            Head ... Ankle, Mean, Mean@0.1, in percent; NaN where no joint of a column is
            labelled.
        per_joint: {threshold: (16,) per-joint PCKh in percent (NaN: never labelled)}.
        num_persons: persons evaluated; num_missing: of those, persons without a prediction.
        num_images, num_results: images and result records behind the predictions (for the
            metrics file; ``num_results`` = ``num_persons`` when given one per person).
    """

    stats: dict[str, float]
    per_joint: dict[float, np.ndarray] = field(repr=False)
    num_persons: int
    num_missing: int = 0
    num_images: int = 0
    num_results: int = 0

    def __getitem__(self, key: str) -> float:
        return self.stats[key]

    @property
    def summary(self) -> str:
        """Per-joint PCKh@0.5, one line."""
        values = self.per_joint.get(0.5, ())
        cells = ", ".join(f"{n} {v:.1f}" for n, v in zip(MPII16.keypoints, values))
        return f"PCKh@0.5 per joint over {self.num_persons} persons: {cells}"

    def as_dict(self) -> dict:
        out = dict(self.stats)
        out.update(num_persons=self.num_persons, num_missing=self.num_missing)
        for t, values in self.per_joint.items():
            out[f"per_joint@{t:g}"] = {
                name: float(v) for name, v in zip(MPII16.keypoints, values)
            }
        return out


def compute_pckh(pred, joints, visible, head_boxes, thresholds=(0.5, 0.1)) -> PckhMetrics:
    """PCKh of N predictions against the ground truth (module docstring).

    Args:
        pred: (N, 16, 2) predicted joints, 0-based original px; NaN rows = no prediction.
        joints: (N, 16, 2) ground-truth joints, 0-based original px.
        visible: (N, 16) bool, labelled ground-truth joints.
        head_boxes: (N, 2, 2) head rectangles ``((x1, y1), (x2, y2))``, original px.
        thresholds: the fractions of the head size to report; 0.5 and 0.1 are always added.

    Raises:
        InputError: shapes that do not match, or a head box with a zero diagonal.
    """
    pred = np.asarray(pred, dtype=np.float64)
    joints = np.asarray(joints, dtype=np.float64)
    visible = np.asarray(visible, dtype=bool)
    head_boxes = np.asarray(head_boxes, dtype=np.float64)
    n, k = joints.shape[:2]
    if joints.shape != (n, MPII16.num_keypoints, 2):
        raise InputError(f"compute_pckh: ground truth must be (N, 16, 2), got {joints.shape}")
    if pred.shape != joints.shape:
        raise InputError(
            f"compute_pckh: predictions have shape {pred.shape}, the ground truth {joints.shape} "
            "(one prediction of 16 joints per annotated person)"
        )
    if visible.shape != (n, k) or head_boxes.shape != (n, 2, 2):
        raise InputError(
            f"compute_pckh: visible must be ({n}, {k}) and head_boxes ({n}, 2, 2), got "
            f"{visible.shape} and {head_boxes.shape}"
        )
    head = HEAD_SIZE_FACTOR * np.linalg.norm(head_boxes[:, 1] - head_boxes[:, 0], axis=1)
    if not (head > 0).all():
        raise InputError(
            f"compute_pckh: person {int(np.argmin(head > 0))} has a zero-size head box"
        )
    err = np.linalg.norm(pred - joints, axis=2) / head[:, None]  # NaN for missing predictions
    missing = int(np.isnan(pred).any(axis=(1, 2)).sum())
    labelled = visible.sum(axis=0)
    stats: dict[str, float] = {}
    per_joint: dict[float, np.ndarray] = {}
    means = {}
    for t in sorted({0.5, 0.1, *map(float, thresholds)}, reverse=True):
        correct = ((err <= t) & visible).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_joint[t] = np.where(labelled > 0, 100.0 * correct / labelled, np.nan)
        sel = list(MEAN_JOINTS)
        total = labelled[sel].sum()
        means[t] = 100.0 * correct[sel].sum() / total if total else float("nan")
        stats[f"PCKh@{t:g}"] = float(means[t])
    for name, group in PCKH_GROUPS:
        vals = per_joint[0.5][list(group)]
        stats[name] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
    stats["Mean"] = float(means[0.5])
    stats["Mean@0.1"] = float(means[0.1])
    if missing:
        LOG.warning("PCKh: %d of %d persons have no prediction (counted wrong)", missing, n)
    return PckhMetrics(
        stats=stats, per_joint=per_joint, num_persons=n, num_missing=missing, num_results=n
    )


def format_pckh_table(metrics) -> str:
    """A two-row Markdown table: Head, Shoulder, Elbow, Wrist, Hip, Knee, Ankle, Mean,
    Mean@0.1 (percent, one decimal)."""
    stats = metrics.stats if isinstance(metrics, PckhMetrics) else metrics
    cells = [f"{stats[c]:.1f}" if c in stats else "-" for c in TABLE_COLUMNS]
    widths = [max(len(a), len(b)) for a, b in zip(TABLE_COLUMNS, cells)]
    head = "| " + " | ".join(a.rjust(w) for a, w in zip(TABLE_COLUMNS, widths)) + " |"
    rule = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    row = "| " + " | ".join(b.rjust(w) for b, w in zip(cells, widths)) + " |"
    return f"{head}\n{rule}\n{row}"


def match_people_to_records(people_by_image, records_by_image, joints, visible) -> np.ndarray:
    """Assign multi-person predictions to the annotated persons of their image.

    The benchmark expects one prediction per annotated person. Predictions from a pipeline or
    another tool's results file are assigned per image, highest score first, each to the
    still unassigned person with the smallest mean distance over that person's labelled
    joints.

    Args:
        people_by_image: {image key: list of ``(score, (16, 2) joints 0-based px)``}.
        records_by_image: {image key: list of person indices into ``joints``}.
        joints, visible: (N, 16, 2) and (N, 16) ground truth.

    Returns:
        (N, 16, 2) predictions, NaN for persons that got none.
    """
    joints = np.asarray(joints, dtype=np.float64)
    out = np.full(joints.shape, np.nan)
    for key, persons in records_by_image.items():
        free = list(persons)
        for _, kp in sorted(people_by_image.get(key, []), key=lambda p: -p[0]):
            if not free:
                break
            kp = np.asarray(kp, dtype=np.float64).reshape(-1, 2)
            cost = []
            for i in free:
                d = np.linalg.norm(kp - joints[i], axis=1)[visible[i]]
                cost.append(d.mean() if d.size else np.inf)
            best = free.pop(int(np.argmin(cost)))
            out[best] = kp
    return out
