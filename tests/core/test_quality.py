"""The code passes its own linters: ruff (style, docstrings) and mypy (types of the core)."""

import shutil
import subprocess
import sys

import pytest

from geo311.config import PROJECT_ROOT


@pytest.mark.parametrize("command", [
    ["ruff", "check", "geo311", "web", "tests", "benchmarks"],
    [sys.executable, "-m", "mypy"],
])
def test_linter_is_clean(command):
    if command[0] == "ruff" and shutil.which("ruff") is None:
        command = [sys.executable, "-m", "ruff", *command[1:]]
    out = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
