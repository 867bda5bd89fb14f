"""Pose and box non-maximum suppression (SPEC 1.3), vectorised with numpy.

None of the reference codebases (TFCPN, PTCPN, MSPN, RSN) runs pose NMS; these are
optional post-processing steps.

* :func:`oks_iou` / :func:`oks_nms`: HRNet-style OKS-NMS. The pairwise OKS uses the mean
  of the two areas as the scale and compares only keypoints whose score exceeds the
  visibility threshold in *both* poses; greedy suppression keeps a pose when its OKS with
  every already-kept pose is <= ``thresh`` (0.9).
* :func:`soft_oks_nms`: Gaussian soft-NMS on poses, rescoring by OKS.
* :func:`soft_nms`: box soft-NMS as in TFCPN's ``cpu_soft_nms`` (Gaussian, sigma 0.5;
  linear with Nt 0.3; hard NMS; boxes whose rescored score falls below 0.001 are dropped).

Shapes: N poses of K = 17 keypoints; keypoints are ``(x, y, score_or_v)`` in any one pixel
frame (usually original-image px); areas are in the same frame's px^2.
"""

from __future__ import annotations

import logging

import numpy as np

from simplepose.errors import InputError
from simplepose.skeleton import COCO_SIGMAS

__all__ = ["oks_iou", "oks_nms", "soft_oks_nms", "soft_nms", "box_iou"]

LOG = logging.getLogger(__name__)

_EPS = np.spacing(1)  # HRNet's oks_iou adds np.spacing(1) to the area


def _as_poses(kpts, name: str, num_kpts: int | None = None) -> np.ndarray:
    arr = np.asarray(kpts, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[2] < 3 or (num_kpts is not None and arr.shape[1] != num_kpts):
        want = f"(N, {num_kpts or 'K'}, 3)"
        raise InputError(f"{name} must have shape {want} (x, y, score), got {arr.shape}")
    return arr


def _as_vector(values, n: int, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise InputError(f"{name} must have shape ({n},), got {arr.shape}")
    return arr


def _sigmas_for(num_kpts: int, sigmas) -> np.ndarray:
    s = COCO_SIGMAS if sigmas is None else np.asarray(sigmas, dtype=np.float64)
    if s.shape != (num_kpts,):
        raise InputError(f"sigmas must have shape ({num_kpts},), got {s.shape}")
    return s


def oks_iou(
    kpts_a,
    kpts_b,
    area_a: float,
    areas_b,
    sigmas=None,
    vis_thresh: float | None = 0.2,
) -> np.ndarray:
    """Object keypoint similarity between one pose and N others (SPEC 1.3 convention).

    For each pose ``b``: ``e_k = d_k^2 / (2 sigma_k)^2 / ((area_a + area_b) / 2 + eps) / 2``
    and ``OKS = mean over compared k of exp(-e_k)``, where the compared keypoints are
    those whose score (third column) exceeds ``vis_thresh`` in both ``a`` and ``b`` (all
    keypoints when ``vis_thresh`` is None). OKS is 0 when no keypoint is compared.

    HRNet's ``oks_iou`` writes the "both" mask as ``list(vg > t) and list(vd > t)``, which
    Python evaluates to the second list only; this function applies the mask of both
    poses, as SPEC 1.3 states.

    Args:
        kpts_a: (K, 3) the reference pose.
        kpts_b: (N, K, 3) the other poses.
        area_a: area of ``a`` (px^2).
        areas_b: (N,) areas of the others.
        sigmas: (K,) per-keypoint sigmas; default COCO's (K = 17).
        vis_thresh: keypoint score threshold, or None to compare every keypoint.

    Returns:
        (N,) float64 OKS values in [0, 1].
    """
    a = np.asarray(kpts_a, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] < 3:
        raise InputError(f"kpts_a must have shape (K, 3) (x, y, score), got {a.shape}")
    b = _as_poses(kpts_b, "kpts_b", a.shape[0])
    areas = _as_vector(areas_b, b.shape[0], "areas_b")
    var = (2.0 * _sigmas_for(a.shape[0], sigmas)) ** 2
    d2 = (b[:, :, 0] - a[:, 0]) ** 2 + (b[:, :, 1] - a[:, 1]) ** 2  # (N, K)
    scale = (float(area_a) + areas)[:, None] / 2.0 + _EPS
    sim = np.exp(-d2 / var / scale / 2.0)
    if vis_thresh is None:
        return sim.mean(axis=1)
    mask = (b[:, :, 2] > vis_thresh) & (a[:, 2] > vis_thresh)
    count = mask.sum(axis=1)
    total = np.where(mask, sim, 0.0).sum(axis=1)
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


def _check_pose_inputs(kpts, scores, areas):
    k = _as_poses(kpts, "kpts")
    s = _as_vector(scores, k.shape[0], "scores")
    a = _as_vector(areas, k.shape[0], "areas")
    if not (np.isfinite(s).all() and np.isfinite(a).all() and np.isfinite(k[:, :, :3]).all()):
        raise InputError("kpts, scores and areas must be finite")
    return k, s, a


def oks_nms(
    kpts,
    scores,
    areas,
    thresh: float = 0.9,
    vis_thresh: float | None = 0.2,
    sigmas=None,
) -> np.ndarray:
    """Greedy OKS-NMS: keep a pose when its OKS with every kept pose is <= ``thresh``.

    Poses are visited by descending score (stable: on equal scores the lower index
    comes first); each kept pose removes the remaining poses whose :func:`oks_iou` with
    it exceeds ``thresh``.

    Args:
        kpts: (N, K, 3) poses ``(x, y, keypoint score)``.
        scores: (N,) pose scores.
        areas: (N,) pose areas (px^2), e.g. box areas.
        thresh: OKS above which a lower-scored pose is suppressed (HRNet ``OKS_THRE``).
        vis_thresh: keypoint score threshold of :func:`oks_iou` (HRNet ``IN_VIS_THRE``).
        sigmas: (K,) OKS sigmas; default COCO's.

    Returns:
        (M,) int64 indices of the kept poses, highest score first.
    """
    k, s, a = _check_pose_inputs(kpts, scores, areas)
    order = np.argsort(-s, kind="stable")
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        if rest.size == 0:
            break
        ovr = oks_iou(k[i], k[rest], a[i], a[rest], sigmas, vis_thresh)
        order = rest[ovr <= thresh]
    LOG.debug("oks_nms kept %d of %d poses", len(keep), k.shape[0])
    return np.asarray(keep, dtype=np.int64)


def soft_oks_nms(
    kpts,
    scores,
    areas,
    sigma: float = 0.5,
    min_score: float = 1e-3,
    vis_thresh: float | None = 0.2,
    max_dets: int | None = None,
    sigmas=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian soft-NMS on poses, rescoring by OKS.

    Repeatedly take the remaining pose ``i`` with the highest current score, keep it,
    and rescore every other remaining pose ``j``::

        score_j <- score_j * exp(-OKS(i, j)^2 / sigma)

    then drop the remaining poses whose score is now below ``min_score``. Scores only decrease, and
    a pose far from every kept pose (OKS 0) keeps its score. ``sigma = 0.5`` matches the
    box soft-NMS of TFCPN; HRNet passes its OKS threshold (0.9) in this place and discards
    the new scores, whereas this function returns them.

    Args:
        kpts: (N, K, 3) poses ``(x, y, keypoint score)``.
        scores: (N,) pose scores.
        areas: (N,) pose areas (px^2).
        sigma: Gaussian decay; smaller decays faster.
        min_score: poses whose rescored score is below it are dropped.
        vis_thresh: keypoint score threshold of :func:`oks_iou`.
        max_dets: stop after this many kept poses (HRNet: 20); None keeps all.
        sigmas: (K,) OKS sigmas; default COCO's.

    Returns:
        ``(keep, new_scores)``: (M,) int64 indices in the order kept (non-increasing new
        score) and (M,) float64 their rescored scores.
    """
    if sigma <= 0:
        raise InputError(f"soft_oks_nms: sigma must be > 0, got {sigma}")
    k, s, a = _check_pose_inputs(kpts, scores, areas)
    remaining = np.arange(k.shape[0])
    current = s.copy()
    keep: list[int] = []
    kept_scores: list[float] = []
    while remaining.size > 0 and (max_dets is None or len(keep) < max_dets):
        pos = int(np.argmax(current))  # first of equal maxima
        i = remaining[pos]
        keep.append(int(i))
        kept_scores.append(float(current[pos]))
        remaining = np.delete(remaining, pos)
        current = np.delete(current, pos)
        if remaining.size == 0:
            break
        ovr = oks_iou(k[i], k[remaining], a[i], a[remaining], sigmas, vis_thresh)
        current = current * np.exp(-(ovr**2) / sigma)
        alive = current >= min_score
        remaining, current = remaining[alive], current[alive]
    return np.asarray(keep, dtype=np.int64), np.asarray(kept_scores, dtype=np.float64)


def box_iou(box, boxes, plus_one: bool = False) -> np.ndarray:
    """IoU of one ``(x1, y1, x2, y2)`` box with (N, 4) boxes.

    With ``plus_one`` the boxes are inclusive integer-pixel ranges (width = x2 - x1 + 1),
    the legacy Fast R-CNN convention of TFCPN's ``cpu_soft_nms``.
    """
    box = np.asarray(box, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    off = 1.0 if plus_one else 0.0
    iw = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]) + off
    ih = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]) + off
    overlap = (iw > 0) & (ih > 0)
    inter = np.where(overlap, iw * ih, 0.0)
    area_a = (box[2] - box[0] + off) * (box[3] - box[1] + off)
    areas = (boxes[:, 2] - boxes[:, 0] + off) * (boxes[:, 3] - boxes[:, 1] + off)
    union = area_a + areas - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=overlap & (union > 0))


def soft_nms(
    boxes,
    scores,
    method: str = "gaussian",
    sigma: float = 0.5,
    iou_thresh: float = 0.3,
    min_score: float = 1e-3,
    plus_one: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Box soft-NMS (TFCPN ``cpu_soft_nms``; SPEC 1.3).

    Repeatedly take the remaining box ``i`` with the highest current score, keep it, and
    rescore every other remaining box ``j`` that overlaps it (IoU > 0):

    * ``"gaussian"`` (TFCPN method 2): ``s_j <- s_j * exp(-IoU^2 / sigma)``;
    * ``"linear"`` (method 1): ``s_j <- s_j * (1 - IoU)`` when ``IoU > iou_thresh`` (Nt);
    * ``"hard"`` (method 0): ``s_j <- 0`` when ``IoU > iou_thresh``, i.e. plain NMS.

    A rescored (overlapping) box whose score falls below ``min_score`` is dropped. As in
    the reference, a box that overlaps no kept box is never tested against
    ``min_score``, so a non-overlapping box with a low initial score is kept.

    Args:
        boxes: (N, 4) ``(x1, y1, x2, y2)`` boxes.
        scores: (N,) box scores.
        method: ``"gaussian"``, ``"linear"`` or ``"hard"``.
        sigma: Gaussian decay (0.5).
        iou_thresh: Nt of the linear and hard methods (0.3).
        min_score: drop threshold (0.001).
        plus_one: use the legacy inclusive-pixel box size (x2 - x1 + 1) of the reference
            kernel; False treats boxes as continuous.

    Returns:
        ``(keep, new_scores)``: (M,) int64 indices into ``boxes`` in the order kept and
        (M,) float64 their rescored scores.
    """
    if method not in ("gaussian", "linear", "hard"):
        raise InputError(f"soft_nms: method must be 'gaussian', 'linear' or 'hard', got {method!r}")
    if method == "gaussian" and sigma <= 0:
        raise InputError(f"soft_nms: sigma must be > 0, got {sigma}")
    b = np.asarray(boxes, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != 4:
        raise InputError(f"soft_nms: boxes must have shape (N, 4) (x1, y1, x2, y2), got {b.shape}")
    current = _as_vector(scores, b.shape[0], "scores").copy()
    if not (np.isfinite(b).all() and np.isfinite(current).all()):
        raise InputError("soft_nms: boxes and scores must be finite")
    remaining = np.arange(b.shape[0])
    keep: list[int] = []
    kept_scores: list[float] = []
    while remaining.size > 0:
        pos = int(np.argmax(current))
        i = remaining[pos]
        keep.append(int(i))
        kept_scores.append(float(current[pos]))
        remaining = np.delete(remaining, pos)
        current = np.delete(current, pos)
        if remaining.size == 0:
            break
        iou = box_iou(b[i], b[remaining], plus_one=plus_one)
        if method == "gaussian":
            weight = np.exp(-(iou**2) / sigma)
        elif method == "linear":
            weight = np.where(iou > iou_thresh, 1.0 - iou, 1.0)
        else:
            weight = np.where(iou > iou_thresh, 0.0, 1.0)
        overlapping = iou > 0
        current = np.where(overlapping, current * weight, current)
        alive = ~(overlapping & (current < min_score))
        remaining, current = remaining[alive], current[alive]
    return np.asarray(keep, dtype=np.int64), np.asarray(kept_scores, dtype=np.float64)
