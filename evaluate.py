"""Evaluate COCO person keypoints.

  # what the representation + decoding loses with perfect maps (no network):
  python evaluate.py --oracle bottomup --ann ANN.json --metrics oracle.json
  # score an existing COCO results file (any producer's):
  python evaluate.py --results R.json --ann ANN.json --metrics OUT.json
"""

from __future__ import annotations

import argparse
import logging
import sys


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--oracle", choices=["bottomup"], help="render ground truth as network output and decode it")
    mode.add_argument("--results", help="score this COCO keypoint results JSON")
    p.add_argument("--ann", required=True, help="COCO person-keypoint annotation JSON")
    p.add_argument("--metrics", required=True, help="where to write the metrics JSON")
    p.add_argument("--results-out", help="where to write results JSON (default: <metrics>_results.json)")
    p.add_argument("--box-size", type=int, default=512, help="oracle: input height (SPEC 3.8)")
    p.add_argument("--backend", choices=["cpp", "reference"], default="cpp", help="oracle: grouping implementation")
    p.add_argument("--reference-params", action="store_true", help="oracle: the original SimplePose grouping options")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from simplepose.errors import SimplePoseError
    from simplepose.evaluation import format_metrics_table
    from simplepose.evaluation import runner

    try:
        if args.results:
            metrics = runner.score_results(args.results, args.ann)
            runner.write_metrics(args.metrics, metrics, results_file=args.results, ann=args.ann)
        else:
            from simplepose.decode.params import REFERENCE_SIMPLEPOSE, GroupingParams

            params = REFERENCE_SIMPLEPOSE if args.reference_params else GroupingParams()
            results, metrics, seconds = runner.run_oracle(
                args.oracle, args.ann, progress=not args.quiet,
                box_size=args.box_size, backend=args.backend, params=params,
            )  # fmt: skip
            out = args.results_out or runner.default_results_path(args.metrics)
            runner.save_run(
                results, metrics, out, args.metrics, ann=args.ann, oracle=args.oracle,
                box_size=args.box_size, backend=args.backend, grouping=params.to_dict(), seconds=round(seconds, 2),
            )  # fmt: skip
            print(f"oracle {args.oracle}: {len(results)} people on {metrics.num_images} images in {seconds:.1f} s; results -> {out}")
    except (SimplePoseError, FileNotFoundError, ValueError) as exc:
        print(f"evaluate.py: error: {exc}", file=sys.stderr)
        return 2
    print(metrics.summary)
    print(format_metrics_table(metrics))
    print(f"metrics -> {args.metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
