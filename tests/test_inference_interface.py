"""One inference interface: the demo's threaded stages and ``Predictor.predict`` run the same
``prepare -> forward -> decode`` steps, so they return identical people on real images, in
both paradigms (bottom-up: the bundled OpenPose; top-down: a tiny RSN checkpoint on the bundled
detector's boxes)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import REPO, VAL_IMAGES
from helpers import write_video

from simplepose import Predictor
from simplepose import demo as sdemo
from simplepose.data.coco import load_image

IMAGES = [REPO / "assets" / "sample_group.jpg", VAL_IMAGES / "000000040083.jpg"]


def _images(tmp_path, candidates=IMAGES):
    paths = [p for p in candidates if p.exists()]
    if not paths:
        pytest.skip("no sample images")
    folder = tmp_path / "images"
    folder.mkdir()
    for p in paths:
        shutil.copy(p, folder / p.name)
    return folder


def _same_people(a, b):
    assert len(a) == len(b)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p.keypoints, q.keypoints)
        assert p.score == q.score
        np.testing.assert_array_equal(p.box, q.box)


def _check_folder(predictor, folder):
    seen = {}
    report = sdemo.run_demo(
        predictor,
        sdemo.open_source(str(folder)),
        progress=False,
        channels_last=False,
        on_frame=lambda i, f, p: seen.update({i: p}),
    )
    assert report.frames == len(seen) > 0
    paths = sorted(folder.iterdir())
    total = 0
    for index, people in seen.items():
        _same_people(people, predictor.predict(load_image(paths[index])))
        total += len(people)
    assert total > 0  # the comparison is not vacuous


def _check_video(predictor, image_path, tmp_path):
    """The threaded video pipeline (2 network workers, no tracking): a short clip of one image,
    compared frame by frame as decoded."""
    video = tmp_path / "clip.avi"
    frame = load_image(image_path)
    write_video(video, [frame] * 3, fps=5.0)
    frames = {}
    sdemo.run_demo(
        predictor,
        sdemo.open_source(str(video)),
        progress=False,
        workers=2,
        channels_last=False,
        track=False,  # the tracker smooths keypoints over time by design
        on_frame=lambda i, f, p: frames.update({i: (f.copy(), p)}),
    )
    assert len(frames) == 3 and sum(len(p) for _, p in frames.values()) > 0
    for decoded, people in frames.values():
        _same_people(people, predictor.predict(decoded))


def _bottomup():
    return Predictor.from_pretrained("openpose_mobilenet_thin", device="cpu", box_size=256)


def _topdown(checkpoint):
    predictor = Predictor.from_checkpoint(checkpoint, device="cpu", detector="bundled")
    assert predictor.mode == "topdown"
    return predictor


def test_bottomup_demo_equals_predict(tmp_path, one_thread):
    _check_folder(_bottomup(), _images(tmp_path))


def test_topdown_demo_equals_predict(tmp_path, tiny_rsn_checkpoint, one_thread):
    _check_folder(_topdown(tiny_rsn_checkpoint), _images(tmp_path, IMAGES[:1]))


@pytest.mark.slow
def test_video_pipeline_equals_predict(tmp_path, tiny_rsn_checkpoint, one_thread):
    image = next((p for p in IMAGES if p.exists()), None)
    if image is None:
        pytest.skip("no sample images")
    _check_video(_bottomup(), image, tmp_path)
    _check_video(_topdown(tiny_rsn_checkpoint), image, tmp_path)


def test_steps_compose_to_predict(tiny_imhn_checkpoint, one_thread):
    image = load_image(IMAGES[0]) if IMAGES[0].exists() else np.zeros((120, 160, 3), np.uint8)
    predictor = Predictor.from_checkpoint(
        tiny_imhn_checkpoint, device="cpu", box_size=128, scales=(1.0, 0.5), flip=True
    )
    inputs = predictor.prepare(image)
    assert len(inputs.inputs) == 2 and inputs.inputs[0].shape[0] == 2  # image + mirror
    people = predictor.decode(inputs, predictor.forward(inputs))
    _same_people(people, predictor.predict(image))
