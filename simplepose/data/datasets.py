"""One entry point for every keypoint annotation format simplepose reads.

:func:`load_annotations` looks at the file and picks the reader:

* a JSON list of person records: the converted MPII JSON
  (:func:`~simplepose.data.mpii.load_mpii_json`, turned into a
  :class:`~simplepose.data.coco.CocoKeypoints` of layout MPII-16 by
  :func:`~simplepose.data.mpii.mpii_to_coco`);
* a COCO-style object whose person category lists CrowdPose's 14 keypoints:
  :func:`~simplepose.data.crowdpose.load_crowdpose`;
* any other COCO-style object: :func:`~simplepose.data.coco.load_coco_keypoints` (COCO-17,
  which OCHuman files are too).

Every reader returns a :class:`~simplepose.data.coco.CocoKeypoints` whose ``layout`` names the
keypoint layout, so the pipelines, oracles and evaluators take any of them.
"""

from __future__ import annotations

from pathlib import Path

from simplepose.data import coco
from simplepose.data.coco import CocoKeypoints
from simplepose.skeleton import layout_from_keypoint_names
from simplepose.utils.io import read_json

__all__ = ["load_annotations"]


def load_annotations(path, images_dir=None) -> CocoKeypoints:
    """Load an MPII, CrowdPose, OCHuman or COCO keypoint annotation file (module docstring).

    Args:
        path: the annotation file.
        images_dir: MPII only: where its images are (default: the file's folder); their sizes
            are read from the image headers.

    Raises:
        AnnotationError: naming the file, record and field, from the reader.
    """
    path = Path(path)
    data = read_json(path, "annotation")  # parsed once, handed to the reader
    if isinstance(data, list):
        from simplepose.data import mpii

        records, sizes = mpii._load_parsed(path, data, images_dir)
        return mpii.mpii_to_coco(records, sizes, path)
    if isinstance(data, dict) and isinstance(data.get("categories"), list):
        for cat in data["categories"]:
            names = cat.get("keypoints") if isinstance(cat, dict) else None
            layout = layout_from_keypoint_names(names) if isinstance(names, list) else None
            if layout is not None and layout.name == "crowdpose14":
                from simplepose.data import crowdpose

                return crowdpose._load_parsed(path, data)
    return coco._load_parsed(path, data)
