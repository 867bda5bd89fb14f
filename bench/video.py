"""Video accuracy, tracking and speed on synthetic sequences with exact ground truth.

  python bench/video.py \\
      --ann ../shared/data/coco/annotations/person_keypoints_val2017_subset.json \\
      --images ../shared/data/coco/val2017 --json video.json

Sequences: a virtual camera moves over COCO images with several annotated people (pan, zoom,
a little rotation, fast segments, people leaving and re-entering the frame), with JPEG
recompression, motion blur on fast segments and brief occlusions; see
``simplepose/evaluation/video.py``. Same arguments, same sequences (``--seed``).

Four variants, side by side in one run:

* (a) ``untracked``: the network on every frame;
* (b) ``tracked``: (a)'s detections through the tracker and One-Euro smoothing (the
  network is not run twice: (b)'s time is (a)'s network time plus its tracking time);
* (c) ``realtime``: keyframes in a worker thread + optical flow in between
  (``track_frames(realtime=True)``), timed end to end;
* (d) ``gt_poses``: the tracker (as in (b)) on the exact ground-truth poses of every frame,
  identities removed and order shuffled. The detections are perfect, so its HOTA / AssA /
  IDF1 / ID switches judge the association alone.

HOTA's AssA is not free of the detector: every frame in which a person is missed, or found
at an OKS below HOTA's threshold, counts against the association of that person's track.
``assa_oracle_untracked`` gives (a)'s detections their true identities: no tracker can do
better on those detections.

Reported: COCO keypoint AP over all frames of (a), (b), (c); HOTA / DetA / AssA, IDF1, MOTA
and ID switches of (b) (top-level keys), (c) (``*_realtime``) and (d) (``*_gt_poses``),
matched by OKS (trackeval); jitter (mean acceleration error, frame px / frame^2) and FPS of
(a), (b), (c). Frames are synthesised before timing; FPS counts processing only. On a shared
machine compare the ratios of one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--ann", required=True, help="COCO person-keypoint annotation file")
    p.add_argument("--images", required=True, help="folder of its images")
    p.add_argument("--json", required=True, help="output JSON")
    g = p.add_argument_group("sequences")
    g.add_argument("--sequences", type=int, default=4, help="number of synthetic sequences")
    g.add_argument("--frames", type=int, default=40, help="frames per sequence")
    g.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=(640, 480),
        metavar=("W", "H"),
        help="frame size in px (default: COCO's usual 640 x 480)",
    )
    g.add_argument(
        "--min-people", type=int, default=3, help="people (>= 5 keypoints) an image needs"
    )
    g.add_argument("--max-zoom", type=float, default=1.5, help="largest camera zoom")
    g.add_argument("--seed", type=int, default=0, help="seed of everything random")
    g = p.add_argument_group("model")
    m = g.add_mutually_exclusive_group()
    m.add_argument("--model", default="openpose_mobilenet_thin", help="bundled model")
    m.add_argument(
        "--checkpoint", help="a simplepose checkpoint instead (top-down uses the bundled detector)"
    )
    g.add_argument(
        "--box-size", type=int, default=0, help="bottom-up input height (0: the model default)"
    )
    g.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (0: torch default; 1 is fastest on a busy 2-core CPU)",
    )
    g = p.add_argument_group("tracking")
    g.add_argument(
        "--keyframe-interval",
        type=int,
        default=None,
        help="real time: most frames per keyframe "
        "(default: simplepose.tracking.realtime.KEYFRAME_INTERVAL)",
    )
    g.add_argument("--min-cutoff", type=float, default=None, help="One-Euro min cut-off (Hz)")
    g.add_argument(
        "--beta", type=float, default=None, help="One-Euro beta (per person height per second)"
    )
    g.add_argument("--fps", type=float, default=25.0, help="frame rate of the synthetic videos")
    g.add_argument("--no-realtime", action="store_true", help="skip variant (c)")
    return p.parse_args(argv)


def check_paths(args) -> None:
    """Fail before any work: inputs exist, the output folder exists, output is no input."""
    ann, images, out = Path(args.ann), Path(args.images), Path(args.json)
    if not ann.is_file():
        raise SystemExit(f"bench/video.py: error: annotation file {ann} does not exist")
    if not images.is_dir():
        raise SystemExit(f"bench/video.py: error: image folder {images} does not exist")
    if not out.resolve().parent.is_dir():
        raise SystemExit(f"bench/video.py: error: folder of {out} does not exist")
    if out.resolve() == ann.resolve() or images.resolve() in out.resolve().parents:
        raise SystemExit(
            f"bench/video.py: error: output {out} would overwrite or sit among the inputs"
        )
    for name in ("sequences", "frames", "min_people", "keyframe_interval"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise SystemExit(f"bench/video.py: error: --{name.replace('_', '-')} must be >= 1")
    if min(args.size) < 32:
        raise SystemExit("bench/video.py: error: --size must be at least 32 x 32")


def build_predictor(args):
    from simplepose import Predictor

    options = {"box_size": args.box_size} if args.box_size else {}
    if args.checkpoint:
        return Predictor.from_checkpoint(args.checkpoint, device="cpu", **options)
    return Predictor.from_pretrained(args.model, device="cpu", **options)


def make_sequences(args, ann):
    import numpy as np

    from simplepose.data.coco import load_image
    from simplepose.evaluation.video import select_images, synthesize_sequence

    candidates = select_images(ann, min_people=args.min_people)
    if not candidates:
        raise SystemExit(
            f"bench/video.py: error: no image of {args.ann} has {args.min_people} people "
            "with >= 5 keypoints (lower --min-people)"
        )
    rng = np.random.default_rng(args.seed)
    chosen = [candidates[i] for i in sorted(rng.permutation(len(candidates))[: args.sequences])]
    while len(chosen) < args.sequences:  # fewer images than sequences: reuse with new paths
        chosen.append(candidates[len(chosen) % len(candidates)])
    sequences = []
    for image_id in chosen:
        image = load_image(ann.image_path(image_id, args.images))
        sequences.append(synthesize_sequence(
            image,
            ann.annotations_by_image[image_id],
            rng,
            image_id=image_id,
            num_frames=args.frames,
            size=tuple(args.size), max_zoom=args.max_zoom))  # fmt: skip
    return sequences


class _Replay:
    """A predictor that returns the detections already computed for a frame (variants (b)
    and (d))."""

    def __init__(self, sequences, detections):
        self._by_frame = {
            id(f): people
            for seq, det in zip(sequences, detections)
            for f, people in zip(seq.frames, det)
        }

    def predict(self, image):
        return self._by_frame[id(image)]


def coco_ground_truth(sequences, person_category, folder):
    """All frames as one COCO annotation file (image id = sequence * 100000 + frame + 1)."""
    from simplepose.data.coco import load_coco_keypoints

    images, annotations = [], []
    for s, seq in enumerate(sequences):
        h, w = seq.frames[0].shape[:2]
        for t, anns in enumerate(seq.annotations):
            image_id = s * 100000 + t + 1
            images.append(
                {"id": image_id, "file_name": f"seq{s}_{t:05d}.jpg", "width": w, "height": h}
            )
            for a in anns:
                annotations.append({**a, "image_id": image_id, "id": len(annotations) + 1})
    path = Path(folder) / "video_gt.json"
    path.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": [person_category]})
    )
    return load_coco_keypoints(path)


def ap_of(gt, outputs) -> float:
    from simplepose.evaluation.coco import evaluate_keypoints

    records = [
        p.to_coco(s * 100000 + t + 1)
        for s, frames in enumerate(outputs)
        for t, people in enumerate(frames)
        for p in people
    ]
    return float(evaluate_keypoints(gt, records)["AP"])


def main(argv=None) -> int:
    args = parse_args(argv)
    check_paths(args)
    import numpy as np
    import torch

    from simplepose.data.coco import load_coco_keypoints
    from simplepose.evaluation.video import (
        ground_truth_people,
        keypoint_jitter,
        oracle_identities,
        tracking_metrics,
    )
    from simplepose.tracking import TrackerParams, track_frames
    from simplepose.tracking.realtime import KEYFRAME_INTERVAL

    args.keyframe_interval = args.keyframe_interval or KEYFRAME_INTERVAL

    if args.threads:
        torch.set_num_threads(args.threads)
    ann = load_coco_keypoints(args.ann)
    t0 = time.perf_counter()
    sequences = make_sequences(args, ann)
    n_frames = sum(len(s.frames) for s in sequences)
    print(
        f"{len(sequences)} sequences x {args.frames} frames ({args.size[0]}x{args.size[1]}) "
        "from images "
        f"{[s.image_id for s in sequences]} in {time.perf_counter() - t0:.1f} s; "
        f"{sum(s.reentries() for s in sequences)} re-entries"
    )
    smoother = dataclasses.replace(
        TrackerParams().smoother,
        **{
            k: v for k, v in (("min_cutoff", args.min_cutoff), ("beta", args.beta)) if v is not None
        },
    )
    params = TrackerParams(fps=args.fps, smoother=smoother)
    predictor = build_predictor(args)
    predictor.predict(sequences[0].frames[0])  # warm-up

    from tqdm import tqdm

    # (a) untracked: the network on every frame
    untracked, net_s = [], 0.0
    bar = tqdm(total=n_frames, desc="(a) every frame", unit="frame")
    for seq in sequences:
        frames_people = []
        for frame in seq.frames:
            t1 = time.perf_counter()
            frames_people.append(predictor.predict(frame))
            net_s += time.perf_counter() - t1
            bar.update(1)
        untracked.append(frames_people)
    bar.close()

    # (b) tracked: (a)'s detections replayed through track_frames (flow, tracker, smoothing)
    replay = _Replay(sequences, untracked)
    tracked, track_s = [], 0.0
    for seq in sequences:
        t1 = time.perf_counter()
        tracked.append(
            [item.people for item in track_frames(replay, seq.frames, params=params, fps=args.fps)]
        )
        track_s += time.perf_counter() - t1

    # (d) the tracker on the exact ground-truth poses (association alone)
    gt_rng = np.random.default_rng(args.seed)
    gt_people = [[ground_truth_people(a, gt_rng) for a in s.annotations] for s in sequences]
    replay_gt = _Replay(sequences, gt_people)
    tracked_gt = [
        [item.people for item in track_frames(replay_gt, seq.frames, params=params, fps=args.fps)]
        for seq in sequences
    ]

    # (c) real time
    realtime, rt_s, keyframes = [], 0.0, 0
    if not args.no_realtime:
        bar = tqdm(total=n_frames, desc="(c) real time", unit="frame")
        for seq in sequences:
            out = []
            t1 = time.perf_counter()
            for item in track_frames(
                predictor,
                iter(seq.frames),
                params=params,
                realtime=True,
                keyframe_interval=args.keyframe_interval,
                fps=args.fps,
            ):
                out.append(item.people)
                keyframes += int(item.keyframe)
                bar.update(1)
            rt_s += time.perf_counter() - t1
            realtime.append(out)
        bar.close()

    gt_frames = [s.annotations for s in sequences]
    with tempfile.TemporaryDirectory() as tmp:
        gt = coco_ground_truth(sequences, ann.person_category, tmp)
        result = {"ap_untracked": ap_of(gt, untracked), "ap_tracked": ap_of(gt, tracked)}
        if realtime:
            result["ap_realtime"] = ap_of(gt, realtime)
    result.update(tracking_metrics(gt_frames, tracked))
    result.update({f"{k}_gt_poses": v for k, v in tracking_metrics(gt_frames, tracked_gt).items()})
    # the same detections with perfectly known identities: the ceiling of association
    result["assa_oracle_untracked"] = tracking_metrics(
        gt_frames, oracle_identities(gt_frames, untracked)
    )["assa"]
    result["jitter_untracked"] = keypoint_jitter(gt_frames, untracked)["jitter"]
    result["jitter_tracked"] = keypoint_jitter(gt_frames, tracked)["jitter"]
    result["fps_untracked"] = n_frames / net_s
    result["fps_tracked"] = n_frames / (net_s + track_s)
    if realtime:
        result["fps_realtime"] = n_frames / rt_s
        result["jitter_realtime"] = keypoint_jitter(gt_frames, realtime)["jitter"]
        result.update(
            {f"{k}_realtime": v for k, v in tracking_metrics(gt_frames, realtime).items()}
        )
        result["keyframes_realtime"] = keyframes
    result["fps_ratio_realtime"] = (
        result.get("fps_realtime", float("nan")) / result["fps_untracked"]
    )
    result["settings"] = {
        **{k: v for k, v in vars(args).items() if k != "json"},
        "size": list(args.size),
        "images_used": [s.image_id for s in sequences],
        "total_frames": n_frames,
        "reentries": sum(s.reentries() for s in sequences),
        "fast_frames": sum(sum(s.fast) for s in sequences),
        "occluded_frames": sum(sum(s.occluded) for s in sequences),
        "tracker": dataclasses.asdict(params), "box_size": predictor.pipeline.box_size
        if hasattr(predictor.pipeline, "box_size") else None,
        "torch_threads": torch.get_num_threads(), "load_average": list(os.getloadavg()),
        "python": platform.python_version(), "numpy": np.__version__,
        "jitter_units": "frame px / frame^2",
        "tracked_fps_note": (
            "(b) replays (a)'s network outputs: its time is (a)'s network time + its own"
        ),
    }  # fmt: skip
    from simplepose.utils.io import atomic_write_json

    # strict JSON: a figure that is undefined here (no person matched in three consecutive
    # frames for jitter, no real-time run for its ratio) is written as null, not NaN
    undefined = {k for k, v in result.items() if isinstance(v, float) and not math.isfinite(v)}
    atomic_write_json(args.json, {**result, **dict.fromkeys(undefined)}, indent=2)
    for k, v in result.items():
        if k != "settings":
            print(f"{k:>22}: {v:.4f}" if isinstance(v, float) else f"{k:>22}: {v}")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
