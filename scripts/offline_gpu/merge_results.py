"""Merge the ``results/`` a GPU machine sent back (``results.tgz`` of scripts/offline_gpu/run.sh,
or a folder) into this checkout's ``results/`` without losing anything:

    .venv/bin/python scripts/offline_gpu/merge_results.py /work/.device/N/results.tgz

* every file the GPU machine wrote (run records and their lists, executed notebooks and their
  done-markers, figures, side tables) is copied where it is missing here; a file that exists here
  with other bytes is **not** overwritten but listed as a conflict (exit status 1): the same run
  key from two machines is a decision for a person, never a silent replacement;
* ``summary.csv`` rows go through :func:`rec_utils.results.update_summary` and the paired
  comparisons (``significance.csv``, ``significance_refused.csv``) through
  :func:`rec_utils.significance.record_significance` (same locks and atomic writes as a notebook's,
  Holm recomputed within each family);
* then run ``python -m rec_utils.inventory`` and ``python -m rec_utils.report``.
"""
from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from rec_utils import results  # noqa: E402
from rec_utils.significance import read_significance, record_significance  # noqa: E402
from rec_utils.utils import PROJECT_ROOT  # noqa: E402

#: Tables merged row by row (never copied whole); lock files and the inventory are never copied.
MERGED = {"summary.csv", "significance.csv", "significance_refused.csv"}
SKIPPED_SUFFIXES = (".lock",)
SKIPPED_NAMES = {"index.csv"}


def merge_dataset(src: Path, dst: Path) -> tuple[list[str], list[str]]:
    """Merge one ``results/<dataset>`` folder; returns (copied files, conflicts)."""
    copied, conflicts = [], []
    for f in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = f.relative_to(src)
        if rel.as_posix() in MERGED or f.name in SKIPPED_NAMES or f.name.endswith(SKIPPED_SUFFIXES):
            continue
        target = dst / rel
        if target.exists():
            if not filecmp.cmp(f, target, shallow=False):
                conflicts.append(str(target))
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)
        copied.append(str(target))
    if (src / "summary.csv").is_file():
        rows = results.read_summary(src)
        if len(rows):
            results.update_summary(rows.to_dict("records"), dst)
    sig = [read_significance(src, name) for name in ("significance.csv", "significance_refused.csv")
           if (src / name).is_file()]
    sig = [t for t in sig if len(t)]
    if sig:
        record_significance(pd.concat(sig, ignore_index=True).to_dict("records"), dst)
    return copied, conflicts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", type=Path, help="results.tgz (holding results/) or a results folder")
    ap.add_argument("--into", type=Path, default=PROJECT_ROOT / "results", help="this checkout's results folder")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        src = args.source
        if src.is_file():
            with tarfile.open(src) as tar:
                tar.extractall(tmp, filter="data")
            src = Path(tmp) / "results"
        if not src.is_dir():
            raise SystemExit(f"{args.source}: no results folder in it")
        all_conflicts = []
        for ds in sorted(p for p in src.iterdir() if p.is_dir()):
            copied, conflicts = merge_dataset(ds, args.into / ds.name)
            all_conflicts += conflicts
            print(f"{ds.name}: {len(copied)} file(s) copied, {len(conflicts)} conflict(s)")
    for c in all_conflicts:
        print(f"  conflict (kept this checkout's file): {c}")
    return 1 if all_conflicts else 0


if __name__ == "__main__":
    raise SystemExit(main())
