"""Faults and hostile inputs (issue 10): every case ends in a clear error or correct handling.

Kills are simulated with subprocesses and signals; big-memory cases are bounded by the checks
(a refused metadata field, a refused flag), never by the machine.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _env(**extra) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# ---------------------------------------------------------------------- torchrun: orphans, stops
_RANK_SCRIPT = textwrap.dedent("""
    import logging, os, sys, time
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from simplepose import dist
    info = dist.init_distributed("cpu", timeout_s=float(sys.argv[1]))
    # one write per line: two ranks share the pipe, and print() writes the text and the newline
    # separately, so their lines could interleave
    sys.stdout.write(f"ready {info.rank} {os.getpid()}\\n")
    try:
        while True:
            dist.reduce_mean(1.0)
            time.sleep(0.05)
    except RuntimeError as exc:
        sys.stdout.write(f"FAILED {dist.describe_collective_failure(exc)}\\n")
        sys.exit(3)
""")


def _start_torchrun(tmp_path, timeout_s: float):
    script = tmp_path / "rank.py"
    script.write_text(_RANK_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(script), str(timeout_s)],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    pids, lines = {}, []
    deadline = time.time() + 120
    try:
        while len(pids) < 2:
            line = _readline(proc, deadline)
            assert line is not None, "ranks did not start within 120 s:\n" + "".join(lines)[-3000:]
            assert line or proc.poll() is None, "".join(lines)[-3000:]
            lines.append(line)
            for rank, pid in re.findall(r"ready (\d+) (\d+)", line):
                pids[int(rank)] = int(pid)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        for pid in pids.values():
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        raise
    return proc, pids


_LINES: dict[int, queue.Queue] = {}


def _readline(proc, deadline: float) -> str | None:
    """The next line of ``proc.stdout`` ("" at its end), or None once ``deadline`` passes: a
    reader thread feeds a queue, so a silent process can never block the test."""
    if proc.pid not in _LINES:
        lines: queue.Queue = queue.Queue()

        def pump():
            for line in proc.stdout:
                lines.put(line)
            lines.put("")

        threading.Thread(target=pump, daemon=True).start()
        _LINES[proc.pid] = lines
    try:
        return _LINES[proc.pid].get(timeout=max(0.0, deadline - time.time()))
    except queue.Empty:
        return None


@pytest.mark.slow
def test_torchrun_group_kill_leaves_no_rank(tmp_path):
    proc, pids = _start_torchrun(tmp_path, 60)
    # torchrun starts every rank in a session of its own: killing torchrun's group does not
    # reach them; the ranks must notice on their own
    assert all(os.getpgid(pid) != proc.pid for pid in pids.values())
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.time() + 10
    while any(_alive(p) for p in pids.values()) and time.time() < deadline:
        time.sleep(0.1)
    survivors = [p for p in pids.values() if _alive(p)]
    for p in survivors:
        os.kill(p, signal.SIGKILL)
    assert not survivors, f"ranks {survivors} survived their launcher by 10 s"


@pytest.mark.slow
def test_stopped_rank_is_named_within_the_timeout(tmp_path):
    timeout = 6.0
    proc, pids = _start_torchrun(tmp_path, timeout)
    lines = []
    try:
        os.kill(pids[1], signal.SIGSTOP)
        t0 = time.time()
        while not (lines and lines[-1].startswith("FAILED")):
            line = _readline(proc, t0 + timeout + 60)
            assert line, "".join(lines)[-3000:]
            lines.append(line)
        elapsed = time.time() - t0
    finally:
        for p in pids.values():
            if _alive(p):
                os.kill(p, signal.SIGKILL)
                os.kill(p, signal.SIGCONT)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    out = "".join(lines)
    assert "rank 1" in lines[-1] and "dist_timeout_s=6" in lines[-1], lines[-1]
    assert "rank 1 has not answered" in out  # logged before the collective gave up
    assert elapsed < timeout + 5, elapsed  # rank 0 gave up after the configured timeout


def test_dist_timeout_is_a_config_field():
    from simplepose.config import ConfigError, config_from_dict

    assert config_from_dict({}).train.dist_timeout_s == 300.0
    assert config_from_dict({"train": {"dist_timeout_s": 20}}).train.dist_timeout_s == 20.0
    for bad in (0, -5, float("inf"), float("nan")):
        with pytest.raises(ConfigError, match="train.dist_timeout_s"):
            config_from_dict({"train": {"dist_timeout_s": bad}})


def _tiny_rsn_spec():
    from simplepose.spec import get_spec

    return get_spec("rsn18").with_kwargs(num_stages=1, input_size=[128, 96])


# ---------------------------------------------------------------------- files: JSON, temps, modes
def test_deeply_nested_json_is_a_clear_error(tmp_path):
    from simplepose.config import ConfigError, load_config
    from simplepose.data.coco import load_coco_keypoints
    from simplepose.errors import AnnotationError

    path = tmp_path / "deep.json"
    path.write_text('{"images": "[[[", "annotations":\n' + "[" * 100_000 + "]" * 100_000 + "}")
    match = r"deep.json is nested deeper than 100 levels \(line 2"
    with pytest.raises(AnnotationError, match=match):
        load_coco_keypoints(path)
    cfg = tmp_path / "deep.yaml"
    cfg.write_text("a: " + "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="deep.yaml: nested too deeply"):
        load_config(cfg)
    with pytest.raises(ConfigError, match="seed: the value is nested too deeply"):
        load_config(None, ["seed=" + "[" * 100_000])


def test_killed_atomic_write_leaves_temp_that_the_next_write_removes(tmp_path):
    target = tmp_path / "last.pt"
    target.write_bytes(b"old")
    code = textwrap.dedent(f"""
        import os, signal
        from simplepose.utils.io import atomic_path
        with atomic_path({str(target)!r}) as tmp:
            open(tmp, "wb").write(b"half")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    res = subprocess.run([sys.executable, "-c", code], check=False, env=_env(), cwd=tmp_path)
    assert res.returncode == -signal.SIGKILL
    temps = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(temps) == 1 and temps[0].name.startswith(".last.pt.")
    assert target.read_bytes() == b"old"  # the kill never touches the destination

    from simplepose.utils.io import atomic_write_bytes

    (tmp_path / ".last.pt.a1b2c3d4.tmp").write_bytes(b"older naming")  # pid-less temp
    (tmp_path / ".other.pt.a1b2c3d4.tmp").write_bytes(b"another file's")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp"))
    assert left == [".other.pt.a1b2c3d4.tmp"]


def test_live_writers_temp_is_kept(tmp_path):
    from simplepose.utils.io import _host, atomic_write_bytes

    live = tmp_path / f".x.bin.{os.getpid()}@{_host()}.abcdefgh.tmp"
    live.write_bytes(b"being written")
    atomic_write_bytes(tmp_path / "x.bin", b"1")
    assert live.exists()


def test_safetensors_get_umask_permissions(tmp_path):
    import torch

    from simplepose.checkpoint import save_model

    spec = _tiny_rsn_spec()
    old = os.umask(0o022)
    try:
        path = save_model(tmp_path / "m.safetensors", spec, spec.build_model().state_dict())
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o644
    assert torch  # the model above is a torch model


# ---------------------------------------------------------------------- checkpoints
@pytest.fixture(scope="module")
def rsn_file(tmp_path_factory):
    from simplepose.checkpoint import save_model

    spec = _tiny_rsn_spec()
    path = tmp_path_factory.mktemp("ckpt") / "rsn.safetensors"
    return save_model(path, spec, spec.build_model().state_dict())


def _retag(src, dst, **meta):
    """Copy ``src`` with its metadata updated by ``meta`` (values JSON-encoded unless str)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    tensors = meta.pop("_tensors", None) or load_file(str(src))
    with safe_open(str(src), framework="pt") as f:
        raw = dict(f.metadata())
    raw.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()})
    save_file(tensors, str(dst), metadata=raw)
    return dst


def _spec_with(path, section, key, value) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        spec = json.loads(f.metadata()["simplepose_spec"])
    if section is None:
        spec[key] = value
    else:
        spec[section] = {**spec[section], key: value}
    return spec


@pytest.mark.parametrize("where, meta, field", [
    (("kwargs", "input_size", [8192, 6144]), {}, r"spec.kwargs.input_size\[0\] = 8192"),
    (("codec", "input_hw", [8192, 6144]), {}, r"spec.codec.input_hw\[0\] = 8192"),
    (("kwargs", "num_stages", 10**6), {}, "spec.kwargs.num_stages = 1000000"),
    (("inference", "padding", [1e300, 1.25]), {}, r"spec.inference.padding\[0\] = 1e\+300"),
    (("codec", "kernels", list(range(1, 101))), {}, "spec.codec.kernels has 100 items"),
    ((None, "builder", "subprocess:run"), {}, "spec.builder = 'subprocess:run' is neither"),
    (None, {"model_kwargs": {"num_stages": 1, "input_size": [8192, 6144]}},
     r"model_kwargs.input_size\[0\] = 8192"),
    (None, {"iteration": -4}, "iteration = -4"),
    (None, {"epoch": "many"}, "epoch = 'many' is not a number"),
])
def test_tampered_metadata_is_refused_with_the_field_named(tmp_path, rsn_file, where, meta, field):
    from simplepose.checkpoint import load_model
    from simplepose.errors import CheckpointError

    if where is not None:
        meta = {**meta, "simplepose_spec": _spec_with(rsn_file, *where)}
    bad = _retag(rsn_file, tmp_path / "bad.safetensors", **meta)
    with pytest.raises(CheckpointError, match=f"bad.safetensors: metadata field {field}"):
        load_model(bad)


def test_legacy_checkpoint_metadata_is_bounded_too(tmp_path, rsn_file):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from simplepose.checkpoint import load_model
    from simplepose.errors import CheckpointError

    with safe_open(str(rsn_file), framework="pt") as f:
        raw = dict(f.metadata())
    del raw["simplepose_spec"]  # written before checkpoints carried a spec
    raw["model_kwargs"] = json.dumps({"num_stages": 1, "input_size": [8192, 6144]})
    save_file(load_file(str(rsn_file)), str(tmp_path / "old.safetensors"), metadata=raw)
    with pytest.raises(CheckpointError, match=r"model_kwargs.input_size\[0\] = 8192 is outside"):
        load_model(tmp_path / "old.safetensors")


def test_fp16_weights_are_cast(tmp_path, rsn_file):
    import torch
    from safetensors.torch import load_file

    from simplepose.checkpoint import load_model

    weights = load_file(str(rsn_file))
    half = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
    path = _retag(rsn_file, tmp_path / "half.safetensors", _tensors=half)
    model, _ = load_model(path)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    with torch.no_grad():
        model(torch.zeros(1, 3, 128, 96))  # no dtype mismatch
    ints = dict(half)
    key = next(k for k, v in ints.items() if v.is_floating_point())
    ints[key] = ints[key].to(torch.int32)
    path = _retag(rsn_file, tmp_path / "int.safetensors", _tensors=ints)
    from simplepose.errors import CheckpointError

    with pytest.raises(CheckpointError, match=f"tensor '{key}' is torch.int32"):
        load_model(path)


def test_refused_pickle_does_not_advise_unsafe_loading(tmp_path):
    import fractions

    import torch

    from simplepose.checkpoint import torch_load_safe
    from simplepose.errors import CheckpointError

    path = tmp_path / "evil.pt"
    torch.save({"x": fractions.Fraction(1, 2)}, path)
    with pytest.raises(CheckpointError) as info:
        torch_load_safe(path, "training checkpoint")
    msg = str(info.value)
    assert "fractions.Fraction" in msg and "weights_only" not in msg and "\n" not in msg


# ---------------------------------------------------------------------- annotations
def _ann(file_name="a.png", width=40, height=30) -> dict:
    from simplepose.skeleton import COCO_KEYPOINTS

    return {
        "images": [{"id": 1, "file_name": file_name, "width": width, "height": height}],
        "annotations": [],
        "categories": [{"id": 1, "name": "person", "keypoints": list(COCO_KEYPOINTS)}],
    }


@pytest.mark.parametrize("file_name, problem", [
    ("/etc/passwd", "is absolute"),
    ("../secret.png", "contains '..'"),
    ("sub/../../x.png", "contains '..'"),
    ("..\\\\x.png", "contains '..'"),
    ("C:\\\\x.png", "is absolute"),
    ("a\\u0000.png", "contains a NUL character"),
])
def test_annotation_file_name_outside_the_image_folder_is_refused(tmp_path, file_name, problem):
    from simplepose.data.coco import load_coco_keypoints
    from simplepose.errors import AnnotationError

    path = tmp_path / "ann.json"
    path.write_text(json.dumps(_ann(json.loads(f'"{file_name}"'))))
    with pytest.raises(AnnotationError, match=rf"images\[0\] \(id 1\) file_name .* {problem}"):
        load_coco_keypoints(path)


def test_decoded_size_differs_from_the_annotation(tmp_path):
    import cv2

    from simplepose.data.coco import load_coco_keypoints
    from simplepose.errors import InputError

    (tmp_path / "ann.json").write_text(json.dumps(_ann("sub/a.png", width=40, height=30)))
    (tmp_path / "sub").mkdir()
    cv2.imwrite(str(tmp_path / "sub" / "a.png"), np.zeros((40, 30, 3), np.uint8))  # rotated
    coco = load_coco_keypoints(tmp_path / "ann.json")
    match = r"a.png is 30x40 but .*ann.json says 40x30 \(image id 1\)"
    with pytest.raises(InputError, match=match):
        coco.read_image(1, tmp_path)
    cv2.imwrite(str(tmp_path / "sub" / "a.png"), np.zeros((30, 40, 3), np.uint8))
    assert coco.read_image(1, tmp_path).shape == (30, 40, 3)


# ---------------------------------------------------------------------- keypoints inside the image
_SHAPES = [(20000, 50), (50, 20000), (641, 120), (120, 641)]  # (H, W): extreme aspect ratios


def _assert_inside(people, h, w):
    for p in people:
        k = p.keypoints
        assert np.isfinite(k).all()
        assert (k[:, 0] >= 0).all() and (k[:, 0] <= w - 1).all(), k[:, 0].max()
        assert (k[:, 1] >= 0).all() and (k[:, 1] <= h - 1).all(), k[:, 1].max()


def test_bottomup_keypoints_stay_inside_extreme_images():
    from simplepose import Predictor
    from simplepose.decode.params import GroupingParams

    # thresholds at 0: every noise peak becomes a keypoint, so the padding would show up
    params = GroupingParams(peak_threshold=0.01, max_peaks_per_part=8, min_parts=1,
                            min_mean_score=0.0, limb_sample_threshold=0.0, limb_pass_ratio=0.0)
    predictor = Predictor.from_pretrained("openpose_mobilenet_thin", device="cpu", params=params,
                                          box_size=160)
    rng = np.random.default_rng(0)
    for h, w in _SHAPES:
        people = predictor.predict(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        assert people, (h, w)
        _assert_inside(people, h, w)


def test_bottomup_padding_peaks_are_ignored():
    from simplepose.codecs.bottomup import OpenPosePafCodec
    from simplepose.decode.params import GroupingParams
    from simplepose.geometry import BottomUpGeometry

    codec = OpenPosePafCodec()
    g = BottomUpGeometry.for_image(120, 641, box_size=432, stride=8, pad_multiple=64)
    hh, ww = g.heatmap_hw
    _, vw = g.valid_heatmap_hw
    assert vw < ww  # this geometry has padding columns
    maps = np.zeros((codec.num_channels, hh, ww), np.float32)
    maps[:18, hh // 2, ww - 1] = 1.0  # every keypoint peaks in the padding only
    params = GroupingParams(peak_threshold=0.1, min_parts=1, min_mean_score=0.0)
    assert codec.decode(maps, g, params) == []
    assert maps[:18, hh // 2, ww - 1].min() == 1.0  # the caller's maps are untouched


def test_topdown_boxes_clipped_and_keypoints_inside(caplog):
    import torch

    from simplepose.inference.topdown import TopDownPipeline

    torch.manual_seed(0)
    spec = _tiny_rsn_spec()
    pipe = TopDownPipeline.from_spec(spec.build_model().eval(), spec)
    rng = np.random.default_rng(0)
    for h, w in _SHAPES + [(480, 640)]:
        image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        boxes = np.array([
            [10, 10, 1e7, 1e7],  # far beyond the image: clipped to it
            [-1e6, -1e6, 2e6, 2e6],  # around the whole image
            [0, 0, w, h],
            [w + 5, 0, 10, 10],  # outside: dropped
            [2, 2, 0.25, 30],  # under 1 px wide: dropped
        ])
        people = pipe.predict(image, boxes, np.ones(len(boxes)))
        assert len(people) == 3, (h, w)
        _assert_inside(people, h, w)
        for p in people:
            x1, y1, x2, y2 = p.box
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        np.testing.assert_allclose(people[0].box, [10, 10, w, h])


# ---------------------------------------------------------------------- demo: inputs never lost
def _video(path, frames=40, size=(64, 48)):
    from helpers import write_video

    rng = np.random.default_rng(0)
    images = (rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8) for _ in range(frames))
    return write_video(path, images)


def _demo(*argv) -> int:
    from simplepose.cli.demo import main

    return main([str(a) for a in argv] + ["--quiet"], prog="demo")


def test_output_equal_to_input_is_refused(tmp_path, capsys):
    import cv2

    folder = tmp_path / "imgs"
    folder.mkdir()
    image = folder / "a.jpg"
    cv2.imwrite(str(image), np.full((32, 32, 3), 90, np.uint8))
    video = _video(tmp_path / "v.avi")
    (tmp_path / "link.jpg").symlink_to(image)
    before = {p: p.read_bytes() for p in (image, video)}
    cases = [
        (["--input", image, "--output", image], "is the input"),  # image
        (["--input", image, "--output", folder], "is the input"),  # folder/<same name>
        (["--input", image, "--output", tmp_path / "link.jpg"], "is the input"),  # a link to it
        (["--input", image, "--json", image], "is the input"),
        (["--input", folder, "--output", folder], "lies inside the input folder"),  # folder
        (["--input", folder, "--output", folder / "out"], "lies inside the input folder"),
        (["--input", folder, "--json", folder / "p.json"], "lies inside the input folder"),
        (["--input", video, "--output", video], "is the input"),  # video
        (["--input", video, "--json", video], "is the input"),
    ]
    for argv, message in cases:
        assert _demo(*argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
    assert {p: p.read_bytes() for p in (image, video)} == before
    assert sorted(p.name for p in folder.iterdir()) == ["a.jpg"]


@pytest.mark.parametrize("argv, message", [
    (["--max-frames", "-3"], "argument --max-frames: must be >= 1, got -3"),
    (["--box-size", "0"], "argument --box-size: must be >= 8, got 0"),
    (["--threads", "-1"], "argument --threads: must be >= 0 (0: torch default), got -1"),
    (["--kpt-threshold", "nan"], "argument --kpt-threshold: must be in [0, 1], got nan"),
])
def test_bad_demo_flags_are_usage_errors(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        _demo("--input", tmp_path, "--json", tmp_path / "j.json", *argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_truncated_video_is_reported_with_the_frame_index(tmp_path, capsys):
    full = _video(tmp_path / "full.avi")
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) * 3 // 10])  # header: 40 frames; about 11 decode
    assert _demo("--input", cut, "--json", tmp_path / "p.json", "--box-size", 64) == 1
    err = capsys.readouterr().err
    assert "header announces 40 frames but decoding stopped at frame" in err
    frames = len(json.loads((tmp_path / "p.json").read_text()))
    assert 0 < frames < 40 and f"stopped at frame {frames}" in err
    assert _demo("--input", full, "--json", tmp_path / "q.json", "--box-size", 64,
                 "--max-frames", 5) == 0  # a limit is not a truncation


@pytest.mark.slow
def test_kill_during_video_output_keeps_the_old_file(tmp_path):
    video = _video(tmp_path / "in.avi", frames=400, size=(160, 120))
    out = tmp_path / "out.mp4"
    out.write_bytes(b"the previous, good video")
    cmd = [sys.executable, "-m", "simplepose", "demo", "--input", str(video), "--output", str(out),
           "--quiet", "--box-size", "64", "--threads", "1"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not [p for p in tmp_path.glob(".out.mp4.*.tmp.mp4") if p.stat().st_size > 0]:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "the video writer never started"
            time.sleep(0.05)
        proc.kill()
    finally:
        proc.wait(timeout=30)
        proc.stderr.close()
    assert out.read_bytes() == b"the previous, good video"
    visible = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert visible == ["in.avi", "out.mp4"]  # no partial file under any visible name
    # the next run replaces the file and removes the killed run's temp file
    res = subprocess.run(cmd + ["--max-frames", "3"], cwd=tmp_path, env=_env(), check=False,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert out.read_bytes() != b"the previous, good video"
    assert not list(tmp_path.glob(".out.mp4.*"))


# ---------------------------------------------------------------------- evaluate, convert: outputs
_SAMPLE_ANN = REPO / "tests" / "data" / "coco_sample" / "annotations.json"
_UNWRITABLE = "/proc/simplepose_out.json"  # not writable, not even by root


def test_evaluate_checks_every_output_before_the_model(tmp_path, capsys):
    from simplepose.cli.evaluate import main

    images = tmp_path / "images"
    images.mkdir()
    base = ["--checkpoint", str(tmp_path / "never_loaded.safetensors"), "--ann", str(_SAMPLE_ANN),
            "--images", str(images), "--quiet"]
    cases = [
        (["--metrics", _UNWRITABLE], "cannot write --metrics /proc/simplepose_out.json"),
        (["--metrics", str(tmp_path / "m.json"), "--results-out", _UNWRITABLE], "--results-out"),
        (["--metrics", str(tmp_path / "missing" / "m.json")], "does not exist"),
        (["--metrics", str(_SAMPLE_ANN)], "is the input"),
        (["--metrics", str(images / "m.json")], "lies inside the input folder"),
        (["--metrics", str(tmp_path / "m.json"), "--results-out", str(tmp_path / "m.json")],
         "are the same file"),
    ]
    for extra, message in cases:
        assert main(base + extra, prog="evaluate") == 2, extra
        err = capsys.readouterr().err
        assert message in err and "never_loaded" not in err, (extra, err)


def test_evaluate_never_writes_over_an_onnx_model_or_detector(tmp_path, capsys):
    from simplepose.cli.evaluate import main

    model, detector = tmp_path / "model.onnx", tmp_path / "det.onnx"
    for path in (model, detector):
        path.write_bytes(b"not loaded: the outputs are checked first")
    images = tmp_path / "images"
    images.mkdir()
    base = ["--ann", str(_SAMPLE_ANN), "--images", str(images), "--quiet"]
    cases = [
        ["--model", str(model), "--metrics", str(model)],
        ["--model", str(model), "--metrics", str(tmp_path / "m.json"), "--results-out", str(model)],
        ["--model", str(model), "--detector", str(detector), "--metrics", str(detector)],
    ]
    for extra in cases:
        assert main(base + extra, prog="evaluate") == 2, extra
        assert "is the input" in capsys.readouterr().err, extra
        assert model.read_bytes() == detector.read_bytes()


def test_metrics_name_the_results_hash(tmp_path):
    from simplepose.cli.evaluate import main
    from simplepose.utils.io import file_sha256

    results = tmp_path / "r.json"
    results.write_text("[]")
    metrics = tmp_path / "m.json"
    assert main(["--results", str(results), "--ann", str(_SAMPLE_ANN), "--metrics", str(metrics)],
                prog="evaluate") == 0
    record = json.loads(metrics.read_text())
    assert record["results_sha256"] == file_sha256(results)
    # scoring m_results.json into m.json is fine: --results mode writes no results file
    named = tmp_path / "m_results.json"
    named.write_text("[]")
    assert main(["--results", str(named), "--ann", str(_SAMPLE_ANN), "--metrics", str(metrics)],
                prog="evaluate") == 0


def test_convert_checks_its_output_before_reading(tmp_path, capsys):
    from simplepose.cli.convert import main

    src = tmp_path / "in.pth"
    src.write_bytes(b"not read: the output is checked first")
    for out, message in [(_UNWRITABLE, "folder /proc is not writable"), (str(src), "is the input")]:
        assert main(["--from", "rsn", "--input", str(src), "--output", out], prog="convert") == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


# ---------------------------------------------------------------------- training
def _trainer(out_dir, **cfg_changes):
    from test_distributed import SyntheticBottomUp, tiny_cfg

    from simplepose.config import config_from_dict, config_to_dict
    from simplepose.engine.loop import Trainer

    data = config_to_dict(tiny_cfg(out_dir, max_iters_per_epoch=2))
    for dotted, value in cfg_changes.items():
        section, key = dotted.split("__")
        data[section][key] = value
    return Trainer(config_from_dict(data), dataset=SyntheticBottomUp())


def test_unwritable_output_dir_is_one_line_before_work():
    from simplepose.errors import InputError

    match = r"train.output_dir /proc/simplepose_run cannot be created"
    with pytest.raises(InputError, match=match):
        _trainer("/proc/simplepose_run")


def test_resume_with_another_optimiser_is_a_clear_error(tmp_path):
    from simplepose.errors import CheckpointError

    trainer = _trainer(tmp_path, optim__max_iters=1)
    trainer.fit()
    other = _trainer(tmp_path, optim__name="adam", optim__max_iters=1)
    match = "trained with optim.name=sgd, this config has optim.name=adam"
    with pytest.raises(CheckpointError, match=match):
        other.resume()


def test_garbage_and_truncated_metrics_rows_are_skipped(tmp_path, caplog):
    trainer = _trainer(tmp_path, optim__max_iters=2)
    trainer.fit()
    path = tmp_path / "metrics.csv"
    lines = path.read_text().splitlines()
    assert len(lines) == 3  # header + 2 rows
    truncated = lines[2][: len(lines[2]) // 2]
    path.write_text("\n".join([lines[0], lines[1], "garbage,row,x", truncated]))
    resumed = _trainer(tmp_path, optim__max_iters=3)
    resumed.resume()
    assert "skipped 2 malformed row(s) (line 3, 4)" in caplog.text
    resumed.fit()
    rows = [r.split(",")[0] for r in path.read_text().splitlines()[1:]]
    assert rows == ["1", "3"]  # iteration 2's truncated row is gone, 3 was appended cleanly
    assert (tmp_path / "loss.png").exists()


@pytest.mark.slow
def test_training_with_a_stopped_rank_ends_with_the_rank_named(tmp_path):
    from test_distributed import _bottomup_dataset_available, _torchrun

    reason = _bottomup_dataset_available()
    if reason:
        pytest.skip(reason)
    out = tmp_path / "run"
    cmd = _torchrun(out, "train.dist_timeout_s=8", "train.max_iters_per_epoch=50")
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 300
        while not (out / "config.yaml").exists():  # training has started on every rank
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.1)
        time.sleep(2)
        ranks = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True,
                               check=False).stdout.split()
        rank1 = next(int(p) for p in ranks
                     if "RANK=1" in Path(f"/proc/{p}/environ").read_text().split("\0"))
        os.kill(rank1, signal.SIGSTOP)
        t0 = time.time()
        lines = []
        while not any("a collective failed" in line for line in lines):
            line = proc.stderr.readline()
            assert line, "".join(lines)[-3000:]
            lines.append(line)
        elapsed = time.time() - t0
        os.kill(rank1, signal.SIGKILL)
        os.kill(rank1, signal.SIGCONT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stderr.close()
    error = next(line for line in lines if "a collective failed" in line)
    assert "train.dist_timeout_s=8" in error and "rank 1 (silent for" in error, error
    assert elapsed < 8 + 10, elapsed


def test_onnx_metadata_is_bounded_like_a_checkpoint():
    from simplepose.errors import CheckpointError
    from simplepose.inference.onnx_backend import (
        ONNX_FORMAT_VERSION,
        decode_metadata,
        encode_metadata,
    )

    spec = _tiny_rsn_spec()
    meta = {"simplepose_format": ONNX_FORMAT_VERSION, "simplepose_spec": spec.to_dict(),
            "simplepose_model": spec.name, "model_kwargs": spec.kwargs,
            "simplepose_paradigm": spec.paradigm, "simplepose_input": {}, "simplepose_outputs": []}
    assert decode_metadata(encode_metadata(meta))["spec"] == spec
    tampered = {**spec.to_dict(), "codec": {**spec.to_dict()["codec"], "input_hw": [8192, 6144]}}
    match = r"x.onnx: metadata field spec.codec.input_hw\[0\] = 8192"
    with pytest.raises(CheckpointError, match=match):
        decode_metadata(encode_metadata({**meta, "simplepose_spec": tampered}), "x.onnx")
    deep = encode_metadata(meta)
    deep["model_kwargs"] = "[" * 100_000 + "]" * 100_000
    with pytest.raises(CheckpointError, match="model_kwargs is nested deeper than 100 levels"):
        decode_metadata(deep, "x.onnx")
