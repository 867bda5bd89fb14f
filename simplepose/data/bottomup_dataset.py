"""SimplePose bottom-up training samples (SPEC 3.2 - 3.4): one sample per *main person*.

Each sample is the whole image warped by ONE 2 x 3 affine (original px -> input px) that
centres the main person, scales it to ``target_dist`` of the input height, rotates, shifts
and optionally mirrors it; the 50 SimplePose target channels are rendered from every
labelled person of the image, transformed by the same matrix.

Coordinate frames: **original px** (the image file), **input px** (the ``S x S`` network
input) and **heatmap px** (the ``S/stride`` output grid; cell ``i`` has its centre at input
px ``stride * i + (stride - 1) / 2``, see :mod:`simplepose.codecs.render`).

Determinism: the augmentation of sample ``index`` in epoch ``epoch`` is drawn from
``np.random.default_rng([seed, epoch, index])`` only, so a sample is identical whichever
worker, process or rank produces it (exact resume, DDP equivalence with a single process).
Call :meth:`BottomUpDataset.set_epoch` every epoch. With a ``DataLoader`` whose workers are
*persistent*, the workers keep the copy of the dataset made when they started and never see
``set_epoch``; either use ``persistent_workers=False`` (workers are re-created, with the new
epoch, every epoch) or index the dataset with ``(epoch, index)`` pairs (see
:meth:`BottomUpDataset.__getitem__`).

DataLoader workers need no ``worker_init_fn``: no global random state is used, so there
is nothing to seed per worker. Do not call ``cv2.setNumThreads`` *inside* a forked worker
either: after the parent has used OpenCV's thread pool, that call can deadlock on the
inherited pool (it hung 2 of 4 runs here). To stop every worker from running its own
OpenCV pool on top of the other workers, call ``cv2.setNumThreads(0)`` in the main process
before building the DataLoader (as mmengine does); outputs do not depend on it.

Differences from the reference (IBP ``coco_masks_hdf5.py`` / ``py_data_transformer.py``):

* masks are computed on the fly from the annotations (cached per image), no HDF5;
* the main-person spacing test uses the *candidate's own* ``max(w, h)`` (SPEC 3.2 [QUIRK]:
  the reference uses a stale loop variable);
* any number of crowd regions is supported (:func:`simplepose.data.masks.person_masks`).
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simplepose.codecs.bottomup import ABSENT, SimplePoseCodec, coco_to_internal
from simplepose.codecs.render_numba import HAVE_NUMBA, encode_simplepose
from simplepose.data.common import BadImageLog, EpochSeeded, LRUCache, as_coco
from simplepose.data.masks import person_masks
from simplepose.errors import InputError
from simplepose.geometry import BottomUpGeometry, apply_affine

__all__ = [
    "BottomUpAugParams",
    "BottomUpAugDraw",
    "BottomUpDataset",
    "select_main_persons",
    "bottomup_affine",
    "sample_bottomup_aug",
    "apply_tint",
    "LRUCache",
]

LOG = logging.getLogger(__name__)

BORDER_BGR = (124, 127, 127)  # SPEC 3.3 image border
PAD_BGR = (128, 128, 128)  # SPEC 3.8 inference padding (crop="image" matches it)
_ERODE_KERNEL = np.ones((3, 3), np.uint8)


# ----------------------------------------------------------------------------- helpers
def select_main_persons(
    anns: list[dict],
    min_keypoints: int = 5,
    min_area: float = 32.0**2,
    min_dist_ratio: float = 0.3,
) -> list[dict]:
    """Main persons of one image (SPEC 3.2), in annotation order.

    A non-crowd person with ``num_keypoints >= min_keypoints`` and segment ``area >=
    min_area`` is a candidate; it is skipped when its bbox centre lies closer than
    ``min_dist_ratio * max(w, h)`` of *its own* box to the centre of an already selected
    main person (clean version of the reference's stale-variable [QUIRK]).

    Args:
        anns: the image's person annotations (COCO dicts, bbox in original px).

    Returns:
        the selected annotations.
    """
    selected: list[dict] = []
    centres: list[tuple[float, float]] = []
    for ann in anns:
        if ann.get("iscrowd", 0) or ann.get("num_keypoints", 0) < min_keypoints:
            continue
        if ann.get("area", 0.0) < min_area:
            continue
        x, y, w, h = (float(v) for v in ann["bbox"])
        cx, cy = x + w / 2.0, y + h / 2.0
        radius = min_dist_ratio * max(w, h)
        if any(math.hypot(cx - px, cy - py) < radius for px, py in centres):
            continue
        selected.append(ann)
        centres.append((cx, cy))
    return selected


@dataclass(frozen=True)
class BottomUpAugParams:
    """Distribution of the bottom-up augmentation (SPEC 3.3 defaults).

    Attributes:
        flip_prob: probability of a horizontal mirror.
        tint_prob: probability of the HSV jitter.
        hue_range, sat_range, val_range: inclusive integer ranges added to H, S, V (uint8 HSV,
            H in [0, 179]).
        max_rotation: rotation ~ U(-max_rotation, max_rotation) degrees.
        scale_prob: probability of a random zoom; otherwise 1.
        scale_range: zoom ~ U(lo, hi).
        max_shift: centre shift ``int(U(-1, 1) * max_shift)`` input px, x and y independently.
        target_dist: main-person height as a fraction of the input size.
    """

    flip_prob: float = 0.5
    tint_prob: float = 0.2
    hue_range: tuple[int, int] = (-10, 10)
    sat_range: tuple[int, int] = (-20, 60)
    val_range: tuple[int, int] = (-20, 40)
    max_rotation: float = 40.0
    scale_prob: float = 0.8
    scale_range: tuple[float, float] = (0.7, 1.3)
    max_shift: float = 50.0
    target_dist: float = 0.6


@dataclass(frozen=True)
class BottomUpAugDraw:
    """The augmentation of one sample (what :func:`sample_bottomup_aug` draws).

    Attributes:
        flip: mirror horizontally (and swap L/R joints).
        rotation: degrees.
        scale: zoom multiplier on top of the ``target_dist`` normalisation.
        shift: (dx, dy) input px added to the input centre.
        tint: (dh, ds, dv) added to the uint8 HSV image, or None.
    """

    flip: bool = False
    rotation: float = 0.0
    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)
    tint: tuple[int, int, int] | None = None


IDENTITY_AUG = BottomUpAugDraw()


def sample_bottomup_aug(rng: np.random.Generator, params: BottomUpAugParams) -> BottomUpAugDraw:
    """Draw one :class:`BottomUpAugDraw` from ``params`` (fixed draw order)."""
    flip = bool(rng.random() < params.flip_prob)
    tint = None
    if rng.random() < params.tint_prob:
        tint = tuple(int(rng.integers(lo, hi + 1)) for lo, hi in
                     (params.hue_range, params.sat_range, params.val_range))  # fmt: skip
    rotation = float(rng.uniform(-params.max_rotation, params.max_rotation))
    scale = float(rng.uniform(*params.scale_range)) if rng.random() < params.scale_prob else 1.0
    dx = int(rng.uniform(-1.0, 1.0) * params.max_shift)
    dy = int(rng.uniform(-1.0, 1.0) * params.max_shift)
    return BottomUpAugDraw(flip, rotation, scale, (float(dx), float(dy)), tint)


def bottomup_affine(
    center, person_height: float, input_size: int, draw: BottomUpAugDraw, target_dist: float = 0.6
) -> np.ndarray:
    """The single affine of a sample (SPEC 3.3), original px -> input px.

    Right to left: translate ``center`` to the origin, rotate by ``draw.rotation`` degrees
    (``[[c, s], [-s, c]]``), scale by ``target_dist * (S - 1) / person_height * draw.scale``
    (the reference's ``0.6 / scale_self`` with ``scale_self = h / S * S / (S - 1)``), mirror x
    if ``draw.flip``, translate by ``(S / 2 - 0.5 + dx, S / 2 - 0.5 + dy)``. The mirror is
    about the input centre ``(S - 1) / 2``, so a flipped sample is the exact pixel mirror of
    the unflipped one.

    Returns:
        (2, 3) float64.
    """
    s = float(input_size)
    zoom = target_dist * (s - 1.0) / max(float(person_height), 1e-6) * draw.scale
    theta = math.radians(draw.rotation)
    c, sn = math.cos(theta), math.sin(theta)
    a = zoom * np.array([[c, sn], [-sn, c]])
    if draw.flip:
        a[0] *= -1.0
    t = np.array([s / 2.0 - 0.5 + draw.shift[0], s / 2.0 - 0.5 + draw.shift[1]])
    t = t - a @ np.asarray(center, dtype=np.float64)
    return np.concatenate([a, t[:, None]], axis=1)


def apply_tint(image: np.ndarray, tint: tuple[int, int, int]) -> np.ndarray:
    """HSV jitter of a uint8 BGR image (SPEC 3.3): H += dh clipped to [0, 179], S += ds and
    V += dv clipped to [0, 255]. Returns a new (H, W, 3) uint8 BGR array."""
    import cv2

    ramp = np.arange(256, dtype=np.int32)
    lut = np.stack([np.clip(ramp + tint[0], 0, 179), np.clip(ramp + tint[1], 0, 255),
                    np.clip(ramp + tint[2], 0, 255)], axis=-1).astype(np.uint8)  # fmt: skip
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    hsv = cv2.LUT(hsv, lut.reshape(1, 256, 3))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def _pack_bgra(bgr: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 + (H, W) uint8 -> (H, W, 4) uint8 (faster than ``np.dstack``)."""
    import cv2

    packed = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    packed[..., 3] = alpha
    return packed


class _StageTimer:
    """Accumulates wall and thread-CPU time per named stage (only when profiling is on)."""

    def __init__(self):
        self.ms: dict[str, float] = {}
        self.cpu_ms: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - t0) * 1e3
            self.cpu_ms[name] = self.cpu_ms.get(name, 0.0) + (time.thread_time() - c0) * 1e3


@contextmanager
def _no_timer(name: str):
    yield


# ----------------------------------------------------------------------------- dataset
class BottomUpDataset(EpochSeeded):
    """SimplePose training samples, one per main person (SPEC 3.2 - 3.4).

    Args:
        ann_file_or_coco: a COCO person-keypoint file or a loaded :class:`CocoKeypoints`.
        images_dir: folder of the images (``file_name`` of each image record).
        input_size: S, side of the square network input (input px).
        stride: input px per heatmap cell (must match ``codec.stride``).
        codec: target renderer (50 channels).
        augment: random augmentation (SPEC 3.3); False: centre and ``target_dist`` scale only.
        aug: augmentation distribution.
        seed: base seed; sample randomness is ``default_rng([seed, epoch, index])``.
        image_ids: restrict to these images (default: all of the file).
        image_cache_size: decoded images kept per process (an image with several main
            persons is decoded once).
        mask_cache_size: per-image masks kept per process, run-length encoded (building
            them from the polygons is slow).
        profile: accumulate per-stage wall and thread-CPU milliseconds in ``stage_ms`` and
            ``stage_cpu_ms`` (for ``bench/data.py``).
        renderer: ``"numba"`` (compiled renderers of :mod:`simplepose.codecs.render_numba`,
            same output, about 9x faster), ``"numpy"`` (``codec.encode``) or ``"auto"``
            (numba when installed).

    Attributes:
        samples: list of ``(image_id, main-person annotation)``, one per sample.
        num_bad_images: number of distinct images that failed to load so far (this process).
    """

    def __init__(
        self,
        ann_file_or_coco,
        images_dir,
        input_size: int = 512,
        stride: int = 4,
        codec: SimplePoseCodec = SimplePoseCodec(),
        augment: bool = True,
        aug: BottomUpAugParams = BottomUpAugParams(),
        seed: int = 0,
        image_ids=None,
        image_cache_size: int = 4,
        mask_cache_size: int = 4096,
        profile: bool = False,
        renderer: str = "auto",
        crop: str = "person",
    ):
        if crop not in ("person", "image"):
            raise InputError(f"crop must be 'person' or 'image', got {crop!r}")
        if crop == "image" and augment:
            raise InputError("crop='image' samples the inference geometry exactly; use it with augment=False")
        self.crop = crop
        if input_size % stride:
            raise InputError(f"input_size {input_size} must be a multiple of the stride {stride}")
        if codec.stride != stride:
            raise InputError(f"codec stride {codec.stride} != dataset stride {stride}")
        self.coco = as_coco(ann_file_or_coco)
        dataset_k = int((codec.layout.to_coco_array >= 0).sum())
        if dataset_k != self.coco.layout.num_keypoints:
            raise InputError(
                f"{self.coco.source} has the {self.coco.layout.name} layout "
                f"({self.coco.layout.num_keypoints} keypoints) but the codec's layout "
                f"{codec.layout.name} takes {dataset_k}"
            )
        self.images_dir = Path(images_dir)
        self.input_size = int(input_size)
        self.stride = int(stride)
        self.out_size = self.input_size // self.stride
        self.codec = codec
        if renderer not in ("auto", "numba", "numpy"):
            raise InputError(f"renderer must be 'auto', 'numba' or 'numpy', got {renderer!r}")
        if renderer == "auto":
            renderer = "numba" if HAVE_NUMBA else "numpy"
        self.renderer = renderer
        self.augment = bool(augment)
        self.aug = aug
        self.seed = int(seed)
        self.epoch = 0
        ids = self.coco.image_ids if image_ids is None else [int(i) for i in image_ids]
        missing = [i for i in ids if i not in self.coco.images]
        if missing:
            raise InputError(f"image ids {missing[:5]} are not in {self.coco.source}")
        self.samples: list[tuple[int, dict | None]] = []
        for image_id in ids:
            if crop == "image":  # one sample per image that has a labelled person
                anns = self.coco.annotations_by_image[image_id]
                if any(not a.get("iscrowd", 0) and a.get("num_keypoints", 0) > 0 for a in anns):
                    self.samples.append((image_id, None))
                continue
            for ann in select_main_persons(self.coco.annotations_by_image[image_id]):
                self.samples.append((image_id, ann))
        if not self.samples:
            LOG.warning("%s: no main persons in %d images", self.coco.source, len(ids))
        self._image_cache = LRUCache(image_cache_size)
        self._mask_cache = LRUCache(mask_cache_size)
        self._bad = BadImageLog()
        self.stage_ms: dict[str, float] | None = None
        self.stage_cpu_ms: dict[str, float] | None = None
        self._timer = _StageTimer() if profile else None
        if profile:
            self.stage_ms, self.stage_cpu_ms = self._timer.ms, self._timer.cpu_ms
        LOG.info("bottom-up dataset: %d samples from %d images", len(self.samples), len(ids))

    # ------------------------------------------------------------------ bookkeeping
    def __len__(self) -> int:
        return len(self.samples)

    def sample_aug(self, index: int, epoch: int | None = None) -> BottomUpAugDraw:
        """The augmentation drawn for sample ``index`` (identity when ``augment=False``)."""
        if not self.augment:
            return IDENTITY_AUG
        return sample_bottomup_aug(self.rng(index, epoch), self.aug)

    def _stage(self, name: str):
        return self._timer(name) if self._timer is not None else _no_timer(name)

    # ------------------------------------------------------------------ geometry
    def geometry(self, index: int):
        """``crop='image'``: the inference geometry of the sample's image (SPEC 3.8)."""
        h, w = self.coco.image_size(self.samples[index][0])
        return BottomUpGeometry.for_image(w, h, box_size=self.input_size, stride=self.stride)

    def canvas(self, index: int) -> tuple[int, int]:
        """(width, height) of the sample's network input in input px."""
        if self.crop == "image":
            g = self.geometry(index)
            return g.pad_w, g.pad_h
        return self.input_size, self.input_size

    def affine(self, index: int, draw: BottomUpAugDraw) -> np.ndarray:
        """(2, 3) float64 original px -> input px matrix of sample ``index`` under ``draw``."""
        if self.crop == "image":
            return self.geometry(index).original_to_input_matrix()
        _, ann = self.samples[index]
        x, y, w, h = (float(v) for v in ann["bbox"])
        return bottomup_affine((x + w / 2.0, y + h / 2.0), h, self.input_size, draw,
                               self.aug.target_dist)  # fmt: skip

    def image_joints(self, image_id: int) -> np.ndarray:
        """(N, 18, 3) internal joints of the image's non-crowd persons with keypoints:
        x, y in original px, internal visibility code (SPEC 3.1)."""
        anns = [a for a in self.coco.annotations_by_image[image_id]
                if not a.get("iscrowd", 0) and a.get("num_keypoints", 0) > 0]  # fmt: skip
        kps = np.asarray([a["keypoints"] for a in anns], dtype=np.float64)
        kps = kps.reshape(-1, self.coco.layout.num_keypoints, 3)
        return coco_to_internal(kps, self.codec.layout)

    def joints_in_input(self, index: int, matrix: np.ndarray, flip: bool) -> np.ndarray:
        """(N, 18, 3) joints of every labelled person of sample ``index``'s image in input px
        (x, y = ``matrix`` applied; L/R parts swapped when ``flip``), internal codes.
        Joints outside the input are kept (the renderer clips them)."""
        image_id, _ = self.samples[index]
        joints = self.image_joints(image_id)
        joints[..., :2] = apply_affine(joints[..., :2], matrix)
        unlabelled = joints[..., 2] >= ABSENT
        joints[..., :2][unlabelled] = 0.0
        if flip:
            joints = joints[:, list(self.codec.layout.keypoint_flip)]
        return joints

    # ------------------------------------------------------------------ loading
    def _image(self, image_id: int) -> np.ndarray:
        """(H, W, 4) uint8 original px: BGR and ``mask_all * 255`` (one 4-channel warp is
        cheaper than a 3- plus a 1-channel one). Cached per process."""
        packed = self._image_cache.get(image_id)
        if packed is None:
            with self._stage("decode"):
                img = self.coco.read_image(image_id, self.images_dir)
            rle_all, _ = self._mask_rles(image_id, img.shape[0], img.shape[1])
            mask_all = self._decode_mask(rle_all)
            with self._stage("masks"):
                packed = _pack_bgra(img, mask_all)
            self._image_cache.put(image_id, packed)
        return packed

    def _mask_rles(self, image_id: int, height: int, width: int):
        """Masks of an image, original px: ``(mask_all, miss)`` with ``mask_all`` a
        pycocotools RLE (0/1) and ``miss`` either None (``mask_miss`` is 1 everywhere, the
        common case) or ``(crop, x0, y0)``: the uint8 {0, 255} ``mask_miss`` cropped to the
        bounding box of its zeros plus a 1 px margin of ones, at offset (x0, y0).

        Cached per process: a few kB per image, so thousands of images fit, and rebuilding
        the masks from the polygons is slow."""
        from pycocotools import mask as mask_utils

        key = (image_id, height, width)
        with self._stage("masks"):
            masks = self._mask_cache.get(key)
            if masks is None:
                mask_all, mask_miss = person_masks(
                    self.coco.annotations_by_image[image_id], height, width)
                miss = None
                rows = np.flatnonzero(~mask_miss.all(axis=1))
                if rows.size:
                    cols = np.flatnonzero(~mask_miss.all(axis=0))
                    y0, y1 = max(rows[0] - 1, 0), min(rows[-1] + 2, height)
                    x0, x1 = max(cols[0] - 1, 0), min(cols[-1] + 2, width)
                    crop = np.ascontiguousarray(mask_miss[y0:y1, x0:x1]) * np.uint8(255)
                    miss = (crop, int(x0), int(y0))
                masks = (mask_utils.encode(np.asfortranarray(mask_all)), miss)
                self._mask_cache.put(key, masks)
        return masks

    def _decode_mask(self, rle) -> np.ndarray:
        from pycocotools import mask as mask_utils

        with self._stage("masks"):
            return np.ascontiguousarray(mask_utils.decode(rle)) * np.uint8(255)

    def _warp_mask_miss(self, miss, matrix: np.ndarray, canvas: tuple[int, int]) -> np.ndarray:
        """(1, S/4, S/4) float32 ``mask_miss`` on the heatmap grid: the bilinear warp to
        input px (border 1: outside the image is supervised background, SPEC 3.3), then
        INTER_AREA to the grid.

        Only the region the ignored pixels can reach is warped: the input-px box of the
        crop, grown by a pixel and aligned to whole heatmap cells, so the 4 x 4 area
        averages equal those of the full-size warp; everything else is 1."""
        import cv2

        st = self.stride
        ow, oh = canvas[0] // st, canvas[1] // st
        out = np.ones((1, oh, ow), dtype=np.float32)
        if miss is None:
            return out
        crop, x0, y0 = miss
        ch, cw = crop.shape
        corners = np.array([[x0 - 1, y0 - 1], [x0 + cw, y0 - 1], [x0 - 1, y0 + ch],
                            [x0 + cw, y0 + ch]], dtype=np.float64)  # fmt: skip
        pts = apply_affine(corners, matrix)
        lo = np.floor(pts.min(axis=0)) - 1
        hi = np.ceil(pts.max(axis=0)) + 2
        cx0, cy0 = (max(int(v) // st, 0) for v in lo)
        cx1, cy1 = min(-(-int(hi[0]) // st), ow), min(-(-int(hi[1]) // st), oh)
        if cx0 >= cx1 or cy0 >= cy1:
            return out
        # crop px -> ROI px: shift the source by (x0, y0) and the destination by the ROI origin
        m = matrix.copy()
        m[:, 2] += m[:, :2] @ [x0, y0] - [cx0 * st, cy0 * st]
        roi = cv2.warpAffine(crop, m, ((cx1 - cx0) * st, (cy1 - cy0) * st),
                             flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                             borderValue=255)  # fmt: skip
        small = cv2.resize(roi, (cx1 - cx0, cy1 - cy0), interpolation=cv2.INTER_AREA)
        np.multiply(small, np.float32(1.0 / 255.0), out=out[0, cy0:cy1, cx0:cx1])
        return out

    def __getitem__(self, index):
        """Sample ``index`` of the current epoch, or of ``epoch`` for an ``(epoch, index)``
        pair (lets a sampler carry the epoch into persistent workers).

        Returns:
            dict with ``image`` (3, S, S) float32 BGR / 255, input px; ``targets``
            (50, S/4, S/4) float32 in [0, 1], heatmap px; ``mask_miss`` (1, S/4, S/4) float32
            in [0, 1] (0 = not supervised); ``image_id`` int; ``matrix`` (2, 3) float64,
            original px -> input px.
        """
        i, epoch, packed = self._readable(index, self.samples, "samples")
        return self._render(i, self.sample_aug(i, epoch), packed)

    def get(self, index: int, draw: BottomUpAugDraw = IDENTITY_AUG) -> dict:
        """Sample ``index`` under an explicit augmentation ``draw`` (no bad-image fallback:
        an unreadable image raises :class:`InputError`). Same dict as :meth:`__getitem__`."""
        return self._render(index, draw, self._image(self.samples[index][0]))

    def _render(self, index: int, draw: BottomUpAugDraw, packed: np.ndarray) -> dict:
        import cv2

        image_id, _ = self.samples[index]
        in_w, in_h = self.canvas(index)
        ow, oh = in_w // self.stride, in_h // self.stride
        border = (PAD_BGR if self.crop == "image" else BORDER_BGR) + (0,)
        matrix = self.affine(index, draw)
        with self._stage("warp"):
            if draw.tint is not None:
                bgr = apply_tint(cv2.cvtColor(packed, cv2.COLOR_BGRA2BGR), draw.tint)
                packed = _pack_bgra(bgr, packed[..., 3])
            # Outside the image: BORDER_BGR and mask_all = 0.
            warped = cv2.warpAffine(packed, matrix, (in_w, in_h), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=border)  # fmt: skip
            planes = cv2.split(warped)
            image = np.empty((3, in_h, in_w), dtype=np.float32)  # BGR / 255, CHW
            for c in range(3):
                np.multiply(planes[c], np.float32(1.0 / 255.0), out=image[c])
        with self._stage("masks"):
            small_all = cv2.resize(planes[3], (ow, oh), interpolation=cv2.INTER_AREA)
            mask_all = cv2.erode(small_all, _ERODE_KERNEL).astype(np.float32)
            mask_all *= np.float32(1.0 / 255.0)
            h, w = packed.shape[:2]
            mask_miss = self._warp_mask_miss(self._mask_rles(image_id, h, w)[1], matrix, (in_w, in_h))
        with self._stage("targets"):
            joints = self.joints_in_input(index, matrix, draw.flip)
            if self.renderer == "numba":
                targets = encode_simplepose(self.codec, joints, (oh, ow), mask_all)
            else:
                targets = self.codec.encode(joints, (oh, ow), mask_all)
        return {
            "image": image,
            "targets": targets,
            "mask_miss": mask_miss,
            "image_id": int(image_id),
            "matrix": matrix,
        }
