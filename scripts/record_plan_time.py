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
The block ``benchmarks-plans`` of docs/running.md shows each run's latest recording.

When only some entries changed since the plan's last full recording, re-measure just those (each
from nothing, on an idle machine: their stored runs, searches and caches removed, the entries
before them done) and record them with ``--only`` (comma-separated run names or globs); no wall
clock is taken (``--wall-s`` is refused with ``--only``), and the plan's ``TOTAL (assembled ...)``
row is rewritten: the sum, over the plan's current runs, of each run's latest recorded time, plus
the runner's own overhead as the last full recording measured it (its wall clock minus its runs);
its note names the commits it was assembled from. An assembled total is an estimate of the wall
clock, labelled as such, never a measured one::

    .venv/bin/python scripts/record_plan_time.py --plan default --study-dir /tmp/x \\
        --only 05_llm2sequential --note "..."
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import platform
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rec_utils.report import PLAN_ASSEMBLED, PLAN_WALL_CLOCK  # noqa: E402
from rec_utils.study import expand_runs, for_dataset, load_plan  # noqa: E402
from rec_utils.utils import atomic_write_text  # noqa: E402

OUT = ROOT / "results" / "benchmarks" / "plan_times.csv"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plan", required=True, help="plan name under plans/ (default, ml-latest-small, ...)")
    ap.add_argument("--study-dir", required=True, type=Path, help="the clone the plan ran in")
    ap.add_argument("--wall-s", type=float, default=None,
                    help="measured wall clock of `make study` (s); required unless --only")
    ap.add_argument("--only", default=None,
                    help="comma-separated run names or globs: record only these runs (re-measured from nothing) "
                         "and rewrite the plan's assembled total")
    ap.add_argument("--note", default="", help="conditions of the measurement (load, what else ran)")
    ap.add_argument("--dataset", default=None, help="the plan's --dataset (make study DATASET=<folder>)")
    a = ap.parse_args(argv)
    if a.wall_s is None and not a.only:
        ap.error("--wall-s is required (the measured wall clock of the whole plan) unless --only")
    if a.wall_s is not None and a.only:
        ap.error("--wall-s measures the whole plan: not with --only (the assembled total is computed)")
    study = a.study_dir.resolve()
    plan_file = study / "plans" / f"{a.plan}.yaml"
    if not plan_file.is_file():
        ap.error(f"no plan {plan_file}")
    plan = load_plan(plan_file)
    runs = expand_runs(for_dataset(plan, a.dataset) if a.dataset else plan, study / "results")
    plan_runs = [r["name"] for r in runs]
    if a.only:
        globs = [g.strip() for g in a.only.split(",") if g.strip()]
        runs = [r for r in runs if any(fnmatch.fnmatchcase(r["name"], g) for g in globs)]
        if not runs:
            ap.error(f"--only {a.only!r} matches none of the plan's runs: {', '.join(plan_runs)}")
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
    if not a.only:
        rows.append({"plan": name, "run": PLAN_WALL_CLOCK, "wall_s": a.wall_s,
                     "finished": max(x["finished"] for x in rows), "git_commit": commit})
    new = pd.DataFrame(rows).assign(machine=f"{platform.machine()} x{os.cpu_count()}", note=a.note)
    old = pd.read_csv(OUT, dtype=str).fillna("") if OUT.is_file() else pd.DataFrame(columns=new.columns)
    if a.only:  # earlier recordings of these runs at other commits stay (history); the latest counts
        old = old[~((old["plan"] == name) & old["run"].isin(new["run"]) & (old["git_commit"] == commit))]
    else:
        old = old[~((old["plan"] == name) & (old["git_commit"] == commit))]
    table = pd.concat([old, new.astype(str)], ignore_index=True)
    table = assemble_total(table, name, plan_runs) if a.only else table
    atomic_write_text(OUT, table.to_csv(index=False))
    print(f"{len(rows)} rows -> {OUT}")
    return 0


def assemble_total(table: pd.DataFrame, plan: str, plan_runs: list[str]) -> pd.DataFrame:
    """``table`` with the plan's assembled total rewritten: the sum of the latest recorded
    ``wall_s`` of each of ``plan_runs`` (by ``finished``) plus the runner's own overhead (kernel
    starts, markers) as the plan's latest full recording measured it (its wall clock minus the sum
    of its runs). Raises SystemExit naming the runs that have no recorded time (record the plan in
    full first)."""
    mine = table[(table["plan"] == plan) & table["run"].isin(plan_runs)]
    latest = mine.sort_values("finished", kind="stable").groupby("run").tail(1)
    missing = sorted(set(plan_runs) - set(latest["run"]))
    full = table[(table["plan"] == plan) & (table["run"] == PLAN_WALL_CLOCK)].sort_values("finished", kind="stable")
    if missing or full.empty:
        raise SystemExit(f"plan {plan}: no full recording, or no recorded time for {', '.join(missing) or '-'}: "
                         "record the whole plan first")
    full_commit, full_done = full["git_commit"].iloc[-1], full["finished"].iloc[-1]
    at_full = mine[(mine["git_commit"] == full_commit) & (mine["finished"] <= full_done)]  # not later --only rows
    overhead = float(full["wall_s"].iloc[-1]) - at_full["wall_s"].astype(float).sum()
    by_commit = latest.groupby("git_commit")["run"].apply(lambda r: ", ".join(r)).to_dict()
    row = {"plan": plan, "run": PLAN_ASSEMBLED, "wall_s": f"{latest['wall_s'].astype(float).sum() + overhead:.1f}",
           "finished": latest["finished"].max(), "git_commit": latest.sort_values("finished")["git_commit"].iloc[-1],
           "machine": latest["machine"].iloc[-1],
           "note": (f"an estimate, not one wall clock: the runs' latest from-nothing times plus {overhead:.0f} s of "
                    f"runner overhead (the {full_commit} recording's wall clock minus its runs); "
                    + "; ".join(f"{c}: {r}" for c, r in by_commit.items()))}
    rest = table[~((table["plan"] == plan) & (table["run"] == PLAN_ASSEMBLED))]
    return pd.concat([rest, pd.DataFrame([row])], ignore_index=True)


if __name__ == "__main__":
    raise SystemExit(main())
