"""One configuration on the temporal validation folds (paper §7's objective: mean NDCG@20 over
the 3 forward-chaining folds of :func:`rec_utils.split.temporal_folds`).

The grid (:func:`rec_utils.tuning.grid_search`) and the Optuna tuner share this module: a
*cell* is one (configuration, fold) evaluation, done by :func:`evaluate_fold` through
:func:`rec_utils.evaluation.fit_predict_evaluate`; :func:`evaluate_on_folds` runs the cells of
one configuration and reports after each fold; a :class:`CellStore` keeps finished cells in a
CSV so an interrupted search resumes. The test split is never touched here.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .. import evaluation
from ..split import Split
from ..utils import atomic_write_text, config_id

#: The leading columns of a cell (one CSV row); the 12 metrics, ``n_sessions`` and ``n_empty``
#: follow in :func:`rec_utils.metrics.evaluate`'s order.
CELL_COLUMNS = ("config_id", "config", "fold", "fold_fingerprint", "wall_s")


def config_key(config: dict) -> str:
    """The id a cell is stored under: the legacy 10-hex-digit :func:`rec_utils.utils.config_id`
    of the config (kept so committed grid CSVs keep resuming)."""
    return config_id(config)


def config_json(config: dict) -> str:
    """The config as stored in the ``config`` column (sorted keys; ``best_config`` reads it)."""
    return json.dumps(config, sort_keys=True, default=str)


class CellStore:
    """Finished (config, fold) cells, keyed by ``(config_key(config), fold.fingerprint)``.

    With ``path`` every added cell rewrites the CSV atomically (all cells ever stored there,
    from this search or an earlier one, are kept); with ``resume`` the cells already in the
    file are reused. ``path=None`` keeps cells in memory only. Columns: ``config_id, config,
    fold, fold_fingerprint, wall_s, <12 metrics>, n_sessions, n_empty``.
    """

    def __init__(self, path: str | Path | None = None, resume: bool = True):
        self.path = Path(path) if path else None
        self._cells: dict[tuple[str, str], dict] = {}
        if self.path and resume and self.path.is_file():
            old = pd.read_csv(self.path, dtype={"config_id": str, "fold_fingerprint": str})
            for r in old.to_dict("records"):
                self._cells[(r["config_id"], r["fold_fingerprint"])] = r

    def get(self, cid: str, fingerprint: str) -> dict | None:
        return self._cells.get((cid, fingerprint))

    def add(self, cell: dict) -> None:
        self._cells[(cell["config_id"], cell["fold_fingerprint"])] = cell
        if self.path:
            atomic_write_text(self.path, pd.DataFrame(list(self._cells.values())).to_csv(index=False))

    def __len__(self) -> int:
        return len(self._cells)


def evaluate_fold(
    make_model: Callable[[dict], object],
    config: dict,
    fold: Split,
    *,
    fold_number: int = 1,
    items: pd.DataFrame | None = None,
    k: int = 20,
) -> dict:
    """Build ``make_model(config)`` (a copy of the config), fit it on ``fold.train``, predict
    and evaluate ``fold.test``: one cell, a dict with :data:`CELL_COLUMNS` (``wall_s``: seconds
    from building the model to the metrics) then the 12 metrics, ``n_sessions``, ``n_empty``."""
    t0 = time.perf_counter()
    model = make_model(dict(config))
    out = evaluation.fit_predict_evaluate(model, fold, items=items, k=k)
    return {"config_id": config_key(config), "config": config_json(config), "fold": fold_number,
            "fold_fingerprint": fold.fingerprint, "wall_s": round(time.perf_counter() - t0, 3),
            **out["metrics"]}


def evaluate_on_folds(
    make_model: Callable[[dict], object],
    config: dict,
    folds: Sequence[Split],
    *,
    items: pd.DataFrame | None = None,
    k: int = 20,
    metric: str = "ndcg@20",
    on_fold: Callable[[int, float], None] | None = None,
    store: CellStore | None = None,
) -> dict:
    """Evaluate one configuration on every fold, in order (paper §7's objective).

    Args:
        make_model: builds an unfitted model from a config dict.
        folds: the validation folds (``temporal_folds(split, 3)``).
        metric: the objective, one of the 12 metric names (``"ndcg@20"``).
        on_fold: called as ``on_fold(fold_index, mean_so_far)`` after each fold (index from 0;
            mean of ``metric`` over folds 0..index), cached folds included. An Optuna
            objective reports there and raises ``optuna.TrialPruned``; exceptions propagate
            and the remaining folds are not run (finished cells stay in ``store``).
        store: finished cells reused and added (resume); None evaluates every fold.

    Returns:
        ``{"config", "config_id", "metric", "values": [per-fold metric], "mean", "sd" (ddof 1;
        0.0 with one fold), "cells": [one dict per fold, CSV row format], "wall_s" (sum over
        folds, cached ones as stored), "n_cached"}``.

    Raises:
        ValueError: no folds. KeyError: ``metric`` is not a metric name.
    """
    if not folds:
        raise ValueError("evaluate_on_folds needs at least one fold")
    cid = config_key(config)
    cells, values, n_cached = [], [], 0
    for i, fold in enumerate(folds):
        cell = store.get(cid, fold.fingerprint) if store is not None else None
        if cell is None:
            cell = evaluate_fold(make_model, config, fold, fold_number=i + 1, items=items, k=k)
            if store is not None:
                store.add(cell)
        else:
            n_cached += 1
        if metric not in cell:
            raise KeyError(f"unknown metric {metric!r}; known: {[c for c in cell if '@' in c]}")
        cells.append(cell)
        values.append(float(cell[metric]))
        if on_fold is not None:
            on_fold(i, float(np.mean(values)))
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {"config": config, "config_id": cid, "metric": metric, "values": values,
            "mean": float(np.mean(values)), "sd": sd, "cells": cells,
            "wall_s": round(float(sum(c["wall_s"] for c in cells)), 3), "n_cached": n_cached}


__all__ = ["CELL_COLUMNS", "CellStore", "config_json", "config_key", "evaluate_fold", "evaluate_on_folds"]
