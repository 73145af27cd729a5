"""The layers contract of pyproject.toml (import-linter): the package keeps it, and an upward
import breaks it, so `make test` (which runs `lint-imports` first) fails on one."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter not installed (pip install -e '.[dev]')")


def lint(package_parent: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` with the project's contract over the ``rec_utils`` under ``package_parent``."""
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run([str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=package_parent, env=env, capture_output=True, text=True)


@pytest.fixture
def package_copy(tmp_path) -> Path:
    shutil.copytree(ROOT / "rec_utils", tmp_path / "rec_utils", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_package_keeps_its_layers(package_copy):
    done = lint(package_copy)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


@pytest.mark.parametrize("module, upward", [
    ("models/presets.py", "from ..tuning.spaces import TPE_SPACES"),  # the cycle issue 21 removed
    ("utils.py", "from . import report"),
])
def test_an_upward_import_breaks_the_contract(package_copy, module, upward):
    path = package_copy / "rec_utils" / module
    path.write_text(path.read_text() + f"\n\ndef _late():\n    {upward}  # inside a function: still an import\n")
    done = lint(package_copy)
    assert done.returncode != 0
    assert "BROKEN" in done.stdout and "0 kept, 1 broken" in done.stdout, done.stdout
