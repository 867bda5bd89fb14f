"""Bottom-up data pipeline speed: full training samples/s in ONE process, side by side with a
plain numpy rendering of the same targets.

For each of ``--samples`` samples (cycling through the dataset, one epoch per pass, so every
pass draws new augmentations), in one interleaved loop:

1. the full ``BottomUpDataset.__getitem__`` at 512 x 512 input: image read + decode (or LRU
   hit for a repeated image), HSV tint, one affine warp of image + person mask, mask_miss,
   the 50 target channels (numba renderers), float32 CHW conversion;
2. the baseline: the same 50 targets (same joints, same mask) rendered the plain way the
   reference does it -- for every person and every joint / limb, the formula evaluated on
   the whole 128 x 128 grid with numpy, no windows -- single-threaded numpy;
3. our target stage alone on the same joints, for the like-for-like targets ratio.

Prints samples/s of each, the ratio, the per-stage breakdown, and writes JSON with
``samples_per_s``, ``baseline_targets_per_s``, ``ratio`` (= samples_per_s /
baseline_targets_per_s: the whole pipeline against the baseline's targets alone) and
``stages_ms`` (mean ms per sample: decode, warp, masks, targets), plus extra diagnostics:
``cpu_samples_per_s`` (samples per CPU-second of this process, which a machine shared
with other jobs does not inflate), the targets-only ratio and the max difference between
the baseline and our targets.

  python bench/data.py \\
      --ann ../shared/data/coco/annotations/person_keypoints_train2017_subset.json \\
      --images ../shared/data/coco/train2017 --json data_bench.json --samples 200

OpenCV runs single-threaded by default (``--cv2-threads 1``), as in a DataLoader worker
whose parent called ``cv2.setNumThreads(0)``: the figure is per CPU process.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--ann", required=True, help="COCO person-keypoint annotation JSON")
    p.add_argument("--images", required=True, help="image folder")
    p.add_argument("--json", required=True, help="output JSON")
    p.add_argument("--samples", type=int, default=200, help="samples to time")
    p.add_argument("--input-size", type=int, default=512)
    p.add_argument("--cv2-threads", type=int, default=1, help="cv2.setNumThreads (0: default)")
    p.add_argument("--no-augment", action="store_true", help="centre/scale only")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- baseline
def baseline_targets(codec, joints: np.ndarray, out_hw, person_mask: np.ndarray) -> np.ndarray:
    """The plain reference-style rendering: per person, per joint / limb, numpy over the full
    grid (no windows), float64. Same channels and combine rules as ``codec`` (the keypoint
    Gaussians are not cut at the 0.015 window, so values below 0.015 outside it differ)."""
    layout = codec.layout
    h, w = out_hw
    stride = codec.stride
    off = (stride - 1) / 2.0
    xs = off + stride * np.arange(w, dtype=np.float64)[None, :]
    ys = off + stride * np.arange(h, dtype=np.float64)[:, None]
    labelled = joints[..., 2] < 2
    out = np.zeros((layout.num_limbs + layout.num_keypoints + 2, h, w), dtype=np.float64)
    # limbs
    inv_l = -1.0 / (2.0 * codec.limb_sigma**2)
    for k, (a, b) in enumerate(layout.limbs):
        acc = np.zeros((h, w))
        cnt = np.zeros((h, w))
        for n in range(joints.shape[0]):
            if not (labelled[n, a] and labelled[n, b]):
                continue
            (x1, y1), (x2, y2) = joints[n, a, :2], joints[n, b, :2]
            if x1 == x2 and y1 == y2:
                continue
            dx, dy = x2 - x1, y2 - y1
            dist = np.abs(dx * (ys - y1) - dy * (xs - x1)) / (math.hypot(dx, dy) + 1e-6)
            g = np.exp(inv_l * dist**2)
            g[g <= codec.limb_threshold] = codec.limb_floor
            m = stride  # paf_thre: one stride around the endpoints' box
            inside = ((xs >= min(x1, x2) - m) & (xs <= max(x1, x2) + m)
                      & (ys >= min(y1, y2) - m) & (ys <= max(y1, y2) + m))  # fmt: skip
            g = np.where(inside, g, 0.0)
            if codec.limb_combine == "mean":
                acc += g
                cnt += inside
            else:
                np.maximum(acc, g, out=acc)
        if codec.limb_combine == "mean":
            np.divide(acc, cnt, out=acc, where=cnt > 0)
        out[k] = acc
    # keypoints
    inv_k = -1.0 / (2.0 * codec.keypoint_sigma**2)
    base = layout.num_limbs
    for n in range(joints.shape[0]):
        for k in range(layout.num_keypoints):
            if labelled[n, k]:
                x, y = joints[n, k, :2]
                g = np.exp(inv_k * ((xs - x) ** 2 + (ys - y) ** 2))
                np.maximum(out[base + k], g, out=out[base + k])
    out[base + layout.num_keypoints] = person_mask
    out[-1] = out[base : base + layout.num_keypoints].max(axis=0)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    args = parse_args(argv)
    import cv2

    from simplepose.codecs.render_numba import HAVE_NUMBA, encode_simplepose
    from simplepose.data.bottomup_dataset import BottomUpDataset

    if args.cv2_threads > 0:
        cv2.setNumThreads(args.cv2_threads)
    ds = BottomUpDataset(args.ann, args.images, input_size=args.input_size,
                         augment=not args.no_augment, profile=True)  # fmt: skip
    if len(ds) == 0:
        print("no samples", file=sys.stderr)
        return 1
    o = ds.out_size
    ds[0]  # warm-up: numba compilation, imports
    ds.stage_ms.clear()
    ds.stage_cpu_ms.clear()
    full, cpu, base, ours, diffs = [], [], [], [], []
    for n in range(args.samples):
        idx, epoch = n % len(ds), 1 + n // len(ds)
        c0 = time.process_time()
        t0 = time.perf_counter()
        sample = ds[(epoch, idx)]
        t1 = time.perf_counter()
        cpu.append(time.process_time() - c0)
        draw = ds.sample_aug(idx, epoch)
        joints = ds.joints_in_input(idx, sample["matrix"], draw.flip)
        mask = sample["targets"][48]
        t2 = time.perf_counter()
        ref = baseline_targets(ds.codec, joints, (o, o), mask)
        t3 = time.perf_counter()
        encode_simplepose(ds.codec, joints, (o, o), mask)
        t4 = time.perf_counter()
        full.append(t1 - t0)
        base.append(t3 - t2)
        ours.append(t4 - t3)
        diffs.append(float(np.abs(ref - sample["targets"]).max()))
    full, base, ours = (np.asarray(v) for v in (full, base, ours))
    names = ("decode", "warp", "masks", "targets")
    stages = {k: round(ds.stage_ms.get(k, 0.0) / args.samples, 3) for k in names}
    stages_cpu = {k: round(ds.stage_cpu_ms.get(k, 0.0) / args.samples, 3) for k in names}
    summary = {
        "samples_per_s": args.samples / full.sum(),
        "baseline_targets_per_s": args.samples / base.sum(),
        "ratio": float(base.sum() / full.sum()),
        "stages_ms": stages,
        "stages_cpu_ms": stages_cpu,
        "cpu_samples_per_s": args.samples / sum(cpu),
        "targets_per_s": args.samples / ours.sum(),
        "targets_speedup_vs_baseline": float(base.sum() / ours.sum()),
        "sample_ms_median": float(np.median(full) * 1e3),
        "sample_ms_p90": float(np.percentile(full, 90) * 1e3),
        "baseline_ms_median": float(np.median(base) * 1e3),
        "max_abs_diff_vs_baseline": float(max(diffs)),
        "samples": args.samples,
        "dataset_samples": len(ds),
        "input_size": args.input_size,
        "augment": not args.no_augment,
        "renderer": ds.renderer if HAVE_NUMBA else "numpy",
        "cv2_threads": cv2.getNumThreads(),
        "image_cache": {"hits": ds._image_cache.hits, "misses": ds._image_cache.misses},
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "loadavg_1min": os.getloadavg()[0], "numpy": np.__version__,
                    "opencv": cv2.__version__},
    }
    print(f"full sample ({args.input_size}px, targets):  {summary['samples_per_s']:8.1f} samples/s "
          f"(median {summary['sample_ms_median']:.2f} ms, p90 {summary['sample_ms_p90']:.2f} ms)")
    print(f"  per CPU-second of this process: {summary['cpu_samples_per_s']:8.1f} samples/s "
          f"(wall figures include time lost to other processes on a loaded machine)")
    print(f"baseline targets only (plain numpy):  {summary['baseline_targets_per_s']:8.1f} /s "
          f"(median {summary['baseline_ms_median']:.2f} ms)")
    print(f"ratio full pipeline / baseline targets: {summary['ratio']:.2f}x")
    print(f"our targets only: {summary['targets_per_s']:.1f} /s = "
          f"{summary['targets_speedup_vs_baseline']:.1f}x the baseline "
          f"(max |diff| {summary['max_abs_diff_vs_baseline']:.4f}: the baseline's unwindowed "
          f"Gaussian tails)")
    print("stages (mean wall ms/sample): " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))
    print("stages (mean CPU ms/sample):  "
          + ", ".join(f"{k} {v:.2f}" for k, v in stages_cpu.items()))
    print(f"1-min load average during the run: {summary['machine']['loadavg_1min']:.2f} "
          f"on {os.cpu_count()} cores")
    Path(args.json).write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
