"""Video outputs of the demo: tracking, real-time mode, JSON lines that survive a kill, an H.264
video that reads back, and streams that break mid-way (decode failure, size change, webcam
disconnect) keeping what was written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import FakePipelinePredictor, count_frames, write_video

from simplepose import demo as sdemo
from simplepose.errors import InputError
from simplepose.structures import Person
from simplepose.utils.video import VideoWriter, ffmpeg_executable, read_jsonl

REPO = Path(__file__).resolve().parents[1]
VTEST = REPO.parent / "shared" / "data" / "demo" / "vtest.avi"


def run_cli(*args, timeout=600):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, str(REPO / "demo.py"), *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
    )


class WalkerModel(FakePipelinePredictor):
    """A "top-down" predictor of two 'people' whose keypoints follow two bright squares drawn
    into each frame."""

    model_name = "walker"

    def __init__(self, delay: float = 0.0):
        super().__init__()
        self.delay = delay

    def predict(self, frame):
        self.calls += 1
        time.sleep(self.delay)
        people = []
        for channel in (1, 2):
            ys, xs = np.nonzero(frame[:, :, channel] > 200)
            if len(xs):
                cx, cy = xs.mean(), ys.mean()
                k = np.zeros((17, 3))
                k[:, 0] = cx + np.linspace(-8, 8, 17)
                k[:, 1] = cy + np.linspace(-20, 20, 17)
                k[:, 2] = 0.9
                people.append(Person.from_keypoints(k, 0.9))
        return people


def walker_frames(n: int, size=(160, 120), change_at=None):
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(
        rng.integers(0, 120, (size[1], size[0], 3)).astype(np.uint8), (0, 0), 2
    )
    frames = []
    for i in range(n):
        frame = background.copy()
        cv2.rectangle(frame, (20 + 3 * i, 40), (34 + 3 * i, 80), (0, 255, 0), -1)
        cv2.rectangle(frame, (130 - 3 * i, 40), (144 - 3 * i, 80), (0, 0, 255), -1)
        if change_at is not None and i >= change_at:
            frame = cv2.resize(frame, (size[0] // 2, size[1] // 2))
        frames.append(frame)
    return frames


class FakeCapture:
    """A cv2.VideoCapture stand-in: gives ``frames``, then (False, None); ``fail_at`` makes that
    read fail while later frames exist (a frame that cannot be decoded / a camera unplugged)."""

    def __init__(self, frames, fail_at=None):
        self.frames, self.fail_at, self.i = frames, fail_at, 0

    def read(self):
        i, self.i = self.i, self.i + 1
        if i >= len(self.frames) or i == self.fail_at:
            return False, None
        return True, self.frames[i]

    def release(self):
        pass


def source(kind, frames, fail_at=None, total=None):
    return sdemo.FrameSource(
        kind, f"{kind}:fake", capture=FakeCapture(frames, fail_at), fps=10.0, total=total
    )


@pytest.mark.parametrize("realtime", [False, True])
def test_tracked_video_and_jsonl_read_back(tmp_path, realtime):
    frames = walker_frames(16)
    out, js = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    model = WalkerModel(delay=0.2 if realtime else 0.0)  # a slow network: keyframes only
    report = sdemo.run_demo(
        model,
        source("video", frames, total=16),
        output=str(out),
        json_path=str(js),
        progress=False,
        realtime=realtime,
        keyframe_interval=3,
    )
    assert report.frames == 16 and count_frames(out) == 16
    records = read_jsonl(js)
    assert [r["frame"] for r in records] == list(range(16))
    assert [r["timestamp"] for r in records] == pytest.approx([i / 10.0 for i in range(16)])
    ids = [[p["track_id"] for p in r["people"]] for r in records]
    assert all(sorted(i) == [1, 2] for i in ids[1:]), ids  # two stable ids (crossing included)
    for r in records:
        for p in r["people"]:
            assert (
                len(p["keypoints"]) == 51
                and len(p["box_xyxy"]) == 4
                and isinstance(p["score"], float)
            )
    if realtime:
        assert 5 <= report.keyframes == model.calls < 16
    # the person on the green square keeps one id over the whole clip, through the crossing
    # (the green square's centre is at x = 27 + 3 i: its person's first keypoint at 19 + 3 i)
    green = {
        p["track_id"]
        for r in records
        for p in r["people"]
        if abs(p["keypoints"][0] - 19 - 3 * r["frame"]) < 4
    }
    assert len(green) == 1


def test_h264_output_when_ffmpeg_is_available(tmp_path):
    if ffmpeg_executable() is None:
        pytest.skip("imageio-ffmpeg not installed")
    with VideoWriter(tmp_path / "v.mp4", 10, (161, 121)) as w:  # odd size: padded for yuv420p
        for f in walker_frames(5, size=(161, 121)):
            w.write(f)
    assert w.codec == "h264"
    cap = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
    assert fourcc.lower() in ("avc1", "h264") and count_frames(tmp_path / "v.mp4") == 5
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_encoder_failure_names_the_encoders_error(tmp_path, monkeypatch):
    """An encoder that stops: the one-line error carries the last line ffmpeg wrote."""
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho 'first line' >&2\necho 'Unknown encoder libx264' >&2\nexit 1")
    fake.chmod(0o755)
    monkeypatch.setattr("simplepose.utils.video.ffmpeg_executable", lambda: str(fake))
    w = VideoWriter(tmp_path / "v.mp4", 10, (64, 48))
    w._proc.wait(timeout=10)  # the encoder has exited: the next write hits a closed pipe
    with pytest.raises(InputError, match="stopped: Unknown encoder libx264"):
        w.write(np.zeros((48, 64, 3), np.uint8))
    w.close()  # no frame was written: nothing to keep, no error
    assert not (tmp_path / "v.mp4").exists()


@pytest.mark.parametrize("realtime", [False, True])
def test_frame_size_change_keeps_what_was_written(tmp_path, realtime):
    frames = walker_frames(10, change_at=6)
    out, js = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    with pytest.raises(InputError, match=r"frame 6 is 80x60"):
        sdemo.run_demo(
            WalkerModel(),
            source("video", frames, total=10),
            output=str(out),
            json_path=str(js),
            progress=False,
            realtime=realtime,
            keyframe_interval=2,
        )
    kept = len(read_jsonl(js))
    assert 1 <= kept <= 6 and count_frames(out) == kept


@pytest.mark.parametrize("realtime", [False, True])
def test_decode_failure_mid_stream_keeps_what_was_written(tmp_path, realtime):
    out, js = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    src = source("video", walker_frames(12), fail_at=5, total=12)
    src.header_frames = 12
    report = sdemo.run_demo(
        WalkerModel(), src, output=str(out), json_path=str(js), progress=False, realtime=realtime
    )
    assert "header announces 12 frames but decoding stopped at frame 5" in report.truncated
    assert [r["frame"] for r in read_jsonl(js)] == [0, 1, 2, 3, 4]
    assert count_frames(out) == 5


@pytest.mark.parametrize("realtime", [False, True])
def test_webcam_disconnect_keeps_what_was_written(tmp_path, realtime):
    out, js = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    with pytest.raises(InputError, match="stopped giving frames after 7"):
        sdemo.run_demo(
            WalkerModel(),
            source("webcam", walker_frames(20), fail_at=7),
            output=str(out),
            json_path=str(js),
            progress=False,
            realtime=realtime,
        )
    records = read_jsonl(js)
    assert 1 <= len(records) <= 7 and count_frames(out) == len(records)
    assert all(r["frame"] < 7 for r in records)


def test_realtime_refuses_images(tmp_path):
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), walker_frames(1)[0])
    with pytest.raises(InputError, match="--realtime needs a video"):
        sdemo.run_demo(WalkerModel(), sdemo.open_source(img), realtime=True, progress=False)


def _corrupt_video(path: Path, frames: int = 12, bad: int = 6) -> Path:
    """An MJPG AVI whose frame ``bad`` has its JPEG data zeroed (OpenCV fails that read only)."""
    write_video(path, [np.full((48, 64, 3), i * 20, np.uint8) for i in range(frames)])
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    assert len(starts) == frames
    data[starts[bad] : starts[bad + 1] - 8] = bytes(starts[bad + 1] - 8 - starts[bad])
    path.write_bytes(bytes(data))
    return path


def test_cli_corrupt_frame_one_line_nonzero_exit_and_outputs_kept(tmp_path):
    src = _corrupt_video(tmp_path / "bad.avi")
    out, js = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    proc = run_cli("--input", src, "--output", out, "--json", js, "--box-size", 64, "--quiet")
    assert proc.returncode == 1  # partial: the frames before the bad one were processed
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "decoding stopped at frame 6" in lines[0], proc.stderr
    assert len(read_jsonl(js)) == 6 and count_frames(out) == 6


def test_streaming_json_survives_a_kill(tmp_path):
    src = tmp_path / "long.avi"
    write_video(src, walker_frames(400))
    js = tmp_path / "o.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "demo.py"),
            "--input",
            str(src),
            "--json",
            str(js),
            "--box-size",
            "64",
            "--quiet",
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if js.exists() and js.read_text().count("\n") >= 5:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the demo finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = js.read_text()
    records = read_jsonl(js)
    assert len(records) >= 5 and [r["frame"] for r in records] == list(range(len(records)))
    assert len(records) < 400
    complete = text[: text.rfind("\n") + 1]
    assert [
        json.loads(line) for line in complete.splitlines()
    ] == records  # every full line is valid JSON


@pytest.mark.slow
def test_acceptance_vtest_realtime_writes_tracked_video_and_jsonl(tmp_path):
    """The issue's acceptance command on the whole of vtest.avi."""
    if not VTEST.exists():
        pytest.skip(f"{VTEST} not found")
    out, js = tmp_path / "vt.mp4", tmp_path / "vt.jsonl"
    proc = run_cli(
        "--input", VTEST, "--output", out, "--json", js, "--realtime", "--quiet", timeout=1800
    )
    assert proc.returncode == 0, proc.stderr
    assert "real time:" in proc.stdout and "fps output" in proc.stdout
    records = read_jsonl(js)
    total = int(cv2.VideoCapture(str(VTEST)).get(cv2.CAP_PROP_FRAME_COUNT))
    assert len(records) == total == count_frames(out)
    ids = [p["track_id"] for r in records for p in r["people"]]
    assert ids and all(isinstance(i, int) and i >= 1 for i in ids)
    # people are followed: the most common ids last for many frames
    _, counts = np.unique(ids, return_counts=True)
    assert counts.max() > total // 4
