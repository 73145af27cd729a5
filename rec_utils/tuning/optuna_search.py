"""Optuna TPE search on the temporal validation folds (paper spec §7, folds §3).

One **study** per (dataset, model, protocol, embedder) (:func:`study_name`), stored in a
SQLite file ``results/<dataset>/tuning/<study>.db`` by default (:func:`default_storage`) or in
any SQLAlchemy URL (``postgresql+psycopg://user@host:port/db``), so that rerunning continues
the same study and several processes or machines can work on one study::

    folds = [f.sample_test(500) for f in temporal_folds(split, 3)]
    study = tune(lambda cfg: build_model("V-SKNN", **cfg), folds, model="V-SKNN", dataset="beauty",
                 base_config=preset_config("V-SKNN", "beauty"), max_trials=60, seed=0)
    path = write_best_config(study)                # results/beauty/configs/V-SKNN.json

What a trial is (§7):

* **sampler**: TPE (``optuna.samplers.TPESampler``), ``n_startup_trials`` random trials first
  (40 as in the extended paper; RecSys'23: 20), seeded (:func:`sampler_seed`);
* **objective**: the mean validation NDCG@20 over the folds,
  :func:`rec_utils.tuning.evaluate_on_folds` of ``base_config`` + the trial's sampled
  parameters (:data:`rec_utils.tuning.spaces.TPE_SPACES` declares the ranges);
* **pruning**: after each fold the trial reports that fold's NDCG@20 (``trial.report(value,
  fold)``); :class:`FoldPercentilePruner` prunes it when the value is in the bottom 20 % of the
  values the trials that reached that fold had there;
* **stopping**: after ``patience`` finished trials without a new best (§7: 100), when the study
  holds ``max_trials`` finished trials, or when this process has spent ``time_budget_s``
  (checked between trials: a running trial finishes; §7's hard stop was 72 h);
* **failures**: an exception in a trial (bad config, NaN loss, out of memory, NaN objective)
  marks that trial FAIL with ``user_attrs["fail_reason"]`` (type and message) and the study goes
  on. A trial whose process was killed keeps no heartbeat: the next worker marks it FAIL
  (``fail_reason`` is then missing; :func:`trials_table` says "no heartbeat") and re-enqueues
  its parameters once (``optuna.storages.RetryHeartbeatStaleTrialCallback``), so no configuration is lost.

Deviations: the paper's search code was never published. Pruning follows the §7 text (bottom
20 % of *that fold's* NDCG@20); Optuna's ``PercentilePruner(80)`` compares the trial's best
value over all folds so far instead, so the pruner here is a small subclass that compares the
value at the fold itself. The sampler seed of a process also depends on the worker index and on
how many trials the study already holds, so that a resumed run or a second worker does not
replay the first worker's start-up trials.
"""
from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.pruners import BasePruner
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from ..paths import config_path, results_dir
from ..split import Split
from ..utils import atomic_write_text, canonical_json, git_commit, short_hash
from .folds import CellStore, config_key, evaluate_on_folds
from .spaces import OrNone, TPESpace, tpe_space

#: States of finished trials (the stop rules and the trial count count these).
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
#: Seconds between heartbeats of a running trial; a trial without one for :data:`GRACE_S` is stale.
HEARTBEAT_S = 5
GRACE_S = 20


# --------------------------------------------------------------------------- naming, storage
#: The longest study name kept readable: a longer one (an embedder and a long tag) keeps
#: ``<dataset>__<model>__<protocol>`` and hashes the rest, so that its files' paths stay under
#: :data:`rec_utils.inventory.MAX_PATH` (what the hashed part stood for is in the tuned configuration's
#: record and the study's own ``user_attrs``: fixed fields, folds, base configuration).
STUDY_NAME_MAX = 64


def study_name(dataset: str, model: str, protocol: str = "temporal", embedder: str | None = None,
               tag: str | None = None) -> str:
    """``<dataset>__<model>__<protocol>[__<embedder>][__<tag>]``: the study's name, and the stem
    of its SQLite file. ``embedder``: the text model's last path part (``all-MiniLM-L6-v2``),
    for the models that embed text; ``tag`` tells apart searches of the same model with other
    fixed settings (e.g. a fold sample). A name longer than :data:`STUDY_NAME_MAX` characters
    becomes ``<dataset>__<model>__<protocol>__h<10 hex digits of the rest>`` (:func:`short_study_name`)."""
    parts = [Path(str(dataset)).name, model, protocol]
    if embedder:
        parts.append(Path(str(embedder)).name)
    if tag:
        parts.append(str(tag))
    return short_study_name("__".join(p.replace("/", "-") for p in parts))


def short_study_name(name: str) -> str:
    """``name`` itself when it has at most :data:`STUDY_NAME_MAX` characters, else its first three
    ``__`` parts (dataset, model, protocol) and ``h`` + a 10-digit hash of the rest."""
    if len(name) <= STUDY_NAME_MAX:
        return name
    head = name.split("__")[:3]
    rest = name[len("__".join(head)) + 2:]
    return "__".join(head + ["h" + short_hash(rest)[:10]])


def default_storage(dataset: str, name: str, root: str | Path | None = None) -> str:
    """``sqlite:///<results/<dataset>>/tuning/<name>.db`` (the folder is created); ``root``: the
    results folder of the dataset instead of ``results/<dataset>``."""
    folder = results_dir(dataset, root) / "tuning"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / f'{name}.db').resolve()}"


def make_storage(url: str, heartbeat: bool = True, grace_period_s: int = GRACE_S) -> RDBStorage:
    """An ``RDBStorage`` on ``url`` (any SQLAlchemy URL: ``sqlite:///path.db``,
    ``postgresql+psycopg://user@127.0.0.1:5432/db``) with heartbeats (stale trials of killed
    workers become FAIL and are retried once; ``grace_period_s``: seconds without a heartbeat
    after which a running trial counts as stale)."""
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"storage must be a SQLAlchemy URL such as sqlite:///file.db or "
                         f"postgresql+psycopg://user@host:port/db, got {url!r}")
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    with warnings.catch_warnings():  # heartbeats are marked experimental in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        kw = {}
        if heartbeat:
            kw = {"heartbeat_interval": max(1, min(HEARTBEAT_S, grace_period_s // 2)),
                  "grace_period": int(grace_period_s),
                  "heartbeat_stale_trial_callback": RetryHeartbeatStaleTrialCallback(max_retry=1)}
        # workers starting together on a new database race to create Optuna's tables: the
        # loser's CREATE fails, and once the winner's tables exist a retry just opens them
        for attempt in range(5):
            try:
                return RDBStorage(url, engine_kwargs=engine, **kw)
            except Exception as exc:
                if attempt == 4 or "already exists" not in str(exc):
                    raise
                time.sleep(0.5 * (attempt + 1))


def public_url(url: str) -> str:
    """``url`` without a password (what is written into config files)."""
    from sqlalchemy.engine import make_url  # only for a database URL (PostgreSQL storage)

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not parseable: keep only the scheme
        return url.split("://", 1)[0] + "://..."


# ----------------------------------------------------------------------------- sampler, pruner
def sampler_seed(seed: int, worker: int = 0, n_existing: int = 0) -> int:
    """The TPE seed of one process: a function of the study's ``seed``, the ``worker`` index and
    the number of trials the study already holds (so a resume or another worker samples anew)."""
    return int(np.random.SeedSequence([int(seed), int(worker), int(n_existing)]).generate_state(1)[0])


def make_sampler(seed: int, n_startup_trials: int = 40, worker: int = 0, n_existing: int = 0) -> optuna.samplers.TPESampler:
    """TPE with ``n_startup_trials`` random start-up trials (§7: 40), seeded by :func:`sampler_seed`.
    The start-up count is over the study's finished trials, every worker's together."""
    if n_startup_trials < 0:
        raise ValueError(f"n_startup_trials must be >= 0, got {n_startup_trials}")
    return optuna.samplers.TPESampler(n_startup_trials=int(n_startup_trials),
                                      seed=sampler_seed(seed, worker, n_existing))


class FoldPercentilePruner(BasePruner):
    """Prune a trial whose value at a fold (step) is in the bottom ``bottom`` fraction of the
    values reported at that fold by the other trials that reached it (§7: bottom 20 %).

    Args:
        bottom: fraction pruned, 0 < bottom < 1 (0.2: below the 20th percentile of the others,
            ``numpy.nanpercentile``, linear interpolation; equal to it is kept).
        n_min_trials: other trials with a value at that fold needed before anything is pruned.

    Maximisation only (NDCG); a study that minimises raises ``ValueError`` at the first check.
    """

    def __init__(self, bottom: float = 0.2, n_min_trials: int = 5):
        if not 0.0 < bottom < 1.0:
            raise ValueError(f"bottom must be in (0, 1), got {bottom}")
        self.bottom = float(bottom)
        self.n_min_trials = int(n_min_trials)

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        if study.direction != optuna.study.StudyDirection.MAXIMIZE:
            raise ValueError("FoldPercentilePruner is for maximised objectives")
        step = trial.last_step
        if step is None:
            return False
        value = trial.intermediate_values[step]
        if not math.isfinite(value):
            return True
        others = [t.intermediate_values[step] for t in study.get_trials(deepcopy=False, states=FINISHED)
                  if t.number != trial.number and step in t.intermediate_values]
        others = [v for v in others if math.isfinite(v)]
        if len(others) < self.n_min_trials:
            return False
        return value < float(np.percentile(others, 100.0 * self.bottom))


# ------------------------------------------------------------------------------- sampling
def suggest(trial: optuna.Trial, space: TPESpace) -> dict:
    """The trial's sampled parameters of ``space`` (Optuna names; :class:`OrNone` samples
    ``<name>_none`` first), as a dict of parameter name → value."""
    out = {}
    for name, dist in space.params.items():
        if isinstance(dist, OrNone):
            out[f"{name}_none"] = none = trial.suggest_categorical(f"{name}_none", [False, True])
            if none:
                continue
            dist = dist.dist
        out[name] = _suggest(trial, name, dist)
    return out


def _suggest(trial, name, dist):
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, list(dist.choices))
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    raise TypeError(f"parameter {name!r}: unsupported distribution {type(dist).__name__}")


def nan_loss_guard(row: dict, module=None) -> None:
    """An ``on_epoch`` callback for neural models: raises ``FloatingPointError`` when an epoch's
    training loss is not finite, so the trial fails with that reason instead of training on."""
    loss = row.get("loss")
    if loss is not None and not math.isfinite(float(loss)):
        raise FloatingPointError(f"non-finite training loss {loss} at epoch {row.get('epoch')}")


# ------------------------------------------------------------------------------- the search
class _Stop:
    """``study.optimize`` callback: stop after ``patience`` finished trials without a new best,
    at ``max_trials`` finished trials in the study, or after ``time_budget_s`` of this process."""

    def __init__(self, patience, max_trials, time_budget_s, t0):
        self.patience, self.max_trials, self.time_budget_s, self.t0 = patience, max_trials, time_budget_s, t0
        self.reason = None

    def __call__(self, study, trial):
        if self.check(study) is not None:
            study.stop()

    def check(self, study) -> str | None:
        """The reason to stop now, or None."""
        trials = study.get_trials(deepcopy=False, states=FINISHED)
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        if self.max_trials is not None and len(trials) >= self.max_trials:
            self.reason = f"{len(trials)} finished trials (max_trials={self.max_trials})"
        elif self.patience is not None and done:
            best = max(done, key=lambda t: (t.value, -t.number)).number
            since = sum(1 for t in trials if t.number > best)
            if since >= self.patience:
                self.reason = f"{since} trials without improvement (patience={self.patience})"
        if self.reason is None and self.time_budget_s is not None and time.perf_counter() - self.t0 >= self.time_budget_s:
            self.reason = f"time budget {self.time_budget_s} s spent"
        return self.reason


def tune(
    make_model: Callable[[dict], object],
    folds: Sequence[Split],
    *,
    model: str,
    dataset: str,
    protocol: str = "temporal",
    embedder: str | None = None,
    name: str | None = None,
    storage: str | None = None,
    space: TPESpace | None = None,
    base_config: dict | None = None,
    max_trials: int | None = 100,
    n_trials: int | None = None,
    patience: int | None = 100,
    time_budget_s: float | None = None,
    seed: int = 0,
    n_startup_trials: int = 40,
    worker: int = 0,
    pruner: BasePruner | None = None,
    metric: str = "ndcg@20",
    items: pd.DataFrame | None = None,
    k: int = 20,
    results_root: str | Path | None = None,
    grace_period_s: int = GRACE_S,
    progress: bool = True,
) -> optuna.Study:
    """Run (or resume) the TPE search of ``model`` on ``folds``; returns the study.

    Args:
        make_model: builds an unfitted model from a full config (``base_config`` + the trial's
            fields); neural models get :func:`nan_loss_guard` as ``on_epoch`` if the config
            has none (pass ``on_epoch`` through ``make_model`` to chain your own).
        folds: the validation folds (``temporal_folds(split, 3)``, possibly sampled); their
            fingerprints are stored in the study (a rerun on other folds raises ``ValueError``).
        model, dataset, protocol, embedder: the study's identity (:func:`study_name`).
        name: the study name (default :func:`study_name`).
        storage: SQLAlchemy URL; default :func:`default_storage` (SQLite under
            ``results/<dataset>/tuning/``).
        space: the search space (default :func:`~rec_utils.tuning.spaces.tpe_space` of ``model``).
        base_config: the fixed fields every trial starts from (the paper's preset, epochs, ...).
        max_trials: stop when the study holds this many finished trials (all workers); None: no limit.
        n_trials: trials this process runs at most (None: until a stop rule).
        patience: stop after this many finished trials without a new best (§7: 100).
        time_budget_s: this process starts no new trial after this many seconds.
        seed, n_startup_trials, worker: the sampler (:func:`make_sampler`); give every worker
            on one study its own ``worker`` index.
        pruner: default :class:`FoldPercentilePruner` (bottom 20 % after any fold).
        metric: the objective (validation ``ndcg@20``).
        grace_period_s: a running trial without a heartbeat for this long is stale (its worker
            was killed): marked FAIL and its parameters retried once.

    Each trial stores ``user_attrs``: ``config`` (the full config), ``fold_values``,
    ``wall_s``, ``worker``; failed ones ``fail_reason``. The study stores ``user_attrs``:
    ``model``, ``dataset``, ``protocol``, ``embedder``, ``metric``, ``fold_fingerprints``,
    ``base_config``, ``seed``, ``n_startup_trials``.

    Raises:
        ValueError: no folds; an existing study of that name made on other folds, metric or
            base config; a storage that is not a URL.
    """
    if not folds:
        raise ValueError("tune needs at least one validation fold")
    space = space or tpe_space(model)
    base = dict(base_config or {})
    name = name or study_name(dataset, model, protocol, embedder)
    url = storage or default_storage(dataset, name, results_root)
    identity = {"model": model, "dataset": str(dataset), "protocol": protocol, "embedder": embedder,
                "metric": metric, "fold_fingerprints": [f.fingerprint for f in folds],
                "base_config": json.loads(canonical_json(base))}
    study = _open_study(name, url, identity, seed=seed, n_startup_trials=n_startup_trials, worker=worker,
                        pruner=pruner, grace_period_s=grace_period_s)
    objective = _objective(make_model, folds, space, base, worker=worker, metric=metric, items=items, k=k)
    t0 = time.perf_counter()
    stop = _Stop(patience, max_trials, time_budget_s, t0)
    if stop.check(study) is None:  # not already done (a resumed, finished study)
        remaining = None if max_trials is None else max(0, max_trials - n_finished(study))
        limit = remaining if n_trials is None else (n_trials if remaining is None else min(n_trials, remaining))
        study.optimize(objective, n_trials=limit, timeout=time_budget_s, catch=(Exception,),
                       callbacks=[stop], gc_after_trial=False, show_progress_bar=progress)
    study.set_user_attr(f"last_stop_worker{worker}", stop.reason or "n_trials reached")
    return study


def _open_study(name: str, url: str, identity: dict, *, seed: int, n_startup_trials: int, worker: int,
                pruner: BasePruner | None, grace_period_s: int) -> optuna.Study:
    """The study ``name`` in ``url``, created or resumed: ``identity`` (model, dataset, folds,
    metric, base config, ...) is stored on creation and must match on resume (``ValueError``
    naming the field otherwise); loaded with this worker's sampler and the fold pruner."""
    store = make_storage(url, grace_period_s=grace_period_s)
    existing = optuna.create_study(study_name=name, storage=store, direction="maximize", load_if_exists=True)
    stored = existing.user_attrs
    for key, value in identity.items():
        if key in stored and stored[key] != value:
            raise ValueError(f"study {name!r} in {public_url(url)} was made with {key}={stored[key]!r}, "
                             f"this run has {value!r}: use another study name (or storage)")
    for key, value in {**identity, "seed": int(seed), "n_startup_trials": int(n_startup_trials)}.items():
        if key not in stored:
            existing.set_user_attr(key, value)
    n_existing = len(existing.get_trials(deepcopy=False))
    return optuna.load_study(study_name=name, storage=store,
                             sampler=make_sampler(seed, n_startup_trials, worker, n_existing),
                             pruner=pruner or FoldPercentilePruner(0.2))


def _objective(make_model, folds: Sequence[Split], space: TPESpace, base: dict, *, worker: int, metric: str,
               items: pd.DataFrame | None, k: int) -> Callable[[optuna.Trial], float]:
    """The trial objective of :func:`tune`: the trial's config (``base`` + the sampled fields),
    its mean ``metric`` over the folds, reported fold by fold to the pruner; a failure's reason
    is recorded on the trial."""
    cells = CellStore(None)  # in memory: a retried config reuses this process's finished folds

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", int(worker))
        config = {**base, **space.to_config(suggest(trial, space))}
        trial.set_user_attr("config", json.loads(canonical_json(config)))
        cid = config_key(config)
        seen = []

        def on_fold(i, _mean):
            value = float(cells.get(cid, folds[i].fingerprint)[metric])
            seen.append(value)
            trial.report(value, i)
            if trial.should_prune():
                trial.set_user_attr("fold_values", seen)
                raise optuna.TrialPruned(f"fold {i + 1}: {metric} {value:.6f} in the bottom 20 %")

        try:
            out = evaluate_on_folds(_guarded(make_model), config, folds, items=items, k=k, metric=metric,
                                    on_fold=on_fold, store=cells)
        except optuna.TrialPruned:
            raise
        except Exception as exc:  # recorded, and the study goes on (catch= below)
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}"[:2000])
            raise
        trial.set_user_attr("fold_values", out["values"])
        trial.set_user_attr("wall_s", out["wall_s"])
        if not math.isfinite(out["mean"]):
            trial.set_user_attr("fail_reason", f"objective {metric} is {out['mean']}")
            raise FloatingPointError(f"objective {metric} is {out['mean']}")
        return out["mean"]

    return objective


def _guarded(make_model):
    """``make_model`` with :func:`nan_loss_guard` as ``on_epoch`` of models that take one."""
    def make(config):
        m = make_model(config)
        if hasattr(m, "on_epoch") and getattr(m, "on_epoch") is None:
            m.on_epoch = nan_loss_guard
        return m
    return make


def n_finished(study: optuna.Study) -> int:
    """Finished trials (complete, pruned, failed) of the study, every worker's."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


# ------------------------------------------------------------------------------- reading
def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: ``number``, ``state``, ``value``, ``fold1..`` values, ``worker``,
    ``duration_s``, ``fail_reason`` ("no heartbeat (worker stopped)" for a stale trial), the
    sampled parameters (``params_<name>``), ``retry_of``."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        row = {"number": t.number, "state": t.state.name, "value": t.value,
               "worker": t.user_attrs.get("worker"),
               "duration_s": t.duration.total_seconds() if t.duration else None,
               "fail_reason": t.user_attrs.get("fail_reason"),
               "retry_of": t.system_attrs.get("failed_trial")}
        if t.state == TrialState.FAIL and row["fail_reason"] is None:
            row["fail_reason"] = "no heartbeat (worker stopped)"
        for i, s in enumerate(sorted(t.intermediate_values)):
            row[f"fold{i + 1}"] = t.intermediate_values[s]
        row.update({f"params_{k}": v for k, v in t.params.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def best_config(study: optuna.Study) -> dict:
    """The full config of the study's best complete trial (ties: the earlier trial)."""
    return dict(best_trial(study).user_attrs["config"])


def best_trial(study: optuna.Study) -> FrozenTrial:
    """The best complete trial, ties broken by the lower trial number (whichever worker asks).

    Raises:
        ValueError: no complete trial yet."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        raise ValueError(f"study {study.study_name!r} has no complete trial yet")
    return max(done, key=lambda t: (t.value, -t.number))


def write_best_config(study: optuna.Study, root: str | Path | None = None, storage: str | None = None) -> Path:
    """Write the best trial's config to :func:`rec_utils.paths.config_path` atomically; returns the path.

    The file: ``model``, ``dataset``, ``protocol``, ``embedder``, ``study_name``, ``storage``
    (password hidden), ``trial_number``, ``metric``, ``value`` (mean validation metric over the
    folds), ``fold_values``, ``fold_fingerprints``, ``params`` (sampled), ``config`` (full),
    ``n_trials`` (finished), ``git_commit``, ``written_utc``, ``key`` (hash of the rest but time
    and commit).
    """
    t = best_trial(study)
    a = study.user_attrs
    doc = {"model": a["model"], "dataset": a["dataset"], "protocol": a["protocol"], "embedder": a.get("embedder"),
           "study_name": study.study_name, "storage": public_url(storage) if storage else None,
           "trial_number": t.number, "metric": a["metric"], "value": t.value,
           "fold_values": t.user_attrs.get("fold_values"), "fold_fingerprints": a["fold_fingerprints"],
           "params": t.params, "config": t.user_attrs["config"], "n_trials": n_finished(study)}
    doc["key"] = short_hash(canonical_json(doc))
    doc.update({"git_commit": git_commit(), "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    path = config_path(a["dataset"], a["model"], root)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n")
    return path


__all__ = ["FINISHED", "FoldPercentilePruner", "best_config", "best_trial", "config_path", "default_storage",
           "make_sampler", "make_storage", "n_finished", "nan_loss_guard", "public_url", "sampler_seed",
           "study_name", "suggest", "trials_table", "tune", "write_best_config"]
