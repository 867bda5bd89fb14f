"""Tune the decoding defaults of ``openpose_mobilenet_thin``: input height x grouping thresholds.

The network maps of every image are computed once per input height (``box_size``) and cached
on disk (``--cache``, one ``.npy`` per image and size), so each grouping variant of the grid
costs only the C++ decode plus one COCOeval. The maps come from the same
``BottomUpPipeline.maps`` call that ``evaluate.py`` runs, so the row with the current
defaults reproduces ``evaluate.py --model openpose_mobilenet_thin --box-size N``.

  python bench/tune_openpose.py \
      --ann ../shared/data/coco/annotations/person_keypoints_val2017_subset.json \
      --images ../shared/data/coco/val2017 --sizes 256 320 368 432 --json tune.json

Grid values are set per field, e.g. ``--grid peak_threshold=0.05,0.1,0.15 min_parts=2,3``.
Prints one table row per (size, variant), sorted by AP, and the best variant per size.
Tune on the val *subset* only; there is no held-out split here, so a large grid overfits.

Besides AP, each row counts what the demo picture shows badly and AP barely sees:
``cross`` = COCO-skeleton limbs of a detection whose two keypoints lie on two different
annotated people, ``mixed`` = detections with keypoints on two or more people (a keypoint
"lies on" the person whose same keypoint is nearest, within 0.3 x sqrt(area)).

``--fit-priors`` prints ``GroupingParams.limb_length_priors`` for the model's layout from
the annotation (median length of each limb over labelled people of area >= 32^2, relative
to the median limb, left/right averaged) and exits; no network is run.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_GRID = {
    "peak_threshold": [0.05, 0.1, 0.15],
    "limb_sample_threshold": [0.05, 0.1],
    "limb_pass_ratio": [0.6, 0.8],
    "min_parts": [2, 4],
    "min_mean_score": [0.3, 0.45],
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--ann", required=True, help="COCO person-keypoint annotation JSON (the val subset)"
    )
    p.add_argument("--images", required=True, help="folder of its images")
    p.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[256, 320, 368, 432],
        help="input heights (box_size)",
    )
    p.add_argument(
        "--grid",
        nargs="*",
        default=None,
        help="FIELD=v1,v2,... GroupingParams values (default: a small grid)",
    )
    p.add_argument(
        "--cache",
        default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "simplepose_tune_cache"),
        help="folder of cached network maps",
    )
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument(
        "--max-frames", type=int, default=0, metavar="N", help="only the first N images (0: all)"
    )
    p.add_argument("--limit", type=int, dest="max_frames", help=argparse.SUPPRESS)  # old spelling
    p.add_argument("--json", help="write every row here")
    p.add_argument(
        "--fit-priors",
        action="store_true",
        help="print limb_length_priors fitted on --ann and exit",
    )
    return p.parse_args(argv)


def parse_grid(items) -> dict[str, list]:
    if not items:
        return dict(DEFAULT_GRID)
    grid = {}
    for item in items:
        key, _, values = item.partition("=")
        grid[key] = [
            int(v) if v.lstrip("-").isdigit() else float(v) for v in values.split(",") if v
        ]
    return grid


def cached_maps(pipeline, ann, images_dir, ids, size: int, cache: Path) -> dict:
    """{image_id: (maps (57, h, w) float32, geometry)} at input height ``size``; cached on disk."""
    from tqdm import tqdm

    from simplepose.data.coco import load_image

    pipeline.box_size = size
    tag = hashlib.sha1(f"{Path(images_dir).resolve()}|{size}".encode()).hexdigest()[:10]
    folder = cache / f"openpose_mobilenet_thin_{size}_{tag}"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for image_id in tqdm(ids, desc=f"maps @{size}", unit="img", file=sys.stdout):
        f = folder / f"{image_id}.npy"
        h, w = ann.image_size(image_id)
        if f.exists():
            maps = np.load(f)
            geometry = pipeline.geometry(w, h)
        else:
            maps, geometry = pipeline.maps(load_image(ann.image_path(image_id, images_dir)))
            np.save(f, maps.astype(np.float32))
        out[image_id] = (maps, geometry)
    return out


def cross_person(ann, image_id, people, radius: float = 0.3) -> tuple[int, int]:
    """(limbs joining two annotated people, detections spanning two or more people) of one
    image: each detected keypoint goes to the annotated person whose same keypoint is nearest
    in units of sqrt(area), if within ``radius``; limbs are COCO's skeleton."""
    from simplepose.skeleton import COCO_SKELETON

    gt = ann.keypoints_array(image_id)  # (G, 17, 3) original px
    if not len(gt) or not people:
        return 0, 0
    scale = np.sqrt([max(a.get("area", 1.0), 1.0) for a in ann.annotations_by_image[image_id]])
    cross = mixed = 0
    for person in people:
        k = person.keypoints
        d = (
            np.hypot(*(gt[:, :, :2] - k[None, :, :2]).transpose(2, 0, 1)) / scale[:, None]
        )  # (G, 17)
        d[gt[:, :, 2] <= 0] = np.inf
        owner = np.where((d.min(0) < radius) & (k[:, 2] > 0), d.argmin(0), -1)
        cross += sum(
            owner[a] >= 0 and owner[b] >= 0 and owner[a] != owner[b] for a, b in COCO_SKELETON
        )
        mixed += len(set(owner[owner >= 0].tolist())) > 1
    return int(cross), int(mixed)


def fit_priors(ann, layout) -> tuple[float, ...]:
    """Median length of each limb of ``layout`` over the labelled people of area >= 32^2
    (relative to sqrt(area)), left/right averaged, divided by the median limb."""
    from simplepose.codecs.bottomup import ABSENT, coco_to_internal

    lengths = [[] for _ in layout.limbs]
    for image_id in ann.image_ids:
        records = ann.annotations_by_image[image_id]
        if not records:
            continue
        joints = coco_to_internal(ann.keypoints_array(image_id), layout)
        for j, rec in enumerate(records):
            if rec.get("area", 0.0) < 32 * 32:
                continue
            for k, (a, b) in enumerate(layout.limbs):
                if joints[j, a, 2] < ABSENT and joints[j, b, 2] < ABSENT:
                    lengths[k].append(
                        np.hypot(*(joints[j, a, :2] - joints[j, b, :2])) / np.sqrt(rec["area"])
                    )
    if any(not v for v in lengths):
        raise SystemExit("tune_openpose.py: error: some limb is never labelled in --ann")
    med = np.array([np.median(v) for v in lengths])
    med = (med + med[list(layout.limb_flip)]) / 2.0  # a limb and its mirror alike
    return tuple(round(float(v), 2) for v in med / np.median(med))


def score(codec, maps: dict, params, ann) -> tuple[float, float, float, float, int, int]:
    """(AP, AP50, AR, decode ms/img, cross-person limbs, mixed detections) of one grouping
    variant on cached maps."""
    from simplepose.evaluation import evaluate_keypoints

    results, cross, mixed, ms = [], 0, 0, 0.0
    for image_id, (m, g) in maps.items():
        t0 = time.perf_counter()
        people = codec.decode(m, g, params)
        ms += (time.perf_counter() - t0) * 1e3
        c, x = cross_person(ann, image_id, people)
        cross, mixed = cross + c, mixed + x
        results.extend(p.to_coco(image_id) for p in people)
    metrics = evaluate_keypoints(ann, results, image_ids=list(maps))
    return metrics["AP"], metrics["AP50"], metrics["AR"], ms / max(len(maps), 1), cross, mixed


def main(argv=None) -> int:
    args = parse_args(argv)
    import contextlib
    import io

    import torch

    from simplepose import Predictor
    from simplepose.data.coco import load_coco_keypoints

    if args.threads:
        torch.set_num_threads(args.threads)
    ann = load_coco_keypoints(args.ann)
    ids = ann.image_ids[: args.max_frames] if args.max_frames else ann.image_ids
    # channels-last is markedly faster for the depthwise convs; same maps to float rounding
    predictor = Predictor.from_pretrained(
        "openpose_mobilenet_thin", device="cpu", channels_last=True
    )
    pipeline = predictor.pipeline
    if args.fit_priors:
        print(f"limb_length_priors={fit_priors(ann, pipeline.codec.layout)}")
        return 0
    base = pipeline.params
    grid = parse_grid(args.grid)
    keys = list(grid)
    variants = [dict(zip(keys, values)) for values in itertools.product(*grid.values())]
    print(f"{len(ids)} images, sizes {args.sizes}, {len(variants)} grouping variants; base {base}")

    rows = []
    for size in args.sizes:
        maps = cached_maps(pipeline, ann, args.images, ids, size, Path(args.cache))
        todo = [("default", {})] + [("grid", v) for v in variants]
        for kind, changes in todo:
            params = base.replace(**changes)
            with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its summary
                ap, ap50, ar, ms, cross, mixed = score(pipeline.codec, maps, params, ann)
            rows.append(
                dict(
                    box_size=size,
                    kind=kind,
                    AP=ap,
                    AP50=ap50,
                    AR=ar,
                    decode_ms=ms,
                    cross=cross,
                    mixed=mixed,
                    **params.to_dict(),
                )
            )
            print(
                f"  {size:4d} {kind:7s} AP {ap:.4f} AP50 {ap50:.3f} AR {ar:.3f} "
                f"cross {cross:3d} mixed {mixed:3d} "
                f"decode {ms:5.1f} ms  {changes}",
                flush=True,
            )

    cols = ["box_size", "AP", "AP50", "AR", "cross", "mixed", "decode_ms", *keys]
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in sorted(rows, key=lambda r: -r["AP"])[:25]:
        print(
            "| "
            + " | ".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols)
            + " |"
        )
    print("\nbest per size (default params in brackets):")
    for size in args.sizes:
        sized = [r for r in rows if r["box_size"] == size]
        best = max(sized, key=lambda r: r["AP"])
        default = next(r for r in sized if r["kind"] == "default")
        print(
            f"  {size}: AP {best['AP']:.3f} [{default['AP']:.3f}] with "
            + ", ".join(f"{k}={best[k]}" for k in keys)
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"grid": grid, "rows": rows}, indent=1))
        print(f"rows -> {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
