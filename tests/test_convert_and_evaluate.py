"""Released-checkpoint layout -> data_prep/convert_checkpoint.py -> evaluate.py on detector
boxes, end to end for a CPN, an MSPN and an RSN (weights from the parity fixtures' filler)."""

import importlib.util
import json
import subprocess
import sys

import pytest
from conftest import REPO, SAMPLE_ANN, SHARED, VAL_IMAGES

PARITY_DIR = SHARED / "fixtures" / "parity"
DETS = (
    SHARED / "data" / "coco" / "detections" / "COCO_val2017_detections_AP_H_56_person_subset.json"
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (PARITY_DIR / "parity.py").exists() or not VAL_IMAGES.exists(),
        reason="../shared absent",
    ),
]


def _filled_reference_state_dict(fixture: str):
    spec = importlib.util.spec_from_file_location("_sp_parity_cli", PARITY_DIR / "parity.py")
    parity = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(PARITY_DIR))
    try:
        spec.loader.exec_module(parity)
        return parity.load_fixture(fixture, str(PARITY_DIR))["ref_state_dict"]
    finally:
        sys.path.remove(str(PARITY_DIR))


@pytest.mark.parametrize(
    "source, model, fixture",
    [
        ("pytorch-cpn", "cpn50", "cpn50"),
        ("mspn", "mspn", "mspn_2stg"),
        ("rsn", "rsn18", "rsn18_1stg"),
    ],
)
def test_released_layout_converts_and_evaluates_on_detector_boxes(tmp_path, source, model, fixture):
    import torch

    released = tmp_path / f"{fixture}.pth"
    torch.save({"state_dict": _filled_reference_state_dict(fixture)}, released)
    converted = tmp_path / f"{fixture}.safetensors"
    proc = subprocess.run(
        [sys.executable, str(REPO / "data_prep" / "convert_checkpoint.py"), "--from", source,
         "--model", model, str(released), str(converted)],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # a small detection file: the real detector boxes of the sample images, best 4 per image
    sample_ids = {im["id"] for im in json.loads(SAMPLE_ANN.read_text())["images"]}
    dets = (
        [d for d in json.loads(DETS.read_text()) if d["image_id"] in sample_ids]
        if DETS.exists()
        else []
    )
    if not dets:
        pytest.skip("no detector boxes for the sample images")
    dets = sorted(dets, key=lambda d: -d["score"])[:8]
    det_path = tmp_path / "dets.json"
    det_path.write_text(json.dumps(dets))
    metrics = tmp_path / "m.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "evaluate.py"), "--checkpoint", str(converted),
         "--boxes", str(det_path), "--ann", str(SAMPLE_ANN), "--images", str(VAL_IMAGES),
         "--metrics", str(metrics), "--quiet"],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    record = json.loads(metrics.read_text())
    assert record["model"] == model and record["num_results"] == len(dets) and "AP" in record
