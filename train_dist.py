"""Train a simplepose model, in one process or under torchrun: a thin wrapper around
:mod:`simplepose.cli.train` (``python train_dist.py --help`` for the options).

torchrun needs a file to run, hence this script:
``torchrun --standalone --nproc_per_node=4 train_dist.py --config configs/imhn_512_coco.yaml``
"""

from simplepose.cli.train import main

if __name__ == "__main__":
    raise SystemExit(main())
