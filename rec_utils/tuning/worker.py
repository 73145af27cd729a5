"""One TPE search worker: what notebook 10 and ``python -m rec_utils.tuning.worker`` share.

:func:`prepare_search` builds the objective's parts from a dataset (the 3 temporal folds of
§3, optionally sampled; the fixed configuration; a ``make_model``); :func:`run_worker` runs
:func:`~rec_utils.tuning.optuna_search.tune` with them. Several workers on one study (one
machine or several), each with its own ``--worker`` index::

    URL=postgresql+psycopg://tuner@db-host:5432/optuna
    for w in 0 1 2 3; do
        python -m rec_utils.tuning.worker --model V-SKNN --storage "$URL" --worker $w --max-trials 200 &
    done; wait

Every worker must be given the same dataset, model, fold sample and fixed configuration (the
study stores them and a worker with others is refused), and may use its own time budget.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..data import load_dataset
from ..models import build_model, model_family, preset_config
from ..split import Split, make_split, temporal_folds
from ..text import EmbeddingSpec
from ..utils import canonical_json, short_hash
from .optuna_search import best_trial, n_finished, study_name, tune


@dataclass
class Search:
    """The parts of one search: ``folds`` (the validation folds used), ``split`` (the full
    split, whose test set the search never touches), ``base_config`` (fixed fields of every
    trial: the preset's config + ``fixed``), ``make_model`` (config → unfitted model),
    ``items`` (item table for text models), ``name`` (study name), ``embedder``."""

    folds: list[Split]
    split: Split
    base_config: dict
    make_model: object
    items: pd.DataFrame | None
    name: str
    embedder: str | None
    dataset: str


def prepare_search(
    dataset: str,
    model: str,
    *,
    protocol: str = "temporal",
    preset: str | None = "beauty",
    fixed: dict | None = None,
    fold_sample_sessions: int = 0,
    fold_train_sessions: int = 0,
    sample_seed: int = 0,
    tie_order: str = "shuffle",
    tie_seed: int = 0,
    embedder: str | None = None,
    device: str = "cpu",
    num_threads: int | None = 1,
    tag: str | None = None,
) -> Search:
    """The folds, fixed config and model factory of a search of ``model`` on ``dataset``.

    Args:
        preset: the preset whose config every trial starts from (the searched fields are
            replaced; the others, e.g. V-SKNN's harmonic decay, stay); None: code defaults.
        fixed: fields on top of the preset, never searched (e.g. ``{"epochs": 3}``).
        fold_sample_sessions: validation cases per fold (0: all), seeded by ``sample_seed``.
        fold_train_sessions: train sessions per fold (0: all; quick neural searches).
        embedder: the text model of models that embed text (``embedding_model``); part of the
            study name. Ignored (None) for the others.
        tag: added to the study name (a search with a fold sample or fixed fields gets
            ``s<n>[t<m>]`` and a hash of ``fixed`` automatically).

    Raises:
        ValueError: a protocol other than ``temporal`` (the folds are §3's forward-chaining
            folds of the temporal train split).
    """
    if protocol != "temporal":
        raise ValueError(f"the TPE search runs on the temporal folds (§3); protocol {protocol!r} is not supported")
    ds = load_dataset(dataset)
    split = make_split(ds, protocol, tie_order=tie_order, tie_seed=tie_seed)
    folds = [f.sample_train(fold_train_sessions, seed=sample_seed).sample_test(fold_sample_sessions, seed=sample_seed)
             for f in temporal_folds(split, 3)]
    text = model_family(model) == "embedding" or model.startswith("LLM2")
    base = {**preset_config(model, preset, dataset=ds.name, protocol=protocol), **dict(fixed or {})}
    if text and embedder:
        base["embedding_model"] = embedder
    embedder = (embedder or base.get("embedding_model") or EmbeddingSpec().model) if text else None
    neural = model_family(model) == "neural"
    runtime = {"device": device, "num_threads": num_threads, "progress": False, "checkpoint_dir": None} if neural else {}
    if model_family(model) == "embedding":
        runtime = {"device": device}

    def make_model(config: dict):
        return build_model(model, **config, **runtime)

    auto = []
    if fold_sample_sessions or fold_train_sessions:
        auto.append(f"s{fold_sample_sessions}" + (f"t{fold_train_sessions}" if fold_train_sessions else ""))
    if fixed:
        auto.append("fixed" + short_hash(canonical_json(fixed))[:6])
    if preset not in ("beauty", None):
        auto.append(f"preset-{preset}")
    if tag:
        auto.append(str(tag))
    name = study_name(ds.name, model, protocol, embedder, "_".join(auto) or None)
    return Search(folds=folds, split=split, base_config=base, make_model=make_model,
                  items=ds.items if text else None, name=name, embedder=embedder, dataset=ds.name)


def run_worker(search: Search, model: str, **tune_kwargs):
    """:func:`~rec_utils.tuning.optuna_search.tune` on a prepared search; returns the study."""
    return tune(search.make_model, search.folds, model=model, dataset=search.dataset, embedder=search.embedder,
                name=search.name, base_config=search.base_config, items=search.items, **tune_kwargs)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m rec_utils.tuning.worker",
                                description="One Optuna TPE worker on a study (paper §7); resumable.")
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", default="beauty")
    p.add_argument("--storage", default=None, help="SQLAlchemy URL (default: SQLite under results/<dataset>/tuning/)")
    p.add_argument("--results-root", default=None, help="the dataset's results folder (default results/<dataset>)")
    p.add_argument("--worker", type=int, default=0, help="this worker's index (its own sampler seed)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-startup", type=int, default=40)
    p.add_argument("--max-trials", type=int, default=100, help="finished trials in the study, all workers")
    p.add_argument("--n-trials", type=int, default=None, help="trials this worker runs at most")
    p.add_argument("--patience", type=int, default=100)
    p.add_argument("--time-budget-s", type=float, default=None)
    p.add_argument("--fold-sample-sessions", type=int, default=0)
    p.add_argument("--fold-train-sessions", type=int, default=0)
    p.add_argument("--fixed", default="{}", help="JSON of fixed config fields, e.g. '{\"epochs\": 3}'")
    p.add_argument("--preset", default="beauty")
    p.add_argument("--embedder", default=None)
    p.add_argument("--num-threads", type=int, default=1)
    p.add_argument("--grace-period-s", type=int, default=None)
    p.add_argument("--name", default=None, help="study name (default: derived)")
    a = p.parse_args(argv)
    try:
        fixed = json.loads(a.fixed)
    except json.JSONDecodeError as e:
        p.error(f"--fixed is not JSON: {e}")
    import torch  # heavy: loaded only where tensors are used

    torch.set_num_threads(a.num_threads)
    search = prepare_search(a.dataset, a.model, preset=a.preset, fixed=fixed,
                            fold_sample_sessions=a.fold_sample_sessions, fold_train_sessions=a.fold_train_sessions,
                            embedder=a.embedder, num_threads=a.num_threads)
    if a.name:
        search.name = a.name
    extra = {} if a.grace_period_s is None else {"grace_period_s": a.grace_period_s}
    study = run_worker(search, a.model, storage=a.storage, results_root=a.results_root, worker=a.worker,
                       seed=a.seed, n_startup_trials=a.n_startup, max_trials=a.max_trials, n_trials=a.n_trials,
                       patience=a.patience, time_budget_s=a.time_budget_s, progress=False, **extra)
    try:
        best = best_trial(study)
        best_number, best_value = best.number, best.value
    except ValueError:  # no complete trial yet
        best_number = best_value = None
    print(json.dumps({"study": study.study_name, "trials": len(study.trials), "finished": n_finished(study),
                      "best_number": best_number, "best_value": best_value,
                      "stop": study.user_attrs.get(f"last_stop_worker{a.worker}")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
