"""Benchmark: fit and predict times of the non-neural baselines on Beauty, and metric speed.

    python scripts/benchmark_baselines.py [--repeats 3]

Writes results/benchmarks/baselines_<device>.csv (one row per model and repeat, with the
machine's load average so numbers from a busy box can be recognised) and a bar chart.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rec_utils.data import load_dataset
from rec_utils.evaluation import evaluate_recs
from rec_utils.metrics import evaluate
from rec_utils.models import build_model, preset_config
from rec_utils.split import make_split
from rec_utils.utils import PROJECT_ROOT, device_description, git_commit

OUT = PROJECT_ROOT / "results" / "benchmarks"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dataset", default="beauty")
    args = ap.parse_args()
    split = make_split(load_dataset(args.dataset), "temporal")
    rows = []
    for model in ["MostPopular", "SKNN", "V-SKNN", "S-SKNN", "SF-SKNN"]:
        cfg = preset_config(model, "beauty")
        for rep in range(args.repeats):
            m = build_model(model, **cfg)
            t0 = time.perf_counter()
            m.fit(split.train)
            t1 = time.perf_counter()
            recs = m.predict(split.test, k=20)
            t2 = time.perf_counter()
            rows.append({"benchmark": "fit_predict", "model": model, "repeat": rep, "n_sessions": len(split.test),
                         "fit_s": t1 - t0, "predict_s": t2 - t1,
                         "sessions_per_s": len(split.test) / (t2 - t1),
                         "ndcg@10": evaluate_recs(recs, split)["ndcg@10"]})
    rng = np.random.default_rng(0)
    recs = rng.integers(0, split.n_items, size=(5000, 20))
    targets = rng.integers(0, split.n_items, size=5000)
    for rep in range(args.repeats):
        t0 = time.perf_counter()
        evaluate(recs, targets, split.item_counts, split.n_items)
        rows.append({"benchmark": "metrics_5000x20", "model": "-", "repeat": rep, "n_sessions": 5000,
                     "predict_s": time.perf_counter() - t0})
    df = pd.DataFrame(rows).assign(device=device_description("cpu"), cpu_threads=os.cpu_count(),
                                   load_avg_1m=os.getloadavg()[0], git_commit=git_commit())
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "baselines_cpu.csv"
    df.to_csv(path, index=False, float_format="%.4g")
    summary = df.groupby(["benchmark", "model"])[["fit_s", "predict_s"]].median()
    print(summary.round(3).to_string())
    print(f"written {path}")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fp = df[df.benchmark == "fit_predict"].groupby("model")[["fit_s", "predict_s"]].median()
    ax = fp.plot.barh(stacked=True, figsize=(6, 3))
    ax.set(xlabel="seconds (median of repeats)", title=f"Baselines on {args.dataset}: {len(split.test)} test sessions")
    plt.tight_layout()
    plt.savefig(OUT / "baselines_cpu.png", dpi=110)


if __name__ == "__main__":
    main()
