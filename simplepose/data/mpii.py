"""MPII Human Pose files (16 joints, :data:`~simplepose.skeleton.MPII16`).

Two files, two jobs:

* **The converted JSON** (``train.json`` / ``valid.json`` of the widely used release, and
  ``tests/data/mpii/test_mpii.json``): a list of person records
  ``{"image": file name, "joints": 16 x [x, y], "joints_vis": 16 x {0, 1}, "center": [x, y],
  "scale": s}``; ``scale`` is the person height / 200 px, so the person box is the square of
  side ``200 s`` around ``center``. Coordinates are MATLAB's, **1-based**: pixel (0, 0) of
  the image array is (1, 1) in the file. :func:`load_mpii_json` returns 0-based original px
  (``x - 1``); unlabelled joints (``joints_vis = 0``, stored as (0, 0) or (-1, -1)) are
  zeroed. :func:`mpii_to_coco` turns the records into a
  :class:`~simplepose.data.coco.CocoKeypoints` (layout MPII-16, one annotation per record,
  box from center and scale), which the top-down and bottom-up pipelines and oracles take.
* **The evaluation ground truth** ``gt_valid.mat`` (MATLAB, read with ``scipy.io.loadmat``):
  ``dataset_joints`` (the 16 short joint names), ``jnt_missing`` (16, N), ``pos_gt_src``
  (16, 2, N) and ``headboxes_src`` (2, 2, N: the head rectangle's top-left and bottom-right
  corners), all 1-based, N persons in the order of ``valid.json``.
  :func:`load_mpii_gt` returns them as arrays in 0-based px; PCKh
  (:mod:`simplepose.evaluation.pckh`) needs the head boxes.

Malformed input raises :class:`~simplepose.errors.AnnotationError` naming the file, the
record (index and image) and the field: a joint count other than 16, a labelled joint outside
its image (when the image is found), a missing or degenerate head box, bad shapes.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simplepose.data.coco import CocoKeypoints, _build
from simplepose.errors import AnnotationError
from simplepose.skeleton import MPII16
from simplepose.utils.io import read_json

__all__ = [
    "MPII_MAT_JOINTS",
    "MpiiGroundTruth",
    "MpiiRecord",
    "image_size",
    "load_mpii_gt",
    "load_mpii_json",
    "mpii_to_coco",
    "read_mat",
]

LOG = logging.getLogger(__name__)

NUM_JOINTS = MPII16.num_keypoints  # 16
# The joint names of gt_valid.mat's ``dataset_joints``, in MPII16 order.
MPII_MAT_JOINTS = (
    "rank", "rkne", "rhip", "lhip", "lkne", "lank", "pelv", "thor", "neck", "head",
    "rwri", "relb", "rsho", "lsho", "lelb", "lwri",
)  # fmt: skip
PERSON_BOX_UNIT = 200.0  # MPII scale: person height in units of 200 px


@dataclass(frozen=True)
class MpiiRecord:
    """One person of a converted MPII JSON file, in 0-based original px.

    Attributes:
        index: position in the file (the benchmark matches predictions by it).
        image: image file name.
        joints: (16, 2) float64 joint positions, 0-based original px; (0, 0) when not labelled.
        visible: (16,) bool, True for labelled joints (``joints_vis = 1``).
        center: (2,) float64 person centre, 0-based original px.
        scale: person height / 200 px.
    """

    index: int
    image: str
    joints: np.ndarray
    visible: np.ndarray
    center: np.ndarray
    scale: float

    @property
    def box_xywh(self) -> tuple[float, float, float, float]:
        """The square person box ``(x, y, w, h)`` of side ``200 * scale`` around the centre."""
        side = PERSON_BOX_UNIT * self.scale
        return (self.center[0] - side / 2, self.center[1] - side / 2, side, side)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def image_size(path) -> tuple[int, int] | None:
    """``(height, width)`` from the image file's header (Pillow; OpenCV decodes the whole
    image when Pillow is missing), or None when it cannot be read."""
    try:
        from PIL import Image
    except ImportError:
        import cv2

        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        return None if image is None else (int(image.shape[0]), int(image.shape[1]))
    try:
        with Image.open(path) as im:
            w, h = im.size
        return int(h), int(w)
    except (OSError, ValueError):
        return None


def _check_record(rec, i: int, name: str) -> MpiiRecord:
    if not isinstance(rec, dict):
        raise AnnotationError(
            f"MPII file {name}: record {i} must be an object, got {type(rec).__name__}"
        )
    image = rec.get("image")
    where = f"MPII file {name}: record {i} (image {image!r})"
    if not isinstance(image, str) or not image:
        raise AnnotationError(f"MPII file {name}: record {i} has no 'image' file name")
    for key in ("joints", "joints_vis", "center", "scale"):
        if key not in rec:
            raise AnnotationError(f"{where}: missing field '{key}'")
    joints, vis = rec["joints"], rec["joints_vis"]
    if not isinstance(joints, list) or len(joints) != NUM_JOINTS:
        got = len(joints) if isinstance(joints, list) else type(joints).__name__
        raise AnnotationError(f"{where}: 'joints' must hold {NUM_JOINTS} joints (MPII), got {got}")
    if not all(
        isinstance(j, list) and len(j) >= 2 and _number(j[0]) and _number(j[1]) for j in joints
    ):
        raise AnnotationError(f"{where}: 'joints' must be {NUM_JOINTS} finite [x, y] pairs")
    if not isinstance(vis, list) or len(vis) != NUM_JOINTS:
        got = len(vis) if isinstance(vis, list) else type(vis).__name__
        raise AnnotationError(f"{where}: 'joints_vis' must hold {NUM_JOINTS} flags, got {got}")
    if any(v not in (0, 1) or isinstance(v, float) and v not in (0.0, 1.0) for v in vis):
        raise AnnotationError(f"{where}: 'joints_vis' flags must be 0 or 1, got {sorted(set(vis))}")
    center, scale = rec["center"], rec["scale"]
    if not isinstance(center, list) or len(center) != 2 or not all(map(_number, center)):
        raise AnnotationError(f"{where}: 'center' must be two finite numbers, got {center!r}")
    if not _number(scale) or scale <= 0:
        raise AnnotationError(f"{where}: 'scale' must be a number > 0, got {scale!r}")
    visible = np.asarray(vis, dtype=bool)
    xy = np.asarray([j[:2] for j in joints], dtype=np.float64) - 1.0  # 1-based -> 0-based
    xy[~visible] = 0.0
    return MpiiRecord(i, image, xy, visible, np.asarray(center, np.float64) - 1.0, float(scale))


def _check_inside(rec: MpiiRecord, size, name: str) -> None:
    h, w = size
    xy = rec.joints[rec.visible]
    bad = (xy[:, 0] < 0) | (xy[:, 1] < 0) | (xy[:, 0] > w - 1) | (xy[:, 1] > h - 1)
    if bad.any():
        j = int(np.nonzero(rec.visible)[0][np.argmax(bad)])
        x, y = rec.joints[j] + 1.0
        raise AnnotationError(
            f"MPII file {name}: record {rec.index} (image {rec.image!r}): 'joints' [{j}] "
            f"({MPII16.keypoints[j]}) = ({x:g}, {y:g}) (1-based) lies outside the {w}x{h} image"
        )


def load_mpii_json(path, images_dir=None) -> tuple[list[MpiiRecord], dict[str, tuple[int, int]]]:
    """Load and validate a converted MPII JSON file.

    Args:
        path: the JSON file.
        images_dir: folder of the images (default: the file's folder). Images found there give
            their sizes, and labelled joints outside an image are refused; images not found
            are logged (one warning) and not checked.

    Returns:
        ``(records, sizes)``: the :class:`MpiiRecord` list in file order, and
        ``{image name: (height, width)}`` for the images found.

    Raises:
        AnnotationError: naming the file, record and field (see the module docstring).
    """
    path = Path(path)
    return _load_parsed(path, read_json(path, "MPII annotation"), images_dir)


def _load_parsed(path: Path, data, images_dir=None):
    """:func:`load_mpii_json` of an already parsed file."""
    if not isinstance(data, list):
        raise AnnotationError(
            f"MPII file {path}: top level must be a list of person records, got a JSON "
            f"{type(data).__name__}"
        )
    name = str(path)
    records = [_check_record(rec, i, name) for i, rec in enumerate(data)]
    folder = Path(images_dir) if images_dir is not None else path.parent
    sizes: dict[str, tuple[int, int]] = {}
    missing = []
    for rec in records:
        if rec.image not in sizes and rec.image not in missing:
            size = image_size(folder / rec.image)
            if size is None:
                missing.append(rec.image)
            else:
                sizes[rec.image] = size
        if rec.image in sizes:
            _check_inside(rec, sizes[rec.image], name)
    if missing:
        LOG.warning(
            "MPII file %s: %d image(s) not found under %s (e.g. %s): joints not checked "
            "against their size", name, len(missing), folder, missing[0],
        )  # fmt: skip
    LOG.info(
        "loaded %s: %d persons on %d images", name, len(records), len({r.image for r in records})
    )
    return records, sizes


def mpii_to_coco(records, sizes, source=None, images_dir=None) -> CocoKeypoints:
    """The records as a :class:`~simplepose.data.coco.CocoKeypoints` of layout MPII-16.

    Images get ids 1, 2, ... in order of first appearance; each record becomes one annotation
    (``id`` = record index + 1, so ``id - 1`` finds the record) with ``keypoints`` 16
    ``(x, y, v)`` in 0-based original px (v = 2 labelled, 0 not), ``bbox`` = the record's
    square person box, ``area`` = its area, and the record's ``center`` / ``scale`` (0-based).

    Raises:
        AnnotationError: an image without a known size (``sizes`` comes from the image files:
            the converted JSON holds none), naming the file, the record and ``images_dir``.
    """
    ids: dict[str, int] = {}
    for rec in records:
        ids.setdefault(rec.image, len(ids) + 1)
    images = []
    for image, image_id in ids.items():
        if image not in sizes:
            index = next(r.index for r in records if r.image == image)
            folder = (
                images_dir if images_dir is not None else (Path(source).parent if source else "?")
            )
            raise AnnotationError(
                f"MPII file {source}: record {index} (image {image!r}): the image is not in "
                f"{folder}; the converted JSON holds no image sizes, so its images are needed "
                "(pass --images)"
            )
        h, w = sizes[image]
        images.append({"id": image_id, "file_name": image, "width": w, "height": h})
    annotations = []
    for rec in records:
        kps = np.zeros((NUM_JOINTS, 3))
        kps[:, :2] = rec.joints
        kps[:, 2] = np.where(rec.visible, 2.0, 0.0)
        box = [float(v) for v in rec.box_xywh]
        annotations.append({
            "id": rec.index + 1, "image_id": ids[rec.image], "category_id": 1, "iscrowd": 0,
            "keypoints": kps.ravel().tolist(), "bbox": box, "area": box[2] * box[3],
            "center": rec.center.tolist(), "scale": rec.scale,
        })  # fmt: skip
    person = {"id": 1, "name": "person", "supercategory": "person",
              "keypoints": list(MPII16.keypoints),
              "skeleton": [[a + 1, b + 1] for a, b in MPII16.skeleton]}  # fmt: skip
    data = {"images": images, "annotations": annotations, "categories": [person]}
    path = Path(source) if source is not None else None
    return _build(path, data, annotations, person, MPII16)


# ------------------------------------------------------------------------ gt_valid.mat
@dataclass(frozen=True)
class MpiiGroundTruth:
    """The MPII evaluation ground truth of N persons, 0-based original px.

    Attributes:
        path: the .mat file.
        joints: (N, 16, 2) float64 joint positions (0-based).
        visible: (N, 16) bool: labelled joints (``jnt_missing == 0``).
        head_boxes: (N, 2, 2) float64 head rectangles ``((x1, y1), (x2, y2))`` (0-based).
    """

    path: Path
    joints: np.ndarray
    visible: np.ndarray
    head_boxes: np.ndarray

    @property
    def num_persons(self) -> int:
        return int(self.joints.shape[0])


def _mat_names(value, name: str) -> tuple[str, ...]:
    flat = np.asarray(value, dtype=object).ravel()
    out = []
    for v in flat:
        while isinstance(v, np.ndarray) and v.size == 1 and v.dtype == object:
            v = v.item()
        if isinstance(v, np.ndarray):
            v = "".join(map(str, v.ravel().tolist()))
        out.append(str(v).strip())
    return tuple(out)


def read_mat(path, what: str) -> dict:
    """The variables of a MATLAB file (``scipy.io.loadmat``).

    Raises:
        AnnotationError: naming ``what`` (e.g. "MPII ground-truth") and the path: the file does
            not exist or cannot be read as a .mat.
    """
    import scipy.io

    if not Path(path).is_file():
        raise AnnotationError(f"{what} file {path} does not exist")
    try:
        return scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises several types for a corrupt file
        raise AnnotationError(f"{what} file {path} cannot be read as a .mat: {exc}") from exc


def load_mpii_gt(path) -> MpiiGroundTruth:
    """Read the MPII evaluation ground truth (``gt_valid.mat`` format) with scipy.

    Raises:
        AnnotationError: naming the file (and the person for a bad head box): unreadable
            file, a missing variable, wrong shapes or joint count, joint names other than
            MPII's, a head box that is missing (NaN) or degenerate (zero diagonal).
    """
    path = Path(path)
    mat = read_mat(path, "MPII ground-truth")
    need = ("jnt_missing", "pos_gt_src", "headboxes_src")
    missing = [k for k in need if k not in mat]
    if missing:
        what = "head boxes ('headboxes_src')" if "headboxes_src" in missing else f"{missing}"
        has = sorted(k for k in mat if not k.startswith("__"))
        raise AnnotationError(f"MPII ground-truth file {path}: missing {what}; has {has}")
    miss = np.asarray(mat["jnt_missing"], dtype=np.float64)
    pos = np.asarray(mat["pos_gt_src"], dtype=np.float64)
    heads = np.asarray(mat["headboxes_src"], dtype=np.float64)
    if pos.ndim == 2:  # a single person saved without its trailing axis
        pos, miss, heads = pos[..., None], miss.reshape(-1, 1), heads[..., None]
    if pos.ndim != 3 or pos.shape[:2] != (NUM_JOINTS, 2):
        raise AnnotationError(
            f"MPII ground-truth file {path}: 'pos_gt_src' must be (16, 2, N) joints, "
            f"got {pos.shape}"
        )
    n = pos.shape[2]
    if miss.shape != (NUM_JOINTS, n):
        raise AnnotationError(
            f"MPII ground-truth file {path}: 'jnt_missing' must be (16, {n}), got {miss.shape}"
        )
    if heads.shape != (2, 2, n):
        raise AnnotationError(
            f"MPII ground-truth file {path}: 'headboxes_src' must be (2, 2, {n}), got {heads.shape}"
        )
    if "dataset_joints" in mat:
        names = _mat_names(mat["dataset_joints"], str(path))
        if names != MPII_MAT_JOINTS:
            raise AnnotationError(
                f"MPII ground-truth file {path}: 'dataset_joints' {names} are not MPII's 16 "
                f"joints in order {MPII_MAT_JOINTS}"
            )
    boxes = np.transpose(heads, (2, 0, 1)) - 1.0  # (N, corner, xy), 0-based
    diag = np.linalg.norm(boxes[:, 1] - boxes[:, 0], axis=1)
    bad = ~np.isfinite(boxes).all(axis=(1, 2)) | ~(diag > 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise AnnotationError(
            f"MPII ground-truth file {path}: person {i}: 'headboxes_src' head box "
            f"{(boxes[i] + 1).tolist()} is missing or degenerate ({int(bad.sum())} such persons)"
        )
    visible = np.transpose(miss) == 0
    joints = np.transpose(pos, (2, 0, 1)) - 1.0
    if not np.isfinite(joints[visible]).all():
        raise AnnotationError(
            f"MPII ground-truth file {path}: 'pos_gt_src' holds non-finite labelled joints"
        )
    joints[~visible] = 0.0
    return MpiiGroundTruth(path=path, joints=joints, visible=visible, head_boxes=boxes)
