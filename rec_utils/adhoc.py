"""Run one notebook with other parameters into a scratch folder, never into the study's results.

What ``make run`` does::

    make run NB=01_baselines PARAMS='-p SAMPLE_SESSIONS 500 -p MODELS V-SKNN,SKNN'
    .venv/bin/python -m rec_utils.adhoc 01_baselines -p SAMPLE_SESSIONS 500 -y "{MODELS: [V-SKNN]}"

Everything lands in ``results/scratch/<UTC time>/`` (ignored by git): the executed notebook
``<name>.ipynb`` and the notebook's results under ``<dataset>/`` (``summary.csv``, ``runs/``,
tables, figures). Runs the study already stored for the same setting, split and seed are copied
from ``results/<dataset>/`` instead of being recomputed (:func:`rec_utils.results.output_dirs`);
the study's folder is only read.

Parameters are given as papermill's command line gives them: ``-p NAME VALUE`` (numbers,
``True``/``False``/``None`` are converted, anything else stays a string; the notebooks parse list
and mapping parameters from strings, :mod:`rec_utils.params`), ``-r NAME VALUE`` (always a
string), ``-y YAML`` (a mapping of several parameters), ``-f FILE`` (a YAML file of them). A name
that is not in the notebook's ``parameters`` cell is an error that lists the known ones.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from .results import SCRATCH_ENV, scratch_dir
from .study import NOTEBOOK_DIR, failure_message, papermill_run


def find_notebook(name: str) -> Path:
    """``notebooks/<name>.ipynb`` for a name, a file name or a unique prefix (``01``)."""
    stem = Path(name).name.removesuffix(".ipynb")
    matches = sorted(p for p in NOTEBOOK_DIR.glob("*.ipynb") if p.stem == stem) or \
        sorted(NOTEBOOK_DIR.glob(f"{stem}*.ipynb"))
    if len(matches) != 1:
        known = ", ".join(p.stem for p in sorted(NOTEBOOK_DIR.glob("*.ipynb")))
        what = "no notebook" if not matches else f"{len(matches)} notebooks match"
        raise SystemExit(f"{what} {name!r} in {NOTEBOOK_DIR}; known: {known}")
    return matches[0]


def resolve_type(value: str):
    """A ``-p`` value as papermill reads it: True/False/None, an int, a float, else the string."""
    if value in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[value]
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def parse_parameters(args: argparse.Namespace) -> dict:
    """The parameters in papermill's order of precedence: files, YAML, ``-p``, ``-r``."""
    params: dict = {}
    for f in args.parameters_file or []:
        params.update(yaml.safe_load(Path(f).read_text()) or {})
    for text in args.parameters_yaml or []:
        given = yaml.safe_load(text) or {}
        if not isinstance(given, dict):
            raise SystemExit(f"-y needs a mapping of parameters like \"{{MODELS: [V-SKNN]}}\", got {text!r}")
        params.update(given)
    for name, value in args.parameters or []:
        params[name] = resolve_type(value)
    for name, value in args.parameters_raw or []:
        params[name] = value
    return params


def check_names(notebook: Path, params: dict) -> None:
    """Refuse parameters the notebook does not declare (a typo would otherwise be ignored)."""
    import papermill as pm  # heavy: only when running notebooks

    known = pm.inspect_notebook(str(notebook))
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise SystemExit(f"{notebook.stem} has no parameter {', '.join(unknown)}; its parameters: {', '.join(known)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("notebook", help="notebook name (01_baselines), file name, or unique prefix (01)")
    ap.add_argument("-p", "--parameters", nargs=2, action="append", metavar=("NAME", "VALUE"))
    ap.add_argument("-r", "--parameters-raw", nargs=2, action="append", metavar=("NAME", "VALUE"))
    ap.add_argument("-y", "--parameters-yaml", action="append", metavar="YAML")
    ap.add_argument("-f", "--parameters-file", action="append", metavar="FILE")
    ap.add_argument("--kernel", default="python3", help="Jupyter kernel (default: python3, the project's)")
    ap.add_argument("--log-output", action=argparse.BooleanOptionalAction, default=True,
                    help="stream the notebook's own output as it runs (default)")
    args = ap.parse_args(argv)

    notebook = find_notebook(args.notebook)
    params = parse_parameters(args)
    check_names(notebook, params)
    scratch = scratch_dir()
    output = scratch / f"{notebook.stem}.ipynb"
    shown = ", ".join(f"{k}={v!r}" for k, v in params.items()) or "the notebook's defaults"
    print(f"{notebook.stem} with {shown}\n   -> {scratch}/", flush=True)
    before = os.environ.get(SCRATCH_ENV)
    os.environ[SCRATCH_ENV] = str(scratch)  # the kernel inherits it: results go next to the notebook
    try:
        wall = papermill_run(notebook, output, params, args.kernel, log_output=args.log_output)
    except Exception as e:
        print(f"FAILED: {failure_message(e, output)}", file=sys.stderr)
        return 1
    finally:
        if before is None:
            os.environ.pop(SCRATCH_ENV, None)
        else:
            os.environ[SCRATCH_ENV] = before
    print(f"done in {wall:.0f} s; executed notebook: {output}")
    given = params.get("RESULTS_DIR")
    folders = [Path(given)] if given else sorted(p for p in scratch.glob("*") if p.is_dir())
    for folder in folders:
        files = sorted(str(f.relative_to(folder)) for f in folder.rglob("*")
                       if f.is_file() and "runs" not in f.relative_to(folder).parts and f.suffix != ".lock")
        n_runs = sum(1 for _ in folder.glob("runs/*/*.json"))
        print(f"results: {folder}/\n   {', '.join(files)}; {n_runs} run record(s) under runs/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
