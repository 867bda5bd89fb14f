"""Loading and validating COCO person-keypoint annotation files and images.

The COCO keypoint format (SPEC 1.1-1.2): an annotation file is a JSON object with
``images``, ``annotations`` and ``categories``; the person category lists the 17 keypoint
names in :data:`simplepose.skeleton.COCO_KEYPOINTS` order, and each person annotation
holds ``keypoints`` = ``[x1, y1, v1, ..., x17, y17, v17]`` in original-image pixels with
visibility ``v`` in {0 (not labelled), 1 (labelled, occluded), 2 (labelled, visible)}.

Every problem found while loading raises :class:`~simplepose.errors.AnnotationError`
whose message names the file and, for a bad record, its index and id, so that a broken
file is found before hours of training or evaluation are spent on it.

Which annotation fields are required and which get a default:

* required: ``image_id`` (an id listed in ``images``), ``keypoints`` (51 finite numbers,
  ``v`` in {0, 1, 2}), ``bbox`` (``[x, y, w, h]``, finite, ``w, h >= 0``) and ``area``
  (finite, ``>= 0``). The area is the OKS scale of the person (SPEC 1.2); the box area is
  no substitute for the segment area, so a missing area is an error, not a default.
* defaulted: ``iscrowd`` (0), ``num_keypoints`` (the number of keypoints with ``v > 0``;
  when present it must agree), ``category_id`` (the person category) and ``id``
  (consecutive ids above the largest one in the file).

Annotations of categories other than the person category are skipped (an instances file
has 80 categories); only person annotations are kept.

Other COCO-style keypoint files (CrowdPose-14, :mod:`simplepose.data.crowdpose`; OCHuman,
which is COCO-17) load through the same checks with a ``layout``
(:class:`~simplepose.skeleton.KeypointLayout`): the person category must list that layout's
keypoint names and every record must hold ``3 K`` values.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simplepose.errors import AnnotationError, InputError
from simplepose.skeleton import COCO17, COCO_KEYPOINTS, KeypointLayout, get_layout
from simplepose.utils.io import read_json

__all__ = [
    "NUM_KEYPOINTS",
    "CocoKeypoints",
    "load_coco_keypoints",
    "load_image",
    "load_image_info",
]

LOG = logging.getLogger(__name__)

NUM_KEYPOINTS = len(COCO_KEYPOINTS)  # 17
_NUMBER_TYPES = (int, float)
_PLAIN_NUMBER_TYPES = {int, float}  # exact types: excludes bool


@dataclass
class CocoKeypoints:
    """A validated COCO person-keypoint annotation (or test-dev image-info) file.

    Attributes:
        path: the file it was read from (``None`` when built from a dict).
        dataset: the parsed JSON object. Its ``annotations`` list holds only person
            annotations, each a copy of the file's record with the defaulted fields
            (``iscrowd``, ``num_keypoints``, ``category_id``, ``id``) filled in; its
            ``categories`` list is the file's (for an image-info file, only the person
            category). Treat it as read-only: the evaluator
            builds pycocotools' index from it.
        images: image record by image id.
        annotations_by_image: person annotations by image id, in file order; every image
            id is present, with an empty list for images without persons.
        image_ids: all image ids, sorted ascending.
        person_category: the category record of the person class (``id``, ``name``,
            ``keypoints``, ``skeleton``).
        layout: the keypoint layout of the file (COCO-17 unless loaded with another).
    """

    path: Path | None
    dataset: dict
    images: dict[int, dict]
    annotations_by_image: dict[int, list[dict]]
    image_ids: list[int]
    person_category: dict
    layout: KeypointLayout = COCO17

    @property
    def person_category_id(self) -> int:
        """The id of the person category (1 in COCO)."""
        return int(self.person_category["id"])

    @property
    def annotations(self) -> list[dict]:
        """Every person annotation, in file order."""
        return self.dataset["annotations"]

    @property
    def num_images(self) -> int:
        return len(self.image_ids)

    def image_path(self, image_id: int, images_dir) -> Path:
        """Path of an image: ``images_dir / file_name`` of its record.

        Raises:
            InputError: when ``image_id`` is not an image of this file.
        """
        record = self.images.get(image_id)
        if record is None:
            raise InputError(f"image id {image_id!r} is not in {self.source}")
        return Path(images_dir) / record["file_name"]

    def read_image(self, image_id: int, images_dir) -> np.ndarray:
        """Decode an image (:func:`load_image`) and check it against its record.

        Returns:
            (H, W, 3) BGR uint8, original px.

        Raises:
            InputError: unknown image id, unreadable file, or a decoded size that differs from
                the record's ``width`` x ``height`` (its keypoints would be scored in another
                frame).
        """
        path = self.image_path(image_id, images_dir)
        image = load_image(path)
        h, w = self.image_size(image_id)
        if image.shape[:2] != (h, w):
            raise InputError(
                f"image file {path} is {image.shape[1]}x{image.shape[0]} but {self.source} "
                f"says {w}x{h} (image id {image_id})"
            )
        return image

    def image_size(self, image_id: int) -> tuple[int, int]:
        """``(height, width)`` of an image as recorded in the file."""
        record = self.images.get(image_id)
        if record is None:
            raise InputError(f"image id {image_id!r} is not in {self.source}")
        return int(record["height"]), int(record["width"])

    def keypoints_array(self, image_id: int) -> np.ndarray:
        """(P, K, 3) float64 keypoints ``(x, y, v)`` of the image's persons, original px."""
        anns = self.annotations_by_image.get(image_id)
        if anns is None:
            raise InputError(f"image id {image_id!r} is not in {self.source}")
        k = self.layout.num_keypoints
        if not anns:
            return np.zeros((0, k, 3), dtype=np.float64)
        return np.asarray([a["keypoints"] for a in anns], dtype=np.float64).reshape(-1, k, 3)

    @property
    def source(self) -> str:
        """The file name, for messages."""
        return str(self.path) if self.path is not None else "<in-memory annotations>"


# ----------------------------------------------------------------------------- helpers
def _read_json_object(path) -> tuple[Path, dict]:
    """Read a JSON file whose top level must be an object; AnnotationError otherwise."""
    path = Path(path)
    data = read_json(path, "annotation")
    if not isinstance(data, dict):
        raise AnnotationError(
            f"annotation file {path}: top level must be a JSON object with 'images', "
            f"'annotations' and 'categories', got a JSON {type(data).__name__}"
        )
    return path, data


def _require_keys(data: dict, keys, name: str) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise AnnotationError(
            f"annotation file {name}: missing top-level key(s) {missing}; "
            f"found {sorted(data)}"
        )
    for k in keys:
        if not isinstance(data[k], list):
            raise AnnotationError(
                f"annotation file {name}: '{k}' must be a list, got {type(data[k]).__name__}"
            )


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, _NUMBER_TYPES) and not isinstance(value, bool)


def _find_person_category(
    categories: list, name: str, required: bool, layout: KeypointLayout = COCO17
) -> dict | None:
    """The person category record with the layout's keypoints (COCO-17 by default).

    With ``required=False`` (image-info files, whose categories carry no keypoint names)
    a record named ``person`` is enough, and ``None`` is returned when there is none.
    """
    persons = []
    for i, cat in enumerate(categories):
        if not isinstance(cat, dict):
            raise AnnotationError(
                f"annotation file {name}: categories[{i}] must be an object, "
                f"got {type(cat).__name__}"
            )
        if "id" not in cat or not _is_int(cat["id"]):
            raise AnnotationError(
                f"annotation file {name}: categories[{i}] has no integer 'id'"
            )
        if cat.get("name") == "person" or "keypoints" in cat:
            persons.append(cat)
    if not required:
        for cat in persons:
            if cat.get("name") == "person":
                return cat
        return None
    k = layout.num_keypoints
    for cat in persons:
        kps = cat.get("keypoints")
        if isinstance(kps, list) and len(kps) == k:
            if tuple(kps) != layout.keypoints:
                raise AnnotationError(
                    f"annotation file {name}: category {cat['id']} ({cat.get('name')!r}) "
                    f"lists {k} keypoints in an order other than {layout.name.upper()}'s: {kps}"
                )
            return cat
    described = [
        (c["id"], c.get("name"), len(c["keypoints"]) if isinstance(c.get("keypoints"), list)
         else None)
        for c in persons
    ]
    raise AnnotationError(
        f"annotation file {name}: no person category with the {k} {layout.name} keypoints "
        f"(candidates as (id, name, number of keypoints): {described or 'none'})"
    )


def _unsafe_file_name(file_name: str) -> str | None:
    """Why ``file_name`` could name a file outside the image folder (None when it cannot)."""
    if "\x00" in file_name:
        return "contains a NUL character"
    posix = file_name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        return "is absolute"
    if ".." in posix.split("/"):
        return "contains '..'"
    return None


def _index_images(images: list, name: str) -> dict[int, dict]:
    by_id: dict[int, dict] = {}
    for i, img in enumerate(images):
        if not isinstance(img, dict):
            raise AnnotationError(
                f"annotation file {name}: images[{i}] must be an object, got {type(img).__name__}"
            )
        for key, check in (("id", _is_int), ("width", _is_int), ("height", _is_int)):
            if key not in img:
                raise AnnotationError(f"annotation file {name}: images[{i}] has no '{key}'")
            if not check(img[key]):
                raise AnnotationError(
                    f"annotation file {name}: images[{i}] '{key}' must be an integer, "
                    f"got {img[key]!r}"
                )
        if not isinstance(img.get("file_name"), str) or not img["file_name"]:
            raise AnnotationError(
                f"annotation file {name}: images[{i}] (id {img['id']}) has no 'file_name'"
            )
        problem = _unsafe_file_name(img["file_name"])
        if problem:
            raise AnnotationError(
                f"annotation file {name}: images[{i}] (id {img['id']}) file_name "
                f"{img['file_name'][:200]!r} {problem}; it must be a path inside the image folder"
            )
        if img["width"] < 1 or img["height"] < 1:
            raise AnnotationError(
                f"annotation file {name}: images[{i}] (id {img['id']}) has size "
                f"{img['width']}x{img['height']}; width and height must be >= 1"
            )
        if img["id"] in by_id:
            raise AnnotationError(
                f"annotation file {name}: images[{i}] repeats image id {img['id']}"
            )
        by_id[img["id"]] = img
    return by_id


def _check_annotation(
    ann, i: int, name: str, image_ids: dict, person_id: int, num_keypoints: int = NUM_KEYPOINTS
) -> dict | None:
    """Validate one annotation; return a normalised copy, or None for another category."""
    if not isinstance(ann, dict):
        raise AnnotationError(
            f"annotation file {name}: annotations[{i}] must be an object, got {type(ann).__name__}"
        )
    where = f"annotation file {name}: annotations[{i}] (id {ann.get('id', '?')})"
    category_id = ann.get("category_id", person_id)
    if not _is_int(category_id):
        raise AnnotationError(f"{where}: 'category_id' must be an integer, got {category_id!r}")
    if category_id != person_id:
        return None
    for key in ("image_id", "keypoints", "bbox", "area"):
        if key not in ann:
            raise AnnotationError(f"{where}: missing required field '{key}'")
    image_id = ann["image_id"]
    if not _is_int(image_id):
        raise AnnotationError(f"{where}: 'image_id' must be an integer, got {image_id!r}")
    if image_id not in image_ids:
        raise AnnotationError(f"{where}: refers to image id {image_id}, which is not in 'images'")

    kps = ann["keypoints"]
    if not isinstance(kps, list) or len(kps) != 3 * num_keypoints:
        got = f"{len(kps)} values" if isinstance(kps, list) else type(kps).__name__
        raise AnnotationError(
            f"{where}: 'keypoints' must be a list of {3 * num_keypoints} numbers "
            f"({num_keypoints} x, y, v triplets), got {got}"
        )
    # set(map(type, ...)) runs at C speed; a full train2017 file has 262k persons.
    if not set(map(type, kps)) <= _PLAIN_NUMBER_TYPES:
        bad = next(v for v in kps if not _is_number(v))
        raise AnnotationError(f"{where}: 'keypoints' holds a non-number {bad!r}")
    if not all(map(math.isfinite, kps)):
        raise AnnotationError(f"{where}: 'keypoints' holds a non-finite value")
    flags = kps[2::3]
    if any(v not in (0, 1, 2) for v in flags):
        raise AnnotationError(
            f"{where}: keypoint visibility flags must be 0, 1 or 2, got {sorted(set(flags))}"
        )
    labelled = sum(1 for v in flags if v > 0)

    bbox = ann["bbox"]
    if (
        not isinstance(bbox, list)
        or len(bbox) != 4
        or not all(_is_number(v) and math.isfinite(v) for v in bbox)
    ):
        raise AnnotationError(
            f"{where}: 'bbox' must be 4 finite numbers [x, y, w, h], got {bbox!r}"
        )
    if bbox[2] < 0 or bbox[3] < 0:
        raise AnnotationError(f"{where}: 'bbox' has a negative width or height: {bbox!r}")
    area = ann["area"]
    if not _is_number(area) or not math.isfinite(area) or area < 0:
        raise AnnotationError(f"{where}: 'area' must be a finite number >= 0, got {area!r}")

    iscrowd = ann.get("iscrowd", 0)
    if iscrowd not in (0, 1) or isinstance(iscrowd, float):
        raise AnnotationError(f"{where}: 'iscrowd' must be 0 or 1, got {iscrowd!r}")
    num_kpts = ann.get("num_keypoints", labelled)
    if not _is_int(num_kpts):
        raise AnnotationError(f"{where}: 'num_keypoints' must be an integer, got {num_kpts!r}")
    if num_kpts != labelled:
        raise AnnotationError(
            f"{where}: 'num_keypoints' is {num_kpts} but {labelled} keypoints have v > 0"
        )
    if "id" in ann and not _is_int(ann["id"]):
        raise AnnotationError(f"{where}: 'id' must be an integer, got {ann['id']!r}")

    out = dict(ann)
    out["category_id"] = person_id
    out["iscrowd"] = int(iscrowd)
    out["num_keypoints"] = labelled
    return out


def _build(
    path: Path | None, data: dict, annotations: list, person: dict, layout=COCO17
) -> CocoKeypoints:
    name = str(path) if path is not None else "<in-memory annotations>"
    images = _index_images(data["images"], name)
    person_id = int(person["id"])

    kept: list[dict] = []
    skipped = 0
    for i, ann in enumerate(annotations):
        norm = _check_annotation(ann, i, name, images, person_id, layout.num_keypoints)
        if norm is None:
            skipped += 1
        else:
            kept.append(norm)
    if skipped:
        LOG.info("%s: skipped %d annotations of categories other than person", name, skipped)

    # Ids: keep the file's, refuse duplicates (pycocotools would silently overwrite one),
    # number the missing ones above the largest.
    seen: dict[int, int] = {}
    next_id = max((a["id"] for a in kept if "id" in a), default=0) + 1
    for i, ann in enumerate(kept):
        if "id" not in ann:
            ann["id"] = next_id
            next_id += 1
        elif ann["id"] in seen:
            raise AnnotationError(
                f"annotation file {name}: annotation id {ann['id']} is used twice "
                f"(person annotations {seen[ann['id']]} and {i})"
            )
        seen[ann["id"]] = i

    by_image: dict[int, list[dict]] = {image_id: [] for image_id in images}
    for ann in kept:
        by_image[ann["image_id"]].append(ann)

    dataset = dict(data)
    dataset["annotations"] = kept
    LOG.info(
        "loaded %s: %d images, %d person annotations (%d with keypoints)",
        name,
        len(images),
        len(kept),
        sum(1 for a in kept if a["num_keypoints"] > 0),
    )
    return CocoKeypoints(
        path=path,
        dataset=dataset,
        images=images,
        annotations_by_image=by_image,
        image_ids=sorted(images),
        person_category=person,
        layout=layout,
    )


# -------------------------------------------------------------------------- public API
def load_coco_keypoints(path, layout="coco17") -> CocoKeypoints:
    """Load and validate a COCO person-keypoint annotation file.

    Args:
        path: a ``person_keypoints_*.json`` file (str or Path).
        layout: the keypoint layout (name or :class:`~simplepose.skeleton.KeypointLayout`)
            the person category must list (COCO-17; OCHuman too).

    Returns:
        The validated :class:`CocoKeypoints`; see the module docstring for the required
        and defaulted annotation fields.

    Raises:
        AnnotationError: naming the file and the problem: missing or unreadable file,
            invalid JSON, top level not an object, missing ``images`` / ``annotations`` /
            ``categories``, no person category with the 17 COCO keypoints, a malformed
            image record, or an annotation with a missing or malformed field or an
            unknown image id.
    """
    path, data = _read_json_object(path)
    return _load_parsed(path, data, layout)


def _load_parsed(path: Path, data, layout="coco17") -> CocoKeypoints:
    """:func:`load_coco_keypoints` of an already parsed file."""
    layout = get_layout(layout)
    if not isinstance(data, dict):
        raise AnnotationError(
            f"annotation file {path}: top level must be a JSON object with 'images', "
            f"'annotations' and 'categories', got a JSON {type(data).__name__}"
        )
    _require_keys(data, ("images", "annotations", "categories"), str(path))
    person = _find_person_category(data["categories"], str(path), required=True, layout=layout)
    return _build(path, data, data["annotations"], person, layout)


def load_image_info(path) -> CocoKeypoints:
    """Load a COCO image-info file (e.g. ``image_info_test-dev2017.json``).

    Such files list ``images`` (and usually ``categories``) but no ``annotations``; the
    result has empty ``annotations_by_image`` lists. The categories of an image-info file
    carry no keypoint names, so only a record named ``person`` is looked for; without
    one, the COCO person category (id 1, the 17 keypoints) is assumed. Annotations, if
    the file has them, are validated and kept as in :func:`load_coco_keypoints`.

    Raises:
        AnnotationError: missing file, invalid JSON, top level not an object, no or
            malformed ``images``, malformed ``categories``.
    """
    path, data = _read_json_object(path)
    _require_keys(data, ("images",), str(path))
    categories = data.get("categories", [])
    if not isinstance(categories, list):
        raise AnnotationError(
            f"annotation file {path}: 'categories' must be a list, got {type(categories).__name__}"
        )
    person = _find_person_category(categories, str(path), required=False)
    if person is None:
        person = {"id": 1, "name": "person", "supercategory": "person"}
    person = dict(person)
    person.setdefault("keypoints", list(COCO_KEYPOINTS))
    annotations = data.get("annotations", [])
    if not isinstance(annotations, list):
        raise AnnotationError(
            f"annotation file {path}: 'annotations' must be a list, "
            f"got {type(annotations).__name__}"
        )
    data = dict(data)
    data["categories"] = [person]
    return _build(path, data, annotations, person)


def load_image(path) -> np.ndarray:
    """Read an image file as an (H, W, 3) BGR uint8 array (what ``cv2.imread`` returns).

    The file is read with Python and decoded with ``cv2.imdecode``, so non-ASCII paths
    work on every platform. Grey and 16-bit images are converted to 8-bit BGR; an alpha
    channel is dropped.

    Raises:
        InputError: naming the path, when it does not exist, is not a file, cannot be
            read, is empty, or cannot be decoded as an image.
    """
    import cv2  # deferred: keeps annotation loading free of the OpenCV import

    path = Path(path)
    if not path.exists():
        raise InputError(f"image file {path} does not exist")
    if not path.is_file():
        raise InputError(f"image path {path} is not a regular file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"image file {path} cannot be read: {exc}") from exc
    if not data:
        raise InputError(f"image file {path} is empty (0 bytes)")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise InputError(f"image file {path} cannot be decoded as an image ({len(data)} bytes)")
    return image
