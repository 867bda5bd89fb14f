"""Memorisation on real train images, end to end through ``simplepose train`` and
``simplepose evaluate`` (CPU), run exactly as the commands in the configs' comments are written.

A tiny network trained on a few images must find their people again: this proves that
targets, loss, checkpoint, predictor and decoding agree (issue acceptance: AP >= 0.5).
"""

import json
import shlex

import pytest
from conftest import REPO, SHARED
from doc_commands import config_commands, make_clone, run

TRAIN_ANN = SHARED / "data" / "coco" / "annotations" / "person_keypoints_train2017_subset.json"

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not TRAIN_ANN.exists(), reason=f"{TRAIN_ANN} not found")]


@pytest.mark.parametrize("config", ["imhn_memorize.yaml", "rsn18_memorize.yaml"], ids=["imhn", "rsn18"])
def test_memorisation_reaches_ap_050(tmp_path, monkeypatch, config):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    commands = config_commands(REPO / "configs" / config)
    assert [c.split()[:2] for c in commands] == [["simplepose", "train"], ["simplepose", "evaluate"]]
    clone = make_clone(tmp_path)
    for cmd in commands:
        proc = run(cmd, clone)
        assert proc.returncode == 0, f"{cmd}\n{proc.stderr[-3000:]}"
    words = shlex.split(commands[1])
    record = json.loads((clone / words[words.index("--metrics") + 1]).read_text())
    assert record["AP"] >= 0.5, record
