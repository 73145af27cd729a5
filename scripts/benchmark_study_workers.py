"""Benchmark: the wall time of one plan with 1 and with 2 workers (``rec_utils.study --workers``).

    python scripts/make_synthetic_dataset.py build/toyshop
    python scripts/benchmark_study_workers.py --dataset build/toyshop [--plan workers-bench] [--workers 1 2]

Each worker count runs the whole plan from nothing into its own results folder under
``build/bench-workers/`` (``--force``; the plan turns the neural checkpoint cache off), so
nothing is reused between the timings. Writes results/benchmarks/study_workers.csv: plan,
dataset, workers, wall seconds, the 1-minute load average before and after, the CPU count.
"""
from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import pandas as pd

from rec_utils import study
from rec_utils.utils import PROJECT_ROOT, device_description, git_commit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--plan", default="workers-bench")
    ap.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--out", default=str(PROJECT_ROOT / "results" / "benchmarks" / "study_workers.csv"))
    args = ap.parse_args()
    rows = []
    for n in args.workers:
        root = PROJECT_ROOT / "build" / "bench-workers" / f"w{n}"
        shutil.rmtree(root, ignore_errors=True)
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        rc = study.main([args.plan, "--dataset", args.dataset, "--out", str(root), "--workers", str(n),
                         "--force", "--no-log-output"])
        wall = time.perf_counter() - t0
        if rc != 0:
            raise SystemExit(f"the plan failed with {n} worker(s) (rc {rc})")
        rows.append({"plan": args.plan, "dataset": Path(args.dataset).name, "workers": n, "wall_s": round(wall, 1),
                     "runs": len(study.load_plan(args.plan)["runs"]), "load_avg_1m_start": load0,
                     "load_avg_1m_end": os.getloadavg()[0]})
        print(f"{n} worker(s): {wall:.0f} s (load {load0:.1f} -> {os.getloadavg()[0]:.1f})", flush=True)
    df = pd.DataFrame(rows).assign(device=device_description("cpu"), cpu_count=os.cpu_count(), git_commit=git_commit())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False, float_format="%.4g")
    print(df.to_string(index=False))


if __name__ == "__main__":
    main()
