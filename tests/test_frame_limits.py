"""Frame limits bound what is read, in every path: the demo pipeline, folders, and the benchmark's
warm-up and timed passes. Each test counts the ``VideoCapture.read`` calls."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import FakePipelinePredictor, numbered_frames, write_video

from simplepose import demo as sdemo
from simplepose.structures import Person


class FakePredictor(FakePipelinePredictor):
    """Stands in for a network: one empty person per frame."""

    def predict(self, frame):
        return [Person.from_keypoints(np.zeros((17, 3)), 1.0)]


class CountingCapture:
    """A ``cv2.VideoCapture`` that counts the frames read out of it."""

    reads = 0
    real = cv2.VideoCapture

    def __init__(self, *args):
        self._cap = CountingCapture.real(*args)

    def read(self):
        ok, frame = self._cap.read()
        CountingCapture.reads += int(ok)
        return ok, frame

    def __getattr__(self, name):
        return getattr(self._cap, name)


@pytest.fixture
def counting(monkeypatch):
    CountingCapture.reads = 0
    monkeypatch.setattr(cv2, "VideoCapture", CountingCapture)
    return CountingCapture


def _video(path: Path, frames: int, size=(64, 48)) -> Path:
    return write_video(path, numbered_frames(frames, size))


@pytest.mark.parametrize(
    "open_limit, run_limit, expected", [(4, None, 4), (None, 3, 3), (5, 2, 2), (2, 5, 2)]
)
def test_demo_reads_no_frame_beyond_the_limit(tmp_path, counting, open_limit, run_limit, expected):
    src = _video(tmp_path / "v.avi", 30)
    source = sdemo.open_source(src, max_frames=open_limit)
    report = sdemo.run_demo(
        FakePredictor(),
        source,
        output=str(tmp_path / "o.mp4"),
        max_frames=run_limit,
        progress=False,
        queue_size=1,
    )
    assert report.frames == expected
    assert counting.reads == expected


def test_folder_limit_reads_the_first_images_only(tmp_path, monkeypatch):
    from simplepose.data import coco

    for i in range(5):
        cv2.imwrite(str(tmp_path / f"im{i}.png"), np.full((24, 32, 3), 40 * i, np.uint8))
    loaded = []
    real = coco.load_image
    monkeypatch.setattr(
        coco, "load_image", lambda path: loaded.append(Path(path).name) or real(path)
    )
    report = sdemo.run_demo(
        FakePredictor(), sdemo.open_source(tmp_path, max_frames=2), progress=False
    )
    assert report.frames == 2 and loaded == ["im0.png", "im1.png"]


def test_bench_warmup_and_timed_passes_read_only_their_frames(tmp_path, counting):
    """The benchmark reads 1 probe frame + ``--warmup`` + ``--max-frames`` frames, not the video."""
    from simplepose.cli import bench

    src = _video(tmp_path / "v.avi", 40, size=(96, 64))
    out = tmp_path / "bench.json"
    rc = bench.main(
        [
            "--input",
            str(src),
            "--json",
            str(out),
            "--box-size",
            "64",
            "--max-frames",
            "3",
            "--warmup",
            "2",
            "--micro-repeats",
            "0",
            "--workers",
            "1",
        ]
    )
    assert rc == 0
    assert counting.reads == 1 + 2 + 3
    record = json.loads(out.read_text())
    assert record["frames"] == 3 and [r["workers"] for r in record["runs"]] == [1]
