"""bench/gpu.py on a machine without CUDA: GPU rows skipped, the CPU smoke rows run every path."""

from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import REPO, SHARED

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(
    not (SHARED / "data" / "demo" / "vtest.avi").exists(), reason="../shared/data not found")


def _load_gpu_bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", REPO / "bench" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA path")
def test_gpu_report_on_cpu(tmp_path):
    bench = _load_gpu_bench()
    out = tmp_path / "g.json"
    assert bench.main(["--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["cuda"] is False and record["device_name"] is None
    assert set(record["rows"]) == set(bench.ROWS)
    assert all(r["status"] == "skipped: no CUDA" for r in record["rows"].values())
    smoke = record["cpu_smoke"]
    assert all(smoke[name]["status"] == "ok" for name in bench.ROWS)
    assert set(smoke["imhn_forward"]["images_per_s"]) == {
        f"{v}_b{b}"
        for v in ("fp32", "bf16", "channels_last_fp32", "channels_last_bf16")
        for b in (1, 2)
    }
    assert smoke["bundled_e2e"]["frames"] == 2 and smoke["bundled_e2e"]["fps"] > 0
    assert smoke["rsn18_topdown"]["people"] >= 1
    assert smoke["imhn_train_amp"]["iterations"] == 6
    assert smoke["ddp_smoke"]["all_reduce_ok"] is True and smoke["ddp_smoke"]["backend"] == "gloo"


def test_gpu_report_missing_output_folder(tmp_path, capsys):
    bench = _load_gpu_bench()
    assert bench.main(["--json", str(tmp_path / "nope" / "g.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
