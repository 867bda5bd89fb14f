"""The ``simplepose`` command: dispatch, the shared flag vocabulary, exit codes, error reporting."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import SimpleNamespace

import pytest
from conftest import REPO

from simplepose import cli
from simplepose.cli import common
from simplepose.errors import InputError


def test_help_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("demo", "evaluate", "train", "convert", "export", "bench"):
        assert f"\n  {name} " in out
    assert cli.main([]) == 2  # no command: usage, usage error


def test_unknown_command(capsys):
    assert cli.main(["predict"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown command 'predict'" in err


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_command_has_help(name, capsys):
    module = cli.COMMANDS[name][0]
    if importlib.util.find_spec(module) is None:
        assert cli.main([name, "--help"]) == 2
        assert "not available" in capsys.readouterr().err
        return
    with pytest.raises(SystemExit) as exc:
        cli.main([name, "--help"])
    assert exc.value.code == 0
    assert f"usage: simplepose {name}" in capsys.readouterr().out


def test_python_dash_m_and_no_torch_for_help():
    code = (
        "import runpy, sys; sys.argv = ['simplepose', '--help']\n"
        "try:\n    runpy.run_module('simplepose', run_name='__main__')\nexcept SystemExit as e:\n"
        "    assert e.code == 0, e.code\nprint('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=REPO
    )
    assert out.returncode == 0, out.stderr
    assert "commands:" in out.stdout and out.stdout.strip().endswith("False")


def _hidden(parser, flag: str) -> bool:
    return flag not in parser.format_help()


def test_old_flag_spellings_are_hidden_aliases():
    from simplepose.cli import bench, convert, demo, evaluate

    p = bench.build_parser()
    assert p.parse_args(["--input", "v", "--json", "j", "--frames", "7"]).max_frames == 7
    assert p.parse_args(["--input", "v", "--json", "j", "--max-frames", "7"]).max_frames == 7
    # the bench's limit has a default (200): 0 asks for the whole video, under either spelling
    assert p.parse_args(["--input", "v", "--json", "j", "--max-frames", "0"]).max_frames == 0
    assert p.parse_args(["--input", "v", "--json", "j", "--frames", "0"]).max_frames == 0
    assert _hidden(p, "--frames") and "--max-frames" in p.format_help()
    assert demo.build_parser().parse_args(["--input", "x", "--max-frames", "3"]).max_frames == 3
    e = evaluate.build_parser().parse_args(
        ["--results", "r", "--ann", "a", "--metrics", "m", "--max-frames", "4"]
    )
    assert e.max_frames == 4
    c = convert.build_parser()
    old = c.parse_args(["--from", "rsn", "in.pth", "out.st"])
    assert (str(old.old_input), str(old.old_output)) == ("in.pth", "out.st")
    new = c.parse_args(["--from", "rsn", "--input", "in.pth", "--output", "out.st"])
    assert (str(new.input), str(new.output)) == ("in.pth", "out.st")
    assert "--output" in c.format_help() and "old_input" not in c.format_help()


def test_train_refuses_a_negative_process_count(capsys):
    from simplepose.cli import train

    with pytest.raises(SystemExit) as exc:
        train.main(["--config", "configs/imhn_tiny.yaml", "--nproc-per-node", "-1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--nproc-per-node: must be >= 0 (0: this process only), got -1" in err


def test_demo_refuses_a_keyframe_interval_below_1(capsys):
    from simplepose.cli import demo

    with pytest.raises(SystemExit) as exc:
        demo.main(["--input", "x.mp4", "--keyframe-interval", "0"])
    assert exc.value.code == 2 and "--keyframe-interval: must be >= 1" in capsys.readouterr().err


def test_bench_refuses_negative_counts(capsys):
    from simplepose.cli import bench

    for flag in ("--micro-repeats", "--warmup", "--workers", "--compare-workers"):
        with pytest.raises(SystemExit) as exc:
            bench.build_parser().parse_args(["--input", "v", "--json", "j", flag, "-1"])
        assert exc.value.code == 2 and f"{flag}: must be >= 0" in capsys.readouterr().err


def test_limit_aliases_of_the_dev_benches():
    for script in ("grouping.py", "tune_openpose.py"):
        spec = importlib.util.spec_from_file_location(
            f"_bench_{script[:-3]}", REPO / "bench" / script
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        argv = ["--ann", "a.json", "--json", "o.json", "--images", "d"]
        if script == "grouping.py":
            argv = argv[:4]
        assert module.parse_args([*argv, "--limit", "5"]).max_frames == 5
        assert module.parse_args([*argv, "--max-frames", "6"]).max_frames == 6


def test_errors_are_one_line_with_status_2_and_bugs_keep_their_traceback(capsys, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)

    def bad_input():
        raise InputError("--input x.jpg does not exist\nsecond line")

    assert common.run_reporting_errors("simplepose demo", bad_input) == 2
    assert capsys.readouterr().err == "simplepose demo: error: --input x.jpg does not exist\n"

    def missing_file():
        with open("/nonexistent/simplepose/file"):
            pass

    assert common.run_reporting_errors("p", missing_file) == 2

    def bug():
        raise ValueError("a programming error")

    with pytest.raises(ValueError):
        common.run_reporting_errors("p", bug)

    def interrupted():
        raise KeyboardInterrupt

    assert common.run_reporting_errors("p", interrupted) == 130


def test_only_rank_0_reports_under_torchrun(capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert common.report_error("p", "broken") == 2
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "0")
    assert common.report_error("p", "broken") == 2
    assert capsys.readouterr().err == "p: error: broken\n"


@pytest.mark.parametrize("command", ["demo", "evaluate", "train", "convert", "bench"])
def test_commands_do_not_swallow_builtin_errors(command):
    """Scripts catch simplepose's own errors only: a bare ValueError/KeyError is a bug."""
    source = (REPO / "simplepose" / "cli" / f"{command}.py").read_text()
    for name in ("ValueError", "KeyError"):
        assert f"except ({name}" not in source and f", {name})" not in source
        assert f"except {name}" not in source


@pytest.mark.slow
def test_train_nproc_reports_once_without_launcher_traceback(tmp_path):
    """``simplepose train --nproc-per-node 2`` with a missing annotation file: one line, exit 2."""
    cmd = [
        sys.executable,
        "-m",
        "simplepose",
        "train",
        "--nproc-per-node",
        "2",
        "--config",
        "configs/imhn_tiny.yaml",
        "--log-level",
        "WARNING",
        "--opts",
        f"data.train_ann={tmp_path / 'missing.json'}",
        f"train.output_dir={tmp_path / 'run'}",
    ]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        (
            "simplepose train: error: data.train_ann: annotation file "
            f"{tmp_path / 'missing.json'} does not exist"
        )
    ]
    assert "Traceback" not in proc.stderr


def test_demo_without_outputs_refuses_when_no_window_can_be_shown(capsys, monkeypatch, tmp_path):
    from simplepose.cli import demo
    from simplepose.demo.sinks import display_problem

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert display_problem() is not None
    image = REPO / "assets" / "sample_group.jpg"
    assert demo.main(["--input", str(image), "--quiet"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "give --output FILE and/or --json FILE" in err[0]
    assert demo.main(["--input", str(image), "--output", str(tmp_path / "o.jpg"), "--show"]) == 2
    assert "--show: cannot show a window" in capsys.readouterr().err


def test_demo_summary_lists_every_file_or_says_how_many_more():
    from simplepose.cli.demo import summary

    report = SimpleNamespace(
        frames=6, people=9, fps=2.0, outputs=[f"out/{i}.jpg" for i in range(6)]
    )
    lines = summary(report).splitlines()
    assert lines[0].endswith("wrote 6 file(s)") and lines[1:] == [
        "  -> out/0.jpg", "  -> out/1.jpg", "  -> out/2.jpg", "  ... and 3 more"]
    report.outputs = report.outputs[:4]
    assert summary(report).splitlines()[1:] == [f"  -> out/{i}.jpg" for i in range(4)]


def test_bench_refuses_an_input_that_is_not_a_video_before_loading_a_model(capsys, monkeypatch,
                                                                            tmp_path):
    from simplepose.cli import bench
    from simplepose.demo import pipeline

    monkeypatch.setattr(pipeline, "build_predictor", lambda **_: pytest.fail("model loaded"))
    image = REPO / "assets" / "sample_group.jpg"
    json_path = str(tmp_path / "b.json")
    assert bench.main(["--input", str(image), "--json", json_path]) == 2
    prog = bench.build_parser().prog
    assert capsys.readouterr().err.splitlines() == [
        f"{prog}: error: --input {image}: a video file is needed, not the image"
    ]
    assert bench.main(["--input", str(tmp_path / "none.avi"), "--json", json_path]) == 2
    assert "does not exist" in capsys.readouterr().err
    # the output is checked first, by the shared check: never the input video, an existing folder
    video = tmp_path / "v.avi"
    video.write_bytes(b"never read")
    for out, message in [(video, "is the input"), (tmp_path / "no" / "b.json", "does not exist")]:
        assert bench.main(["--input", str(video), "--json", str(out)]) == 2
        assert message in capsys.readouterr().err
    assert video.read_bytes() == b"never read"
