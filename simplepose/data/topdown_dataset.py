"""Top-down (CPN / MSPN / RSN) training samples: one person crop per annotation (SPEC 4.1, 5.1).

Instances: every non-crowd person annotation with ``num_keypoints > 0`` and a box of positive
size, except image 366379 (skipped by TF-CPN and MSPN, SPEC 4.1).

Per sample (MSPN ``JointsDataset``, SPEC 5.1), with ``augment=True``:

1. box -> centre / scale (original px), scale ``x padding`` (1.05) then ``x (1 + U * 0.6)``
   in width and ``x (1 + U * 0.8)`` in height, aspect fixed to ``W_in / H_in``;
2. half body with probability 0.3 when more than 3 keypoints are labelled
   (:func:`~simplepose.data.topdown_transforms.half_body_center_scale`);
3. scale / rotation / flip from :func:`~simplepose.data.topdown_transforms.sample_topdown_aug`;
4. one affine (original px -> input px, flip folded in), bilinear warp with a 0 border;
5. keypoints mapped by the same matrix, L/R swapped on a flip; those leaving the crop get
   v = 0 (:func:`~simplepose.data.topdown_transforms.transform_keypoints`);
6. targets ``codec.encode`` (peak 255 at the floor cell, heatmap px).

With ``augment=False`` only step 1 without the random extension, then steps 4-6 (pass
``padding=MSPN_TEST_PADDING`` to crop like the MSPN test).

Colour (MSPN ``COLOR_RGB = False``): the image stays **BGR**, is scaled to [0, 1] and
normalised with ``pixel_mean`` / ``pixel_std`` given *in BGR order* (the ImageNet statistics
reversed: mean (0.406, 0.456, 0.485), std (0.225, 0.224, 0.229)). ``to_rgb=True`` converts
to RGB first; then pass the statistics in RGB order.

Determinism and bad images: as :mod:`simplepose.data.bottomup_dataset` (per-sample
``np.random.default_rng([seed, epoch, index])``, :meth:`TopDownDataset.set_epoch`,
``(epoch, index)`` keys; an unreadable image is logged, counted and replaced by the next
readable sample).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from simplepose.codecs.topdown import TopDownHeatmapCodec
from simplepose.data.common import BadImageLog, EpochSeeded, LRUCache, as_coco
from simplepose.data.topdown_transforms import (
    MSPN_TRAIN_PADDING,
    TopDownAugParams,
    box_to_center_scale,
    fix_aspect_ratio,
    half_body_center_scale,
    sample_topdown_aug,
    topdown_affine,
    transform_keypoints,
)
from simplepose.errors import InputError

__all__ = [
    "TopDownDataset",
    "TopDownSampleParams",
    "SKIPPED_IMAGE_IDS",
    "IMAGENET_MEAN_BGR",
    "IMAGENET_STD_BGR",
]

LOG = logging.getLogger(__name__)

SKIPPED_IMAGE_IDS = frozenset({366379})  # SPEC 4.1 / MSPN coco.py
IMAGENET_MEAN_BGR = (0.406, 0.456, 0.485)  # SPEC 5.1, [0, 1] units, BGR order
IMAGENET_STD_BGR = (0.225, 0.224, 0.229)


class TopDownSampleParams:
    """Everything random about one top-down sample (what :meth:`TopDownDataset.sample_params`
    draws), so that a test can rebuild a sample with parts changed.

    Attributes:
        center: (2,) crop centre, original px.
        scale: (2,) (s_w, s_h) crop size before ``aug.scale_mult``, original px.
        aug: scale multiplier, rotation (degrees) and flip.
        half_body: whether the half-body box replaced the instance box.
    """

    __slots__ = ("center", "scale", "aug", "half_body")

    def __init__(self, center, scale, aug: TopDownAugParams, half_body: bool = False):
        self.center = np.asarray(center, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.aug = aug
        self.half_body = bool(half_body)

    def __repr__(self) -> str:
        return (f"TopDownSampleParams(center={self.center.tolist()}, scale={self.scale.tolist()}, "
                f"aug={self.aug}, half_body={self.half_body})")  # fmt: skip


class TopDownDataset(EpochSeeded):
    """Top-down instance crops with multi-kernel heatmap targets.

    Args:
        ann_file_or_coco: COCO person-keypoint file or a loaded ``CocoKeypoints``.
        images_dir: folder of the images.
        codec: the model's :class:`TopDownHeatmapCodec` (input size, heatmap size, kernels).
        augment: MSPN training augmentation (module docstring).
        seed: base seed; sample randomness is ``default_rng([seed, epoch, index])``.
        pixel_mean, pixel_std: per-channel statistics in [0, 1] units, in the channel order
            of the returned image (BGR unless ``to_rgb``).
        image_ids: restrict to these images.
        padding: box extension ``(f_w, f_h)`` before the aspect fix.
        to_rgb: return RGB instead of BGR.
        half_body_prob: probability of the half-body crop (augment only).
        upper_body_prob: probability of choosing the upper body (0.5; the reference's
            ``randn() < 0.5`` is 0.6915).
        x_ext, y_ext: random box extension factors (augment only).
        image_cache_size: decoded images kept per process (instances of one image are
            consecutive).

    Attributes:
        instances: list of ``(image_id, annotation)``, one per sample.
        num_bad_images: distinct unreadable images met so far (this process).
    """

    def __init__(
        self,
        ann_file_or_coco,
        images_dir,
        codec: TopDownHeatmapCodec,
        augment: bool = True,
        seed: int = 0,
        pixel_mean=IMAGENET_MEAN_BGR,
        pixel_std=IMAGENET_STD_BGR,
        image_ids=None,
        padding=MSPN_TRAIN_PADDING,
        to_rgb: bool = False,
        half_body_prob: float = 0.3,
        upper_body_prob: float = 0.5,
        x_ext: float = 0.6,
        y_ext: float = 0.8,
        image_cache_size: int = 4,
    ):
        self.coco = as_coco(ann_file_or_coco)
        self.images_dir = Path(images_dir)
        self.codec = codec
        layout = self.coco.layout
        if codec.flip_index != layout.flip_index:
            raise InputError(
                f"{self.coco.source} has the {layout.name} layout ({layout.num_keypoints} "
                f"keypoints) but the codec {codec.name} flips {codec.num_keypoints} keypoints as "
                f"{codec.flip_index}: build the codec with flip_index=layout.flip_index"
            )
        self.augment = bool(augment)
        self.seed = int(seed)
        self.epoch = 0
        self.padding = padding
        self.to_rgb = bool(to_rgb)
        self.half_body_prob = float(half_body_prob)
        self.upper_body_prob = float(upper_body_prob)
        self.x_ext, self.y_ext = float(x_ext), float(y_ext)
        mean = np.asarray(pixel_mean, dtype=np.float32).reshape(3)
        std = np.asarray(pixel_std, dtype=np.float32).reshape(3)
        if np.any(std <= 0):
            raise InputError(f"pixel_std must be positive, got {std.tolist()}")
        # image = (x / 255 - mean) / std = x * a + b, per channel.
        self._norm_a = (1.0 / (255.0 * std)).astype(np.float32)[:, None, None]
        self._norm_b = (-mean / std).astype(np.float32)[:, None, None]
        ids = self.coco.image_ids if image_ids is None else [int(i) for i in image_ids]
        missing = [i for i in ids if i not in self.coco.images]
        if missing:
            raise InputError(f"image ids {missing[:5]} are not in {self.coco.source}")
        self.instances: list[tuple[int, dict]] = []
        for image_id in ids:
            if image_id in SKIPPED_IMAGE_IDS:
                continue
            for ann in self.coco.annotations_by_image[image_id]:
                w, h = ann["bbox"][2], ann["bbox"][3]
                if ann.get("iscrowd", 0) or ann.get("num_keypoints", 0) <= 0 or w <= 0 or h <= 0:
                    continue
                self.instances.append((image_id, ann))
        self._image_cache = LRUCache(image_cache_size)
        self._bad = BadImageLog()
        LOG.info("top-down dataset: %d instances from %d images", len(self.instances), len(ids))

    # ------------------------------------------------------------------ bookkeeping
    def __len__(self) -> int:
        return len(self.instances)

    def keypoints(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(keypoints (K, 2) original px, visible (K,) COCO v)`` of instance ``index``."""
        k = self.coco.layout.num_keypoints
        kps = np.asarray(self.instances[index][1]["keypoints"], dtype=np.float64).reshape(k, 3)
        return kps[:, :2].copy(), kps[:, 2].copy()

    def sample_params(self, index: int, epoch: int | None = None) -> TopDownSampleParams:
        """The crop of instance ``index`` in ``epoch`` (deterministic; no randomness when
        ``augment=False``)."""
        _, ann = self.instances[index]
        aspect = self.codec.input_hw[1] / self.codec.input_hw[0]
        box = np.asarray(ann["bbox"], dtype=np.float64)
        if not self.augment:
            center, scale = box_to_center_scale(box, aspect, self.padding)
            return TopDownSampleParams(center, scale, TopDownAugParams(), False)
        rng = self.rng(index, epoch)
        center = box[:2] + box[2:] / 2.0
        pad = np.broadcast_to(np.asarray(self.padding, dtype=np.float64), (2,))
        ext = np.array([1.0 + rng.random() * self.x_ext, 1.0 + rng.random() * self.y_ext])
        scale = fix_aspect_ratio(box[2:] * pad * ext, aspect)
        half = False
        kp, vis = self.keypoints(index)
        if (vis > 0).sum() > 3 and rng.random() < self.half_body_prob:
            hb = half_body_center_scale(kp, vis, aspect, rng, upper_prob=self.upper_body_prob,
                                        upper_ids=self.coco.layout.upper_body,
                                        x_ext=self.x_ext, y_ext=self.y_ext)  # fmt: skip
            if hb is not None:
                center, scale = hb
                half = True
        return TopDownSampleParams(center, scale, sample_topdown_aug(rng), half)

    # ------------------------------------------------------------------ loading
    def _image(self, image_id: int) -> np.ndarray:
        img = self._image_cache.get(image_id)
        if img is None:
            img = self.coco.read_image(image_id, self.images_dir)
            self._image_cache.put(image_id, img)
        return img

    def __getitem__(self, index):
        """Instance ``index`` of the current epoch (or ``(epoch, index)``).

        Returns:
            dict with ``image`` (3, H_in, W_in) float32 normalised (BGR unless ``to_rgb``),
            input px; ``targets`` (T, K, H_out, W_out) float32, peak 255, heatmap px;
            ``target_weight`` (K,) float32 COCO visibility (0 unlabelled / outside the crop,
            1 occluded, 2 visible); ``image_id`` int; ``ann_id`` int; ``matrix`` (2, 3)
            float64 original px -> input px.
        """
        i, epoch, img = self._readable(index, self.instances, "instances")
        return self._render(i, self.sample_params(i, epoch), img)

    def get(self, index: int, params: TopDownSampleParams) -> dict:
        """Instance ``index`` cropped with explicit ``params`` (no bad-image fallback)."""
        return self._render(index, params, self._image(self.instances[index][0]))

    def _render(self, index: int, params: TopDownSampleParams, img: np.ndarray) -> dict:
        import cv2

        image_id, ann = self.instances[index]
        w_in, h_in = self.codec.input_size
        matrix = topdown_affine(params.center, params.scale, params.aug, (w_in, h_in),
                                img.shape[1])  # fmt: skip
        crop = cv2.warpAffine(img, matrix, (w_in, h_in), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # fmt: skip
        if self.to_rgb:
            crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
        image = crop.transpose(2, 0, 1).astype(np.float32)
        image *= self._norm_a
        image += self._norm_b
        kp, vis = self.keypoints(index)
        flip_index = self.codec.flip_index if params.aug.flip else None
        kp_in, vis_in = transform_keypoints(kp, vis, matrix, (w_in, h_in), flip_index)
        targets, weights = self.codec.encode(kp_in, vis_in)
        return {
            "image": image,
            "targets": targets,
            "target_weight": weights,
            "image_id": int(image_id),
            "ann_id": int(ann["id"]),
            "matrix": matrix,
        }
