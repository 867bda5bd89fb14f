"""Packaging: a light import, and a clear message when the extension is missing."""

import subprocess
import sys

import pytest
from conftest import REPO


def test_import_simplepose_loads_neither_torch_nor_the_extension():
    code = (
        "import sys, simplepose, simplepose.skeleton, simplepose.decode.params; "
        "print(sorted(m for m in ('torch', 'cv2', 'simplepose._grouping') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_extension_is_built():
    import simplepose._grouping as g

    assert hasattr(g, "group") and hasattr(g, "find_peaks")


def test_missing_extension_message(monkeypatch):
    import builtins

    from simplepose.decode import grouping
    from simplepose.errors import ExtensionMissingError

    real_import = builtins.__import__

    def fake_import(name, globals=None, locals=None, fromlist=(), level=0):
        if fromlist and "_grouping" in fromlist:
            raise ImportError("No module named 'simplepose._grouping'")
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(grouping, "_EXTENSION", None)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ExtensionMissingError, match="pip install -e ."):
        grouping.load_extension()
