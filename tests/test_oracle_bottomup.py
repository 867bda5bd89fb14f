"""The bottom-up oracle and evaluate.py, end to end."""

import json

import pytest
from conftest import SAMPLE_ANN, VAL_ANN


def test_oracle_on_committed_sample(sample_ann):
    from simplepose.evaluation.runner import run_oracle

    results, metrics, _ = run_oracle("bottomup", sample_ann, progress=False)
    assert len(results) >= 8
    assert metrics["AP"] > 0.85, metrics.as_dict()


def test_reference_backend_gives_identical_results(sample_ann):
    from simplepose.evaluation.runner import run_oracle

    cpp, _, _ = run_oracle("bottomup", sample_ann, progress=False, backend="cpp")
    ref, _, _ = run_oracle("bottomup", sample_ann, progress=False, backend="reference")
    assert cpp == ref


@pytest.fixture
def run_evaluate(run_cli):
    """evaluate.py's ``main(argv)`` in process."""
    return lambda *args: run_cli("evaluate", *args)


def test_evaluate_cli_oracle_and_results_modes(tmp_path, run_evaluate):
    metrics = tmp_path / "oracle.json"
    proc = run_evaluate(
        "--oracle", "bottomup", "--ann", str(SAMPLE_ANN), "--metrics", str(metrics), "--quiet"
    )
    assert proc.returncode == 0, proc.stderr
    assert "Average Precision" in proc.stdout
    record = json.loads(metrics.read_text())
    for key in ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"):
        assert key in record
    results = tmp_path / "oracle_results.json"
    assert results.exists()
    rescored = tmp_path / "rescored.json"
    proc = run_evaluate(
        "--results", str(results), "--ann", str(SAMPLE_ANN), "--metrics", str(rescored)
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(rescored.read_text())["AP"] == pytest.approx(record["AP"])


@pytest.mark.parametrize(
    "content, message",
    [(None, "does not exist"), ("{not json", "JSON"), ('{"images": []}', "annotations")],
)
def test_evaluate_cli_bad_annotation_file(tmp_path, content, message, run_evaluate):
    ann = tmp_path / "ann.json"
    if content is not None:
        ann.write_text(content)
    proc = run_evaluate(
        "--oracle", "bottomup", "--ann", str(ann), "--metrics", str(tmp_path / "m.json"), "--quiet"
    )
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "m.json").exists()


@pytest.mark.slow
def test_oracle_on_shared_val_subset_reaches_090(val_ann):
    from simplepose.evaluation.runner import run_oracle

    _, metrics, _ = run_oracle("bottomup", val_ann, progress=False)
    assert metrics["AP"] >= 0.90, metrics.as_dict()
    assert VAL_ANN.exists()
