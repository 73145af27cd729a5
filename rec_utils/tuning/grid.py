"""Grid search on the temporal validation folds (paper §7's objective: mean NDCG@20 over the 3
forward-chaining folds), resumable through a CSV of finished (config, fold) cells.

::

    folds = temporal_folds(split, 3)
    configs = expand_grid({"aggregation": ["last", "mean"], "similarity": ["cosine", "dot"]})
    table = grid_search(lambda cfg: LLMSeqSim(embeddings=emb, **cfg), configs, folds,
                        out_csv=OUT / "grid_llmseqsim.csv")
    best = best_config(table)     # the first row: ranked by the tie rule below

**Ranking and ties** (one rule for every search, :func:`rank_order`): configurations are ranked
by their mean validation metric rounded to :data:`TIE_DECIMALS` = 6 decimals (``numpy.round``),
best first; configurations equal after rounding keep the order they were listed in (their
position in ``configs``), so the first listed wins. Differences below 1e-6 in a mean NDCG over a
few thousand sessions are float noise (BLAS and thread counts differ across machines): the
LLMSeqSim winner once flipped between cosine and euclidean on such a tie. Cells that finished
in another order, or were resumed from the CSV, do not change the ranking.

The test split is never touched here; evaluate the winner on it afterwards.
"""
from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..split import Split
from .folds import CellStore, config_json, config_key, evaluate_on_folds

#: Decimals the mean validation metric is rounded to before ranking (see the module docstring).
TIE_DECIMALS = 6


def expand_grid(space: dict[str, Sequence], where: Callable[[dict], bool] | None = None) -> list[dict]:
    """Cartesian product of ``space`` (a value may itself be a dict of several fields that vary
    together, e.g. ``{"agg": [{"aggregation": "last"}, {"aggregation": "mean", "decay": "log"}]}``);
    ``where`` drops combinations that are not valid. Duplicates are removed, order kept (the
    last key varies fastest, as in ``itertools.product``)."""
    keys = list(space)
    out, seen = [], set()
    for values in itertools.product(*(space[k] for k in keys)):
        cfg = {}
        for k, v in zip(keys, values):
            if isinstance(v, dict):
                cfg.update(v)
            else:
                cfg[k] = v
        if where is not None and not where(cfg):
            continue
        key = config_json(cfg)
        if key not in seen:
            seen.add(key)
            out.append(cfg)
    return out


def rank_order(means: Sequence[float], decimals: int = TIE_DECIMALS) -> np.ndarray:
    """Positions of ``means`` best first: by the mean rounded to ``decimals`` (descending), ties
    by position (ascending: the first listed wins); NaN means rank last. (n,) int64."""
    r = np.round(np.asarray(means, dtype=np.float64), decimals)
    r = np.where(np.isnan(r), -np.inf, r)
    return np.lexsort((np.arange(len(r)), -r))


def grid_search(
    make_model: Callable[[dict], object],
    configs: list[dict],
    folds: Sequence[Split],
    *,
    metric: str = "ndcg@20",
    k: int = 20,
    items: pd.DataFrame | None = None,
    out_csv: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
) -> pd.DataFrame:
    """Evaluate every config on every fold (:func:`~rec_utils.tuning.evaluate_on_folds`); the
    table of :func:`results_table`, ranked by the tie rule of this module (first listed wins).

    With ``out_csv`` every finished (config, fold) cell is written to it atomically and, when
    ``resume``, reused (keyed by the config's 10-digit ``config_id`` and the fold's
    fingerprint; see :class:`~rec_utils.tuning.CellStore` for the columns). A config listed
    twice is evaluated and ranked once, at its first position. The table is written nowhere:
    only the cells are.

    Raises:
        ValueError: no configs or no folds.
    """
    if not configs or not folds:
        raise ValueError(f"grid_search needs configs and folds, got {len(configs)} and {len(folds)}")
    store = CellStore(out_csv, resume=resume)
    unique = {}
    for c in configs:
        unique.setdefault(config_key(c), c)
    unique = list(unique.values())
    bar = tqdm(total=len(unique) * len(folds), desc="grid", disable=not progress)
    found = [evaluate_on_folds(make_model, cfg, folds, items=items, k=k, metric=metric, store=store,
                               on_fold=lambda i, v: bar.update()) for cfg in unique]
    bar.close()
    return results_table(found, metric)


def results_table(found: Sequence[dict], metric: str = "ndcg@20") -> pd.DataFrame:
    """One row per :func:`~rec_utils.tuning.evaluate_on_folds` result, ranked by
    :func:`rank_order` (position = index in ``found``): ``config_id``, the config's fields
    (``None`` written ``"None"``), ``config`` (JSON), every ``@`` metric averaged over folds,
    ``mean_<metric>``, ``sd_<metric>``, ``fold<i>_<metric>`` (i from 1) and ``wall_s`` (sum)."""
    cfgs = pd.DataFrame([{"config_id": r["config_id"], **{k: _cell(v) for k, v in r["config"].items()}}
                         for r in found])
    cfgs["config"] = [config_json(r["config"]) for r in found]
    rows = []
    for r in found:
        cols = [c for c in r["cells"][0] if "@" in c]
        row = {c: float(np.mean([cell[c] for cell in r["cells"]])) for c in cols}
        row[f"mean_{metric}"] = r["mean"]
        row[f"sd_{metric}"] = r["sd"]
        row.update({f"fold{i + 1}_{metric}": v for i, v in enumerate(r["values"])})
        row["wall_s"] = r["wall_s"]
        rows.append(row)
    table = pd.concat([cfgs, pd.DataFrame(rows, index=cfgs.index)], axis=1)
    return table.iloc[rank_order(table[f"mean_{metric}"])].reset_index(drop=True)


def _cell(v):
    return "None" if v is None else v


def best_config(table: pd.DataFrame) -> dict:
    """The winning configuration (first row of a ranked table) as a dict."""
    return json.loads(table.iloc[0]["config"])


__all__ = ["TIE_DECIMALS", "best_config", "expand_grid", "grid_search", "rank_order", "results_table"]
