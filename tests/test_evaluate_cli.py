"""evaluate.py with real checkpoints: bottom-up, top-down (--boxes, --gt-boxes), test-dev."""

import json
import subprocess
import sys
import zipfile

import pytest
from conftest import REPO, SAMPLE_ANN, VAL_IMAGES

pytestmark = pytest.mark.skipif(
    not VAL_IMAGES.exists(), reason=f"val images not found at {VAL_IMAGES}"
)


@pytest.fixture
def run_evaluate(run_cli):
    """evaluate.py's ``main(argv)`` in process (``--quiet`` added)."""
    return lambda *args: run_cli("evaluate", *args, "--quiet")


def test_bottomup_checkpoint_writes_results_and_metrics(
    tmp_path, tiny_imhn_checkpoint, run_evaluate
):
    metrics = tmp_path / "m.json"
    proc = run_evaluate(
        "--checkpoint",
        tiny_imhn_checkpoint,
        "--ann",
        SAMPLE_ANN,
        "--images",
        VAL_IMAGES,
        "--metrics",
        metrics,
        "--box-size",
        128,
        "--flip",
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(metrics.read_text())
    assert record["model"] == "imhn" and record["num_images"] == 3 and "AP" in record
    assert (tmp_path / "m_results.json").exists()


def test_test_dev_submission(tmp_path, tiny_imhn_checkpoint, run_evaluate):
    sample = json.loads(SAMPLE_ANN.read_text())
    info = {k: sample[k] for k in ("info", "licenses", "images", "categories") if k in sample}
    info_path = tmp_path / "image_info_test-dev2017.json"
    info_path.write_text(json.dumps(info))
    proc = run_evaluate(
        "--checkpoint",
        tiny_imhn_checkpoint,
        "--image-info",
        info_path,
        "--images",
        VAL_IMAGES,
        "--name",
        "tiny",
        "--out-dir",
        tmp_path,
        "--box-size",
        128,
    )
    assert proc.returncode == 0, proc.stderr
    result_json = tmp_path / "person_keypoints_test-dev2017_tiny_results.json"
    results = json.loads(result_json.read_text())
    ids = {im["id"] for im in info["images"]}
    assert all(
        r["image_id"] in ids and len(r["keypoints"]) == 51 and r["category_id"] == 1
        for r in results
    )
    with zipfile.ZipFile(result_json.with_suffix(".zip")) as zf:
        assert zf.namelist() == [result_json.name]
        assert json.loads(zf.read(result_json.name)) == results


def test_test_dev_missing_image_fails_unless_skipped(tmp_path, tiny_imhn_checkpoint, run_evaluate):
    sample = json.loads(SAMPLE_ANN.read_text())
    sample["images"][0]["file_name"] = "does_not_exist.jpg"
    info = {k: sample[k] for k in ("images", "categories")}
    info_path = tmp_path / "info.json"
    info_path.write_text(json.dumps(info))
    args = (
        "--checkpoint",
        tiny_imhn_checkpoint,
        "--image-info",
        info_path,
        "--images",
        VAL_IMAGES,
        "--out-dir",
        tmp_path,
        "--box-size",
        128,
    )
    proc = run_evaluate(*args)
    assert (
        proc.returncode == 2
        and "does_not_exist.jpg" in proc.stderr
        and "Traceback" not in proc.stderr
    )
    proc = run_evaluate(*args, "--skip-bad")  # skipped images leave the submission incomplete
    assert proc.returncode == 2 and "not processed" in proc.stderr



def test_test_dev_submission_refuses_a_partial_run(tmp_path, tiny_imhn_checkpoint, run_evaluate):
    """Images left out by --max-frames leave the submission incomplete, as skipped ones do."""
    sample = json.loads(SAMPLE_ANN.read_text())
    info_path = tmp_path / "info.json"
    info_path.write_text(json.dumps({k: sample[k] for k in ("images", "categories")}))
    proc = run_evaluate(
        "--checkpoint", tiny_imhn_checkpoint, "--image-info", info_path, "--images", VAL_IMAGES,
        "--out-dir", tmp_path, "--box-size", 128, "--max-frames", 1,
    )  # fmt: skip
    assert proc.returncode == 2 and "not processed" in proc.stderr
    assert not list(tmp_path.glob("person_keypoints_*"))


def test_topdown_checkpoint_with_boxes_file_and_gt_boxes(
    tmp_path, tiny_rsn_checkpoint, run_evaluate
):
    sample = json.loads(SAMPLE_ANN.read_text())
    dets = [
        {"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.9}
        for a in sample["annotations"] if a["num_keypoints"] > 0 and a["image_id"] != 463730
    ]
    dets.append(
        {"image_id": 40083, "category_id": 1, "bbox": [10, 10, -5, 30], "score": 0.5}
    )  # dropped
    det_path = tmp_path / "dets.json"
    det_path.write_text(json.dumps(dets))
    metrics = tmp_path / "td.json"
    base = ("--checkpoint", tiny_rsn_checkpoint, "--ann", SAMPLE_ANN, "--images", VAL_IMAGES,
            "--metrics", metrics)
    proc = run_evaluate(*base, "--boxes", det_path)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(metrics.read_text())
    # image 463730 is not in the file: scored as an image with no detections, said in one line
    assert record["model"] == "rsn18" and record["num_images"] == 3
    assert "--boxes: 1 of 3 images have no entry" in proc.stdout
    results = json.loads((tmp_path / "td_results.json").read_text())
    assert len(results) == len(dets) - 1 and 463730 not in {r["image_id"] for r in results}
    proc = run_evaluate(*base, "--gt-boxes")
    assert proc.returncode == 0, proc.stderr
    # no boxes given: the bundled person detector, as in the demo
    proc = run_evaluate(*base)
    assert proc.returncode == 0, proc.stderr
    assert "bundled RTMDet-nano" in proc.stdout


@pytest.mark.slow
def test_sharded_evaluation_under_torchrun_equals_single_process(
    tmp_path, tiny_imhn_checkpoint, run_evaluate
):
    single, sharded = tmp_path / "single.json", tmp_path / "sharded.json"
    common = [
        "--checkpoint",
        tiny_imhn_checkpoint,
        "--ann",
        SAMPLE_ANN,
        "--images",
        VAL_IMAGES,
        "--box-size",
        128,
        "--quiet",
    ]
    proc = run_evaluate(*common[:-1], "--metrics", single)
    assert proc.returncode == 0, proc.stderr
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(REPO / "evaluate.py"), *map(str, common), "--metrics", str(sharded)]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    a, b = json.loads(single.read_text()), json.loads(sharded.read_text())
    assert b["world_size"] == 2 and a["AP"] == b["AP"] and a["num_results"] == b["num_results"]
    key = lambda r: (r["image_id"], r["score"])
    ra = sorted(json.loads((tmp_path / "single_results.json").read_text()), key=key)
    rb = sorted(json.loads((tmp_path / "sharded_results.json").read_text()), key=key)
    assert ra == rb
