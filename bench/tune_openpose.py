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
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ann", required=True, help="COCO person-keypoint annotation JSON (the val subset)")
    p.add_argument("--images", required=True, help="folder of its images")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 320, 368, 432], help="input heights (box_size)")
    p.add_argument("--grid", nargs="*", default=None, help="FIELD=v1,v2,... GroupingParams values (default: a small grid)")
    p.add_argument("--cache", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "simplepose_tune_cache"),
                   help="folder of cached network maps")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument("--max-frames", type=int, default=0, metavar="N", help="only the first N images (0: all)")
    p.add_argument("--limit", type=int, dest="max_frames", help=argparse.SUPPRESS)  # old spelling
    p.add_argument("--json", help="write every row here")
    return p.parse_args(argv)


def parse_grid(items) -> dict[str, list]:
    if not items:
        return dict(DEFAULT_GRID)
    grid = {}
    for item in items:
        key, _, values = item.partition("=")
        grid[key] = [int(v) if v.lstrip("-").isdigit() else float(v) for v in values.split(",") if v]
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


def score(codec, maps: dict, params, ann) -> tuple[float, float, float, int]:
    """(AP, AP50, AR, decode ms/img) of one grouping variant on cached maps."""
    from simplepose.evaluation import evaluate_keypoints

    results = []
    t0 = time.perf_counter()
    for image_id, (m, g) in maps.items():
        results.extend(p.to_coco(image_id) for p in codec.decode(m, g, params))
    ms = (time.perf_counter() - t0) * 1e3 / max(len(maps), 1)
    metrics = evaluate_keypoints(ann, results, image_ids=list(maps))
    return metrics["AP"], metrics["AP50"], metrics["AR"], ms


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
    predictor = Predictor.from_pretrained("openpose_mobilenet_thin", device="cpu", channels_last=True)
    pipeline = predictor.pipeline
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
                ap, ap50, ar, ms = score(pipeline.codec, maps, params, ann)
            rows.append(dict(box_size=size, kind=kind, AP=ap, AP50=ap50, AR=ar, decode_ms=ms, **params.to_dict()))
            print(f"  {size:4d} {kind:7s} AP {ap:.3f} AP50 {ap50:.3f} AR {ar:.3f} decode {ms:5.1f} ms  {changes}", flush=True)

    cols = ["box_size", "AP", "AP50", "AR", "decode_ms"] + keys
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in sorted(rows, key=lambda r: -r["AP"])[:25]:
        print("| " + " | ".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")
    print("\nbest per size (default params in brackets):")
    for size in args.sizes:
        sized = [r for r in rows if r["box_size"] == size]
        best = max(sized, key=lambda r: r["AP"])
        default = next(r for r in sized if r["kind"] == "default")
        print(f"  {size}: AP {best['AP']:.3f} [{default['AP']:.3f}] with " + ", ".join(f"{k}={best[k]}" for k in keys))
    if args.json:
        Path(args.json).write_text(json.dumps({"grid": grid, "rows": rows}, indent=1))
        print(f"rows -> {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
