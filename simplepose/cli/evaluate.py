"""Evaluate person keypoints: COCO and OCHuman (COCO metric), CrowdPose (AP easy/medium/hard),
MPII (PCKh, needs --head-boxes); the annotation format is recognised from the file.

  V=../shared/data/coco  # the shared val subset; use your own COCO split the same way
  # the bundled pretrained model
  simplepose evaluate --model openpose_mobilenet_thin \\
      --ann $V/annotations/person_keypoints_val2017_subset.json --images $V/val2017 \\
      --metrics m.json [--flip] [--scales 1 0.5] [--max-frames 20]
  # a trained or converted checkpoint CKPT (bottom-up or top-down)
  simplepose evaluate --checkpoint CKPT --ann ANN.json --images DIR --metrics m.json
  # top-down boxes: the bundled person detector (default), a COCO detection file, or ground truth
  simplepose evaluate --checkpoint CKPT --boxes DET.json --ann ANN.json --images DIR \\
      --metrics m.json
  simplepose evaluate --checkpoint CKPT --gt-boxes --ann ANN.json --images DIR --metrics m.json
  # an ONNX export (simplepose export) on ONNX Runtime; or any model/checkpoint with
  # --backend onnxruntime
  simplepose evaluate --model op.onnx --backend onnxruntime --ann ANN.json --images DIR \\
      --metrics m.json
  # test-dev: no ground truth; writes person_keypoints_test-dev2017_<name>_results.json + .zip
  simplepose evaluate --checkpoint CKPT --image-info image_info_test-dev2017.json \\
      --images DIR --name mine
  # what the representation + decoding lose with perfect maps (no network)
  simplepose evaluate --oracle bottomup --ann ANN.json --metrics oracle.json
  simplepose evaluate --oracle topdown --gt-boxes --ann ANN.json --metrics oracle_td.json
  # score an existing COCO results file (any producer's)
  simplepose evaluate --results R.json --ann ANN.json --metrics OUT.json
  # MPII (VALID.json: the converted annotations; GT_VALID.mat: the benchmark's head boxes for PCKh)
  simplepose evaluate --oracle topdown --gt-boxes --ann VALID.json --head-boxes GT_VALID.mat \\
      --metrics m.json
  simplepose evaluate --results PRED.mat --ann VALID.json --head-boxes GT_VALID.mat --metrics m.json
  # MSPN's multi-shift test on MPII: shift 0.25 toward the 2nd maximum, then 0.1 toward the 3rd
  simplepose evaluate --checkpoint CKPT --gt-boxes --flip --shift-ratios 0.25 0.1 \\
      --ann VALID.json --head-boxes GT_VALID.mat --images DIR --metrics m.json

(CKPT: a checkpoint of ``simplepose train`` or ``simplepose convert``; ANN.json / DIR: a COCO
person-keypoint annotation file and its image folder; DET.json: COCO detection results.)
``python evaluate.py`` takes the same options. Sharded across processes under torchrun
(``torchrun --nproc_per_node=4 evaluate.py ...``): each rank predicts its share of the images
and rank 0 gathers, writes and scores.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from simplepose.cli.common import (
    add_max_frames,
    add_shift_ratios,
    int_at_least,
    is_quiet_rank,
    run_reporting_errors,
    setup_logging,
)
from simplepose.errors import InputError

#: --backend values: inference backends of a model, grouping implementations of the oracle
MODEL_BACKENDS = ("torch", "onnxruntime")
GROUPING_BACKENDS = ("cpp", "reference")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--checkpoint", help="simplepose checkpoint (.safetensors)")
    mode.add_argument(
        "--model",
        help="a model with bundled weights (e.g. openpose_mobilenet_thin) or an "
        "ONNX file written by 'simplepose export'",
    )
    mode.add_argument(
        "--oracle",
        choices=["bottomup", "topdown"],
        help="render ground truth as network output and decode it",
    )
    mode.add_argument("--results", help="score this COCO keypoint results JSON")
    gt = p.add_mutually_exclusive_group()
    gt.add_argument(
        "--ann",
        help="annotation file (ground truth): COCO / OCHuman / CrowdPose JSON "
        "or MPII converted JSON",
    )
    gt.add_argument(
        "--image-info", help="test-dev image-info JSON (no ground truth): write a submission"
    )
    p.add_argument("--images", help="folder of the images named in the annotation file")
    p.add_argument(
        "--head-boxes",
        help="MPII: the benchmark's ground truth with head boxes (gt_valid.mat format) for PCKh",
    )
    p.add_argument("--metrics", help="where to write the metrics JSON (required with --ann)")
    p.add_argument(
        "--results-out", help="where to write results JSON (default: <metrics>_results.json)"
    )
    p.add_argument(
        "--image-ids", type=int, nargs="+", help="evaluate only these images of the file"
    )
    add_max_frames(p, "images of the file (after --image-ids)")
    p.add_argument(
        "--name", default="simplepose", help="test-dev: the <name> in the submission file name"
    )
    p.add_argument("--out-dir", default=".", help="test-dev: folder of the submission files")
    g = p.add_argument_group("inference")
    g.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)"
    )
    g.add_argument(
        "--flip", action="store_true", help="average with the horizontally flipped image"
    )
    g.add_argument(
        "--scales",
        type=float,
        nargs="+",
        default=None,
        help="bottom-up multi-scale test: factors of --box-size, heatmaps averaged (e.g. 1 0.5)",
    )
    g.add_argument("--box-size", type=int_at_least(8), default=None,
                   help="bottom-up input height at scale 1")
    add_shift_ratios(g)
    g.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip unreadable images (reported) instead of failing",
    )
    g.add_argument(
        "--backend",
        choices=list(MODEL_BACKENDS + GROUPING_BACKENDS),
        default=None,
        help="a model: torch or onnxruntime (default: onnxruntime for a .onnx file, else torch); "
        "--oracle bottomup: the grouping implementation, cpp (default) or reference",
    )
    t = p.add_argument_group("top-down boxes")
    boxes = t.add_mutually_exclusive_group()
    boxes.add_argument("--boxes", help="COCO detection results JSON with person boxes")
    boxes.add_argument("--gt-boxes", action="store_true", help="use the ground-truth person boxes")
    boxes.add_argument(
        "--detector",
        nargs="?",
        const="bundled",
        help="run a person detector on each image: the bundled RTMDet-nano (no value; the default "
        "for a top-down model without --boxes/--gt-boxes) or an ONNX file of that format",
    )
    t.add_argument("--box-threshold", type=float, default=0.0, help="minimum box score")
    o = p.add_argument_group("oracle")
    o.add_argument(
        "--reference-params", action="store_true", help="the original SimplePose grouping options"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def parse_args(argv=None, prog: str | None = None) -> argparse.Namespace:
    p = build_parser(prog)
    args = p.parse_args(argv)
    if args.image_info is None and args.ann is None:
        p.error("one of --ann or --image-info is required")
    if args.ann and not args.metrics:
        p.error("--metrics is required with --ann")
    if (args.checkpoint or args.model) and not args.images:
        p.error("--images is required to run a model")
    if args.image_info and not (args.checkpoint or args.model):
        p.error("--image-info needs --checkpoint or --model")
    if args.oracle:
        args.backend = args.backend or "cpp"
        if args.backend not in GROUPING_BACKENDS:
            p.error(
                f"--backend {args.backend} runs a model; "
                f"an oracle takes {' or '.join(GROUPING_BACKENDS)}"
            )
    elif args.backend in GROUPING_BACKENDS:
        p.error(
            f"--backend {args.backend} is a grouping choice of --oracle; "
            f"a model takes {' or '.join(MODEL_BACKENDS)}"
        )
    if args.shift_ratios is not None:
        from simplepose.codecs.topdown import check_shift_ratios

        if args.results or args.oracle == "bottomup":
            p.error("--shift-ratios is a top-down decoding option: it needs a top-down "
                    "--checkpoint/--model or --oracle topdown")
        try:
            args.shift_ratios = check_shift_ratios(args.shift_ratios, "--shift-ratios")
        except InputError as exc:
            p.error(str(exc))
    return args


def main(argv=None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    setup_logging()
    return run_reporting_errors(prog or "evaluate.py", lambda: run(args))


def check_output_folders(args) -> None:
    """Fail before any work (before the model is loaded) when an output cannot be written:
    its folder is missing or not writable, it is an input file (``--ann``, ``--results``,
    ``--boxes``, an ONNX ``--model`` or ``--detector``, ...) or lies inside the ``--images``
    folder, or two outputs are the same file."""
    from simplepose.evaluation.runner import default_results_path
    from simplepose.utils.io import check_output_file, check_writable_folder

    inputs = [args.ann, args.image_info, args.results, args.boxes, args.head_boxes, args.checkpoint]
    # --model and --detector name a file when they are ONNX exports (else a bundled model)
    inputs += [p for p in (args.model, args.detector) if p and p.lower().endswith(".onnx")]
    outputs = []
    if args.metrics:
        outputs.append(("--metrics", args.metrics))
    if not args.results and (args.metrics or args.results_out):  # --results: nothing rewritten
        outputs.append(("--results-out", args.results_out or default_results_path(args.metrics)))
    for flag, path in outputs:
        check_output_file(path, flag, inputs=inputs, input_folders=[args.images])
    if len(outputs) == 2 and Path(outputs[0][1]).resolve() == Path(outputs[1][1]).resolve():
        raise InputError(f"--metrics and --results-out are the same file {outputs[0][1]}")
    if args.image_info:
        check_writable_folder(args.out_dir, f"--out-dir {args.out_dir}")


def run(args) -> int:
    from simplepose.data.coco import load_image_info
    from simplepose.data.datasets import load_annotations

    check_output_folders(args)
    from simplepose.evaluation import runner
    from simplepose.evaluation.benchmarks import evaluate_benchmark
    from simplepose.evaluation.benchmarks import format_table as format_metrics_table
    from simplepose.utils.io import file_sha256

    if args.results:
        metrics = runner.score_results(args.results, args.ann, mpii_gt=args.head_boxes)
        runner.write_metrics(args.metrics, metrics, results_file=args.results,
                             results_sha256=file_sha256(args.results), ann=args.ann)
        return report(metrics, args.metrics, format_metrics_table)

    ann = (
        load_image_info(args.image_info)
        if args.image_info
        else load_annotations(args.ann, args.images)
    )
    if args.oracle:
        return run_oracle(args, ann, runner, format_metrics_table)

    if args.ann:
        runner.check_benchmark_inputs(ann, args.head_boxes)
    rank, world, local_rank = init_distributed(args.device)
    predictor = build_predictor(args, local_rank if world > 1 else None)
    boxes = load_boxes(args, ann)
    image_ids = selected_image_ids(args, ann)
    if args.boxes:  # images the detection file does not cover are scored, as misses
        missing = [i for i in image_ids if i not in boxes]
        if missing and rank == 0:
            print(
                f"--boxes: {len(missing)} of {len(image_ids)} images have no entry in "
                f"{args.boxes}; "
                "they are scored as images with no detections"
            )
    ids = runner.shard(image_ids, rank, world)
    results, bad = runner.run_predictor(
        predictor,
        ann,
        args.images,
        boxes,
        args.skip_bad,
        ids,
        progress=not args.quiet and rank == 0,
    )
    results, bad = runner.gather_results(results, bad)
    if rank != 0:
        return 0
    if args.image_info:
        # the images run (--image-ids / --max-frames select some) minus the unreadable ones:
        # the submission check then refuses an incomplete run
        processed = set(image_ids) - _image_ids_of(bad, ann, args.images)
        json_path, zip_path = runner.write_test_dev_submission(
            results, ann, args.out_dir, args.name, processed
        )
        print(f"{len(results)} people on {len(ann.image_ids)} images -> {json_path}\n"
              f"submission zip -> {zip_path}")
        return 0
    metrics = evaluate_benchmark(ann, results, image_ids=image_ids, mpii_gt=args.head_boxes)
    out = args.results_out or runner.default_results_path(args.metrics)
    runner.save_run(
        results, metrics, out, args.metrics, num_keypoints=ann.layout.num_keypoints,
        ann=args.ann, images=args.images, model=predictor.model_name,
        checkpoint=args.checkpoint, backend=predictor.backend, flip=args.flip,
        scales=args.scales, bad_images=bad, world_size=world,
        **({"shift_ratios": list(args.shift_ratios)} if args.shift_ratios else {}),
    )  # fmt: skip
    print(f"{len(results)} people on {metrics.num_images} images ({len(bad)} unreadable); "
          f"results -> {out}")
    return report(metrics, args.metrics, format_metrics_table)


def run_oracle(args, ann, runner, format_metrics_table) -> int:
    if args.oracle == "bottomup":
        from simplepose.decode.params import REFERENCE_SIMPLEPOSE, GroupingParams

        params = REFERENCE_SIMPLEPOSE if args.reference_params else GroupingParams()
        options = {"box_size": args.box_size or 512, "backend": args.backend, "params": params}
        meta = {
            "box_size": options["box_size"],
            "backend": args.backend,
            "grouping": params.to_dict(),
        }
    else:
        if args.boxes or args.detector:
            raise InputError("the top-down oracle runs on ground-truth boxes: use --gt-boxes")
        options = {"flip": args.flip}
        meta = {"boxes": "gt", "flip": args.flip}
        if args.shift_ratios:
            from simplepose.codecs.topdown import layout_codec

            options["codec"] = layout_codec(ann.layout, shift_ratios=args.shift_ratios)
            meta["shift_ratios"] = list(args.shift_ratios)
    results, metrics, seconds = runner.run_oracle(
        args.oracle, ann, progress=not args.quiet, mpii_gt=args.head_boxes, **options
    )
    out = args.results_out or runner.default_results_path(args.metrics)
    runner.save_run(results, metrics, out, args.metrics, num_keypoints=ann.layout.num_keypoints,
                    ann=args.ann, oracle=args.oracle, seconds=round(seconds, 2), **meta)
    print(f"oracle {args.oracle}: {len(results)} people on {metrics.num_images} images "
          f"in {seconds:.1f} s; results -> {out}")
    return report(metrics, args.metrics, format_metrics_table)


def selected_image_ids(args, ann) -> list[int]:
    """``--image-ids`` (all when not given), then the first ``--max-frames`` of them."""
    ids = ann.image_ids
    if args.image_ids:
        unknown = sorted(set(args.image_ids) - set(ann.image_ids))
        if unknown:
            raise InputError(f"--image-ids {unknown[:5]} are not images of the annotation file")
        ids = sorted(set(args.image_ids))
    return ids[: args.max_frames] if args.max_frames else ids


def build_predictor(args, local_rank: int | None = None):
    import torch

    from simplepose.predictor import Predictor

    if args.device is None and local_rank is not None and torch.cuda.is_available():
        args.device = f"cuda:{local_rank}"  # one GPU per torchrun process
    options = {}
    if args.flip:
        options["flip"] = True
    if args.scales:
        options["scales"] = tuple(args.scales)
    if args.box_size:
        options["box_size"] = args.box_size
    if args.shift_ratios:
        options["shift_ratios"] = args.shift_ratios
    if args.model and not args.model.lower().endswith(".onnx"):
        backend = args.backend or "torch"
        return Predictor.from_pretrained(args.model, device=args.device, backend=backend, **options)
    detector = args.detector or (None if args.boxes or args.gt_boxes else "bundled")
    predictor = Predictor.from_checkpoint(args.checkpoint or args.model, device=args.device,
                                          detector=detector, backend=args.backend, **options)
    if predictor.mode == "topdown" and not (args.boxes or args.gt_boxes or args.detector):
        args.detector = "bundled"
        if not is_quiet_rank():
            print("top-down model: person boxes from the bundled RTMDet-nano detector "
                  "(--boxes FILE or --gt-boxes to use others)")
    return predictor


def load_boxes(args, ann):
    if args.gt_boxes:
        from simplepose.data.boxes import gt_boxes

        return gt_boxes(ann)
    if args.boxes:
        from simplepose.data.boxes import load_detections

        return load_detections(args.boxes, ann, score_threshold=args.box_threshold)
    return None


def _image_ids_of(paths, ann, images_dir) -> set[int]:
    """The image ids of image paths (of ``ann``'s images under ``images_dir``)."""
    names = {ann.image_path(i, images_dir).name: i for i in ann.image_ids}
    return {names.get(Path(path).name, -1) for path in paths}


def init_distributed(device: str | None = None) -> tuple[int, int, int]:
    """(rank, world size, local rank) under torchrun; (0, 1, 0) otherwise. ``device`` is
    ``--device`` (None: CUDA when available); it picks the backend, NCCL for CUDA, else gloo."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, 0
    from simplepose.dist import init_distributed as init

    kind = "auto" if device is None else "cuda" if device.startswith("cuda") else "cpu"
    info = init(kind, option="--device")
    return info.rank, info.world_size, info.local_rank


def report(metrics, metrics_path, format_metrics_table) -> int:
    print(metrics.summary)
    print(format_metrics_table(metrics))
    print(f"metrics -> {metrics_path}")
    return 0

