"""The commands README (and docs/) show work as printed, and the Makefile says what it has.

The rule for a command shown in a fenced ``bash`` block or an inline code span that starts like
a shell command (``python``, ``pip``, ``make``, ``jupyter``, ``papermill``, ``pytest``, ``.venv/``,
...): every part of it (split at ``&&``, ``||``, ``;``, ``|``, leading ``NAME=value`` assignments
skipped) must be

* ``make [VAR=value ...] [target ...]`` with targets the Makefile has;
* ``.venv/bin/<program> ...``, with a ``-m rec_utils.<module>`` that exists and a script path that
  exists (``.venv`` is what ``make install`` builds, so no activation is needed);
* ``git ...`` or ``cd ...``;
* ``conda ...``: the conda route builds its own environment (``environment.yml``) instead of ``.venv``.

A bare ``python`` fails outside the venv (``No module named 'pandas'``) and is refused.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess

import pytest

from rec_utils.utils import PROJECT_ROOT

DOCS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md")), PROJECT_ROOT / "data" / "README.md"]
#: first words that make an inline code span a shell command
SHELL_WORDS = {"python", "python3", "pip", "pip3", "make", "git", "cd", "jupyter", "papermill", "pytest", "nbval",
               "conda", "bash", "sh", "source", "export"}
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")


def makefile_targets() -> set[str]:
    text = (PROJECT_ROOT / "Makefile").read_text()
    return {m.group(1) for m in re.finditer(r"^([A-Za-z][\w.-]*)\s*:(?!=)", text, re.M)}


def phony_targets() -> set[str]:
    text = (PROJECT_ROOT / "Makefile").read_text()
    return set(re.search(r"^\.PHONY:(.*)$", text, re.M).group(1).split())


def commands(path) -> list[tuple[int, str]]:
    """(line number, command) of every shell command shown in a Markdown file."""
    out, fence, pending = [], None, ""
    for no, line in enumerate(path.read_text().splitlines(), 1):
        m = FENCE.match(line)
        if m:
            fence = (m.group(2) or "text") if fence is None else None
            continue
        if fence is not None:
            if fence in ("bash", "sh", "shell", "console"):
                pending += line.strip()
                if pending.endswith("\\"):
                    pending = pending[:-1] + " "
                    continue
                if pending and not pending.startswith("#"):
                    out.append((no, pending))
                pending = ""
            continue
        for span in re.findall(r"`([^`]+)`", line):
            words = span.split()
            if words and (words[0] in SHELL_WORDS or span.startswith((".venv/", "./"))):
                out.append((no, span))
    return out


def problems(command: str, targets: set[str]) -> list[str]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars="&|;")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        tokens = list(lexer)
    except ValueError as e:
        return [f"cannot be parsed ({e})"]
    parts, part = [], []
    for t in tokens:
        if t in ("&&", "||", ";", "|", "&"):
            parts.append(part)
            part = []
        else:
            part.append(t)
    parts.append(part)
    bad = []
    for words in filter(None, parts):
        while words and re.match(r"^[A-Za-z_]\w*=", words[0]):
            words = words[1:]
        if not words:
            continue
        head, args = words[0], words[1:]
        if head == "make":
            unknown = [a for a in args if not a.startswith("-") and "=" not in a and a not in targets]
            bad += [f"make has no target {a!r}" for a in unknown]
        elif head.startswith(".venv/bin/"):
            if "-m" in args:
                module = args[args.index("-m") + 1]
                root = module.split(".")[0]
                if root == "rec_utils":
                    rel = module.replace(".", "/")
                    if not ((PROJECT_ROOT / f"{rel}.py").is_file() or (PROJECT_ROOT / rel / "__init__.py").is_file()):
                        bad.append(f"no module {module}")
            elif args and args[0].endswith(".py") and not (PROJECT_ROOT / args[0]).is_file():
                bad.append(f"no script {args[0]}")
        elif head not in ("git", "cd", "conda"):
            bad.append(f"{head!r} is neither a make target nor .venv/bin/..., git, cd")
    return bad


def test_the_rule_refuses_what_fails_outside_the_venv():
    targets = makefile_targets()
    assert problems("python -m rec_utils.report", targets)
    assert problems("pytest --nbval-lax notebooks/", targets)
    assert problems("make nothing-like-this", targets)
    assert problems(".venv/bin/python -m rec_utils.nothing", targets)
    assert problems(".venv/bin/python scripts/nothing.py", targets)
    assert problems("cd build && python x.py", targets)
    assert not problems("make run NB=01_baselines PARAMS='-p SAMPLE_SESSIONS 500 -y \"{MODELS: [V-SKNN]}\"'", targets)
    assert not problems(".venv/bin/python -m rec_utils.study plans/ci.yaml --only 01", targets)
    assert not problems("HF_HUB_OFFLINE=1 make test-fast  # comment", targets)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_every_command_shown_is_runnable_as_printed(path):
    targets = makefile_targets()
    found = commands(path)
    bad = [f"{path.name}:{no}: {cmd}  <- {'; '.join(why)}" for no, cmd in found if (why := problems(cmd, targets))]
    assert not bad, "commands that do not work as printed (see tests/test_readme.py for the rule):\n" + "\n".join(bad)
    if path == PROJECT_ROOT / "README.md":
        shown = " ".join(cmd for _, cmd in found)
        for needed in ("make test", "make study", "make lab", "make run NB=", "make study PLAN=paper"):
            assert needed in shown, f"README shows no `{needed}`"


def test_readme_leads_with_use():
    text = (PROJECT_ROOT / "README.md").read_text()
    first = [m.start() for m in re.finditer(r"^## ", text, re.M)]
    assert text.index("make test") < first[0] and text.index("make study") < first[0], "the two commands come first"
    assert text.index("<!-- BEGIN generated:headline -->") < text.index("## Status") < text.index("## Where to go next")
    for doc in [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]:
        body = doc.read_text()
        for block in re.findall(r"<!-- BEGIN generated:([\w-]+) -->", body):
            assert f"<!-- END generated:{block} -->" in body, f"{doc.name}: block {block} has no END"


def test_readme_is_a_front_page_that_links_every_document():
    """README.md stays short (the details live in docs/) and leads to every docs/*.md; the
    relative links of README and docs point at files that exist (figures included)."""
    text = (PROJECT_ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250, "README.md is longer than 250 lines: move details to docs/"
    for doc in sorted((PROJECT_ROOT / "docs").glob("*.md")):
        assert f"docs/{doc.name}" in text, f"README does not lead to docs/{doc.name}"
    for doc in [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s#:]+)(?:#[^)]*)?\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.name} links to {target}, which does not exist"


def test_make_help_lists_every_target():
    out = subprocess.run(["make", "-s", "help"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout
    listed = set(re.findall(r"^make ([\w-]+)", out, re.M))
    rules = {t for t in makefile_targets() if t not in ("help",)}
    assert rules <= phony_targets(), f"targets missing from .PHONY: {sorted(rules - phony_targets())}"
    assert phony_targets() - {"help"} <= listed, f"make help does not list {sorted(phony_targets() - {'help'} - listed)}"


def _dry_run(*args) -> str:
    env = {**os.environ, "MAKEFLAGS": ""}
    return subprocess.run(["make", "-n", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
                          env=env).stdout


def test_make_lab_serves_on_localhost_and_allows_root_only_as_root():
    line = [ln for ln in _dry_run("lab", "LAB_ARGS=--port 8899").splitlines() if "jupyterlab" in ln][-1]
    assert "--ip=127.0.0.1" in line and line.rstrip().endswith("--port 8899 notebooks/")
    assert ("--allow-root" in line) == (os.geteuid() == 0)


def test_make_run_and_study_pass_their_options_through():
    run = _dry_run("run", "NB=01_baselines", "PARAMS=-p SAMPLE_SESSIONS 500 -p MODELS V-SKNN,SKNN")
    assert "-m rec_utils.adhoc 01_baselines -p SAMPLE_SESSIONS 500 -p MODELS V-SKNN,SKNN" in run
    study = _dry_run("study", "PLAN=paper", "STUDY_ARGS=--only 01 --no-log-output")
    assert "-m rec_utils.study plans/paper.yaml --only 01 --no-log-output" in study
    assert "--workers" not in study
    assert "plans/default.yaml --workers 2" in _dry_run("study", "WORKERS=2")
    assert "plans/generic.yaml --dataset /data/ml-100k " in _dry_run("study", "DATASET=/data/ml-100k")
