"""Video ground truth from still COCO images, and the metrics of tracked poses.

**Synthetic sequences** (:func:`synthesize_sequence`). A virtual camera moves over one COCO
image along a smooth random path: pan, zoom (1x-``max_zoom`` of the frame-filling view),
a little rotation, and fast segments. Every frame is the image warped by a known similarity
transform, so every frame's keypoints and identities are known exactly; people leave the
frame and come back as the camera pans and zooms. Degradations: JPEG recompression (every
frame), motion blur along the camera motion on fast segments, and brief occlusions by a
moving textured block. Occluded keypoints stay labelled, as COCO labels occluded keypoints.
Everything is drawn from a ``numpy.random.Generator``: a seed gives the same sequences.

**Metrics** (:func:`tracking_metrics`, :func:`keypoint_jitter`). Predictions and ground truth
are compared by OKS computed as ``pycocotools`` does (ground-truth visibility and area).
HOTA with DetA / AssA, IDF1, MOTA and ID switches come from ``trackeval``, with OKS as the
similarity (HOTA averages over OKS thresholds 0.05-0.95; CLEAR and identity metrics match at
OKS >= 0.5). Jitter is the mean norm of the difference between the predicted and the true
frame-to-frame acceleration ``p[t+1] - 2 p[t] + p[t-1]`` of each keypoint, in frame px per
frame^2, over people matched (OKS >= 0.5, optimal assignment per frame) in three consecutive
frames; it needs no track ids, so untracked predictions get one too.

Frames: (H, W, 3) BGR uint8; keypoints (K, 3) x, y in frame px, K from the annotations (any
registered layout: COCO-17, CrowdPose-14, MPII-16; OKS sigmas from
:func:`~simplepose.skeleton.similarity_sigmas`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..decode.nms import oks_iou
from ..geometry import apply_affine
from ..skeleton import similarity_sigmas_for

__all__ = [
    "SyntheticSequence",
    "ground_truth_people",
    "keypoint_jitter",
    "oks_matrix",
    "oracle_identities",
    "select_images",
    "synthesize_sequence",
    "tracking_metrics",
]

LOG = logging.getLogger(__name__)


@dataclass
class SyntheticSequence:
    """One synthetic video.

    Attributes:
        image_id: the COCO image it was made from.
        frames: (H, W, 3) BGR uint8 frames.
        annotations: per frame, COCO person annotations in frame px (``keypoints`` 51
            floats, ``num_keypoints``, ``area``, ``bbox`` xywh, ``iscrowd``) plus
            ``track_id``: the source annotation's id (the identity).
        fast: per frame, True on fast segments.
        occluded: per frame, True while an occluder is in view.
        matrices: per frame, the (2, 3) affine from source-image px to frame px.
    """

    image_id: int
    frames: list[np.ndarray] = field(repr=False)
    annotations: list[list[dict]] = field(repr=False)
    fast: list[bool] = field(repr=False)
    occluded: list[bool] = field(repr=False)
    matrices: list[np.ndarray] = field(repr=False)

    def reentries(self) -> int:
        """Times a person came back into view after leaving it (visible keypoints > 0)."""
        seen: dict[int, list[bool]] = {}
        for t, anns in enumerate(self.annotations):
            present = {a["track_id"] for a in anns if a["num_keypoints"] > 0 and not a["iscrowd"]}
            for tid in present | set(seen):
                seen.setdefault(tid, [False] * t).append(tid in present)
        count = 0
        for flags in seen.values():
            s = "".join("1" if f else "0" for f in flags).strip("0")
            count += len([g for g in s.split("1") if g])
        return count


def select_images(ann, min_people: int = 3, min_keypoints: int = 5) -> list[int]:
    """Image ids with at least ``min_people`` non-crowd people of ``min_keypoints`` labelled
    keypoints, most people first (ties by id)."""
    counts = []
    for image_id in ann.image_ids:
        n = sum(
            1
            for a in ann.annotations_by_image[image_id]
            if not a.get("iscrowd", 0) and a.get("num_keypoints", 0) >= min_keypoints
        )
        if n >= min_people:
            counts.append((-n, image_id))
    return [i for _, i in sorted(counts)]


# ------------------------------------------------------------------------- camera path
def _catmull_rom(points: np.ndarray, times: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Interpolate (N, D) control points at ``times`` (increasing) for query times ``t``."""
    p = np.concatenate([points[:1], points, points[-1:]])
    tt = np.concatenate([[times[0] - 1], times, [times[-1] + 1]])
    out = np.zeros((len(t), points.shape[1]))
    for j, x in enumerate(t):
        i = int(np.clip(np.searchsorted(times, x, side="right") - 1, 0, len(times) - 2)) + 1
        u = (x - tt[i]) / (tt[i + 1] - tt[i])
        m1 = (p[i + 1] - p[i - 1]) / (tt[i + 1] - tt[i - 1]) * (tt[i + 1] - tt[i])
        m2 = (p[i + 2] - p[i]) / (tt[i + 2] - tt[i]) * (tt[i + 1] - tt[i])
        h00, h10, h01, h11 = (
            2 * u**3 - 3 * u**2 + 1,
            u**3 - 2 * u**2 + u,
            -2 * u**3 + 3 * u**2,
            u**3 - u**2,
        )
        out[j] = h00 * p[i] + h10 * m1 + h01 * p[i + 1] + h11 * m2
    return out


def _camera_path(
    rng,
    num_frames: int,
    src_size,
    out_size,
    max_zoom: float,
    max_rotation_deg: float,
    fast_prob: float,
):
    """Per-frame (scale, angle rad, cx, cy) and fast flags."""
    (sw, sh), (w, h) = src_size, out_size
    base = max(w / sw, h / sh)
    times, fast_ctrl = [0.0], []
    while times[-1] < num_frames - 1:
        fast = rng.random() < fast_prob
        times.append(times[-1] + (rng.uniform(3, 6) if fast else rng.uniform(9, 16)))
        fast_ctrl.append(fast)
    ctrl = []
    for _ in times:
        zoom = math.exp(rng.uniform(0.0, math.log(max_zoom)))
        angle = math.radians(rng.uniform(-max_rotation_deg, max_rotation_deg))
        ctrl.append([math.log(zoom), angle, rng.random(), rng.random()])
    t = np.arange(num_frames, dtype=np.float64)
    path = _catmull_rom(np.array(ctrl), np.array(times), t)
    out, fast_flags = [], []
    for j in range(num_frames):
        log_zoom, angle, u, v = path[j]
        scale = base * math.exp(max(log_zoom, 0.0))
        c, s = abs(math.cos(angle)), abs(math.sin(angle))
        ex, ey = (w / 2 * c + h / 2 * s) / scale, (w / 2 * s + h / 2 * c) / scale
        cx = ex + float(np.clip(u, 0, 1)) * max(sw - 2 * ex, 0.0) if sw > 2 * ex else sw / 2
        cy = ey + float(np.clip(v, 0, 1)) * max(sh - 2 * ey, 0.0) if sh > 2 * ey else sh / 2
        out.append((scale, angle, cx, cy))
        k = int(np.clip(np.searchsorted(times, j, side="right") - 1, 0, len(fast_ctrl) - 1))
        fast_flags.append(bool(fast_ctrl[k]))
    return out, fast_flags


def _matrix(scale, angle, cx, cy, out_size) -> np.ndarray:
    w, h = out_size
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    return np.array([[c, -s, w / 2 - c * cx + s * cy], [s, c, h / 2 - s * cx - c * cy]])


def _motion_blur(frame: np.ndarray, dx: float, dy: float) -> np.ndarray:
    length = round(math.hypot(dx, dy))
    if length < 2:
        return frame
    size = length | 1
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    ux, uy = dx / math.hypot(dx, dy), dy / math.hypot(dx, dy)
    cv2.line(
        kernel,
        (round(c - ux * c), round(c - uy * c)),
        (round(c + ux * c), round(c + uy * c)),
        1.0,
        1,
    )
    kernel /= kernel.sum()
    return cv2.filter2D(frame, -1, kernel)


def _transform_annotation(a: dict, m: np.ndarray, out_size) -> dict | None:
    w, h = out_size
    k = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3).copy()
    labelled = k[:, 2] > 0
    xy = apply_affine(k[:, :2], m)
    inside = labelled & (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    k[:, :2] = np.where(inside[:, None], xy, 0.0)
    k[~inside, 2] = 0
    x, y, bw, bh = a.get("bbox", [0, 0, 0, 0])
    corners = apply_affine([[x, y], [x + bw, y], [x, y + bh], [x + bw, y + bh]], m)
    x1, y1 = np.clip(corners.min(0), 0, [w, h])
    x2, y2 = np.clip(corners.max(0), 0, [w, h])
    if x2 - x1 < 1 or y2 - y1 < 1:
        return None
    scale2 = abs(np.linalg.det(m[:, :2]))
    return {
        "keypoints": [round(float(v), 3) for v in k.reshape(-1)],
        "num_keypoints": int(inside.sum()),
        "area": float(a.get("area", bw * bh)) * scale2,
        "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
        "iscrowd": int(a.get("iscrowd", 0)),
        "track_id": int(a["id"]),
        "category_id": a.get("category_id", 1),
    }


def synthesize_sequence(
    image: np.ndarray,
    annotations: list[dict],
    rng: np.random.Generator,
    image_id: int = 0,
    num_frames: int = 40,
    size=(480, 360),
    max_zoom: float = 1.8,
    max_rotation_deg: float = 6.0,
    fast_prob: float = 0.3,
    jpeg_quality=(40, 80),
    occlusions: int = 1,
    blur_threshold: float = 6.0,
) -> SyntheticSequence:
    """A synthetic video over one image (see the module docstring).

    Args:
        image: the source BGR uint8 image.
        annotations: its COCO person annotations (source px; each with an ``id``).
        rng: the random generator (the only source of randomness).
        image_id: recorded in the result.
        num_frames: frames to make.
        size: (width, height) of the frames in px.
        max_zoom: largest zoom relative to the view that just fills the frame.
        max_rotation_deg: largest camera roll in degrees.
        fast_prob: probability that a path segment is fast (3-6 frames instead of 9-16).
        jpeg_quality: (low, high) JPEG quality range; one value per sequence.
        occlusions: occluder events per sequence (each 4-8 frames long).
        blur_threshold: camera speed in frame px per frame above which motion blur is added.
    """
    sh, sw = image.shape[:2]
    path, fast = _camera_path(
        rng, num_frames, (sw, sh), size, max_zoom, max_rotation_deg, fast_prob
    )
    quality = int(rng.integers(jpeg_quality[0], jpeg_quality[1] + 1))
    w, h = size
    events = []
    for _ in range(occlusions):
        length = int(rng.integers(4, 9))
        start = int(rng.integers(0, max(1, num_frames - length)))
        bw, bh = int(rng.uniform(0.2, 0.35) * w), int(rng.uniform(0.4, 0.8) * h)
        x0, y0 = rng.uniform(-bw / 2, w - bw / 2), rng.uniform(0, h - bh)
        vx = rng.uniform(-12, 12)
        tex = rng.integers(40, 200, size=(bh, bw, 3)).astype(np.uint8)
        tex = cv2.GaussianBlur(tex, (0, 0), 4)
        events.append((start, length, x0, y0, vx, tex))
    frames, anns, mats, occluded = [], [], [], []
    prev_m = None
    for j, (scale, angle, cx, cy) in enumerate(path):
        m = _matrix(scale, angle, cx, cy, size)
        frame = cv2.warpAffine(
            image, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        if prev_m is not None and fast[j]:
            centre = np.array([w / 2, h / 2])
            # where the previous frame's centre moved to: the camera's motion in frame px
            src = np.linalg.solve(prev_m[:, :2], centre - prev_m[:, 2])
            moved = m[:, :2] @ src + m[:, 2] - centre
            if np.hypot(*moved) > blur_threshold:
                frame = _motion_blur(frame, moved[0] * 0.5, moved[1] * 0.5)
        hidden = False
        for start, length, x0, y0, vx, tex in events:
            if start <= j < start + length:
                x = round(x0 + vx * (j - start))
                y = round(y0)
                xa, xb = max(x, 0), min(x + tex.shape[1], w)
                if xb > xa:
                    frame[y : y + tex.shape[0], xa:xb] = tex[:, xa - x : xb - x]
                    hidden = True
        _, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        frame = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        frame_anns = [
            t for t in (_transform_annotation(a, m, size) for a in annotations) if t is not None
        ]
        frames.append(frame)
        anns.append(frame_anns)
        mats.append(m)
        occluded.append(hidden)
        prev_m = m
    return SyntheticSequence(image_id, frames, anns, fast, occluded, mats)


# ------------------------------------------------------------------------- metrics
def oks_matrix(gt: list[dict], preds) -> np.ndarray:
    """(G, P) OKS as pycocotools computes it: ground-truth visibility and area; a missing
    predicted keypoint counts at its (0, 0) position. K comes from the annotations."""
    preds = list(preds)
    out = np.zeros((len(gt), len(preds)))
    if not gt or not preds:
        return out
    k = len(gt[0]["keypoints"]) // 3
    pk = np.stack([np.asarray(p.keypoints, dtype=np.float64).reshape(k, 3) for p in preds])
    pk[:, :, 2] = 1.0
    sigmas = similarity_sigmas_for(k)
    for i, g in enumerate(gt):
        gk = np.asarray(g["keypoints"], dtype=np.float64).reshape(k, 3)
        if g["num_keypoints"] == 0:
            continue
        area = float(g["area"])
        out[i] = oks_iou(gk, pk, area, np.full(len(preds), area), sigmas=sigmas, vis_thresh=0.0)
    return out


def ground_truth_people(annotations: list[dict], rng: np.random.Generator) -> list:
    """A frame's true poses as detections: visible keypoints scored 1, no identities, in a
    random order (so that the list order says nothing about who is who).

    Tracking these measures association alone: the detections are perfect, so every lost or
    switched identity is the tracker's.
    """
    from ..structures import Person

    people = []
    for a in _tracking_gt(annotations):
        k = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3).copy()
        k[:, 2] = (k[:, 2] > 0).astype(np.float64)
        people.append(Person.from_keypoints(k, 1.0))
    return [people[i] for i in rng.permutation(len(people))]


def _tracking_gt(anns: list[dict]) -> list[dict]:
    return [a for a in anns if not a["iscrowd"] and a["num_keypoints"] > 0]


def tracking_metrics(
    sequences_gt: list[list[list[dict]]], sequences_pred: list[list[list]]
) -> dict:
    """HOTA, DetA, AssA, IDF1, MOTA and ID switches over sequences (trackeval, OKS similarity).

    Args:
        sequences_gt: per sequence, per frame, the annotations (with ``track_id``).
        sequences_pred: per sequence, per frame, predicted people with ``track_id``.

    Returns:
        ``{"hota", "deta", "assa", "assa50", "idf1", "mota", "id_switches"}``: HOTA, DetA and
        AssA averaged over the OKS thresholds 0.05-0.95 as HOTA defines them, ``assa50`` the
        AssA at OKS 0.5 alone.
    """
    from trackeval.metrics import CLEAR, HOTA, Identity

    quiet = {"PRINT_CONFIG": False}
    metrics = {"hota": HOTA(quiet), "clear": CLEAR(quiet), "identity": Identity(quiet)}
    per_seq = {k: {} for k in metrics}
    for s, (gt_frames, pred_frames) in enumerate(zip(sequences_gt, sequences_pred)):
        gt_map: dict[int, int] = {}
        tr_map: dict[int, int] = {}
        data = {
            "num_timesteps": len(gt_frames),
            "gt_ids": [],
            "tracker_ids": [],
            "similarity_scores": [],
            "num_gt_dets": 0,
            "num_tracker_dets": 0,
        }
        for anns, preds in zip(gt_frames, pred_frames):
            gt = _tracking_gt(anns)
            data["gt_ids"].append(
                np.array([gt_map.setdefault(a["track_id"], len(gt_map)) for a in gt], dtype=int)
            )
            data["tracker_ids"].append(
                np.array(
                    [tr_map.setdefault(int(p.track_id), len(tr_map)) for p in preds], dtype=int
                )
            )
            data["similarity_scores"].append(oks_matrix(gt, preds))
            data["num_gt_dets"] += len(gt)
            data["num_tracker_dets"] += len(preds)
        data["num_gt_ids"], data["num_tracker_ids"] = len(gt_map), len(tr_map)
        for name, metric in metrics.items():
            per_seq[name][s] = metric.eval_sequence(data)
    combined = {name: metric.combine_sequences(per_seq[name]) for name, metric in metrics.items()}
    h = combined["hota"]
    at_50 = int(np.argmin(np.abs(np.asarray(metrics["hota"].array_labels) - 0.5)))
    return {
        "hota": float(np.mean(h["HOTA"])),
        "deta": float(np.mean(h["DetA"])),
        "assa": float(np.mean(h["AssA"])),
        "assa50": float(h["AssA"][at_50]),
        "idf1": float(combined["identity"]["IDF1"]),
        "mota": float(combined["clear"]["MOTA"]),
        "id_switches": int(combined["clear"]["IDSW"]),
    }


def oracle_identities(sequences_gt, sequences_pred, min_oks: float = 0.5) -> list[list[list]]:
    """Predictions labelled with the true identity of the ground truth they match (OKS >=
    ``min_oks``, optimal assignment per frame); the others get ids of their own.

    Scoring these with :func:`tracking_metrics` gives what a perfect association of the same
    detections would score: the ceiling a tracker is compared with.
    """
    from ..tracking.tracker import TrackedPerson

    out, spare = [], -1
    for gt_frames, pred_frames in zip(sequences_gt, sequences_pred):
        seq = []
        for anns, preds in zip(gt_frames, pred_frames):
            gt = _tracking_gt(anns)
            owner = {p: g for g, p in _match(gt, preds, min_oks).items()}
            frame = []
            for j, p in enumerate(preds):
                if j in owner:
                    track_id = gt[owner[j]]["track_id"]
                else:
                    track_id, spare = spare, spare - 1
                frame.append(
                    TrackedPerson(
                        keypoints=p.keypoints, score=p.score, box=p.box, track_id=track_id
                    )
                )
            seq.append(frame)
        out.append(seq)
    return out


def _match(gt: list[dict], preds, min_oks: float) -> dict[int, int]:
    from scipy.optimize import linear_sum_assignment

    sim = oks_matrix(gt, preds)
    if sim.size == 0:
        return {}
    rows, cols = linear_sum_assignment(-sim)
    return {int(r): int(c) for r, c in zip(rows, cols) if sim[r, c] >= min_oks}


def keypoint_jitter(sequences_gt, sequences_pred, min_oks: float = 0.5) -> dict:
    """Mean acceleration error (frame px / frame^2) of predicted keypoints against ground truth.

    Returns:
        ``{"jitter": mean error, "triplets": keypoint triplets measured}``.
    """
    errors = []
    for gt_frames, pred_frames in zip(sequences_gt, sequences_pred):
        tracks: list[
            dict[int, tuple[np.ndarray, np.ndarray]]
        ] = []  # frame -> {gt id: (gt kpts, pred kpts)}
        for anns, preds in zip(gt_frames, pred_frames):
            gt = _tracking_gt(anns)
            m = _match(gt, preds, min_oks)
            tracks.append(
                {
                    gt[g]["track_id"]: (
                        np.asarray(gt[g]["keypoints"], float).reshape(-1, 3),
                        np.asarray(preds[p].keypoints, float).reshape(-1, 3),
                    )
                    for g, p in m.items()
                }
            )
        for t in range(1, len(tracks) - 1):
            for tid in set(tracks[t - 1]) & set(tracks[t]) & set(tracks[t + 1]):
                (g0, p0), (g1, p1), (g2, p2) = (
                    tracks[t - 1][tid],
                    tracks[t][tid],
                    tracks[t + 1][tid],
                )
                ok = (
                    (g0[:, 2] > 0)
                    & (g1[:, 2] > 0)
                    & (g2[:, 2] > 0)
                    & (p0[:, 2] > 0)
                    & (p1[:, 2] > 0)
                    & (p2[:, 2] > 0)
                )
                if ok.any():
                    acc_p = p2[ok, :2] - 2 * p1[ok, :2] + p0[ok, :2]
                    acc_g = g2[ok, :2] - 2 * g1[ok, :2] + g0[ok, :2]
                    errors.extend(np.linalg.norm(acc_p - acc_g, axis=1).tolist())
    return {"jitter": float(np.mean(errors)) if errors else float("nan"), "triplets": len(errors)}
