"""Tracked video with the models other than the bundled one: a top-down checkpoint on the
bundled person detector, in COCO-17 and in MPII-16 (the tracker takes K and its sigmas from the
model's layout), plain and real time."""

from __future__ import annotations

import collections

import pytest
from conftest import SHARED

from simplepose.utils.video import read_jsonl

VTEST = SHARED / "data" / "demo" / "vtest.avi"
pytestmark = pytest.mark.skipif(not VTEST.exists(), reason="needs ../shared/data/demo/vtest.avi")


@pytest.fixture(scope="module")
def tiny_rsn_mpii_checkpoint(tmp_path_factory):
    """RSN-18, 1 stage, 128x96, MPII-16 layout, random weights."""
    from simplepose.checkpoint import save_model
    from simplepose.spec import get_spec

    spec = get_spec("rsn18").with_kwargs(num_stages=1, input_size=(128, 96)).with_layout("mpii16")
    path = tmp_path_factory.mktemp("ckpt") / "rsn18_mpii_tiny.safetensors"
    save_model(path, spec, spec.build_model().state_dict())
    return path


@pytest.mark.slow
@pytest.mark.parametrize("layout, realtime", [("coco17", False), ("mpii16", True)])
def test_topdown_model_tracked_on_video(
    tmp_path, run_cli, tiny_rsn_checkpoint, tiny_rsn_mpii_checkpoint, layout, realtime
):
    ckpt = tiny_rsn_checkpoint if layout == "coco17" else tiny_rsn_mpii_checkpoint
    k = 17 if layout == "coco17" else 16
    out, js = tmp_path / "t.mp4", tmp_path / "t.jsonl"
    args = ["--input", VTEST, "--mode", "topdown", "--checkpoint", ckpt, "--max-frames", 8,
            "--output", out, "--json", js, "--quiet"]  # fmt: skip
    proc = run_cli("demo", *args, *(["--realtime"] if realtime else []))
    assert proc.returncode == 0, proc.stderr
    records = read_jsonl(js)
    assert [r["frame"] for r in records] == list(range(8))
    seen = collections.Counter()
    for r in records:
        for p in r["people"]:
            assert isinstance(p["track_id"], int) and p["track_id"] >= 1
            assert len(p["keypoints"]) == 3 * k and len(p["box_xyxy"]) == 4
            seen[p["track_id"]] += 1
    # the detector finds the walkers of vtest.avi; their boxes carry the ids over the frames
    assert seen and seen.most_common(1)[0][1] >= 4
    assert out.stat().st_size > 0
