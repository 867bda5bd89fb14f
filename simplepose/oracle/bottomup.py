"""Bottom-up oracle (SPEC 3.8, 11): render each image's ground truth into the 50 SimplePose
channels at the inference resolution (height scaled to ``box_size``, stride-4 maps,
right/bottom padding to 64), then decode flip-free at a single scale through the inference
pipeline's own ``plan`` and ``decode`` steps
(:class:`~simplepose.inference.bottomup.BottomUpPipeline`, no model), and score with COCOeval."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from ..codecs.bottomup import SimplePoseCodec, coco_to_internal
from ..data.coco import CocoKeypoints
from ..data.masks import person_masks
from ..decode.params import GroupingParams
from ..geometry import BottomUpGeometry
from ..structures import Person

__all__ = [
    "OracleSample",
    "oracle_people",
    "oracle_pipeline",
    "render_oracle_sample",
    "run_bottomup_oracle",
]

LOG = logging.getLogger(__name__)

_CODEC = SimplePoseCodec()
_PARAMS = GroupingParams()


@dataclass
class OracleSample:
    """Rendered maps of one image: ``maps`` (50, H, W) on ``geometry``'s heatmap grid."""

    image_id: int
    geometry: BottomUpGeometry
    maps: np.ndarray


def person_mask_on_grid(mask_all: np.ndarray, geometry: BottomUpGeometry) -> np.ndarray:
    """Original-px mask -> heatmap grid (input-frame warp, area resize, 3x3 erosion), (H, W)."""
    warped = cv2.warpAffine(
        mask_all.astype(np.float32), geometry.original_to_input_matrix(),
        (geometry.pad_w, geometry.pad_h),
        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )  # fmt: skip
    hm_h, hm_w = geometry.heatmap_hw
    small = cv2.resize(warped, (hm_w, hm_h), interpolation=cv2.INTER_AREA)
    return cv2.erode(small, np.ones((3, 3), np.uint8))


def render_oracle_sample(
    ann: CocoKeypoints, image_id: int, codec: SimplePoseCodec = _CODEC, box_size: int = 512,
    geometry: BottomUpGeometry | None = None,
) -> OracleSample:
    """Render the ground truth of ``image_id`` as the network's training target, on
    ``geometry`` (default: the IMHN inference geometry of the image at ``box_size``)."""
    height, width = ann.image_size(image_id)
    if geometry is None:
        geometry = BottomUpGeometry.for_image(width, height, box_size=box_size, stride=codec.stride)
    anns = ann.annotations_by_image[image_id]
    people = [a for a in anns if not a.get("iscrowd", 0) and a.get("num_keypoints", 0) > 0]
    joints = coco_to_internal(
        np.asarray([a["keypoints"] for a in people], dtype=np.float64), codec.layout
    )
    joints[..., :2] = geometry.original_to_input(joints[..., :2])
    mask_all, _ = person_masks(anns, height, width)
    maps = codec.encode(joints, geometry.heatmap_hw, person_mask_on_grid(mask_all, geometry))
    return OracleSample(image_id, geometry, maps)


def oracle_pipeline(
    codec: SimplePoseCodec | None = None,
    params: GroupingParams = _PARAMS,
    box_size: int = 512,
    backend: str = "cpp",
):
    """The IMHN inference pipeline without a model (plan + decode only), with ``codec``
    (default: the IMHN spec's), ``params``, ``box_size`` and grouping ``backend``."""
    from ..inference.bottomup import BottomUpPipeline
    from ..spec import get_spec

    spec = get_spec("imhn")
    if codec is not None:
        spec = spec.with_codec(codec)
    return BottomUpPipeline(None, spec, box_size=box_size, params=params, backend=backend)


def oracle_people(ann: CocoKeypoints, image_id: int, pipeline) -> list[Person]:
    """Oracle people of one image: the pipeline's plan for the image size, the ground truth
    rendered on its grid as the network output, the pipeline's decode."""
    height, width = ann.image_size(image_id)
    plan = pipeline.plan(width, height)
    sample = render_oracle_sample(ann, image_id, pipeline.codec, geometry=plan.base)
    return pipeline.decode(plan, [sample.maps[None]])


def run_bottomup_oracle(
    ann: CocoKeypoints,
    codec: SimplePoseCodec | None = None,
    params: GroupingParams = _PARAMS,
    box_size: int = 512,
    backend: str = "cpp",
    progress: bool = False,
) -> list[dict]:
    """COCO-style keypoint results of the oracle over every image of ``ann``; ``codec``
    defaults to SimplePose's on the limb graph of ``ann.layout``
    (:func:`~simplepose.skeleton.bottomup_layout`)."""
    from tqdm import tqdm

    from ..skeleton import bottomup_layout

    if codec is None:
        codec = SimplePoseCodec(layout=bottomup_layout(ann.layout))
    pipeline = oracle_pipeline(codec, params, box_size, backend)
    results = []
    for image_id in tqdm(ann.image_ids, desc="oracle", disable=not progress, unit="img"):
        people = oracle_people(ann, image_id, pipeline)
        results.extend(p.to_coco(image_id) for p in people)
    LOG.info("oracle: %d people on %d images", len(results), ann.num_images)
    return results
