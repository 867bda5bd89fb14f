"""Top-down oracle (SPEC 11): for every person box, render the ground truth of that person into
the codec's final target map (what the network's final output is trained to be), then decode it
through the steps of :class:`~simplepose.inference.topdown.TopDownPipeline` itself (a pipeline
without a model: its ``plan`` gives the crop geometry, its ``decode`` the people), and write
COCO results.

Frames: GT keypoints (original px) are mapped into the crop (input px) with the plan's
matrices and encoded by the codec on the heatmap px grid; the pipeline's ``decode`` maps them
back to original px with the inverse matrices.

Only the box's own person is rendered, as in training; its labelled keypoints that fall outside
the crop get no target (SPEC 5.1 step 6), exactly as a network would have been trained.

With ``flip=True`` the mirrored crop's map is rendered too: the person's keypoints mirrored as
the pipeline mirrors its crop (``x -> W_in - x``; ``W_in - 1 - x`` with ``reference_flip``) with
left/right swapped, which is what a network trained with flip augmentation outputs there.
"""

from __future__ import annotations

import logging

import numpy as np

from ..codecs.topdown import TopDownHeatmapCodec, layout_codec
from ..data.boxes import gt_boxes, gt_instances
from ..data.coco import CocoKeypoints
from ..errors import InputError
from ..geometry import apply_affine, box_iou, xywh_to_xyxy
from ..structures import Person

__all__ = [
    "match_boxes_to_gt", "oracle_people", "oracle_pipeline", "render_topdown_targets", "run_topdown_oracle",
]  # fmt: skip

LOG = logging.getLogger(__name__)


def render_topdown_targets(
    codec: TopDownHeatmapCodec,
    keypoints_input,
    flip: bool = False,
    reference_flip: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Final-output targets of N crops.

    Args:
        codec: the representation; the map of kernel ``codec.refine_target`` is rendered (CPN
            RefineNet gk7; MSPN/RSN last stage finest unit, k = 5).
        keypoints_input: (N, K, 3) keypoints ``(x, y, v)`` in input px; ``v > 0`` = labelled
            (N = 0 allowed). A person with all ``v = 0`` gets empty maps.
        flip: also render the mirrored crops' maps.
        reference_flip: mirror as ``x -> W_in - 1 - x`` (``cv2.flip`` of the crop) instead of
            ``x -> W_in - x``.

    Returns:
        ``(maps (N, K, H_out, W_out) float32, flip_maps (same) or None)``, peak 255.
    """
    kp = np.asarray(keypoints_input, dtype=np.float64)
    n, k = kp.shape[:2]
    ho, wo = codec.heatmap_hw
    maps = np.zeros((n, k, ho, wo), dtype=np.float32)
    fmaps = np.zeros_like(maps) if flip else None
    w_in = codec.input_size[0]
    mirror = w_in - 1.0 if reference_flip else float(w_in)
    fidx = list(codec.flip_index)
    for i in range(n):
        maps[i] = codec.encode(kp[i, :, :2], kp[i, :, 2])[0][codec.refine_target]
        if flip:
            kf = kp[i, fidx].copy()
            kf[:, 0] = mirror - kf[:, 0]
            fmaps[i] = codec.encode(kf[:, :2], kf[:, 2])[0][codec.refine_target]
    return maps, fmaps


def match_boxes_to_gt(boxes_xywh, gt_xywh, min_iou: float = 0.5) -> np.ndarray:
    """For each box, the index of the GT box with the highest IoU (>= ``min_iou``), else -1.

    Several boxes may match one GT person (as several detections of one person would each
    show that person centred in their crop).
    """
    b = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    g = np.asarray(gt_xywh, dtype=np.float64).reshape(-1, 4)
    if b.shape[0] == 0 or g.shape[0] == 0:
        return np.full(b.shape[0], -1, dtype=np.int64)
    iou = box_iou(xywh_to_xyxy(b), xywh_to_xyxy(g))
    best = iou.argmax(axis=1)
    return np.where(iou[np.arange(b.shape[0]), best] >= min_iou, best, -1).astype(np.int64)


def oracle_pipeline(codec: TopDownHeatmapCodec, flip: bool = False, padding=None,
                    reference_flip: bool = False):
    """The top-down pipeline without a model (plan + decode only)."""
    from ..inference.topdown import TopDownPipeline

    return TopDownPipeline(None, codec, flip=flip, padding=padding, reference_flip=reference_flip)


def oracle_people(
    ann: CocoKeypoints,
    image_id: int,
    codec: TopDownHeatmapCodec,
    boxes_xywh=None,
    box_scores=None,
    flip: bool = False,
    padding=None,
    reference_flip: bool = False,
    min_iou: float = 0.5,
    pipeline=None,
) -> list[Person]:
    """Oracle people of one image.

    Args:
        ann: ground truth.
        image_id: the image.
        codec: the representation and decoder.
        boxes_xywh: (N, 4) boxes in original px, or None for the GT boxes of
            :func:`~simplepose.data.boxes.gt_boxes` (each renders its own person). Other boxes
            render the GT person they overlap most (IoU >= ``min_iou``), or nothing.
        box_scores: (N,) scores (default 1).
        flip, padding, reference_flip: as :class:`~simplepose.inference.topdown.TopDownPipeline`.
        pipeline: a model-less pipeline of :func:`oracle_pipeline` (built from the arguments
            above when None).

    Returns:
        One :class:`Person` per box, in original px.
    """
    if pipeline is None:
        pipeline = oracle_pipeline(codec, flip, padding, reference_flip)
    gt_b, gt_k = gt_instances(ann, image_id)
    if boxes_xywh is None:
        boxes, people_kp = gt_b, gt_k
    else:
        boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
        match = match_boxes_to_gt(boxes, gt_b, min_iou)
        people_kp = np.zeros((boxes.shape[0], ann.layout.num_keypoints, 3))
        people_kp[match >= 0] = gt_k[match[match >= 0]]
    scores = np.ones(boxes.shape[0]) if box_scores is None else np.asarray(box_scores, np.float64)
    if boxes.shape[0] == 0:
        return []
    plan = pipeline.plan(boxes, scores, sanitize=False)
    kp_in = people_kp.copy()
    kp_in[:, :, :2] = apply_affine(people_kp[:, :, :2], plan.matrices)
    maps, fmaps = render_topdown_targets(pipeline.codec, kp_in, pipeline.flip, pipeline.reference_flip)
    return pipeline.decode(plan, np.concatenate([maps, fmaps]) if pipeline.flip else maps)


def run_topdown_oracle(
    ann: CocoKeypoints,
    codec: TopDownHeatmapCodec | str | None = None,
    boxes="gt",
    flip: bool = False,
    progress: bool = False,
    padding=None,
    reference_flip: bool = False,
    min_iou: float = 0.5,
) -> list[dict]:
    """COCO keypoint results of the top-down oracle over the images of ``boxes``.

    Args:
        ann: ground truth.
        codec: a codec or codec name (default: :func:`layout_codec` of ``ann.layout``).
        boxes: ``"gt"`` (every image of ``ann``, GT boxes, score 1) or a
            ``{image_id: (boxes_xywh, scores)}`` dict (e.g. from
            :func:`~simplepose.data.boxes.load_detections`).
        flip: flip test (SPEC 2.4).
        progress: tqdm bar.
        padding, reference_flip, min_iou: see :func:`oracle_people`.

    Returns:
        List of COCO result dicts (``Person.to_coco``).
    """
    from tqdm import tqdm

    if codec is None or isinstance(codec, str):
        codec = layout_codec(ann.layout, codec)
    use_gt = isinstance(boxes, str)
    if use_gt and boxes != "gt":
        raise InputError(f"boxes must be 'gt' or a dict of boxes, got {boxes!r}")
    box_dict = gt_boxes(ann) if use_gt else boxes
    pipeline = oracle_pipeline(codec, flip, padding, reference_flip)
    results = []
    for image_id in tqdm(sorted(box_dict), desc="topdown oracle", disable=not progress, unit="img"):
        b, s = box_dict[image_id]
        people = oracle_people(
            ann, image_id, codec, None if use_gt else b, None if use_gt else s,
            min_iou=min_iou, pipeline=pipeline,
        )  # fmt: skip
        results.extend(p.to_coco(image_id) for p in people)
    LOG.info("top-down oracle (%s, flip=%s): %d people on %d images",
             codec.name, flip, len(results), len(box_dict))  # fmt: skip
    return results
