"""End-to-end demo speed on a video: the same threaded pipeline as ``demo.py`` (read | preprocess
+ network | assignment | draw + write an mp4 into a temp dir), with a per-stage breakdown.

  simplepose bench --input ../shared/data/demo/vtest.avi --json bench_demo.json \\
      [--box-size N] [--max-frames N]
  python bench/demo.py ...   # the same, from a clone

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
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from simplepose.cli.common import add_alias, int_at_least, parse_and_run
from simplepose.errors import InputError


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--input", required=True, help="video file")
    p.add_argument(
        "--json", required=True, help="output JSON (key 'fps' = end-to-end frames per second)"
    )
    p.add_argument(
        "--box-size", type=int_at_least(8), default=None, help="input height (default: the model's)"
    )
    every = int_at_least(0, "0: all")
    p.add_argument("--max-frames", type=every, default=200, metavar="N",
                   help="frames of each end-to-end pass (0: all); no frame beyond them is read")
    add_alias(p, "--frames", dest="max_frames", type=every)
    p.add_argument(
        "--threads",
        type=int_at_least(0, "0: fastest measured"),
        default=0,
        help="torch threads for the end-to-end pass (0: fastest measured)",
    )
    p.add_argument(
        "--no-channels-last", action="store_true", help="force NCHW in the end-to-end pass"
    )
    p.add_argument(
        "--workers",
        type=int_at_least(0, "0: auto"),
        nargs="+",
        default=[0],
        metavar="N",
        help="network workers of the end-to-end pass, as in the demo (0: the demo's automatic "
        "choice; workers > 1 use 1 torch thread each)",
    )
    p.add_argument("--compare-workers", type=int_at_least(0, "0: auto"), nargs="+", default=None,
                   metavar="N",
                   help="run one end-to-end pass per worker count, side by side (e.g. 1 2)")
    p.add_argument("--micro-repeats", type=int_at_least(0, "0: skip"), default=10,
                   help="network timings per variant (0: skip)")
    p.add_argument("--warmup", type=int_at_least(0), default=5,
                   help="frames run before timing (not counted)")
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
    return parse_and_run(build_parser(prog), argv, run)


def _check_video(source) -> None:
    if source.kind != "video":
        raise InputError(f"--input {source.name}: a video file is needed, not the {source.kind}")


def run(args) -> int:
    import torch

    from simplepose import demo as demo_lib
    from simplepose.utils.io import atomic_write_json, check_output_file

    if args.compare_workers is None and len(args.workers) > 1:  # old spelling: --workers 1 2
        args.compare_workers = args.workers
    worker_counts = args.compare_workers or args.workers[:1]
    check_output_file(args.json, "--json", inputs=[args.input])
    load_before = os.getloadavg()
    probe, predictor = demo_lib.open_run(
        args.input, max_frames=1, check=_check_video, box_size=args.box_size, device="cpu"
    )
    try:
        ok, frame = probe.capture.read()
    finally:
        probe.close()
    if not ok or frame is None:
        raise InputError(f"--input {args.input}: cannot read a frame (not a video?)")
    pipe = predictor.pipeline
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
        for requested in worker_counts:
            workers, n_threads = demo_lib.auto_workers(predictor, requested, args.threads)
            n_threads = n_threads or threads
            if args.warmup:
                src = demo_lib.open_source(args.input, max_frames=args.warmup)
                demo_lib.run_demo(
                    predictor,
                    src,
                    output=str(Path(tmp) / "warm.mp4"),
                    progress=False,
                    max_frames=args.warmup,
                    channels_last=channels_last,
                    threads=n_threads,
                    workers=workers,
                )
            source = demo_lib.open_source(args.input, max_frames=args.max_frames or None)
            out = Path(tmp) / f"bench_{workers}.mp4"
            report = demo_lib.run_demo(
                predictor,
                source,
                output=str(out),
                max_frames=args.max_frames or None,
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
    per_frame, threads = best_run["stage_ms_per_frame"], best_run["threads"]
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
    atomic_write_json(args.json, record)
    print(f"-> {args.json}")
    return 0

