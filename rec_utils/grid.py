"""Grid search on the temporal validation folds (paper §7's objective: mean NDCG@20 over the 3
forward-chaining folds), resumable through a CSV of finished (config, fold) cells.

::

    folds = temporal_folds(split, 3)
    configs = expand_grid({"aggregation": ["last", "mean"], "similarity": ["cosine", "dot"]})
    table = grid_search(lambda cfg: LLMSeqSim(embeddings=emb, **cfg), configs, folds,
                        out_csv=OUT / "grid_llmseqsim.csv")
    best = table.iloc[0]          # sorted by the mean validation metric, best first

The test split is never touched here; evaluate the winner on it afterwards.
"""
from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from .metrics import evaluate
from .split import Split
from .utils import atomic_write_text, config_id


def expand_grid(space: dict[str, Sequence], where: Callable[[dict], bool] | None = None) -> list[dict]:
    """Cartesian product of ``space`` (a value may itself be a dict of several fields that vary
    together, e.g. ``{"agg": [{"aggregation": "last"}, {"aggregation": "mean", "decay": "log"}]}``);
    ``where`` drops combinations that are not valid. Duplicates are removed, order kept."""
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
        key = json.dumps(cfg, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            out.append(cfg)
    return out


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
    """Fit/predict/evaluate every config on every fold; one row per config with the per-fold
    metric, their mean (``mean_<metric>``) and sd, all 12 metrics averaged over folds, and the
    wall time; sorted best first. With ``out_csv`` every finished (config, fold) cell is
    appended atomically and reused when ``resume`` (keyed by config id and fold fingerprint)."""
    out_csv = Path(out_csv) if out_csv else None
    done: dict[tuple[str, str], dict] = {}
    if out_csv and resume and out_csv.is_file():
        old = pd.read_csv(out_csv, dtype={"config_id": str, "fold_fingerprint": str})
        for r in old.to_dict("records"):
            done[(r["config_id"], r["fold_fingerprint"])] = r
    cells = []
    fps = [f.fingerprint for f in folds]
    bar = tqdm(total=len(configs) * len(folds), desc="grid", disable=not progress)
    for cfg in configs:
        cid = config_id(cfg)
        for fi, (fold, fp) in enumerate(zip(folds, fps)):
            if (cid, fp) in done:
                cells.append(done[(cid, fp)])
                bar.update()
                continue
            t0 = time.perf_counter()
            model = make_model(dict(cfg))
            model.fit(fold.train, items=items)
            recs = model.predict(fold.test, k=k)
            m = evaluate(recs, fold.test.targets, fold.item_counts, fold.n_items)
            row = {"config_id": cid, "config": json.dumps(cfg, sort_keys=True, default=str), "fold": fi + 1,
                   "fold_fingerprint": fp, "wall_s": round(time.perf_counter() - t0, 3), **m}
            cells.append(row)
            done[(cid, fp)] = row
            if out_csv:
                atomic_write_text(out_csv, pd.DataFrame(list(done.values())).to_csv(index=False))
            bar.update()
    bar.close()
    cell_df = pd.DataFrame(cells)
    metric_cols = [c for c in cell_df.columns if "@" in c]
    g = cell_df.groupby("config_id", sort=False)
    table = g[metric_cols].mean()
    table[f"mean_{metric}"] = table[metric]
    table[f"sd_{metric}"] = g[metric].std(ddof=1).fillna(0.0)
    per_fold = cell_df.pivot_table(index="config_id", columns="fold", values=metric)
    per_fold.columns = [f"fold{c}_{metric}" for c in per_fold.columns]
    table = table.join(per_fold)
    table["wall_s"] = g["wall_s"].sum()
    cfgs = pd.DataFrame([{"config_id": config_id(c), **{k: _cell(v) for k, v in c.items()}} for c in configs])
    cfgs["config"] = [json.dumps(c, sort_keys=True, default=str) for c in configs]
    table = cfgs.merge(table.reset_index(), on="config_id")
    table = table.sort_values(f"mean_{metric}", ascending=False, kind="stable").reset_index(drop=True)
    return table


def _cell(v):
    return "None" if v is None else v


def best_config(table: pd.DataFrame) -> dict:
    """The winning configuration (first row) as a dict."""
    return json.loads(table.iloc[0]["config"])


__all__ = ["best_config", "expand_grid", "grid_search"]
