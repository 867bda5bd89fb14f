"""COCO keypoint evaluation: ground truth round trip, perturbations, empty results and
parity with a plain file-based pycocotools run."""

import contextlib
import copy
import io
import json
from pathlib import Path

import numpy as np
import pytest

from simplepose.data.coco import load_coco_keypoints
from simplepose.errors import InputError
from simplepose.evaluation import (
    STAT_NAMES,
    KeypointMetrics,
    evaluate_keypoints,
    format_metrics_table,
    load_results,
    write_results,
)
from simplepose.structures import Person

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "data" / "coco_sample" / "annotations.json"
SHARED_VAL = (
    REPO.parent / "shared" / "data" / "coco" / "annotations"
    / "person_keypoints_val2017_subset.json"
)
EXPECTED_KEYS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def make_result(image_id, keypoints, score, category_id=1):
    """One result record, written as every results writer does (:meth:`Person.to_coco`)."""
    person = Person(keypoints=np.asarray(keypoints), score=score, box=np.zeros(4))
    return person.to_coco(image_id, category_id=category_id)


def _gt_results(coco, score=1.0):
    """Every labelled, non-crowd ground-truth person as a result record."""
    return [
        make_result(a["image_id"], np.reshape(a["keypoints"], (17, 3)), score)
        for a in coco.annotations
        if a["num_keypoints"] > 0 and not a["iscrowd"]
    ]


@pytest.fixture(scope="module")
def sample():
    return load_coco_keypoints(SAMPLE)


@pytest.mark.parametrize("which", ["committed_sample", "shared_val_subset"])
def test_ground_truth_as_predictions_gives_ap_one(which):
    path = SAMPLE if which == "committed_sample" else SHARED_VAL
    if not path.is_file():
        pytest.skip(f"{path} is not present (shared data lives outside the repository)")
    coco = load_coco_keypoints(path)
    results = _gt_results(coco)
    assert len(results) > 0
    metrics = evaluate_keypoints(coco, results)
    assert isinstance(metrics, KeypointMetrics)
    assert metrics.num_images == len(coco.image_ids)
    assert metrics.num_results == len(results)
    for name in EXPECTED_KEYS:
        assert metrics[name] == pytest.approx(1.0), name


def test_files_round_trip_ap_one(sample, tmp_path):
    """Paths for both inputs; write_results/load_results keep the records intact."""
    results = _gt_results(sample, score=0.75)
    out = tmp_path / "results.json"
    write_results(results, out)
    assert load_results(out) == results
    metrics = evaluate_keypoints(SAMPLE, out)
    assert metrics["AP"] == pytest.approx(1.0)


def test_metrics_keys_exactly(sample):
    metrics = evaluate_keypoints(sample, _gt_results(sample))
    assert tuple(metrics.stats) == EXPECTED_KEYS
    assert STAT_NAMES == EXPECTED_KEYS
    assert all(isinstance(v, float) for v in metrics.stats.values())
    assert "Average Precision" in metrics.summary and "maxDets= 20" in metrics.summary


def test_perturbed_prediction_lowers_ap(sample):
    base = _gt_results(sample)
    aps = []
    for shift in (0.0, 4.0, 12.0):
        results = copy.deepcopy(base)
        kps = np.reshape(results[0]["keypoints"], (17, 3))
        kps[:, :2] += shift  # move one person's keypoints diagonally by `shift` px
        results[0]["keypoints"] = kps.ravel().tolist()
        aps.append(evaluate_keypoints(sample, results)["AP"])
    assert aps[0] == pytest.approx(1.0)
    assert aps[1] < aps[0]
    assert aps[2] < aps[1]
    assert aps[2] > 0.5  # the other persons still match exactly


def test_low_scored_false_positive_does_not_change_ap_but_high_scored_does(sample):
    base = _gt_results(sample)
    junk = make_result(40083, np.tile([5.0, 5.0, 1.0], (17, 1)), 0.01)
    assert evaluate_keypoints(sample, base + [junk])["AP"] == pytest.approx(1.0)
    junk_high = make_result(40083, np.tile([5.0, 5.0, 1.0], (17, 1)), 2.0)
    assert evaluate_keypoints(sample, base + [junk_high])["AP"] < 1.0


def test_empty_results_give_zero(sample):
    metrics = evaluate_keypoints(sample, [])
    assert tuple(metrics.stats) == EXPECTED_KEYS
    assert all(v == 0.0 for v in metrics.stats.values())
    assert metrics.num_results == 0


def test_empty_results_file_gives_zero(tmp_path):
    out = tmp_path / "empty.json"
    write_results([], out)
    assert evaluate_keypoints(SAMPLE, out)["AP"] == 0.0


def test_image_ids_restrict_the_evaluation(sample):
    results = _gt_results(sample)
    only = evaluate_keypoints(sample, results, image_ids=[252219])
    assert only.num_images == 1
    assert only.num_results == sum(r["image_id"] == 252219 for r in results)
    assert only["AP"] == pytest.approx(1.0)
    # Drop the predictions of one image: its persons become misses, recall falls.
    partial = [r for r in results if r["image_id"] != 40083]
    assert evaluate_keypoints(sample, partial)["AR"] < 1.0
    assert evaluate_keypoints(sample, partial, image_ids=[252219, 463730])["AR"] == pytest.approx(
        1.0
    )
    with pytest.raises(InputError, match="123456"):
        evaluate_keypoints(sample, results, image_ids=[123456])


def test_results_on_unknown_image_or_category_raise(sample):
    kps = np.zeros((17, 3))
    with pytest.raises(InputError, match="999"):
        evaluate_keypoints(sample, [make_result(999, kps, 1.0)])
    with pytest.raises(InputError, match="category"):
        evaluate_keypoints(sample, [make_result(40083, kps, 1.0, category_id=2)])
    with pytest.raises(InputError, match=r"results\[1\]"):
        evaluate_keypoints(sample, [make_result(40083, kps, 1.0), {"image_id": 40083}])


def test_extra_bbox_key_is_ignored(sample):
    """pycocotools would treat records with a 'bbox' as box results; we pass keypoints only."""
    rng = np.random.default_rng(0)
    results = _gt_results(sample)
    for r in results:
        r["keypoints"] = (np.asarray(r["keypoints"]) + rng.normal(0, 3, 51)).tolist()
        r["score"] = float(rng.uniform())
    with_box = [dict(r, bbox=[0.0, 0.0, 1.0, 1.0]) for r in results]
    assert evaluate_keypoints(sample, with_box).stats == evaluate_keypoints(sample, results).stats


def test_parity_with_plain_pycocotools(sample, tmp_path):
    """Same numbers as pycocotools reading both files itself."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(1)
    results = []
    for r in _gt_results(sample):
        for _ in range(2):  # two noisy copies per person, random scores
            kps = np.reshape(r["keypoints"], (17, 3)).copy()
            kps[:, :2] += rng.normal(0, 6, (17, 2))
            results.append(make_result(r["image_id"], kps, float(rng.uniform())))
    res_file = tmp_path / "res.json"
    res_file.write_text(json.dumps(results))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(SAMPLE))
        dt = gt.loadRes(str(res_file))
        ev = COCOeval(gt, dt, "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    ours = evaluate_keypoints(sample, results)
    assert 0.0 < ours["AP"] < 1.0
    np.testing.assert_allclose([ours[k] for k in EXPECTED_KEYS], ev.stats, rtol=0, atol=1e-12)


def test_evaluation_does_not_mutate_inputs(sample):
    results = _gt_results(sample)
    before_res = copy.deepcopy(results)
    before_ann = copy.deepcopy(sample.annotations)
    evaluate_keypoints(sample, results)
    assert results == before_res
    assert sample.annotations == before_ann


def test_person_to_coco_record_and_validation():
    kps = np.arange(51, dtype=np.float32).reshape(17, 3)
    rec = make_result(np.int64(7), kps, np.float32(0.5))
    assert rec == {
        "image_id": 7,
        "category_id": 1,
        "keypoints": [float(v) for v in range(51)],
        "score": 0.5,
    }
    assert type(rec["image_id"]) is int and type(rec["score"]) is float
    json.dumps(rec)  # plain JSON types only
    with pytest.raises(InputError, match=r"\(K, 3\)"):
        make_result(1, np.zeros((17, 2)), 1.0)
    bad = np.zeros((17, 3))
    bad[4, 0] = np.nan
    with pytest.raises(InputError, match="not finite"):
        make_result(1, bad, 1.0)
    with pytest.raises(InputError, match="score"):
        make_result(1, np.zeros((17, 3)), float("inf"))
    with pytest.raises(InputError, match="image_id"):
        make_result(1.5, np.zeros((17, 3)), 1.0)


def test_write_results_rejects_bad_records(tmp_path):
    good = make_result(1, np.zeros((17, 3)), 1.0)
    bad = dict(good, keypoints=[0.0] * 50)
    out = tmp_path / "r.json"
    with pytest.raises(InputError, match=r"results\[1\].*51"):
        write_results([good, bad], out)
    assert not out.exists()


def test_format_metrics_table(sample):
    metrics = evaluate_keypoints(sample, _gt_results(sample))
    table = format_metrics_table(metrics)
    lines = table.splitlines()
    assert len(lines) == 3
    assert [c.strip() for c in lines[0].strip("|").split("|")] == list(EXPECTED_KEYS)
    assert [c.strip() for c in lines[2].strip("|").split("|")] == ["1.000"] * 10
    partial = format_metrics_table({"AP": 0.6854, "AR": 0.7281})
    cells = [c.strip() for c in partial.splitlines()[2].strip("|").split("|")]
    assert cells[0] == "0.685" and cells[5] == "0.728" and cells[1] == "-"
