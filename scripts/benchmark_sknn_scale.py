"""Benchmark: V-SKNN predict time per session and peak memory as the data grows, faithful
against the indexed model (VMIS-kNN index, :mod:`rec_utils.models.sknn_index`).

    python scripts/benchmark_sknn_scale.py                       # 100k, 1M, 5M interactions
    python scripts/benchmark_sknn_scale.py --sizes 100000 --faithful-sessions 50

Synthetic data as in issue 25: sessions of 10 items, 50,000 items with Zipf popularity
(p(rank r) ∝ 1/r), distinct timestamps (no ties). The last ``--test`` sessions by time are the
test cases: prompt = the first 9 items, target = the 10th. Each (size, model) cell runs in its
own subprocess, so its peak resident memory (``ru_maxrss``, data generation included; the
``rss_data_mb`` column is the peak before the model was built) is its own. The faithful model
predicts ``--faithful-sessions`` test sessions (it is the slow one), the indexed ones ``--test``.
HitRate@20 on the sessions each predicted, and on the ``--faithful-sessions`` every model predicts
(``hit_rate@20_common``), shows whether the faster lists are as good.
The faithful model predicts in chunks of 50 prompts (``chunk_size``: memory, not results; with
its default 1000 its candidate pairs at 5M interactions need several GB).

Models: the Beauty V-SKNN preset (k 70, sample 1090, random sampling, dot, idf, harmonic decay)
faithful; the same with ``index_cap=1090``; and the preset with recent sampling and
``index_cap=1090`` (where the index is exact: the cap covers the sample).

Writes results/benchmarks/sknn_scale.csv (one row per cell, with the machine's load average at
start and end and the CPU count, so numbers from a busy box can be recognised) and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "benchmarks"
SESSION_LEN = 10

MODELS = {
    "faithful": {"chunk_size": 50},  # prompts per batched step: memory only, lists unchanged
    "indexed": {"index_cap": 1090},
    "indexed-recent": {"index_cap": 1090, "sampling": "recent"},
}


def synthetic(n_interactions: int, n_items: int, seed: int = 0) -> pd.DataFrame:
    """``n_interactions / 10`` sessions of 10 items drawn with Zipf popularity, no timestamp ties."""
    rng = np.random.default_rng(seed)
    n_sessions = n_interactions // SESSION_LEN
    p = 1.0 / np.arange(1, n_items + 1)
    items = rng.choice(n_items, size=n_sessions * SESSION_LEN, p=p / p.sum())
    start = rng.permutation(n_sessions).astype(np.int64) * 100  # distinct session start times
    return pd.DataFrame({
        "session_id": np.repeat(np.arange(n_sessions), SESSION_LEN),
        "item_id": items,
        "timestamp": np.repeat(start, SESSION_LEN) + np.tile(np.arange(SESSION_LEN), n_sessions),
    })


def one_cell(size: int, model: str, n_items: int, n_test: int, n_faithful: int) -> dict:
    """Fit and predict one model on one size (run in a fresh process)."""
    from rec_utils.models import build_model, preset_config

    df = synthetic(size, n_items)
    order = df.groupby("session_id")["timestamp"].min().sort_values().index.to_numpy()
    test_ids = order[-n_test:]
    is_test = df["session_id"].isin(test_ids).to_numpy()
    train, test = df[~is_test], df[is_test].sort_values(["session_id", "timestamp"])
    seqs = test["item_id"].to_numpy().reshape(-1, SESSION_LEN)
    n_pred = n_faithful if model == "faithful" else n_test
    prompts, targets = seqs[:n_pred, :-1].tolist(), seqs[:n_pred, -1]
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    m = build_model("V-SKNN", **{**preset_config("V-SKNN", "beauty"), **MODELS[model], "seed": 0})
    t0 = time.perf_counter()
    m.fit(train)
    t1 = time.perf_counter()
    recs = m.predict(prompts, k=20)
    t2 = time.perf_counter()
    return {
        "interactions": size, "train_sessions": int(train["session_id"].nunique()), "items": n_items,
        "model": model, "config": json.dumps(MODELS[model]), "n_predicted": n_pred,
        "fit_s": t1 - t0, "predict_s": t2 - t1, "predict_ms_per_session": 1000 * (t2 - t1) / n_pred,
        "hit_rate@20": float((recs == targets[:, None]).any(axis=1).mean()),
        # on the sessions every model predicts (the faithful model's), so the lists compare like with like
        "hit_rate@20_common": float((recs[:n_faithful] == targets[:n_faithful, None]).any(axis=1).mean()),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_data_mb": rss_data,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", type=int, default=[100_000, 1_000_000, 5_000_000])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--test", type=int, default=2000, help="test sessions the indexed models predict")
    ap.add_argument("--faithful-sessions", type=int, default=200, help="test sessions the faithful model predicts")
    ap.add_argument("--one", nargs=2, metavar=("SIZE", "MODEL"), help=argparse.SUPPRESS)  # a child process
    ap.add_argument("--out", default=str(OUT / "sknn_scale.csv"))
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one_cell(int(args.one[0]), args.one[1], args.items, args.test, args.faithful_sessions)))
        return

    from rec_utils.utils import device_description, git_commit

    rows = []
    for size in args.sizes:
        for model in args.models:
            load0 = os.getloadavg()[0]
            cmd = [sys.executable, __file__, "--one", str(size), model, "--items", str(args.items),
                   "--test", str(args.test), "--faithful-sessions", str(args.faithful_sessions)]
            out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            if out.returncode != 0:
                raise SystemExit(f"{size} {model} failed:\n{out.stderr[-3000:]}")
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row.update(load_avg_1m_start=load0, load_avg_1m_end=os.getloadavg()[0])
            rows.append(row)
            print(f"{size:>9,} {model:15s} fit {row['fit_s']:6.1f} s  predict {row['predict_ms_per_session']:8.2f} ms/session"
                  f"  HR@20 {row['hit_rate@20']:.3f}  peak {row['peak_rss_mb']:6.0f} MB  load {load0:.1f}", flush=True)
    df = pd.DataFrame(rows).assign(device=device_description("cpu"), cpu_count=os.cpu_count(), git_commit=git_commit())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False, float_format="%.4g")
    print(df.pivot_table(index="interactions", columns="model", values=["predict_ms_per_session", "peak_rss_mb"]).round(2))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
