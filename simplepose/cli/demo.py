"""Run a pose model on an image, a folder of images, a video or a webcam and draw the people.

  simplepose demo --input assets/sample_group.jpg --output pose.jpg
  simplepose demo --input assets/ --output assets_pose/ --json people.json
  simplepose demo --input ../shared/data/demo/vtest.avi --output vtest_pose.mp4 --box-size 320
  simplepose demo --input webcam:0 --max-frames 300                     # shows a window
  simplepose demo --input ../shared/data/demo/vtest.avi --output vt.mp4 --json vt.jsonl --realtime
  simplepose demo --input VIDEO --checkpoint CKPT.safetensors --json people.json
  simplepose demo --input VIDEO --checkpoint CKPT.safetensors --output out.mp4  # top-down CKPT:
                                        # the bundled person detector finds the boxes

(VIDEO: a video of yours; CKPT: a checkpoint written by ``simplepose train`` or
``simplepose convert``. ``python demo.py`` takes the same options.)

Default model: the bundled ``openpose_mobilenet_thin``. Videos run as a threaded pipeline
(read | preprocess + network | assignment | track + draw + write); see :mod:`simplepose.demo`.
Without ``--output`` or ``--json`` the result is shown in a window, when there is a display.
Videos and webcams are tracked (stable ids and colours, smoothed keypoints) unless
``--no-track``; ``--realtime`` runs the network on keyframes and optical flow in between. The
video is written as H.264 ``.mp4`` (VP9 for ``.webm``); ``--json X.jsonl`` streams one JSON line
per frame (a killed run keeps what it wrote), ``--json X.json`` writes one list at the end.

Exit codes: 0 every frame processed; 1 some images of a folder could not be read (the rest
were processed and written; the bad ones are listed), or a video ended before the frame count
of its header (truncated; the frames decoded were processed and written); 2 an error stopped
the run (bad arguments, missing input, unopenable video or webcam, missing output folder, ...); 130
interrupted with Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys

from simplepose.cli.common import (
    EXIT_OK,
    EXIT_PARTIAL,
    add_max_frames,
    add_shift_ratios,
    float_in,
    int_at_least,
    parse_and_run,
)


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--input", required=True, help="image file, folder of images, video file, or webcam:N"
    )
    p.add_argument("--output", help="annotated image / folder / video (.mp4) to write")
    p.add_argument("--json", help="per-frame people JSON to write")
    p.add_argument(
        "--show",
        action="store_true",
        help="show the result in a window (the default when neither --output nor --json is given)",
    )
    m = p.add_mutually_exclusive_group()
    m.add_argument(
        "--model",
        help="bundled model (default: openpose_mobilenet_thin) or an ONNX file "
        "written by 'simplepose export'",
    )
    m.add_argument(
        "--checkpoint", help="simplepose checkpoint (bottom-up or top-down) or ONNX export"
    )
    p.add_argument("--mode", choices=["bottomup", "topdown"], help="check the checkpoint's kind")
    p.add_argument(
        "--detector",
        help="person detector ONNX for top-down models (default: the bundled RTMDet-nano)",
    )
    p.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)"
    )
    p.add_argument("--backend", choices=["torch", "onnxruntime"], default=None,
                   help="inference backend (default: onnxruntime for a .onnx file, else torch; "
                        "onnxruntime with a model name or checkpoint exports it first)")
    p.add_argument("--box-size", type=int_at_least(8), default=None,
                   help="bottom-up input height (default: the model's)")
    add_shift_ratios(p)
    p.add_argument("--kpt-threshold", type=float_in(0.0, 1.0), default=0.2,
                   help="hide keypoints scored below this")
    p.add_argument("--boxes", action="store_true", help="draw person boxes")
    p.add_argument("--no-hud", action="store_true", help="no people count / fps overlay")
    add_max_frames(p, "frames (images of a folder)")
    p.add_argument("--threads", type=int_at_least(0, "0: torch default"), default=0,
                   help="torch CPU threads (0: torch default)")
    p.add_argument(
        "--workers",
        type=int_at_least(0, "0: auto"),
        default=0,
        help="video: concurrent network workers, 1 torch thread each "
        "(0: auto = 1; try 2 on a busy CPU)",
    )
    p.add_argument(
        "--no-channels-last", action="store_true", help="keep the network in NCHW layout"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--track", action=argparse.BooleanOptionalAction, default=None,
                   help="stable track ids, colours and smoothing "
                        "(default: on for videos and webcams)")
    p.add_argument("--realtime", action="store_true",
                   help="video/webcam: network on keyframes in its own thread, "
                        "optical flow in between")
    p.add_argument("--keyframe-interval", type=int_at_least(1), default=None,
                   help="--realtime on a file: most frames carried by flow per keyframe "
                        "(default 5)")
    return p


def main(argv=None, prog: str | None = None) -> int:
    return parse_and_run(build_parser(prog), argv, run)


def run(args) -> int:
    from simplepose import demo as demo_lib
    from simplepose.errors import InputError

    if args.shift_ratios is not None:
        from simplepose.codecs.topdown import check_shift_ratios

        args.shift_ratios = check_shift_ratios(args.shift_ratios, "--shift-ratios")
    if args.realtime and args.track is False:
        raise InputError(
            "--realtime tracks the people between keyframes: it cannot run with --no-track"
        )

    def check(_source) -> None:
        args.show = decide_window(args)

    source, predictor = demo_lib.open_run(
        args.input, args.max_frames, args.output, args.json, check=check,
        model=args.model, checkpoint=args.checkpoint, mode=args.mode, detector=args.detector,
        device=args.device, box_size=args.box_size, backend=args.backend,
        shift_ratios=args.shift_ratios,
    )  # fmt: skip
    report = demo_lib.run_demo(
        predictor, source, output=args.output, json_path=args.json,
        kpt_threshold=args.kpt_threshold, draw_boxes=args.boxes, hud=not args.no_hud,
        max_frames=args.max_frames, progress=not args.quiet,
        channels_last=False if args.no_channels_last else None, threads=args.threads,
        workers=args.workers, show=args.show, track=args.track, realtime=args.realtime,
        keyframe_interval=args.keyframe_interval,
    )  # fmt: skip
    print(summary(report))
    if args.realtime:
        dropped = f", {report.dropped} stale frame(s) dropped" if report.dropped else ""
        print(f"real time: {report.fps:.1f} fps output, network on {report.keyframes} of "
              f"{report.frames} frames{dropped}")
    if report.frames and not args.quiet:
        per = report.per_frame_ms()
        stages = ", ".join(f"{k} {v:.1f}" for k, v in per.items() if v > 0)
        print(f"per frame (ms, stages overlap): {stages}")
    if report.truncated:
        print(f"warning: {report.truncated} (frames from {report.frames} on are missing)",
              file=sys.stderr)
        return EXIT_PARTIAL
    if report.bad:
        print(f"{len(report.bad)} unreadable image(s) skipped:", file=sys.stderr)
        for line in report.bad:
            print(f"  {line}", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def decide_window(args) -> bool:
    """``--show``, or no ``--output``/``--json``: a window, where one can be shown."""
    if not args.show and (args.output or args.json):
        return False
    from simplepose.demo.sinks import display_problem
    from simplepose.errors import InputError

    problem = display_problem()
    if problem and args.show:
        raise InputError(f"--show: cannot show a window: {problem}")
    if problem:
        raise InputError(
            "nothing to do: give --output FILE and/or --json FILE "
            f"(a window needs a display: {problem})"
        )
    return True


def summary(report, shown: int = 3) -> str:
    """What the run did, and where it wrote: every file, or the first ``shown`` and a count."""
    head = f"{report.frames} frame(s), {report.people} people, {report.fps:.1f} fps"
    lines = [f"{head}; wrote {len(report.outputs)} file(s)"]
    listed = report.outputs if len(report.outputs) <= shown + 1 else report.outputs[:shown]
    lines += [f"  -> {path}" for path in listed]
    if len(listed) < len(report.outputs):
        lines.append(f"  ... and {len(report.outputs) - len(listed)} more")
    return "\n".join(lines)

