"""Run a pose model on an image, a folder of images, a video or a webcam and draw the people.

  python demo.py --input photo.jpg --output photo_pose.jpg
  python demo.py --input photos/ --output photos_pose/ --json people.json
  # ~13 fps on 2 cores:
  python demo.py --input ../shared/data/demo/vtest.avi --output vtest_pose.mp4 --box-size 320
  python demo.py --input webcam:0 --output cam.mp4 --max-frames 300
  python demo.py --input clip.mp4 --checkpoint imhn.safetensors      # bottom-up checkpoint
  python demo.py --input clip.mp4 --mode topdown --checkpoint rsn18.safetensors \\
      --detector ../shared/models/rtmdet_nano_person/end2end.onnx                 # top-down

Default model: the bundled ``openpose_mobilenet_thin``. Videos run as a threaded pipeline
(read | preprocess + network | assignment | draw + write); see :mod:`simplepose.demo`.

Exit codes: 0 every frame processed; 1 some images of a folder could not be read (the rest
were processed and written; the bad ones are listed); 2 an error stopped the run (bad
arguments, missing input, unopenable video or webcam, missing output folder, ...); 130
interrupted with Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import sys


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--input", required=True, help="image file, folder of images, video file, or webcam:N"
    )
    p.add_argument("--output", help="annotated image / folder / video (.mp4) to write")
    p.add_argument("--json", help="per-frame people JSON to write")
    m = p.add_mutually_exclusive_group()
    m.add_argument("--model", help="bundled model (default: openpose_mobilenet_thin)")
    m.add_argument("--checkpoint", help="simplepose checkpoint (bottom-up or top-down)")
    p.add_argument("--mode", choices=["bottomup", "topdown"], help="check the checkpoint's kind")
    p.add_argument(
        "--detector",
        help="person detector ONNX for top-down models (default: the bundled RTMDet-nano)",
    )
    p.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)"
    )
    p.add_argument(
        "--box-size", type=int, default=None, help="bottom-up input height (default: the model's)"
    )
    p.add_argument(
        "--kpt-threshold", type=float, default=0.2, help="hide keypoints scored below this"
    )
    p.add_argument("--boxes", action="store_true", help="draw person boxes")
    p.add_argument("--no-hud", action="store_true", help="no people count / fps overlay")
    p.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="video: concurrent network workers, 1 torch thread each "
        "(0: auto = 1; try 2 on a busy CPU)",
    )
    p.add_argument(
        "--no-channels-last", action="store_true", help="keep the network in NCHW layout"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from simplepose.errors import SimplePoseError

    try:
        return run(args)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    except (SimplePoseError, OSError, ValueError, KeyError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2


def run(args) -> int:
    from simplepose import demo as demo_lib

    if args.box_size is not None and args.box_size < 8:
        raise ValueError(f"--box-size must be >= 8, got {args.box_size}")
    source = demo_lib.open_source(args.input, max_frames=args.max_frames)
    try:
        demo_lib.plan_outputs(source, args.output, args.json)  # fail before loading the model
        predictor = demo_lib.build_predictor(
            args.model, args.checkpoint, args.mode, args.detector, args.device, args.box_size
        )
    except BaseException:
        source.close()
        raise
    report = demo_lib.run_demo(
        predictor, source, output=args.output, json_path=args.json,
        kpt_threshold=args.kpt_threshold, draw_boxes=args.boxes, hud=not args.no_hud,
        max_frames=args.max_frames, progress=not args.quiet,
        channels_last=False if args.no_channels_last else None, threads=args.threads,
        workers=args.workers,
    )  # fmt: skip
    print(f"{report.frames} frame(s), {report.people} people, {report.fps:.1f} fps; "
          f"wrote {len(report.outputs)} file(s)")
    for path in report.outputs[:3] if len(report.outputs) > 4 else report.outputs:
        print(f"  -> {path}")
    if report.bad:
        print(f"{len(report.bad)} unreadable image(s) skipped:", file=sys.stderr)
        for line in report.bad:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0

