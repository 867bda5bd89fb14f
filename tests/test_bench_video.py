"""bench/video.py on a COCO-format file other than COCO's own (the committed OCHuman sample)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
OCHUMAN = REPO / "tests" / "data" / "ochuman"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_video", REPO / "bench" / "video.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ARGS = [
    "--ann", str(OCHUMAN / "test_ochuman.json"), "--images", str(OCHUMAN),
    "--sequences", "1", "--frames", "8", "--size", "240", "180", "--min-people", "2",
]  # fmt: skip


def test_same_seed_same_sequences():
    from simplepose.data.coco import load_coco_keypoints

    bench = _bench()
    args = bench.parse_args([*ARGS, "--json", "unused.json"])
    ann = load_coco_keypoints(args.ann)
    a, b = bench.make_sequences(args, ann), bench.make_sequences(args, ann)
    assert all(np.array_equal(x, y) for x, y in zip(a[0].frames, b[0].frames))
    assert a[0].annotations == b[0].annotations
    args.seed = 1
    c = bench.make_sequences(args, ann)
    assert not all(np.array_equal(x, y) for x, y in zip(a[0].frames, c[0].frames))


def test_bench_refuses_an_output_among_its_inputs(tmp_path):
    bench = _bench()
    with pytest.raises(SystemExit, match="overwrite or sit among the inputs"):
        bench.main([*ARGS, "--json", str(OCHUMAN / "out.json")])
    with pytest.raises(SystemExit, match="--frames must be >= 1"):
        bench.main([*ARGS, "--frames", "0", "--json", str(tmp_path / "v.json")])


@pytest.mark.slow
def test_bench_reports_every_key_and_tracks_ground_truth_perfectly(tmp_path):
    out = tmp_path / "video.json"
    assert _bench().main([*ARGS, "--box-size", "180", "--json", str(out)]) == 0
    result = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    for key in (
        "hota", "assa", "idf1", "mota", "id_switches", "ap_untracked", "ap_tracked",
        "ap_realtime", "jitter_untracked", "jitter_tracked", "fps_untracked", "fps_realtime",
        "assa_gt_poses", "assa_oracle_untracked", "settings",
    ):  # fmt: skip
        assert key in result, key
    assert result["settings"]["images_used"] and result["settings"]["total_frames"] == 8
    assert 0.0 <= result["assa"] <= 1.0 and math.isfinite(result["fps_realtime"])
    # exact poses without identities: every identity is the tracker's to keep
    assert result["assa_gt_poses"] == pytest.approx(1.0)
    assert result["id_switches_gt_poses"] == 0
