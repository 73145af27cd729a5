"""The results contract: one JSON record per (model, config, protocol, seed) run, and the one
table every notebook appends to, ``results/<dataset>/summary.csv``.

Layout under ``results/<dataset>/``::

    runs/<notebook>/<model>__<protocol>__<config_id>__seed<seed>.json   one run: metrics + provenance
    runs/<notebook>/<model>__<protocol>__<config_id>__seed<seed>.npz    its top-20 lists (session ids, recs, scores)
    summary.csv                                                        one row per (notebook, model,
                                                                       variant, protocol, aggregate)

A summary row aggregates every stored run of the same notebook, model, variant, protocol,
config and split fingerprint: ``aggregate="mean"`` holds the mean over seeds with ``<metric>_sd``
columns (sample sd, 0 for one seed); ``aggregate="best_of_n_on_test"`` is the paper's protocol
(the seed with the highest **test** NDCG@20) and is only a labelled extra row. Runs are written
atomically, so an interrupted batch resumes by skipping the runs already on disk.
"""
from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import METRIC_COLUMNS
from .utils import PROJECT_ROOT, atomic_write_bytes, atomic_write_text, config_id, file_lock, safe_filename

RESULTS_ROOT = PROJECT_ROOT / "results"
SD_COLUMNS = tuple(f"{m}_sd" for m in METRIC_COLUMNS)
KEY_COLUMNS = ("notebook", "model", "variant", "protocol", "aggregate")
SUMMARY_COLUMNS = (
    "dataset", "notebook", "model", "variant", "protocol", "aggregate", "n_seeds", "seeds",
    *METRIC_COLUMNS, *SD_COLUMNS,
    "n_test_sessions", "split_fingerprint", "config_id", "config",
    "git_commit", "wall_s", "device", "created",
)


#: Columns read back as text (a fingerprint like "409566827248" must not become a number).
TEXT_COLUMNS = {c: str for c in ("variant", "seeds", "split_fingerprint", "config_id", "git_commit", "config")}


def results_dir(dataset: str, root: str | Path | None = None) -> Path:
    return Path(root) if root is not None else RESULTS_ROOT / dataset


def run_stem(model: str, protocol: str, config: dict, seed: int) -> str:
    return f"{safe_filename(model)}__{protocol}__{config_id(config)}__seed{seed}"


def run_path(out_dir: Path, notebook: str, model: str, protocol: str, config: dict, seed: int) -> Path:
    return Path(out_dir) / "runs" / notebook / f"{run_stem(model, protocol, config, seed)}.json"


def save_run(record: dict, out_dir: Path, recs: np.ndarray | None = None,
             scores: np.ndarray | None = None, session_ids: np.ndarray | None = None) -> Path:
    """Write one run record (and its recommendation lists) atomically; returns the JSON path."""
    path = run_path(out_dir, record["notebook"], record["model"], record["protocol"],
                    record["config"], record["seed"])
    if recs is not None:
        buf = io.BytesIO()
        arrays = {"recs": np.asarray(recs, dtype=np.int32 if np.max(recs, initial=0) < 2**31 else np.int64)}
        if scores is not None:
            arrays["scores"] = np.asarray(scores, dtype=np.float32)
        if session_ids is not None:
            arrays["session_ids"] = np.asarray(session_ids, dtype=np.int64)
        np.savez_compressed(buf, **arrays)
        atomic_write_bytes(path.with_suffix(".npz"), buf.getvalue())
    atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True, default=_json_default))
    return path


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def load_run(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def load_runs(out_dir: Path, notebook: str | None = None) -> list[dict]:
    base = Path(out_dir) / "runs"
    pattern = f"{notebook}/*.json" if notebook else "*/*.json"
    return [r for p in sorted(base.glob(pattern)) if (r := load_run(p)) is not None]


def runs_like(run: dict, out_dir: Path) -> list[dict]:
    """Every stored run of the same notebook, model, variant, protocol, config and split as
    ``run`` (whatever its seed), so plans that run one seed per call add up to all seeds."""
    keys = ("model", "protocol", "split_fingerprint", "config")
    return [r for r in load_runs(out_dir, run["notebook"])
            if all(r.get(k) == run.get(k) for k in keys) and r.get("variant", "") == run.get("variant", "")]


def summary_rows(runs: list[dict]) -> list[dict]:
    """Mean ± sd row (and a best-of-n-on-test row when n > 1) for runs of one configuration."""
    if not runs:
        return []
    first = runs[0]
    fps = {r["split_fingerprint"] for r in runs}
    if len(fps) > 1:
        raise ValueError(f"runs of {first['model']} mix split fingerprints {sorted(fps)}")
    m = pd.DataFrame([r["metrics"] for r in runs])[list(METRIC_COLUMNS)]
    seeds = sorted(int(r["seed"]) for r in runs)
    base = {
        "dataset": first["dataset"], "notebook": first["notebook"], "model": first["model"],
        "variant": first.get("variant", ""), "protocol": first["protocol"],
        "n_seeds": len(runs), "seeds": " ".join(map(str, seeds)),
        "n_test_sessions": first["n_test_sessions"], "split_fingerprint": first["split_fingerprint"],
        "config_id": config_id(first["config"]),
        "config": json.dumps(first["config"], sort_keys=True, default=str),
        "git_commit": ",".join(sorted({r["git_commit"] for r in runs})),
        "wall_s": round(float(np.mean([r["wall_s"] for r in runs])), 2),
        "device": ",".join(sorted({r["device"] for r in runs})),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    mean_row = {**base, "aggregate": "mean", **m.mean().to_dict(),
                **{f"{c}_sd": (m[c].std(ddof=1) if len(m) > 1 else 0.0) for c in METRIC_COLUMNS}}
    rows = [mean_row]
    if len(runs) > 1:
        best = int(np.argmax(m["ndcg@20"].to_numpy()))
        rows.append({**base, "aggregate": f"best_of_{len(runs)}_on_test", "n_seeds": len(runs),
                     "seeds": str(runs[best]["seed"]), **m.iloc[best].to_dict(),
                     **{f"{c}_sd": np.nan for c in METRIC_COLUMNS}})
    return rows


def read_summary(out_dir: Path) -> pd.DataFrame:
    path = Path(out_dir) / "summary.csv"
    if not path.is_file():
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    return pd.read_csv(path, dtype=TEXT_COLUMNS)


def update_summary(rows: list[dict], out_dir: Path) -> pd.DataFrame:
    """Replace this notebook/model/variant/protocol's rows in ``summary.csv`` (atomic, locked).

    Every ``aggregate`` row of a replaced key goes, so a rerun with one seed cannot leave a stale
    best-of-n row behind.
    """
    path = Path(out_dir) / "summary.csv"
    new = pd.DataFrame(rows)
    for c in SUMMARY_COLUMNS:
        if c not in new.columns:
            new[c] = np.nan
    new["variant"] = new["variant"].fillna("").astype(str)
    with file_lock(path):
        old = read_summary(out_dir)
        old["variant"] = old["variant"].fillna("").astype(str)
        if len(old):
            keys = ["notebook", "model", "variant", "protocol"]
            replaced = old[keys].apply(tuple, axis=1).isin(set(new[keys].apply(tuple, axis=1)))
            old = old.loc[~replaced]
        extra = [c for c in list(old.columns) + list(new.columns) if c not in SUMMARY_COLUMNS]
        cols = list(SUMMARY_COLUMNS) + sorted(set(extra))
        frames = [f for f in (old, new) if len(f)]
        table = pd.concat(frames, ignore_index=True).reindex(columns=cols)
        table = table.sort_values(["notebook", "protocol", "model", "variant", "aggregate"],
                                  kind="stable").reset_index(drop=True)
        atomic_write_text(path, table.to_csv(index=False, float_format="%.6g"))
    return table


def record(runs: list[dict], out_dir: Path) -> pd.DataFrame:
    """Summarise runs of one configuration and write them into ``summary.csv``."""
    return update_summary(summary_rows(runs), out_dir)
