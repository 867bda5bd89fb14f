"""End-to-end demo speed on a video: the same threaded pipeline as ``demo.py`` (read | preprocess
+ network | assignment | draw + write an mp4 into a temp dir), with a per-stage breakdown.

  python bench/demo.py --input ../shared/data/demo/vtest.avi --json OUT.json \
      [--box-size N] [--frames N]

First, a side-by-side network micro-benchmark on one frame of the video: NCHW vs
channels-last layout x ``torch.set_num_threads`` choices, all under ``torch.inference_mode()``,
interleaved round-robin so that machine noise hits every variant alike; the fastest variant
(or ``--threads`` / ``--no-channels-last``) then runs the end-to-end pass.

Stage times are each stage thread's busy ms per frame; the stages overlap, so their sum can
exceed 1000 / fps. The machine's load average is recorded next to the numbers: on a shared
machine compare ratios measured in one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--input", required=True, help="video file")
    p.add_argument(
        "--json", required=True, help="output JSON (key 'fps' = end-to-end frames per second)"
    )
    p.add_argument("--box-size", type=int, default=None, help="input height (default: the model's)")
    p.add_argument("--frames", type=int, default=200, help="frames of the end-to-end pass (0: all)")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads for the end-to-end pass (0: fastest measured)",
    )
    p.add_argument(
        "--no-channels-last", action="store_true", help="force NCHW in the end-to-end pass"
    )
    p.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 2],
        help="network worker counts to run end to end (workers > 1 use 1 torch thread each)",
    )
    p.add_argument(
        "--micro-repeats", type=int, default=10, help="network timings per variant (0: skip)"
    )
    p.add_argument("--warmup", type=int, default=5, help="frames run before timing (not counted)")
    return p


def micro_benchmark(box_size, frame, repeats: int) -> list[dict]:
    """Network ms (the predictor's ``forward`` step) on one frame for NCHW / channels-last x
    thread counts, interleaved."""
    import torch

    from simplepose import demo as demo_lib

    # one predictor per layout: switching a model's layout in place re-packs every weight
    predictors = {
        cl: demo_lib.build_predictor(box_size=box_size, device="cpu") for cl in (False, True)
    }
    for cl, predictor in predictors.items():
        predictor.pipeline.set_channels_last(cl)
    inputs = predictors[False].prepare(frame)
    cores = os.cpu_count() or 1
    variants = [(cl, t) for cl in (False, True) for t in sorted({1, cores})]
    times = {v: [] for v in variants}
    for _ in range(repeats + 1):  # first round is warm-up
        for cl, threads in variants:
            torch.set_num_threads(threads)
            t0 = time.perf_counter()
            predictors[cl].forward(inputs)
            times[(cl, threads)].append((time.perf_counter() - t0) * 1e3)
    return [
        {
            "channels_last": cl,
            "threads": t,
            "median_ms": statistics.median(v[1:]),
            "min_ms": min(v[1:]),
        }
        for (cl, t), v in times.items()
    ]


def main(argv=None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    import cv2
    import torch

    from simplepose import demo as demo_lib

    load_before = os.getloadavg()
    predictor = demo_lib.build_predictor(box_size=args.box_size, device="cpu")
    pipe = predictor.pipeline
    cap = cv2.VideoCapture(args.input)
    ok, frame = cap.read()
    cap.release()
    if not ok:
        print(f"{parser.prog}: error: cannot read a frame of {args.input}", file=sys.stderr)
        return 2
    geometry = pipe.geometry(frame.shape[1], frame.shape[0])
    print(
        f"video {args.input} {frame.shape[1]}x{frame.shape[0]} -> network input "
        f"{geometry.pad_w}x{geometry.pad_h} (box_size {pipe.box_size}); "
        f"torch {torch.__version__}, {os.cpu_count()} cores, load {load_before}"
    )

    micro = micro_benchmark(args.box_size, frame, args.micro_repeats) if args.micro_repeats else []
    for row in micro:
        print(
            f"  network {'channels-last' if row['channels_last'] else 'NCHW         '} "
            f"threads {row['threads']}: "
            f"median {row['median_ms']:7.1f} ms  min {row['min_ms']:7.1f} ms"
        )
    best = (
        min(micro, key=lambda r: r["median_ms"])
        if micro
        else {"channels_last": True, "threads": os.cpu_count()}
    )
    if micro:
        nchw = min(r["median_ms"] for r in micro if not r["channels_last"])
        cl = min(r["median_ms"] for r in micro if r["channels_last"])
        print(f"  channels-last speed-up (best thread count each): x{nchw / cl:.2f}")
    channels_last = False if args.no_channels_last else best["channels_last"]
    threads = args.threads or best["threads"]

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in args.workers:
            n_threads = 1 if workers > 1 else threads
            if args.warmup:
                src = demo_lib.open_source(args.input, max_frames=args.warmup)
                demo_lib.run_demo(
                    predictor,
                    src,
                    output=str(Path(tmp) / "warm.mp4"),
                    progress=False,
                    channels_last=channels_last,
                    threads=n_threads,
                    workers=workers,
                )
            source = demo_lib.open_source(args.input, max_frames=args.frames or None)
            out = Path(tmp) / f"bench_{workers}.mp4"
            report = demo_lib.run_demo(
                predictor,
                source,
                output=str(out),
                max_frames=args.frames or None,
                channels_last=channels_last,
                threads=n_threads,
                workers=workers,
            )
            written = out.stat().st_size if out.exists() else 0
            per_frame = report.per_frame_ms()
            runs.append(
                {
                    "workers": workers,
                    "threads": n_threads,
                    "fps": report.fps,
                    "frames": report.frames,
                    "seconds": report.seconds,
                    "people": report.people,
                    "stage_ms_per_frame": per_frame,
                    "video_bytes": written,
                    "load_after": os.getloadavg(),
                }
            )
            print(
                f"\nend to end, {workers} network worker(s) x {n_threads} thread(s): "
                f"{report.frames} frames in {report.seconds:.1f} s = {report.fps:.2f} fps "
                f"(channels_last={channels_last}, {report.people} people, "
                f"video {written / 1e6:.1f} MB)"
            )
            print(
                "  stage busy time, ms/frame: "
                + ", ".join(f"{k} {v:.1f}" for k, v in per_frame.items())
            )
    best_run = max(runs, key=lambda r: r["fps"])
    load_after = os.getloadavg()
    print(f"\nbest: {best_run['fps']:.2f} fps with {best_run['workers']} worker(s); "
          f"load average before {load_before}, after {load_after}")
    report, per_frame, threads = None, best_run["stage_ms_per_frame"], best_run["threads"]
    record = {
        "fps": best_run["fps"],
        "frames": best_run["frames"],
        "seconds": best_run["seconds"],
        "people": best_run["people"],
        "workers": best_run["workers"],
        "stage_ms_per_frame": per_frame,
        "runs": runs,
        "box_size": pipe.box_size,
        "network_input": [geometry.pad_w, geometry.pad_h],
        "channels_last": channels_last,
        "threads": threads,
        "micro_benchmark": micro,
        "load_before": load_before,
        "load_after": load_after,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "input": args.input,
    }
    Path(args.json).write_text(json.dumps(record, indent=2))
    print(f"-> {args.json}")
    return 0

