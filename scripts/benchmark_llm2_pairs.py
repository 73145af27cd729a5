"""What the fair LLM2 comparison costs per run on this machine, measured from the stored runs and
searches, and extrapolated to the plans' sizes (labelled as such) -> results/benchmarks/llm2_pairs.csv.

Measured rows (``kind="measured"``): every stored run of a paired arm (a setting with ``num_threads``
in its config, i.e. made by rec_utils.llm2_comparison) grouped by dataset, model, protocol, arm,
device and threads: runs, mean wall seconds per run (fit + predict), mean epochs, seconds per epoch;
and every stored arm search (configs/<model>__init-<init>__<tag>.json): trials and seconds per trial.

Extrapolated rows (``kind="extrapolated"``): a 5-seed pair (2 arms × 5 seeds × the measured mean run),
and an equal-tuning search per arm of the default plan's size (4 budgeted trials) and of the paper
plan's (100 trials on full folds: a trial trains on the 3 forward-chaining folds, whose train sets are
1/4, 2/4 and 3/4 of the full one, so ≈ 1.5 × a full run's fit time, fewer when pruned), per model.
The machine is shared (load average recorded): treat the numbers as an upper bound for 2 idle cores.

    python scripts/benchmark_llm2_pairs.py [--dataset beauty]
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import pandas as pd

from rec_utils.results import RESULTS_ROOT, load_runs, results_dir
from rec_utils.utils import atomic_write_text, git_commit


def measured(dataset: str) -> pd.DataFrame:
    rows = []
    for r in load_runs(results_dir(dataset)):
        cfg = (r.get("setting") or {}).get("config") or {}
        if not str(r.get("model", "")).startswith("LLM2") or "num_threads" not in cfg and not str(
                r.get("device", "")).startswith("cuda"):
            continue
        if "num_threads" not in cfg and "init" not in cfg and "cuda" not in str(r.get("device")):
            continue
        info = r.get("fit_info") or {}
        rows.append({"dataset": dataset, "model": r["model"], "protocol": r["protocol"],
                     "arm": cfg.get("init", "llm"), "label": r.get("variant", ""),
                     "device": str(r.get("device", "")).split(" x")[0], "threads": r.get("cpu_threads"),
                     "wall_s": r["wall_s"], "epochs": info.get("epochs_run"), "commit": r.get("git_commit")})
    if not rows:
        return pd.DataFrame()
    d = pd.DataFrame(rows)
    d["threads"] = d["threads"].astype(object).fillna("–")
    g = d.groupby(["dataset", "model", "protocol", "arm", "label", "device", "threads"], dropna=False)
    out = g.agg(runs=("wall_s", "size"), run_s=("wall_s", "mean"), epochs=("epochs", "mean")).reset_index()
    out["s_per_epoch"] = out["run_s"] / out["epochs"]
    out["what"] = "one run (fit + predict), early stopping"
    return out


def searches(dataset: str) -> pd.DataFrame:
    rows = []
    for p in sorted((results_dir(dataset) / "configs").glob("*__init-*.json")):
        doc = json.loads(p.read_text())
        n = max(int(doc.get("n_trials") or 0), 1)
        rows.append({"dataset": dataset, "model": doc["model"], "protocol": "temporal", "arm": doc["init"],
                     "label": doc["tag"], "runs": n, "run_s": (doc.get("trial_wall_s_total") or np.nan) / n,
                     "what": f"one TPE trial ({doc.get('fold_sample_sessions') or 'all'} cases, "
                             f"{doc.get('fold_train_sessions') or 'all'} train sessions per fold, fixed {doc.get('fixed')})"})
    return pd.DataFrame(rows)


def extrapolate(m: pd.DataFrame, s: pd.DataFrame) -> pd.DataFrame:
    rows = []
    if m.empty:
        return pd.DataFrame()
    cpu = m[m["device"].str.startswith("cpu") & m["protocol"].eq("temporal") & m["arm"].isin(["random", "llm"])]
    for (ds, model), g in cpu.groupby(["dataset", "model"]):
        run = float(np.average(g["run_s"], weights=g["runs"]))
        rows.append({"dataset": ds, "model": model, "protocol": "temporal", "arm": "random + llm",
                     "what": "5-seed pair (2 arms × 5 seeds)", "total_s": 10 * run})
        rows.append({"dataset": ds, "model": model, "protocol": "temporal", "arm": "per arm",
                     "what": "paper-size search: 100 trials × ≈1.5 full fits (folds 1/4+2/4+3/4)",
                     "total_s": 100 * 1.5 * run})
        s_ep = float(np.average(g["s_per_epoch"], weights=g["runs"]))
        ep = float(np.average(g["epochs"], weights=g["runs"]))
        # default plan's 05 entry: per model 2 arms × 4 trials × 3 folds × 2 epochs on 2,000 of ~17,890
        # train sessions, then 2 arms × 1 seed to early stopping
        eq = 2 * 4 * 3 * 2 * 2000 / 17890 + 2 * ep
        rows.append({"dataset": ds, "model": model, "protocol": "temporal", "arm": "random + llm",
                     "what": f"default plan 05 entry for this model (≈{eq:.0f} epoch-equivalents × measured s/epoch)",
                     "total_s": eq * s_ep})
        ss = s[(s["model"] == model)] if not s.empty else s
        if len(ss):
            rows.append({"dataset": ds, "model": model, "protocol": "temporal", "arm": "per arm",
                         "what": "default-plan search as measured (trials × s/trial)",
                         "total_s": float((ss["runs"] * ss["run_s"]).sum() / max(len(ss), 1))})
    out = pd.DataFrame(rows)
    out["kind"] = "extrapolated"
    out["hours"] = out["total_s"] / 3600
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", nargs="+", default=["beauty"])
    args = ap.parse_args(argv)
    m = pd.concat([measured(d) for d in args.dataset], ignore_index=True)
    s = pd.concat([searches(d) for d in args.dataset], ignore_index=True)
    meas = pd.concat([x for x in (m, s) if len(x)], ignore_index=True) if len(m) or len(s) else pd.DataFrame()
    if len(meas):
        meas["kind"] = "measured"
    table = pd.concat([x for x in (meas, extrapolate(m, s)) if len(x)], ignore_index=True)
    table["load_avg_1m"] = round(os.getloadavg()[0], 2)
    table["git_commit"] = git_commit()
    table["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    path = RESULTS_ROOT / "benchmarks" / "llm2_pairs.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, table.to_csv(index=False, float_format="%.4g"))
    print(table.to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
