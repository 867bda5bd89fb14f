"""Every command in README.md and in the configs' comments runs as written, or names what the user
supplies in CAPITALS (see tests/doc_commands.py for the convention).

The fast tests check that the commands parse (known command, known flags, existing files); the slow
test runs every runnable one, in order, in a stand-in clone with ``../shared`` beside it.
"""

from __future__ import annotations

import shlex

import pytest
from conftest import REPO, SHARED
from doc_commands import NOT_RUN, config_commands, make_clone, placeholder, readme_commands, run

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
#: configs whose commands tests/test_memorize.py / test_memorize_layouts.py run as written (and
#: check the AP / PCKh they reach)
RUN_ELSEWHERE = {
    "configs/imhn_memorize.yaml",
    "configs/rsn18_memorize.yaml",
    "configs/rsn18_mpii_memorize.yaml",
    "configs/imhn_crowdpose_memorize.yaml",
}


def _all_commands():
    seen, out = set(), []
    for cmd in readme_commands() + [c for path in CONFIGS for c in config_commands(path)]:
        if cmd not in seen:
            seen.add(cmd)
            out.append(cmd)
    return out


COMMANDS = _all_commands()


def _not_run_reason(cmd) -> str | None:
    if cmd.source in RUN_ELSEWHERE:
        return "run by tests/test_memorize.py"
    for key, reason in NOT_RUN.items():
        if key in cmd:
            return reason
    if placeholder(cmd):
        return f"{placeholder(cmd)} is supplied by the user"
    return None


def test_extraction_finds_the_documented_commands():
    readme = readme_commands()
    assert any(c.startswith("simplepose demo --input assets/sample_group.jpg") for c in readme)
    assert any("--oracle bottomup" in c for c in readme)
    for path in CONFIGS:  # every config says how to run it
        assert any(c.startswith("simplepose train") for c in config_commands(path)), path.name
    assert not any("SPEC" in c.split()[0] for c in readme)
    runnable = [c for c in COMMANDS if _not_run_reason(c) is None]
    assert len(runnable) >= 15, runnable


@pytest.mark.parametrize("cmd", COMMANDS, ids=[f"{c.source}:{c[:60]}" for c in COMMANDS])
def test_command_parses(cmd):
    """Known command and flags, and the repository / shared files it names exist."""
    words = shlex.split(cmd)
    if words[0] == "pip" or "pytest" in words:
        return
    if words[0] == "simplepose":
        from simplepose.cli import COMMANDS as SUBCOMMANDS

        assert words[1] in SUBCOMMANDS, cmd
        module = SUBCOMMANDS[words[1]][0]
        if words[1] == "export":
            return
        import importlib

        parser = importlib.import_module(module).build_parser()
        args = words[2:]
    else:
        script = next(w for w in words if w.endswith(".py"))
        assert (REPO / script).exists(), cmd
        args = words[words.index(script) + 1 :]
        parser = None
    if parser is not None and "--help" not in args:
        with_values = [a if not placeholder(a) else "x" for a in args]
        parser.parse_args(with_values)  # SystemExit(2) on an unknown flag
    for word in words:
        if word.startswith(("../shared/", "configs/", "assets/")) and not placeholder(word):
            path = REPO / word
            if word.startswith("../shared/") and not SHARED.exists():
                continue
            assert path.exists(), f"{cmd.source}: {word} does not exist"


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    if not SHARED.exists():
        pytest.skip(f"{SHARED} not found")
    return make_clone(tmp_path_factory.mktemp("clone"))


@pytest.mark.slow
@pytest.mark.parametrize("cmd", COMMANDS, ids=[f"{c.source}:{c[:60]}" for c in COMMANDS])
def test_command_runs_as_written(cmd, clone):
    reason = _not_run_reason(cmd)
    if reason:
        pytest.skip(reason)
    proc = run(cmd, clone)
    assert proc.returncode == 0, (
        f"{cmd.source}: {cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    )
