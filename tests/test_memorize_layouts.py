"""Memorisation on other layouts, end to end through train_dist.py and evaluate.py (CPU, slow):
RSN-18 on the MPII-16 sample (PCKh) and IMHN on CrowdPose-14 (AP, the C++ grouping on the
CrowdPose limb graph). A tiny network trained on a few persons must find them again."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, SHARED

MPII_DIR = SHARED / "data" / "other_datasets" / "mpii"
CROWDPOSE_DIR = REPO / "tests" / "data" / "crowdpose"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
pytestmark = pytest.mark.slow


def _run(script, *args):
    proc = subprocess.run([sys.executable, str(REPO / script), *map(str, args)], capture_output=True, text=True, cwd=REPO, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _train(tmp_path, config):
    out = tmp_path / "run"
    _run("train_dist.py", "--config", REPO / "configs" / config, "--opts", f"train.output_dir={out}", "--log-level", "WARNING")
    checkpoint = out / "model_final.safetensors"
    assert checkpoint.exists()
    return checkpoint


@pytest.mark.skipif(not (MPII_DIR / "test_mpii.json").exists(), reason=f"{MPII_DIR} not found")
def test_rsn18_memorises_the_mpii_sample(tmp_path):
    checkpoint = _train(tmp_path, "rsn18_mpii_memorize.yaml")
    metrics = tmp_path / "m.json"
    _run("evaluate.py", "--checkpoint", checkpoint, "--gt-boxes", "--ann", MPII_DIR / "test_mpii.json",
         "--head-boxes", REPO / "tests" / "data" / "mpii" / "gt_sample.mat", "--images", MPII_DIR,
         "--metrics", metrics, "--quiet")
    record = json.loads(metrics.read_text())
    assert record["PCKh@0.5"] >= 50.0, record


def test_imhn_memorises_a_crowdpose_image(tmp_path):
    checkpoint = _train(tmp_path, "imhn_crowdpose_memorize.yaml")
    metrics = tmp_path / "m.json"
    _run("evaluate.py", "--checkpoint", checkpoint, "--box-size", 256, "--ann", CROWDPOSE_DIR / "test_crowdpose.json",
         "--image-ids", 106848, "--images", CROWDPOSE_DIR, "--metrics", metrics, "--quiet")
    record = json.loads(metrics.read_text())
    assert record["AP"] >= 0.5, record
