"""Record how long a plan took in a study folder: its notebooks' run markers and the wall clock.

Run a plan from nothing in a fresh clone (stored runs removed, empty caches), then record it:

    git clone . /tmp/x && cd /tmp/x && rm -rf results/beauty results/ml-latest-small
    /usr/bin/time make study PLAN=default            # note the elapsed seconds
    .venv/bin/python scripts/record_plan_time.py --plan default --study-dir /tmp/x \\
        --wall-s 6019 --note "..."   # from the project whose results/benchmarks/ should keep it

Writes one row per notebook run of the plan plus a ``TOTAL`` row (the measured wall clock of
``make study`` after installation) into ``results/benchmarks/plan_times.csv`` (replacing the rows
of an earlier recording of the same plan and commit). Each marker is a notebook run's
``results/<dataset>/notebooks/<run>.done.json`` (``wall_s``: papermill's execution time).
The README's block ``benchmarks-plans`` shows the latest recording of each plan.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rec_utils.study import expand_runs, for_dataset, load_plan  # noqa: E402
from rec_utils.utils import atomic_write_text  # noqa: E402

OUT = ROOT / "results" / "benchmarks" / "plan_times.csv"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--plan", required=True, help="plan name under plans/ (default, ml-latest-small, ...)")
    ap.add_argument("--study-dir", required=True, type=Path, help="the clone the plan ran in")
    ap.add_argument("--wall-s", required=True, type=float, help="measured wall clock of `make study` (s)")
    ap.add_argument("--note", default="", help="conditions of the measurement (load, what else ran)")
    ap.add_argument("--dataset", default=None, help="the plan's --dataset (make study DATASET=<folder>)")
    a = ap.parse_args(argv)
    study = a.study_dir.resolve()
    plan_file = study / "plans" / f"{a.plan}.yaml"
    if not plan_file.is_file():
        ap.error(f"no plan {plan_file}")
    plan = load_plan(plan_file)
    runs = expand_runs(for_dataset(plan, a.dataset) if a.dataset else plan, study / "results")
    rows, commit = [], ""
    for r in runs:
        marker = Path(r["marker"])
        if not marker.is_file():
            ap.error(f"{r['name']}: no marker {marker} (did the plan finish?)")
        m = json.loads(marker.read_text())
        commit = m.get("git_commit", commit)
        rows.append({"plan": a.plan, "run": r["name"], "wall_s": float(m["wall_s"]), "finished": m["finished"],
                     "git_commit": m.get("git_commit", "")})
    name = f"{a.plan} ({Path(a.dataset).name})" if a.dataset else a.plan
    for r in rows:
        r["plan"] = name
    rows.append({"plan": name, "run": "TOTAL (make study, wall clock)", "wall_s": a.wall_s,
                 "finished": max(x["finished"] for x in rows), "git_commit": commit})
    new = pd.DataFrame(rows).assign(machine=f"{platform.machine()} x{os.cpu_count()}", note=a.note)
    if OUT.is_file():
        old = pd.read_csv(OUT, dtype=str).fillna("")
        old = old[~((old["plan"] == name) & (old["git_commit"] == commit))]
        new = pd.concat([old, new.astype(str)], ignore_index=True)
    atomic_write_text(OUT, new.to_csv(index=False))
    print(f"{len(rows)} rows -> {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
