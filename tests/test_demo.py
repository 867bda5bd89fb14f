"""demo.py and simplepose.demo: sources, sinks, JSON, the threaded video pipeline and
the one-line errors.

``demo.py`` exit codes: 0 all frames processed, 1 a folder had unreadable images (the rest
were processed), 2 an error stopped the run, 130 Ctrl-C.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import FakePipelinePredictor, count_frames, numbered_frames, write_video

from simplepose import demo as sdemo
from simplepose.errors import InputError
from simplepose.structures import Person

REPO = Path(__file__).resolve().parents[1]
DEMO_DIR = REPO.parent / "shared" / "data" / "demo"


@pytest.fixture
def run_demo_cli(run_cli):
    """demo.py's ``main(argv)`` in process (``--quiet`` added)."""
    return lambda *args, **_: run_cli("demo", "--quiet", *args)


def synthetic_image(h=96, w=128, seed=0) -> np.ndarray:
    """A figure-like drawing on a noisy background (no real people needed)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(60, 120, (h, w, 3), dtype=np.uint8)
    cv2.circle(img, (w // 2, h // 5), h // 10, (180, 190, 220), -1)
    cv2.line(img, (w // 2, h // 4), (w // 2, 2 * h // 3), (40, 40, 160), 6)
    return img


def synthetic_video(path: Path, frames: int = 6, size=(128, 96)) -> Path:
    """An ``mp4v`` video of ``frames`` :func:`synthetic_image` frames of ``size`` (w, h)."""
    images = (synthetic_image(size[1], size[0], seed=i) for i in range(frames))
    return write_video(path, images, fourcc="mp4v")


def assert_one_line_error(proc, code=2, needle=None):
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("demo.py: error:"), proc.stderr
    if needle:
        assert needle in lines[0]


def check_records(records, frames):
    assert [r["frame"] for r in records] == list(range(frames))
    for r in records:
        for p in r["people"]:
            assert len(p["keypoints"]) == 51 and len(p["box_xyxy"]) == 4
            assert isinstance(p["score"], float)


# --------------------------------------------------------------- CLI end to end
def test_image_synthetic_writes_image_and_json(tmp_path, run_demo_cli):
    src = tmp_path / "synth.png"
    cv2.imwrite(str(src), synthetic_image())
    out, js = tmp_path / "out.jpg", tmp_path / "people.json"
    proc = run_demo_cli("--input", src, "--output", out, "--json", js, "--box-size", 96)
    assert proc.returncode == 0, proc.stderr
    drawn = cv2.imread(str(out))
    assert drawn is not None and drawn.shape == (96, 128, 3)
    records = json.loads(js.read_text())
    check_records(records, 1)
    assert records[0]["image"] == "synth.png"


@pytest.mark.skipif(not (DEMO_DIR / "rtmlib_demo.jpg").exists(), reason="needs ../shared/data/demo")
def test_image_real_people_found(tmp_path, run_demo_cli):
    out, js = tmp_path / "out.jpg", tmp_path / "people.json"
    proc = run_demo_cli("--input", DEMO_DIR / "rtmlib_demo.jpg", "--output", out, "--json", js)
    assert proc.returncode == 0, proc.stderr
    src, drawn = cv2.imread(str(DEMO_DIR / "rtmlib_demo.jpg")), cv2.imread(str(out))
    assert drawn.shape == src.shape and (drawn != src).any()
    people = json.loads(js.read_text())[0]["people"]
    assert len(people) >= 3  # a group photo
    h, w = src.shape[:2]
    kp = np.array([p["keypoints"] for p in people]).reshape(-1, 17, 3)
    present = kp[..., 2] > 0
    assert (kp[..., 0][present] <= w).all() and (kp[..., 1][present] <= h).all()


def test_folder_with_a_corrupt_file_processes_the_rest(tmp_path, run_demo_cli):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"ok{i}.png"), synthetic_image(seed=i))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "notes.txt").write_text("ignored: not an image extension")
    out, js = tmp_path / "drawn", tmp_path / "people.json"
    proc = run_demo_cli("--input", folder, "--output", out, "--json", js, "--box-size", 96)
    assert proc.returncode == 1, proc.stderr
    assert "broken.jpg" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["ok0.png", "ok1.png"]
    records = json.loads(js.read_text())
    assert [r["image"] for r in records] == ["ok0.png", "ok1.png"]


def test_synthetic_video_pipeline(tmp_path, run_demo_cli):
    src = synthetic_video(tmp_path / "clip.mp4", frames=6)
    out, js = tmp_path / "out.mp4", tmp_path / "frames.json"
    proc = run_demo_cli("--input", src, "--output", out, "--json", js, "--box-size", 96)
    assert proc.returncode == 0, proc.stderr
    assert count_frames(out) == 6
    check_records(json.loads(js.read_text()), 6)


@pytest.mark.skipif(not (DEMO_DIR / "vtest.avi").exists(), reason="needs ../shared/data/demo")
def test_real_video_first_frames(tmp_path, run_demo_cli):
    out, js = tmp_path / "vtest.mp4", tmp_path / "frames.json"
    proc = run_demo_cli(
        "--input",
        DEMO_DIR / "vtest.avi",
        "--output",
        out,
        "--json",
        js,
        "--max-frames",
        10,
        "--box-size",
        256,
    )
    assert proc.returncode == 0, proc.stderr
    cap = cv2.VideoCapture(str(out))
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (
        768,
        576,
    )
    cap.release()
    assert count_frames(out) == 10
    check_records(json.loads(js.read_text()), 10)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--input", "/nonexistent/photo.jpg"], "does not exist"),
        (["--input", "webcam:97"], "webcam 97"),
        (["--input", "webcam:x"], "webcam index"),
        (["--input", "{img}", "--output", "/nonexistent_dir/out.jpg"], "/nonexistent_dir"),
        (["--input", "{img}", "--json", "/nonexistent_dir/p.json"], "/nonexistent_dir"),
        (["--input", "{video}", "--output", "/nonexistent_dir/out.mp4"], "/nonexistent_dir"),
        (["--input", "{bad_video}"], "cannot be opened"),
        (["--input", "{bad_image}", "--json", "{json}"], "cannot be decoded"),
        (["--input", "{img}", "--mode", "topdown", "--json", "{json}"], "--checkpoint"),
        (
            ["--input", "{img}", "--checkpoint", "/nonexistent.safetensors", "--json", "{json}"],
            "does not exist",
        ),
    ],
)
def test_errors_are_one_line_and_nonzero(tmp_path, args, needle, run_demo_cli):
    img = tmp_path / "img.png"
    cv2.imwrite(str(img), synthetic_image())
    video = synthetic_video(tmp_path / "v.mp4", frames=2)
    bad_video = tmp_path / "bad.mp4"
    bad_video.write_bytes(b"\x00" * 1000)
    bad_image = tmp_path / "bad.png"
    bad_image.write_bytes(b"garbage")
    names = {
        "img": img,
        "video": video,
        "bad_video": bad_video,
        "bad_image": bad_image,
        "json": tmp_path / "p.json",
    }
    proc = run_demo_cli(*[a.format(**names) for a in args], timeout=120)
    assert_one_line_error(proc, 2, needle)


# --------------------------------------------------------------- pipeline in process
class FakePredictor(FakePipelinePredictor):
    """A "top-down" predictor whose person encodes the frame's mean value, to check order."""

    def __init__(self, fail_at=None, delay=0.0, jitter=0.0):
        super().__init__()
        self.fail_at, self.delay = fail_at, delay
        self.rng = np.random.default_rng(0) if jitter else None
        self.jitter = jitter

    def predict(self, frame):
        self.calls += 1
        if self.fail_at is not None and self.calls > self.fail_at:
            raise InputError("boom in the network stage")
        time.sleep(self.delay + (self.rng.uniform(0, self.jitter) if self.rng is not None else 0.0))
        kpts = np.zeros((17, 3))
        kpts[0] = [float(frame.mean()), 1.0, 1.0]
        return [Person.from_keypoints(kpts, 1.0)]


def _numbered_video(path: Path, frames: int) -> Path:
    return write_video(path, numbered_frames(frames))


def _demo_threads():
    return [t for t in threading.enumerate() if t.name.startswith("demo-") and t.is_alive()]


@pytest.mark.parametrize("workers", [1, 3])
def test_pipeline_keeps_frame_order(tmp_path, workers):
    src = _numbered_video(tmp_path / "n.avi", 12)
    seen = []
    report = sdemo.run_demo(
        FakePredictor(delay=0.002, jitter=0.02), sdemo.open_source(src),
        output=str(tmp_path / "o.mp4"), json_path=str(tmp_path / "o.json"), progress=False,
        queue_size=2, workers=workers, track=False,
        on_frame=lambda i, frame, people: seen.append((i, people[0].keypoints[0, 0])),
    )  # fmt: skip
    assert report.frames == 12 and [i for i, _ in seen] == list(range(12))
    values = [v for _, v in seen]
    assert values == sorted(values) and abs(values[-1] - values[0] - 110) < 6
    assert count_frames(tmp_path / "o.mp4") == 12
    assert set(report.stage_ms) == set(sdemo.STAGES)
    assert not _demo_threads()


def test_pipeline_error_propagates_without_hanging(tmp_path):
    src = _numbered_video(tmp_path / "n.avi", 40)
    t0 = time.perf_counter()
    with pytest.raises(InputError, match="boom"):
        sdemo.run_demo(
            FakePredictor(fail_at=3),
            sdemo.open_source(src),
            output=str(tmp_path / "o.mp4"),
            progress=False,
            queue_size=1,
            workers=2,
        )
    assert time.perf_counter() - t0 < 20
    assert not _demo_threads()


def test_pipeline_keyboard_interrupt_stops_threads(tmp_path):
    src = _numbered_video(tmp_path / "n.avi", 40)

    def interrupt(i, frame, people):
        if i == 2:
            raise KeyboardInterrupt

    js = tmp_path / "partial.json"
    with pytest.raises(KeyboardInterrupt):
        sdemo.run_demo(FakePredictor(), sdemo.open_source(src), json_path=str(js),
                             progress=False, on_frame=interrupt)
    assert not _demo_threads()
    assert [r["frame"] for r in json.loads(js.read_text())] == [0, 1]  # frames done before Ctrl-C


def test_max_frames_and_source_kinds(tmp_path):
    src = _numbered_video(tmp_path / "n.avi", 10)
    report = sdemo.run_demo(FakePredictor(), sdemo.open_source(src, max_frames=4), max_frames=4,
                                  progress=False)
    assert report.frames == 4
    (tmp_path / "f").mkdir()
    with pytest.raises(InputError, match="no images"):
        sdemo.open_source(tmp_path / "f")
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), synthetic_image())
    assert sdemo.open_source(img).kind == "image"
    with pytest.raises(InputError, match="must be a video file"):
        sdemo.plan_outputs(sdemo.open_source(src), str(tmp_path / "x.png"), None)


@pytest.mark.parametrize("option", ["checkpoint", "detector", "model"])
@pytest.mark.parametrize("output", ["json", "output"])
def test_an_output_that_is_a_model_file_is_refused_before_any_work(tmp_path, option, output):
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), synthetic_image())
    model = tmp_path / ("m.onnx" if option == "model" else "m.png")  # --output wants an image
    model.write_bytes(b"weights")
    outputs = {"json_path": str(model)} if output == "json" else {"output": str(model)}
    with pytest.raises(InputError, match="is the input"):
        sdemo.open_run(str(img), **outputs, **{option: str(model)})
    assert model.read_bytes() == b"weights"


def test_drawn_output_and_json_output_must_differ(tmp_path):
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), synthetic_image())
    out = tmp_path / "out"
    out.mkdir()
    for output in (out / "b.png", out):  # a file, or a folder (the image is drawn to out/a.png)
        json_path = output if output.suffix else out / "a.png"
        with pytest.raises(InputError, match="is also the JSON output"):
            sdemo.plan_outputs(sdemo.open_source(img), str(output), str(json_path))


def test_json_output_that_is_a_folder_is_refused_before_any_work(tmp_path):
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), synthetic_image())
    (tmp_path / "out").mkdir()
    with pytest.raises(InputError, match="JSON output .*out is a folder, not a file"):
        sdemo.plan_outputs(sdemo.open_source(img), None, str(tmp_path / "out"))


# ------------------------------------------------------------------ top-down end to end
def test_topdown_demo_with_bundled_detector(tmp_path, tiny_rsn_checkpoint, run_demo_cli):
    """demo.py --mode topdown runs the bundled RTMDet-nano and the top-down model end to end."""
    src = DEMO_DIR / "rtmlib_demo.jpg"
    image = src if src.exists() else REPO / "assets" / "sample_group.jpg"
    out, js = tmp_path / "td.jpg", tmp_path / "td.json"
    proc = run_demo_cli(
        "--input",
        str(image),
        "--mode",
        "topdown",
        "--checkpoint",
        str(tiny_rsn_checkpoint),
        "--output",
        str(out),
        "--json",
        str(js),
    )
    assert proc.returncode == 0, proc.stderr
    drawn, original = cv2.imread(str(out)), cv2.imread(str(image))
    assert drawn.shape == original.shape and (drawn != original).any()
    frames = json.loads(js.read_text())
    people = frames[0]["people"]
    assert len(people) >= 3  # one per detected person in the group photo
    assert all(len(p["keypoints"]) == 51 and len(p["box_xyxy"]) == 4 for p in people)


def test_topdown_checkpoint_refused_as_bottomup(tmp_path, tiny_rsn_checkpoint, run_demo_cli):
    img = tmp_path / "img.png"
    cv2.imwrite(str(img), synthetic_image())
    proc = run_demo_cli(
        "--input",
        str(img),
        "--mode",
        "bottomup",
        "--checkpoint",
        str(tiny_rsn_checkpoint),
        "--json",
        str(tmp_path / "p.json"),
    )
    assert_one_line_error(proc, 2, "is a topdown model")
