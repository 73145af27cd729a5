"""The Optuna TPE search (rec_utils.tuning.optuna_search, paper spec §7) on tiny synthetic data:
pruning, stop rules, failed trials, best-config files and PRESET="tuned", resume after a killed
worker (SQLite) and two workers on one PostgreSQL study."""
from __future__ import annotations

import glob
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState, create_trial
from optuna.distributions import FloatDistribution

from rec_utils import paths
from rec_utils.data import Dataset
from rec_utils.models import build_model, preset_config
from rec_utils.setting import Setting
from rec_utils.split import make_split, temporal_folds
from rec_utils.tuning import TPE_SPACES, FoldPercentilePruner, best_trial, trials_table, tune, write_best_config
from rec_utils.tuning.optuna_search import make_storage, suggest
from rec_utils.tuning.worker import prepare_search
from rec_utils.utils import PROJECT_ROOT

from conftest import write_dataset

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _rows(n_sessions=300, n_items=50, seed=0):
    rng = np.random.default_rng(seed)
    return [(s, int(it), s * 100 + t) for s in range(n_sessions)
            for t, it in enumerate(rng.choice(n_items, rng.integers(2, 7), replace=False))]


@pytest.fixture(scope="module")
def folds():
    ds = Dataset("toy", pd.DataFrame(_rows(), columns=["session_id", "item_id", "timestamp"]), None)
    return temporal_folds(make_split(ds, tie_order="file"), 3)


@pytest.fixture
def toy_folder(tmp_path) -> Path:
    """A synthetic dataset folder (interactions.csv.gz) the worker subprocesses load."""
    return write_dataset(tmp_path / "toyds", _rows())


def vsknn(cfg):
    return build_model("V-SKNN", **cfg)


def _study(tmp_path, name="s"):
    return f"sqlite:///{tmp_path / (name + '.db')}"


# ------------------------------------------------------------------------------ pruner
def _with_fold_values(study, values_per_trial):
    dist = {"x": FloatDistribution(0, 1)}
    for i, vals in enumerate(values_per_trial):
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=float(np.mean(vals)), params={"x": i / 100},
                                     distributions=dist, intermediate_values=dict(enumerate(vals))))


def test_pruner_prunes_a_fold_value_in_the_bottom_20_percent_of_that_fold_only():
    study = optuna.create_study(direction="maximize", pruner=FoldPercentilePruner(0.2, n_min_trials=5))
    # fold 0 values 0.10..0.19, fold 1 values 0.50..0.59 of 10 finished trials
    _with_fold_values(study, [[0.10 + i / 100, 0.50 + i / 100] for i in range(10)])
    p20_fold0 = np.percentile([0.10 + i / 100 for i in range(10)], 20)
    low = study.ask()
    low.report(p20_fold0 - 1e-4, 0)
    assert low.should_prune()
    ok = study.ask()
    ok.report(p20_fold0 + 1e-4, 0)
    assert not ok.should_prune()
    # at fold 1 its own fold-0 value does not help (Optuna's PercentilePruner would keep it:
    # it compares the best value over all steps so far)
    ok.report(0.30, 1)
    assert ok.should_prune()


def test_pruner_waits_for_n_min_trials_at_that_fold():
    study = optuna.create_study(direction="maximize", pruner=FoldPercentilePruner(0.2, n_min_trials=5))
    _with_fold_values(study, [[0.1 + i / 100] for i in range(4)])
    t = study.ask()
    t.report(0.0, 0)
    assert not t.should_prune()
    with pytest.raises(ValueError, match="bottom"):
        FoldPercentilePruner(1.5)


# ------------------------------------------------------------------------------ search
def test_tune_is_mean_fold_ndcg_with_per_fold_reports_and_resumes_to_max_trials(folds, tmp_path):
    url = _study(tmp_path)
    kw = dict(model="V-SKNN", dataset="toy", storage=url, base_config={"decay": "harmonic"}, n_startup_trials=3,
              seed=0, progress=False, patience=None)
    study = tune(vsknn, folds, max_trials=5, **kw)
    assert len(study.trials) == 5
    t = best_trial(study)
    # the objective = mean NDCG@20 of the config over the 3 folds, recomputed by hand
    from rec_utils.evaluation import fit_predict_evaluate

    cfg = t.user_attrs["config"]
    by_hand = [fit_predict_evaluate(vsknn(cfg), f)["metrics"]["ndcg@20"] for f in folds]
    assert t.value == pytest.approx(np.mean(by_hand), abs=1e-12)
    assert [t.intermediate_values[i] for i in range(3)] == pytest.approx(by_hand, abs=1e-12)
    assert cfg["decay"] == "harmonic" and set(t.params) == set(TPE_SPACES["V-SKNN"].params)
    first = [tr.params for tr in study.trials]
    again = tune(vsknn, folds, max_trials=8, **kw)  # the same study continues
    assert [tr.number for tr in again.trials] == list(range(8))
    assert [tr.params for tr in again.trials[:5]] == first


def test_tune_refuses_a_study_made_on_other_folds(folds, tmp_path):
    url = _study(tmp_path)
    tune(vsknn, folds, model="V-SKNN", dataset="toy", storage=url, max_trials=1, progress=False)
    with pytest.raises(ValueError, match="fold_fingerprints"):
        tune(vsknn, [f.sample_test(20) for f in folds], model="V-SKNN", dataset="toy", storage=url,
             max_trials=2, progress=False)


def test_patience_stops_after_n_trials_without_improvement(folds, tmp_path):
    # MostPopular ignores its config: every trial scores the same, the first stays best
    study = tune(lambda cfg: build_model("MostPopular"), folds, model="V-SKNN", dataset="toy", storage=_study(tmp_path),
                 max_trials=50, patience=4, n_startup_trials=2, progress=False)
    assert len(study.trials) == 5
    assert study.user_attrs["last_stop_worker0"].startswith("4 trials without improvement")


def test_failed_trials_are_recorded_with_their_reason_and_the_study_goes_on(folds, tmp_path):
    def make(cfg):
        if cfg["k"] > 250:
            raise ValueError(f"bad config k={cfg['k']}")
        return vsknn(cfg)

    study = tune(make, folds, model="V-SKNN", dataset="toy", storage=_study(tmp_path), max_trials=12,
                 n_startup_trials=12, seed=3, patience=None, progress=False)
    table = trials_table(study)
    failed = table[table.state == "FAIL"]
    assert len(table) == 12 and len(failed) and (table.state == "COMPLETE").any()
    assert all(r.startswith("ValueError: bad config k=") for r in failed.fail_reason)
    assert (failed["params_k"] > 250).all()


def test_a_nan_objective_fails_the_trial_with_the_reason(folds, tmp_path, monkeypatch):
    import rec_utils.tuning.optuna_search as search

    real = search.evaluate_on_folds

    def nan_eval(*a, **kw):
        out = real(*a, **kw)
        return {**out, "mean": float("nan")}

    monkeypatch.setattr(search, "evaluate_on_folds", nan_eval)
    study = tune(vsknn, folds, model="V-SKNN", dataset="toy", storage=_study(tmp_path), max_trials=2, progress=False)
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 2
    assert all(t.user_attrs["fail_reason"].startswith("objective ndcg@20 is nan") for t in study.trials)


def test_nan_training_loss_stops_a_neural_trial_with_the_reason():
    from rec_utils.tuning.optuna_search import nan_loss_guard

    nan_loss_guard({"loss": 1.0, "epoch": 1})
    with pytest.raises(FloatingPointError, match="epoch 2"):
        nan_loss_guard({"loss": math.nan, "epoch": 2})


def test_every_family_has_a_space_whose_samples_build_the_model():
    expected = {"SKNN", "V-SKNN", "S-SKNN", "SF-SKNN", "SKNNEmb", "LLMSeqSim", "GRU4Rec", "SASRec", "BERT4Rec",
                "LLM2GRU4Rec", "LLM2SASRec", "LLM2BERT4Rec"}
    assert set(TPE_SPACES) == expected
    for name, space in TPE_SPACES.items():
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        for _ in range(8):
            trial = study.ask()
            cfg = space.to_config(suggest(trial, space))
            build_model(name, **{**preset_config(name, "beauty"), **cfg})  # a valid config
            study.tell(trial, 0.0)
    # §7's ranges, read back
    rows = {r["name"]: r for r in TPE_SPACES["SASRec"].describe()}
    assert rows["learning_rate"]["range"] == "0.0001–0.01" and rows["learning_rate"]["log"]
    assert rows["clipnorm"]["range"] == "1–100 or None"


# --------------------------------------------------------------------- best config, "tuned"
def test_best_config_file_and_preset_tuned(folds, tmp_path, monkeypatch):
    study = tune(vsknn, folds, model="V-SKNN", dataset="toy", storage=_study(tmp_path), max_trials=3,
                 base_config={"decay": "harmonic"}, progress=False)
    monkeypatch.setattr(paths, "RESULTS_ROOT", tmp_path / "results")  # where results_dir looks
    with pytest.raises(FileNotFoundError, match="no tuned configuration of V-SKNN.*10_tuning"):
        preset_config("V-SKNN", "tuned", dataset="toy")
    path = write_best_config(study, storage="postgresql+psycopg://u:secret@h:1/db")
    assert path == tmp_path / "results" / "toy" / "configs" / "V-SKNN.json"
    doc = json.loads(path.read_text())
    best = best_trial(study)
    assert (doc["study_name"], doc["trial_number"], doc["value"]) == (study.study_name, best.number, best.value)
    assert "secret" not in path.read_text()
    assert preset_config("V-SKNN", "tuned", dataset="toy") == best.user_attrs["config"]
    split = make_split(Dataset("toy", pd.DataFrame(_rows(), columns=["session_id", "item_id", "timestamp"]), None),
                       tie_order="file")
    setting = Setting.of("V-SKNN", split, preset="tuned")
    assert setting.config == best.user_attrs["config"] and "preset=tuned" in setting.label
    with pytest.raises(ValueError, match="protocol 'temporal'"):
        preset_config("V-SKNN", "tuned", dataset="toy", protocol="loo")
    with pytest.raises(ValueError, match="needs the dataset"):
        preset_config("V-SKNN", "tuned")
    assert preset_config("MostPopular", "tuned", dataset="toy") == {}  # nothing to tune


# ------------------------------------------------------------------ worker processes
def _env(**gates):
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            **{k: str(v) for k, v in gates.items()}}


def _worker(folder, storage, *args, grace_s=2, gated=False):
    """The worker command line; ``gated``: through tests/gated_worker.py, whose gates (set in the
    environment, see ``_env``) hold a worker inside a trial or line workers up before any trial
    finishes, so that no test races a running process."""
    entry = [str(Path(__file__).parent / "gated_worker.py")] if gated else ["-m", "rec_utils.tuning.worker"]
    return [sys.executable, *entry, "--model", "V-SKNN", "--dataset", str(folder),
            "--storage", storage, "--results-root", str(folder.parent / "res"), "--n-startup", "4",
            "--patience", "1000", "--grace-period-s", str(grace_s), *map(str, args)]


def _load(storage, name):
    return optuna.load_study(study_name=name, storage=make_storage(storage, heartbeat=False))


def _study_name(folder):
    return prepare_search(str(folder), "V-SKNN").name


def _wait_for_file(path: Path, proc: subprocess.Popen, guard_s: float = 600) -> dict:
    """The JSON a gated worker writes at its gate; fails if the worker ends first. The clock is only
    a guard against a hang: the outcome does not depend on how long the worker takes."""
    deadline = time.monotonic() + guard_s
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"worker ended before it reached the gate: {proc.stdout.read()!r}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"worker did not reach the gate in {guard_s} s")
        time.sleep(0.05)
    return json.loads(path.read_text())


def test_a_killed_worker_resumes_no_trial_lost_or_repeated(toy_folder):
    storage = f"sqlite:///{toy_folder.parent / 'resume.db'}"
    name = _study_name(toy_folder)
    gate = toy_folder.parent / "gate"
    gate.mkdir()
    hold = 4  # trials 0-3 finish; trial 4 has drawn its parameters when the worker is killed
    proc = subprocess.Popen(_worker(toy_folder, storage, "--max-trials", 200, gated=True),
                            env=_env(GATE_DIR=gate, GATE_HOLD_TRIAL=hold),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    held = _wait_for_file(gate / "held.json", proc)
    proc.send_signal(signal.SIGKILL)  # inside trial `hold`, by construction
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = _load(storage, name).get_trials()
    stale = [t.number for t in before if t.state == TrialState.RUNNING]
    assert stale == [hold] == [held["number"]]
    assert len(before) == hold + 1 and all(t.state.is_finished() for t in before[:hold])
    assert before[hold].params == held["params"]
    n_before = len(before)
    # A trial is stale once it has had no heartbeat for the grace period (2 s). The killed worker
    # can send none, so waiting longer than that is enough: a slower machine only waits longer.
    time.sleep(3)
    out = subprocess.run(_worker(toy_folder, storage, "--max-trials", n_before + 6), env=_env(),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    after = _load(storage, name).get_trials()
    assert len(after) > n_before
    assert [t.number for t in after] == list(range(len(after)))  # contiguous: none lost, none twice
    for old, new in zip(before, after):  # every trial of the killed run is kept as it was
        assert (new.number, new.params) == (old.number, old.params)
        assert new.state == (TrialState.FAIL if old.number in stale else old.state)
    retried = [t for t in after if t.system_attrs.get("failed_trial") == hold]
    # retried once, with the parameters it had drawn when it was killed
    assert len(retried) == 1
    assert {k: retried[0].params[k] for k in held["params"]} == held["params"]
    assert retried[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    # the resumed sampler does not replay the first run's trials
    fresh = [t for t in after[n_before:] if "failed_trial" not in t.system_attrs]
    assert fresh and all(t.params not in [b.params for b in before] for t in fresh)


# ------------------------------------------------------------------ PostgreSQL, two workers
def _pg_bin(name):
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        pytest.fail(f"PostgreSQL's {name} is neither on PATH nor in /usr/lib/postgresql/*/bin: install PostgreSQL "
                    f"(apt-get install postgresql) or deselect with -m 'not postgres'")
    return found


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_url():
    """A throw-away PostgreSQL cluster in a temp dir on 127.0.0.1 (as user postgres when run as root)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    root = Path(tempfile.mkdtemp(prefix="rec_utils_pg_"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    as_user = []
    if os.geteuid() == 0:
        import pwd

        try:  # initdb refuses to run as root
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root: the PostgreSQL test needs a 'postgres' user to own the throw-away cluster")
        for p in (root, sock):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True, timeout=120)
    try:
        run(initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        run(pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-o",
            f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    except subprocess.CalledProcessError as e:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start a PostgreSQL cluster: {e.cmd}: {e.stdout} {e.stderr}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.postgres
def test_two_workers_share_one_postgres_study(toy_folder, postgres_url):
    name = _study_name(toy_folder)
    max_trials = 16
    gate = toy_folder.parent / "gate"
    gate.mkdir()
    # Both workers line up inside their first trial before either finishes one (GATE_BARRIER), so
    # both land trials however their start-up is scheduled; a grace period far above any stall of
    # a live worker's heartbeat thread, so that no live trial is ever taken for a killed one.
    procs = [subprocess.Popen(_worker(toy_folder, postgres_url, "--max-trials", max_trials, "--worker", w,
                                      grace_s=600, gated=True),
                              env=_env(GATE_DIR=gate, GATE_BARRIER=2), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for w in (0, 1)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (o, e) in zip(procs, outs):
        assert p.returncode == 0, o + e
    trials = _load(postgres_url, name).get_trials()
    # every trial once: numbers 0..n-1 distinct; both workers' trials landed
    assert [t.number for t in trials] == list(range(len(trials)))
    assert max_trials <= len(trials) <= max_trials + 1  # the other worker may finish one in flight
    workers = [t.user_attrs.get("worker") for t in trials]
    assert set(workers) == {0, 1}, workers
    assert all(t.state.is_finished() for t in trials)
    by_worker = {w: [t.params for t in trials if t.user_attrs.get("worker") == w] for w in (0, 1)}
    assert by_worker[0][:4] != by_worker[1][:4]  # own sampler seeds: not the same start-up trials
    # the best trial, seen from either worker's process (a run with --n-trials 0 reports it)
    seen = []
    for w in (0, 1):
        out = subprocess.run(_worker(toy_folder, postgres_url, "--max-trials", max_trials, "--worker", w, "--n-trials", 0),
                             env=_env(), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        seen.append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = best_trial(_load(postgres_url, name))
    assert [(s["best_number"], s["best_value"]) for s in seen] == [(best.number, best.value)] * 2


def test_long_study_names_are_hashed_and_stored_studies_migrate_to_them(tmp_path):
    """A study name over STUDY_NAME_MAX keeps dataset, model and protocol and hashes the rest (paths
    under results/ stay short); scripts/migrate_study_names.py moves a stored long-named study, its
    side files and its tuned configuration's study_name to the short name, trials intact, once."""
    import importlib.util
    import json

    import optuna

    from rec_utils.tuning.optuna_search import STUDY_NAME_MAX, short_study_name, study_name

    short = study_name("beauty", "GRU4Rec", "temporal", None, "s1000t3000_fixed3d8626")
    assert short == "beauty__GRU4Rec__temporal__s1000t3000_fixed3d8626"  # short names are unchanged
    long = study_name("ml-latest-small", "LLM2SASRec", "temporal", "sentence-transformers/all-MiniLM-L6-v2",
                      "fixedd088a9_init-random__n12s5x668678")
    assert len(long) <= STUDY_NAME_MAX and long.startswith("ml-latest-small__LLM2SASRec__temporal__h")
    assert long != study_name("ml-latest-small", "LLM2SASRec", "temporal", "all-MiniLM-L6-v2",
                              "fixedd088a9_init-llm__n12s5x668678")
    old = "ml-latest-small__LLM2SASRec__temporal__all-MiniLM-L6-v2__fixedd088a9_init-random__n12s5x668678"
    assert short_study_name(old) == long

    tuning = tmp_path / "results" / "ml-latest-small" / "tuning"
    tuning.mkdir(parents=True)
    (tmp_path / "results" / "ml-latest-small" / "configs").mkdir()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=old, storage=f"sqlite:///{tuning / (old + '.db')}", direction="maximize")
    study.set_user_attr("model", "LLM2SASRec")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    (tuning / f"{old}__trials.csv").write_text("number\n0\n")
    cfg = tmp_path / "results" / "ml-latest-small" / "configs" / "LLM2SASRec__init-random__n12s5x668678.json"
    cfg.write_text(json.dumps({"study_name": old, "git_commit": "abc1234"}))
    spec = importlib.util.spec_from_file_location("msn", PROJECT_ROOT / "scripts" / "migrate_study_names.py")
    msn = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(msn)
    assert msn.main(["--results", str(tmp_path / "results")]) == 0
    assert not (tuning / f"{old}.db").exists() and (tuning / f"{long}__trials.csv").is_file()
    moved = optuna.load_study(study_name=long, storage=f"sqlite:///{tuning / (long + '.db')}")
    assert [t.params for t in moved.trials] == [t.params for t in study.trials] and moved.user_attrs == {"model": "LLM2SASRec"}
    assert json.loads(cfg.read_text()) == {"study_name": long, "git_commit": "abc1234"}
    assert msn.migrate_db(tuning / f"{long}.db") is None  # nothing left to do
