"""Bottom-up decode speed: C++ assignment vs the pure-Python reference, side by side.

On the oracle maps of every image of an annotation file (50 SimplePose channels at the
inference resolution: input height 512), times the full post-network decode -- splitting the
maps, peak finding, limb scoring, assembly, mapping to COCO-17 in original px -- once per
image with each backend, interleaved so that machine noise hits both alike. Prints
median / p90 ms per image, the speed ratio and a time-vs-people table, writes JSON and a
PNG plot.

  python bench/grouping.py --ann ../shared/data/coco/annotations/person_keypoints_val2017_subset.json --json bench.json

Note: the reference is the test oracle, written for reading: its peak scan visits every
heatmap cell in Python. The ratio is C++ vs that plain-Python definition.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ann", required=True, help="COCO person-keypoint annotation JSON")
    p.add_argument("--json", required=True, help="output JSON")
    p.add_argument("--plot", help="output PNG (default: <json stem>.png)")
    p.add_argument("--cpp-repeats", type=int, default=5, help="C++ timings per image (median kept)")
    p.add_argument("--max-frames", type=int, default=0, metavar="N", help="only the first N images (0: all)")
    p.add_argument("--limit", type=int, dest="max_frames", help=argparse.SUPPRESS)  # old spelling
    return p.parse_args(argv)


def time_call(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3, out


def people_table(counts, cpp_ms, ref_ms) -> list[dict]:
    bins = [(0, 0), (1, 1), (2, 3), (4, 7), (8, 15), (16, 10_000)]
    rows = []
    for lo, hi in bins:
        sel = (counts >= lo) & (counts <= hi)
        if sel.any():
            label = f"{lo}" if lo == hi else (f"{lo}-{hi}" if hi < 10_000 else f">={lo}")
            rows.append({
                "people": label, "images": int(sel.sum()),
                "cpp_median_ms": float(np.median(cpp_ms[sel])), "reference_median_ms": float(np.median(ref_ms[sel])),
            })  # fmt: skip
    return rows


def save_plot(path, counts, cpp_ms, ref_ms) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    ax.scatter(counts, ref_ms, s=14, label="Python reference", color="tab:orange")
    ax.scatter(counts, cpp_ms, s=14, label="C++ (simplepose._grouping)", color="tab:blue")
    ax.set_yscale("log")
    ax.set_xlabel("people in the decoded image")
    ax.set_ylabel("full decode time per image (ms, log)")
    ax.set_title("Bottom-up decode on oracle maps (stride 4, height 512)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    from simplepose.codecs.bottomup import SimplePoseCodec
    from simplepose.data.coco import load_coco_keypoints
    from simplepose.decode.params import GroupingParams
    from simplepose.errors import SimplePoseError
    from simplepose.oracle.bottomup import render_oracle_sample
    from simplepose.utils.io import atomic_write_json

    try:
        ann = load_coco_keypoints(args.ann)
    except (SimplePoseError, FileNotFoundError) as exc:
        print(f"bench/grouping.py: error: {exc}", file=sys.stderr)
        return 2
    codec, params = SimplePoseCodec(), GroupingParams()
    ids = ann.image_ids[: args.max_frames] if args.max_frames else ann.image_ids
    cpp_ms, ref_ms, counts = [], [], []
    from tqdm import tqdm

    warm = render_oracle_sample(ann, ids[0], codec)
    codec.decode(warm.maps, warm.geometry)  # loads the extension outside the timings
    for image_id in tqdm(ids, desc="decode", unit="img"):
        sample = render_oracle_sample(ann, image_id, codec)
        maps, geometry = sample.maps, sample.geometry
        t_cpp, people = time_call(lambda: codec.decode(maps, geometry, params, "cpp"), args.cpp_repeats)  # noqa: B023
        t_ref, ref_people = time_call(lambda: codec.decode(maps, geometry, params, "reference"), 1)  # noqa: B023
        if len(people) != len(ref_people):
            print(f"warning: image {image_id}: C++ and reference disagree ({len(people)} vs {len(ref_people)} people)")
        cpp_ms.append(t_cpp)
        ref_ms.append(t_ref)
        counts.append(len(people))
    cpp_ms, ref_ms, counts = np.array(cpp_ms), np.array(ref_ms), np.array(counts)
    summary = {
        "images": len(ids),
        "cpp_median_ms": float(np.median(cpp_ms)),
        "cpp_p90_ms": float(np.percentile(cpp_ms, 90)),
        "reference_median_ms": float(np.median(ref_ms)),
        "reference_p90_ms": float(np.percentile(ref_ms, 90)),
        "speedup": float(np.median(ref_ms) / np.median(cpp_ms)),
        "speedup_total_time": float(ref_ms.sum() / cpp_ms.sum()),
        "by_people": people_table(counts, cpp_ms, ref_ms),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "decode": "stride-4 maps, single scale, no flip; split + peaks + limbs + assembly + COCO mapping",
    }
    print(f"images: {len(ids)}")
    print(f"C++       median {summary['cpp_median_ms']:8.3f} ms   p90 {summary['cpp_p90_ms']:8.3f} ms")
    print(f"reference median {summary['reference_median_ms']:8.3f} ms   p90 {summary['reference_p90_ms']:8.3f} ms")
    print(f"speedup (median ratio) {summary['speedup']:.1f}x   (total time ratio {summary['speedup_total_time']:.1f}x)")
    print(f"{'people':>8} {'images':>7} {'C++ ms':>9} {'ref ms':>10}")
    for row in summary["by_people"]:
        print(f"{row['people']:>8} {row['images']:>7} {row['cpp_median_ms']:9.3f} {row['reference_median_ms']:10.2f}")
    plot = args.plot or str(Path(args.json).with_suffix(".png"))
    save_plot(plot, counts, cpp_ms, ref_ms)
    atomic_write_json(args.json, summary, indent=2)
    print(f"json -> {args.json}\nplot -> {plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
