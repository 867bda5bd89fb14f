"""Pose non-maximum suppression (SPEC 1.3), vectorised with numpy.

None of the reference codebases (TFCPN, PTCPN, MSPN, RSN) runs pose NMS; it is an optional
post-processing step of top-down inference (``TopDownPipeline(use_oks_nms=True)``).

* :func:`oks_iou` / :func:`oks_nms`: HRNet-style OKS-NMS. The pairwise OKS uses the mean
  of the two areas as the scale and compares only keypoints whose score exceeds the
  visibility threshold in *both* poses; greedy suppression keeps a pose when its OKS with
  every already-kept pose is <= ``thresh`` (0.9).

Shapes: N poses of K = 17 keypoints; keypoints are ``(x, y, score_or_v)`` in any one pixel
frame (usually original-image px); areas are in the same frame's px^2.
"""

from __future__ import annotations

import logging

import numpy as np

from simplepose.errors import InputError
from simplepose.skeleton import COCO_SIGMAS

__all__ = ["oks_iou", "oks_nms"]

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
