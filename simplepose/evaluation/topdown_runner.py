"""Top-down evaluation loop: images + person boxes -> pipeline (or oracle) -> COCO results.

Typical use (what ``evaluate.py`` wires up)::

    ann = load_coco_keypoints(ann_path)
    boxes = gt_boxes(ann)                          # or load_detections(det_path, ann, 0.0)
    pipeline = TopDownPipeline.from_checkpoint(ckpt, device="cuda")
    run = evaluate_topdown(pipeline, ann, images_dir, boxes)
    metrics = run.evaluate(ann)                    # COCOeval on the images that were run

    run = evaluate_topdown(None, ann, None, "gt", codec="mspn_256x192")   # the oracle

Library code: it logs (and shows a tqdm bar when asked); the script prints.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from ..data.coco import CocoKeypoints
from ..errors import InputError

__all__ = ["TopDownRun", "evaluate_topdown"]

LOG = logging.getLogger(__name__)


@dataclass
class TopDownRun:
    """Outcome of :func:`evaluate_topdown`.

    Attributes:
        results: COCO keypoint result dicts (original px).
        image_ids: the images of the run (evaluate on these), sorted; skipped images are
            included, so their ground truth counts as missed rather than vanishing.
        skipped: ``(image_id, reason)`` of images that could not be read (``skip_bad=True``).
        num_boxes: boxes fed to the pipeline / oracle.
        seconds: wall time of the loop.
    """

    results: list[dict]
    image_ids: list[int]
    skipped: list[tuple[int, str]] = field(default_factory=list)
    num_boxes: int = 0
    seconds: float = 0.0

    def evaluate(self, ann: CocoKeypoints):
        """COCOeval (:func:`~simplepose.evaluation.coco.evaluate_keypoints`) restricted to
        :attr:`image_ids`; returns :class:`~simplepose.evaluation.coco.KeypointMetrics`."""
        from .coco import evaluate_keypoints

        return evaluate_keypoints(ann, self.results, image_ids=self.image_ids)


def evaluate_topdown(
    pipeline,
    ann: CocoKeypoints,
    images_dir,
    boxes,
    *,
    image_ids=None,
    skip_bad: bool = False,
    progress: bool = True,
    codec=None,
    flip: bool = False,
    padding=None,
) -> TopDownRun:
    """Run a top-down pipeline (or the oracle) over the images of ``boxes``.

    Args:
        pipeline: a :class:`~simplepose.inference.topdown.TopDownPipeline` (anything with
            ``predict(image_bgr, boxes_xywh, box_scores) -> list[Person]``), or ``None`` to
            run the top-down oracle (ground truth rendered as the network output; no image is
            read).
        ann: the annotations (image records; ground truth for the oracle).
        images_dir: folder of the images (``file_name`` of each image record); unused by the
            oracle.
        boxes: ``{image_id: (boxes_xywh (N, 4) original px, scores (N,))}`` from
            :func:`~simplepose.data.boxes.load_detections` or
            :func:`~simplepose.data.boxes.gt_boxes`; ``"gt"`` = ``gt_boxes(ann)`` (for the
            oracle, each GT box then renders exactly its own person).
        image_ids: restrict to these images (default: every key of ``boxes``).
        skip_bad: a missing or unreadable image is skipped (counted in one warning and listed
            in :attr:`TopDownRun.skipped`) instead of failing the run.
        progress: tqdm bar.
        codec, flip, padding: oracle only: codec (object or name, default
            ``"mspn_256x192"``), flip test, crop padding (as the pipeline's).

    Returns:
        :class:`TopDownRun`; ``run.evaluate(ann)`` scores it on the images that were run.

    Raises:
        InputError: a box image id that is not in ``ann``, or (``skip_bad=False``) an image
            that cannot be read, naming its id and path.
    """
    from tqdm import tqdm

    from ..data.boxes import gt_boxes

    use_gt = isinstance(boxes, str)
    if use_gt and boxes != "gt":
        raise InputError(
            f"boxes must be 'gt' or a {{image_id: (boxes, scores)}} dict, got {boxes!r}"
        )
    box_dict = gt_boxes(ann) if use_gt else boxes
    ids = sorted(box_dict) if image_ids is None else sorted(set(int(i) for i in image_ids))
    unknown = [i for i in ids if i not in ann.images]
    if unknown:
        raise InputError(f"{len(unknown)} box image id(s) are not in {ann.source}: {unknown[:10]}")
    missing_boxes = [i for i in ids if i not in box_dict]
    if missing_boxes:
        raise InputError(
            f"no boxes for {len(missing_boxes)} requested image(s): {missing_boxes[:10]}"
        )

    if pipeline is None:
        from ..codecs.topdown import build_codec
        from ..oracle.topdown import oracle_people

        if codec is None or isinstance(codec, str):
            codec = build_codec(codec or "mspn_256x192")
    elif images_dir is None:
        raise InputError("evaluate_topdown: images_dir is required to run a pipeline")

    start = time.perf_counter()
    results: list[dict] = []
    done: list[int] = []
    skipped: list[tuple[int, str]] = []
    num_boxes = 0
    desc = "top-down oracle" if pipeline is None else "top-down"
    for image_id in tqdm(ids, desc=desc, disable=not progress, unit="img"):
        b, s = box_dict[image_id]
        num_boxes += len(b)
        if pipeline is None:
            people = oracle_people(
                ann, image_id, codec, None if use_gt else b, None if use_gt else s,
                flip=flip, padding=padding,
            )  # fmt: skip
        else:
            if len(b) == 0:
                done.append(image_id)
                continue
            try:
                image = ann.read_image(image_id, images_dir)
            except InputError as exc:
                if not skip_bad:
                    raise InputError(
                        f"image {image_id}: {exc} (pass skip_bad=True to skip it)"
                    ) from exc
                skipped.append((image_id, str(exc)))
                done.append(image_id)  # still evaluated: its people count as misses
                continue
            people = pipeline.predict(image, b, s)
        results.extend(p.to_coco(image_id) for p in people)
        done.append(image_id)
    seconds = time.perf_counter() - start
    if skipped:
        LOG.warning(
            "evaluate_topdown: skipped %d of %d images that could not be read (first: %s)",
            len(skipped), len(ids), skipped[0][1],
        )  # fmt: skip
    LOG.info("evaluate_topdown: %d people from %d boxes on %d images in %.1f s",
             len(results), num_boxes, len(done), seconds)  # fmt: skip
    return TopDownRun(results=results, image_ids=sorted(done), skipped=skipped,
                      num_boxes=num_boxes, seconds=seconds)  # fmt: skip
