"""Batch runner: execute the study's notebooks with papermill according to a plan.

Usage::

    .venv/bin/python -m rec_utils.study plans/default.yaml            # what `make study` runs
    .venv/bin/python -m rec_utils.study plans/paper.yaml --only 02     # runs whose notebook matches
    .venv/bin/python -m rec_utils.study plans/ci.yaml --prepare-only --out build/ci   # for nbval

A plan is YAML::

    description: what this plan is for
    defaults: {DATASET: beauty}          # parameters every run gets (optional)
    runs:
      - notebook: 01_baselines           # notebooks/<name>.ipynb
        tag: vsknn                       # optional: distinguishes several runs of one notebook
        parameters: {MODELS: [V-SKNN], SEEDS: [0, 1, 2]}
        needs: gpu                       # optional: skipped (and listed) where no CUDA device is visible,
                                         # unless --allow-cpu (an entry sized for a GPU: days on a CPU)

Each run writes the executed notebook to ``<results>/<dataset>/notebooks/<name>[__<tag>].ipynb``
(``<dataset>`` is the dataset's folder name, also when DATASET is a path: results never go into a
data folder) and a ``.done.json`` marker holding the hash of its parameters, the notebook's cell
sources, the dataset's files and the package's code (:func:`inputs_hash`), taken with the results
folder *relative to the project* (so a marker means the same in every clone). A run whose marker matches is skipped, so an interrupted study resumes with the
first unfinished run (and the notebooks themselves skip seeds already stored under ``runs/``).
``--force`` reruns everything. A failed run prints the notebook's error (type, message, cell)
and the executed notebook's path, and the study goes on with the next run.

Each notebook's own output (its prints and progress bars) is streamed as it runs
(``--no-log-output``: only a progress bar over the notebook's cells), and before each run the
runner prints how long its last run took (the marker's ``wall_s``, also when the parameters
changed since). Kernels talk to the runner over IPC sockets, not unencrypted TCP.

Parallel runs (``--workers N``, ``make study WORKERS=2``): the runs of a plan are independent
except that a notebook reads what lower-numbered notebooks stored (03's embedding cache for 04,
02's base runs for 05, everything for 11). Each run therefore waits for every **earlier run of
the plan with a smaller notebook number** (:func:`waves`); runs of one wave go to ``N`` joblib
worker processes (loky), each executing its notebook in its own kernel. Nothing else changes: a
notebook stores every (model, setting, seed) run under a content key with atomic writes and
updates ``summary.csv`` under a file lock (:mod:`rec_utils.results`), so two workers that reach
the same run write one file and every summary row aggregates every stored seed. With workers the
notebooks' own output is not streamed (it would interleave); one line per finished run is.

Any dataset (``--dataset <folder>``, ``make study DATASET=<folder>``): the plan's ``DATASET``
becomes the folder (results in ``results/<folder name>/``); a plan with ``sized_by_data: true``
(``plans/generic.yaml``, the default plan when DATASET is given) gets its parameters from the
data (:func:`sized_parameters`: seeds, test samples, the SKNN index on large data, the neural
models' maximum length from the session-length distribution, the tie-order spread only with
ties); a run's own parameters in the plan still win.

One notebook outside a plan, into a scratch folder: :mod:`rec_utils.adhoc` (``make run``).
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from .data import load_dataset, resolve_dataset_path, session_lengths
from .split import has_timestamp_ties
from .utils import PROJECT_ROOT, atomic_write_text, git_commit, resolve_device, short_hash

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"


def load_plan(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file() and (PROJECT_ROOT / "plans" / f"{path}.yaml").is_file():
        path = PROJECT_ROOT / "plans" / f"{path}.yaml"
    plan = yaml.safe_load(Path(path).read_text())
    if not isinstance(plan, dict) or not isinstance(plan.get("runs"), list):
        raise ValueError(f"{path}: a plan needs a 'runs' list")
    for i, run in enumerate(plan["runs"]):
        if "notebook" not in run:
            raise ValueError(f"{path}: run {i} has no 'notebook'")
        nb = NOTEBOOK_DIR / f"{run['notebook']}.ipynb"
        if not nb.is_file():
            raise FileNotFoundError(f"{path}: run {i}: no notebook {nb}")
        if run.get("needs") not in (None, "gpu"):
            raise ValueError(f"{path}: run {i} ({run['notebook']}): needs must be 'gpu' or absent, got {run['needs']!r}")
    plan["_path"] = str(path)
    return plan


def _source_hash(path: Path) -> str:
    """Hash of a notebook's cell sources (not its outputs or metadata)."""
    nb = json.loads(Path(path).read_text())
    return short_hash(["".join(c.get("source", "")) for c in nb.get("cells", [])])


_CONTENT: dict = {}


def _files_hash(files) -> str:
    """Short hash of files' relative names and bytes (memoised per process by name, size, mtime)."""
    files = sorted(Path(f) for f in files if Path(f).is_file())
    key = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    if key not in _CONTENT:
        _CONTENT[key] = short_hash(*[part for f in files for part in (f.name, f.read_bytes())])
    return _CONTENT[key]


def inputs_hash(dataset) -> str:
    """What a notebook run depends on besides its parameters and cells: the dataset folder's
    files and the package's code (``rec_utils/**/*.py``). Part of every done-marker, so changed
    data or code re-executes the notebook (stored runs whose inputs did not change still load)."""
    try:
        data = _files_hash(resolve_dataset_path(dataset).iterdir())
    except FileNotFoundError:
        data = f"missing:{dataset}"
    return short_hash(data, _files_hash((PROJECT_ROOT / "rec_utils").rglob("*.py")))


def expand_runs(plan: dict, results_root: Path) -> list[dict]:
    """Each run with its full parameters and output paths."""
    out = []
    defaults = plan.get("defaults") or {}
    for run in plan["runs"]:
        params = {**defaults, **(run.get("parameters") or {})}
        dataset = params.get("DATASET", "beauty")
        params.setdefault("DATASET", dataset)
        results = Path(results_root) / Path(str(dataset)).name  # a folder path: its name
        params["RESULTS_DIR"] = str(results)
        name = run["notebook"] + (f"__{run['tag']}" if run.get("tag") else "")
        out_nb = results / "notebooks" / f"{name}.ipynb"
        # the marker's hash: parameters with the results folder relative to the project, the
        # notebook's cell sources, the data and the code (a change reruns; stored seeds still load)
        key_params = {**params, "RESULTS_DIR": _relative(results), "_inputs": inputs_hash(dataset)}
        out.append({
            "name": name,
            "input": NOTEBOOK_DIR / f"{run['notebook']}.ipynb",
            "output": out_nb,
            "marker": out_nb.with_suffix(".done.json"),
            "parameters": params,
            "params_id": short_hash(key_params, _source_hash(NOTEBOOK_DIR / f"{run['notebook']}.ipynb")),
            "needs_gpu": run.get("needs") == "gpu",
        })
    return out


def _relative(path: Path) -> str:
    """``path`` relative to the project when inside it (else as given), with / separators."""
    p = Path(path).resolve()
    try:
        return p.relative_to(PROJECT_ROOT.resolve()).as_posix()
    except ValueError:
        return os.path.relpath(p, PROJECT_ROOT.resolve()).replace(os.sep, "/")


def failure_message(exc: Exception, output: Path) -> str:
    """What went wrong in a notebook run: the exception type, message and cell of the
    notebook's error (papermill's), the last traceback lines, and the executed notebook."""
    ename = getattr(exc, "ename", None)
    if ename is not None:  # papermill.PapermillExecutionError
        tb = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in (getattr(exc, "traceback", None) or [])]
        tail = "\n".join(tb[-6:])
        head = (f"{ename}: {getattr(exc, 'evalue', '')} (cell {getattr(exc, 'exec_count', '?')}, "
                f"index {getattr(exc, 'cell_index', '?')})")
        return f"{head}\n{tail}\n   executed notebook: {output}"
    return f"{type(exc).__name__}: {exc}\n   executed notebook (may be partial): {output}"


def is_done(run: dict) -> bool:
    try:
        marker = json.loads(run["marker"].read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return marker.get("params_id") == run["params_id"] and run["output"].is_file()


def last_wall(run: dict) -> tuple[float, bool] | None:
    """``(seconds, same)`` of the run's last execution from its marker (``same``: with today's
    parameters and notebook), or None when it never finished."""
    try:
        marker = json.loads(run["marker"].read_text())
        return float(marker["wall_s"]), marker.get("params_id") == run["params_id"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def duration(seconds: float) -> str:
    """``40 s``, ``12 min``, ``1 h 05 min``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def estimate(run: dict) -> str:
    """One line on how long the run should take, from its last execution."""
    last = last_wall(run)
    if last is None:
        return "no earlier run to estimate from"
    wall, same = last
    return f"last run took {duration(wall)}" + ("" if same else " (other parameters or notebook version)")


def _kernel_manager_class():
    """The kernel manager papermill starts kernels with: jupyter_client's, on IPC sockets
    instead of TCP, so the kernel neither listens on a port nor prints its "running over TCP
    without encryption" warning for every notebook. The socket files go to a fresh temporary
    folder per kernel (jupyter_client's default, ``kernel-ipc-N`` in the working directory,
    would land in ``notebooks/`` and be shared by two runners)."""
    from jupyter_client.manager import AsyncKernelManager  # heavy: only when running notebooks
    from traitlets import CaselessStrEnum, default  # heavy: only when running notebooks

    class IPCKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

        @default("ip")
        def _ip_default(self):
            return str(Path(tempfile.mkdtemp(prefix="rec-utils-kernel-")) / "kernel-ipc")

    return IPCKernelManager


def papermill_run(input_path: Path, output_path: Path, parameters: dict, kernel_name: str | None = None,
                  *, prepare_only: bool = False, log_output: bool = False, quiet: bool = False) -> float:
    """Execute (or only parameterise) one notebook with papermill from ``notebooks/``; returns
    the wall time. ``log_output`` streams the notebook's own stdout and stderr (prints, tqdm
    bars) to ours as it runs; without it a bar over the cells shows progress (none when ``quiet``)."""
    import papermill as pm  # heavy: only when running notebooks

    Path(output_path).parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pm.execute_notebook(
        str(input_path), str(output_path), parameters=parameters, kernel_name=kernel_name,
        prepare_only=prepare_only, progress_bar=not (prepare_only or log_output or quiet), cwd=str(NOTEBOOK_DIR),
        stdout_file=sys.stdout if log_output else None, stderr_file=sys.stderr if log_output else None,
        **({} if prepare_only else {"kernel_manager_class": _kernel_manager_class()}),
    )
    return time.perf_counter() - t0


def execute(run: dict, kernel_name: str | None, prepare_only: bool = False,
            log_output: bool = False, quiet: bool = False) -> float:
    wall = papermill_run(run["input"], run["output"], run["parameters"], kernel_name,
                         prepare_only=prepare_only, log_output=log_output, quiet=quiet)
    if not prepare_only:
        _write_marker(run, wall)
    return wall


#: Above this many interactions the SKNN family runs on the VMIS-kNN index (cap = sample size,
#: exact for recent sampling) and only SKNN / V-SKNN (S-/SF-SKNN need the faithful model).
INDEX_ABOVE = 500_000
#: Above this many test sessions the test set is sampled (seeded) to this many.
MAX_TEST_SESSIONS = 5_000
#: BERT4Rec only up to this many train sessions: with its 10 randomly masked copies per session an
#: epoch is 11 sequences per session (ml-latest-small: 488 sessions, minutes in all on 2 cores; a
#: synthetic shop of 2,400 train sessions: ~9 min per epoch on a busy 2-core box; one of 640 train
#: sessions of ~6 items: ~70 s per epoch under load 6, validation NDCG@20 still rising after 4 epochs at
#: the Beauty preset's learning rate 1e-4, so minutes to tens of minutes in all). Beyond it BERT4Rec
#: is left to a GPU (`make run NB=02_sequential` there, or the paper plan).
BERT4REC_MAX_TRAIN_SESSIONS = 1_000
#: The neural models' maximum length: this percentile of the session lengths, within the bounds.
MAX_LEN_PERCENTILE, MAX_LEN_BOUNDS = 95, (5, 200)


def dataset_profile(dataset) -> dict:
    """What :func:`sized_parameters` reads of a dataset (name or folder): its name, counts,
    whether sessions hold same-timestamp interactions, whether it has item text, and the
    session-length percentile of the neural models' maximum length."""
    ds = load_dataset(dataset)
    lengths = session_lengths(ds.interactions).to_numpy()
    return {"name": ds.name, "interactions": int(len(ds.interactions)), "sessions": int(len(lengths)),
            "items": int(ds.n_items), "has_ties": bool(has_timestamp_ties(ds.interactions)),
            "has_text": ds.items is not None,
            "length_percentile": float(np.percentile(lengths, MAX_LEN_PERCENTILE)) if len(lengths) else 0.0}


def max_len_rule(profile: dict) -> int:
    """The neural models' ``max_len`` for a dataset: the 95th percentile of its session lengths
    (so 95 % of the sessions fit whole), rounded up, within [5, 200] (attention cost grows with
    its square). On Beauty the rule gives 21 (the paper's N: 20); on ml-latest-small, whose
    sessions are users' whole histories, the bound 200."""
    lo, hi = MAX_LEN_BOUNDS
    return int(min(hi, max(lo, math.ceil(profile["length_percentile"]))))


def sized_parameters(notebook: str, profile: dict) -> dict:
    """Parameters of one notebook of the generic plan for a dataset (see the module docstring).

    Rules: every randomised baseline gets 3 seeds, neural and hybrid runs one; a test set of
    more than :data:`MAX_TEST_SESSIONS` sessions is sampled to that many (the same sample in every
    notebook, 11 included); above :data:`INDEX_ABOVE` interactions SKNN / V-SKNN run on the
    VMIS-kNN index (``index_cap`` = their sample size: exact for recent sampling) and S-/SF-SKNN
    are left out; neural models get ``max_len`` = :func:`max_len_rule` where it differs from
    the preset's 20 (a labelled override); BERT4Rec only up to :data:`BERT4REC_MAX_TRAIN_SESSIONS`
    train sessions; the tie-order spread only with ties; notebooks that
    need item text are left out without ``items.csv`` (the caller drops them)."""
    n_test = math.ceil(0.2 * profile["sessions"])
    n_train = profile["sessions"] - n_test
    sample = MAX_TEST_SESSIONS if n_test > MAX_TEST_SESSIONS else 0
    spread = {} if profile["has_ties"] else {"SPREAD_TIE_SEEDS": []}
    L = max_len_rule(profile)
    ml = {"max_len": L} if L != 20 else {}
    big = profile["interactions"] > INDEX_ABOVE
    if notebook == "00_data":
        return {"STAT_DATASETS": [profile["path"]], **spread}
    if notebook == "01_baselines":
        p = {"SEEDS": [0, 1, 2], "SAMPLE_SESSIONS": sample, **spread}
        if big:
            from .models import preset_config  # heavy (torch): only for a plan sized for big data

            knn = ("SKNN", "V-SKNN")
            p.update(MODELS=["MostPopular", *knn],
                     CONFIG_OVERRIDES={m: {"index_cap": preset_config(m, "beauty")["sample_size"]} for m in knn})
        return p
    if notebook == "02_sequential":
        models = ["GRU4Rec", "SASRec"] + (["BERT4Rec"] if n_train <= BERT4REC_MAX_TRAIN_SESSIONS else [])
        return {"MODELS": models, "SEEDS": [0], "SAMPLE_SESSIONS": sample,
                "CONFIG": {m: ml for m in models} if ml else {}}
    if notebook == "04_llmseqsim":
        return {"SAMPLE_SESSIONS": sample, **spread}
    if notebook == "05_llm2sequential":
        models = ["LLM2SASRec", "LLM2GRU4Rec"]
        return {"MODELS": models, "SEEDS": [0], "SAMPLE_SESSIONS": sample,
                "CONFIG": {m: ml for m in models} if ml else {}}
    if notebook == "07_hybrids":
        return {"SEEDS": [0], "SAMPLE_SESSIONS": sample,
                "CONFIG": {"LLM2SASRec": ml} if ml else {}}
    if notebook == "11_results":
        return {"DATASETS": [profile["name"]], "SAMPLE_SESSIONS": sample}
    return {}


TEXT_NOTEBOOKS = ("03_embeddings", "04_llmseqsim", "05_llm2sequential", "06_llmseqprompt", "07_hybrids")


def for_dataset(plan: dict, dataset: str) -> dict:
    """``plan`` run on ``dataset`` (a name under data/ or a folder, made absolute): DATASET replaced in the
    defaults and every run; with ``sized_by_data`` the runs get :func:`sized_parameters` under
    their own parameters, and the notebooks that need item text are dropped when the data has
    none (said on stdout)."""
    if Path(dataset).is_dir():  # a folder: absolute, since notebooks run from notebooks/
        dataset = Path(dataset).resolve()
    plan = {**plan, "defaults": {**(plan.get("defaults") or {}), "DATASET": str(dataset)}}
    runs = [{**r, "parameters": {**(r.get("parameters") or {}), "DATASET": str(dataset)}} for r in plan["runs"]]
    if plan.get("sized_by_data"):
        profile = {**dataset_profile(dataset), "path": str(dataset)}
        print(f"sizing the plan by {profile['name']}: {profile['interactions']:,} interactions, {profile['sessions']:,} "
              f"sessions, {profile['items']:,} items, ties within sessions: {profile['has_ties']}, "
              f"item text: {profile['has_text']}, neural max_len {max_len_rule(profile)} "
              f"(p{MAX_LEN_PERCENTILE} session length {profile['length_percentile']:.0f})", flush=True)
        if not profile["has_text"]:
            dropped = [r["notebook"] for r in runs if r["notebook"] in TEXT_NOTEBOOKS]
            runs = [r for r in runs if r["notebook"] not in TEXT_NOTEBOOKS]
            print(f"no items.csv: the text-based notebooks {dropped} are left out", flush=True)
        runs = [{**r, "parameters": {**sized_parameters(r["notebook"], profile), **r["parameters"]}} for r in runs]
    return {**plan, "runs": runs}


def stage(run: dict) -> int:
    """A run's notebook number (``04_llmseqsim`` → 4): the order of the study's steps."""
    m = re.match(r"(\d+)", Path(run["input"]).stem)
    return int(m.group(1)) if m else 0


def waves(runs: list[dict]) -> list[list[dict]]:
    """The runs grouped into waves that may run in parallel, in order: a run waits for every
    earlier run (in plan order) of a smaller notebook number, so it comes one wave after the
    latest of those. Runs of one notebook number never wait for each other."""
    level = []
    for i, r in enumerate(runs):
        deps = [level[j] for j in range(i) if stage(runs[j]) < stage(r)]
        level.append(1 + max(deps) if deps else 0)
    return [[r for r, lv in zip(runs, level) if lv == w] for w in range(max(level, default=-1) + 1)]


def _execute_quiet(run: dict, kernel: str | None) -> tuple[float | None, str | None]:
    """``execute`` in a worker process: ``(wall, None)`` or ``(None, failure message)``."""
    try:
        return execute(run, kernel, quiet=True), None
    except Exception as e:  # the parent reports it and goes on, as the sequential runner does
        return None, failure_message(e, run["output"])


def _write_marker(run: dict, wall: float) -> None:
    atomic_write_text(run["marker"], json.dumps({
        "params_id": run["params_id"], "parameters": run["parameters"],
        "git_commit": git_commit(), "wall_s": round(wall, 1),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }, indent=1))


def run_parallel(todo: list[dict], kernel: str | None, workers: int) -> list[tuple[str, str]]:
    """Execute ``todo`` wave by wave (:func:`waves`) on ``workers`` loky processes; returns the
    ``(name, message)`` of the failed runs. A failed run does not stop the waves after it (the
    notebooks that read its results then say what is missing, as in a sequential study)."""
    from joblib import Parallel, delayed  # only with --workers > 1

    failures = []
    groups = waves(todo)
    with Parallel(n_jobs=workers, backend="loky") as pool:
        for w, group in enumerate(groups, 1):
            print(f"wave {w}/{len(groups)}: {len(group)} run(s) on {min(workers, len(group))} worker(s): "
                  f"{[r['name'] for r in group]}", flush=True)
            for r, (wall, err) in zip(group, pool(delayed(_execute_quiet)(r, kernel) for r in group)):
                if err is None:
                    print(f"   {r['name']} done in {duration(wall)} -> {r['output']}", flush=True)
                else:
                    failures.append((r["name"], err))
                    print(f"   {r['name']} FAILED: {err}", flush=True)
    return failures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("plan", help="plan YAML (path, or a name under plans/)")
    ap.add_argument("--out", default=None, help="results root (default: results/)")
    ap.add_argument("--only", default=None, help="glob on run names, e.g. '01_*'")
    ap.add_argument("--force", action="store_true", help="rerun runs that are already done")
    ap.add_argument("--prepare-only", action="store_true",
                    help="write parameterised notebooks without executing them (for nbval)")
    ap.add_argument("--kernel", default=None, help="Jupyter kernel (default: the current Python)")
    ap.add_argument("--log-output", action=argparse.BooleanOptionalAction, default=True,
                    help="stream each notebook's own output (prints, progress bars) as it runs (default); "
                         "--no-log-output shows a bar over its cells instead")
    ap.add_argument("--dataset", default=None,
                    help="run the plan on this dataset (a name under data/ or a folder in the tidy form)")
    ap.add_argument("--allow-cpu", action="store_true",
                    help="also run entries marked 'needs: gpu' where no CUDA device is visible (hours to days)")
    ap.add_argument("--workers", type=int, default=1,
                    help="runs executed at once in worker processes (joblib/loky), in dependency waves (default 1)")
    args = ap.parse_args(argv)
    if args.workers < 1:
        ap.error(f"--workers must be >= 1, got {args.workers}")

    plan = load_plan(args.plan)
    if args.dataset:
        plan = for_dataset(plan, args.dataset)
    elif plan.get("sized_by_data"):
        ap.error(f"{plan['_path']} is sized by the data: give --dataset <folder> (make study DATASET=<folder>)")
    root = Path(args.out).resolve() if args.out else PROJECT_ROOT / "results"
    runs = expand_runs(plan, root)
    if args.only:
        runs = [r for r in runs if fnmatch.fnmatch(r["name"], f"*{args.only}*")]
    kernel = args.kernel or "python3"
    if args.prepare_only:
        for r in runs:
            execute(r, kernel, prepare_only=True)
            print(f"prepared {r['output']}")
        return 0

    if any(r["needs_gpu"] for r in runs) and not args.allow_cpu and resolve_device("auto") != "cuda":
        skipped = [r["name"] for r in runs if r["needs_gpu"]]
        print(f"skipped {len(skipped)} run(s) marked 'needs: gpu' (no CUDA device visible; --allow-cpu runs them "
              f"here anyway): {', '.join(skipped)}")
        runs = [r for r in runs if not r["needs_gpu"]]
    todo = [r for r in runs if args.force or not is_done(r)]
    print(f"plan {plan['_path']}: {len(runs)} runs, {len(runs) - len(todo)} already done")
    known = [w[0] for r in todo if (w := last_wall(r)) is not None]
    if known:
        print(f"estimate from the last runs: {duration(sum(known))} for {len(known)} of the {len(todo)} to run"
              + ("" if len(known) == len(todo) else f" ({len(todo) - len(known)} never ran)"))
    elif todo:
        print(f"no earlier run of the {len(todo)} to estimate from")
    failures = []
    t_study = time.perf_counter()
    if args.workers > 1:
        failures = run_parallel(todo, kernel, args.workers)
        todo_seq = []
    else:
        todo_seq = todo
    for i, r in enumerate(todo_seq, 1):
        print(f"[{i}/{len(todo)}] {r['name']} ({r['parameters'].get('DATASET')}): {estimate(r)}", flush=True)
        try:
            wall = execute(r, kernel, log_output=args.log_output)
            print(f"   done in {duration(wall)} -> {r['output']}", flush=True)
        except Exception as e:  # keep going: the other runs are independent
            failures.append((r["name"], e))
            print(f"   FAILED: {failure_message(e, r['output'])}", flush=True)
    if todo:
        print(f"{len(todo)} run(s) in {duration(time.perf_counter() - t_study)}")
    if failures:
        print(f"{len(failures)} run(s) failed: {[n for n, _ in failures]} (rerun to resume)")
        return 1
    print("study complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
