"""Evaluate person keypoints (COCO, OCHuman, CrowdPose, MPII): a thin wrapper around
:mod:`simplepose.cli.evaluate` (``python evaluate.py --help`` for the options; also runs
under torchrun)."""

from simplepose.cli.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
