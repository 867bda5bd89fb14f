"""Memorisation on real train images, end to end through train_dist.py and evaluate.py (CPU).

A tiny network trained on a few images must find their people again: this proves that
targets, loss, checkpoint, predictor and decoding agree (issue acceptance: AP >= 0.5).
"""

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO, SHARED

TRAIN_ANN = SHARED / "data" / "coco" / "annotations" / "person_keypoints_train2017_subset.json"
TRAIN_IMAGES = SHARED / "data" / "coco" / "train2017"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not TRAIN_ANN.exists(), reason=f"{TRAIN_ANN} not found"),
]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _run(script, *args):
    proc = subprocess.run(
        [sys.executable, str(REPO / script), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=ENV,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _image_ids(config) -> list[int]:
    import yaml

    return yaml.safe_load((REPO / "configs" / config).read_text())["data"]["image_ids"]


@pytest.mark.parametrize(
    "config, eval_args",
    [("imhn_memorize.yaml", ["--box-size", 256]), ("rsn18_memorize.yaml", ["--gt-boxes"])],
    ids=["imhn", "rsn18"],
)
def test_memorisation_reaches_ap_050(tmp_path, config, eval_args):
    out = tmp_path / "run"
    _run(
        "train_dist.py",
        "--config",
        REPO / "configs" / config,
        "--opts",
        f"train.output_dir={out}",
        "--log-level",
        "WARNING",
    )
    checkpoint = out / "model_final.safetensors"
    assert checkpoint.exists() and (out / "metrics.csv").exists()
    metrics = tmp_path / "m.json"
    _run(
        "evaluate.py",
        "--checkpoint",
        checkpoint,
        *eval_args,
        "--ann",
        TRAIN_ANN,
        "--images",
        TRAIN_IMAGES,
        "--image-ids",
        *_image_ids(config),
        "--metrics",
        metrics,
        "--quiet",
    )
    record = json.loads(metrics.read_text())
    assert record["AP"] >= 0.5, record
