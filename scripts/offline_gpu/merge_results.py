"""Merge the ``results/`` a GPU machine sent back (the ``results.tgz.NN`` parts of
scripts/offline_gpu/run.sh, one ``.tgz``, or a folder) into this checkout's ``results/`` without
losing anything::

    .venv/bin/python scripts/offline_gpu/merge_results.py /work/.device/N/results.tgz.* --commit 5f00d4b

* ``--commit C`` (what ``scripts/commit_env.py`` printed for the run): the GPU machine's copy had no
  ``.git``, so its runs record ``git_commit`` ``unknown``; each such run whose recorded training-code
  fingerprint equals commit C's gets ``git_commit`` C (a mismatch is an error: the runs are not C's);
* every file the GPU machine wrote (run records and lists, executed notebooks and done-markers,
  figures, side tables) is copied where it is missing here; a file that exists here with other bytes
  is **not** overwritten but listed as a conflict (exit status 1);
* ``summary.csv`` rows are rebuilt here from the stored runs of each incoming setting
  (:func:`rec_utils.results.record`: every seed stored here, the incoming ones included), never copied;
* paired comparisons (``significance.csv``, ``significance_refused.csv``) whose key is new here go
  through :func:`rec_utils.significance.record_significance` (Holm recomputed within each family);
  a key that exists here with other numbers is a conflict, kept as it is here;
* then run ``python -m rec_utils.inventory`` and ``python -m rec_utils.report``.
"""
from __future__ import annotations

import argparse
import filecmp
import io
import json
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from rec_utils import results  # noqa: E402
from rec_utils.provenance import code_fingerprint  # noqa: E402
from rec_utils.setting import Setting  # noqa: E402
from rec_utils.significance import KEY_COLUMNS, read_significance, record_significance  # noqa: E402
from rec_utils.utils import PROJECT_ROOT, atomic_write_text  # noqa: E402

#: Tables merged row by row (never copied whole); lock files and the inventory are never copied.
MERGED = {"summary.csv", "significance.csv", "significance_refused.csv"}
SKIPPED_SUFFIXES = (".lock",)
SKIPPED_NAMES = {"index.csv"}


def name_commit(src: Path, commit: str) -> int:
    """Set ``git_commit`` = ``commit`` in every run record under ``src`` that says ``unknown``,
    after checking its recorded code fingerprint against the commit's; returns how many."""
    want = code_fingerprint(commit)
    if want is None:
        raise SystemExit(f"--commit {commit}: git does not know this commit here")
    n = 0
    for f in sorted(src.rglob("runs/*/*.json")):
        rec = json.loads(f.read_text())
        if rec.get("git_commit") != "unknown":
            continue
        if rec.get("code_fingerprint") != want:
            raise SystemExit(f"{f.name}: recorded code fingerprint {rec.get('code_fingerprint')} is not commit "
                             f"{commit}'s ({want}): these runs did not come from that commit's code")
        rec["git_commit"] = commit
        results.save_run(rec, f.parents[2])  # <dataset>/runs/<model>/<stem>.json: the record only
        n += 1
    for name in ("significance.csv", "significance_refused.csv"):
        for f in src.rglob(name):
            t = pd.read_csv(f, dtype=str)
            for c in ("git_commit_a", "git_commit_b"):
                if c in t:
                    t[c] = t[c].replace("unknown", commit)
            atomic_write_text(f, t.to_csv(index=False))
    return n


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
    # summary rows rebuilt from what is stored here now (a conflicting run keeps this checkout's record)
    paths = {results.run_path(dst, Setting.from_dict(r["setting"]), r["split_fingerprint"], r["seed"])
             for r in results.load_runs(src)}
    stored = [r for r in map(results.load_run, sorted(paths)) if r]
    if stored:
        results.record(stored, dst)
    sig = [read_significance(src, name) for name in ("significance.csv", "significance_refused.csv")
           if (src / name).is_file()]
    sig = pd.concat([t for t in sig if len(t)], ignore_index=True) if any(len(t) for t in sig) else pd.DataFrame()
    if len(sig):
        keys = list(KEY_COLUMNS)
        here = pd.concat([t for t in (read_significance(dst, n) for n in ("significance.csv", "significance_refused.csv")
                                      if (dst / n).is_file()) if len(t)] or [pd.DataFrame(columns=keys)])
        here_keys = set(here[keys].astype(str).apply(tuple, axis=1)) if len(here) else set()
        is_new = ~sig[keys].astype(str).apply(tuple, axis=1).isin(here_keys)
        for _, row in sig.loc[~is_new].iterrows():
            conflicts.append(f"{dst}/significance: {row['model_a']} {row['label_a']} vs {row['model_b']} "
                             f"{row['metric']} (already here: kept)")
        if is_new.any():
            record_significance(sig.loc[is_new].to_dict("records"), dst)
    return copied, conflicts


def _extract(sources: list[Path], tmp: Path) -> Path:
    if len(sources) == 1 and sources[0].is_dir():
        return sources[0]
    data = b"".join(p.read_bytes() for p in sorted(sources))  # results.tgz.00, .01, ... in order
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(tmp, filter="data")
    return tmp / "results"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", type=Path, nargs="+", help="results.tgz parts, one .tgz, or a results folder")
    ap.add_argument("--into", type=Path, default=PROJECT_ROOT / "results", help="this checkout's results folder")
    ap.add_argument("--commit", default=None, help="the commit the GPU machine ran (scripts/commit_env.py)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "copy"
        shutil.copytree(_extract(args.source, Path(tmp)), work)  # never edit the given folder
        if args.commit:
            print(f"{name_commit(work, args.commit)} run(s) named commit {args.commit}")
        all_conflicts = []
        for ds in sorted(p for p in work.iterdir() if p.is_dir()):
            copied, conflicts = merge_dataset(ds, args.into / ds.name)
            all_conflicts += conflicts
            print(f"{ds.name}: {len(copied)} file(s) copied, {len(conflicts)} conflict(s)")
    for c in all_conflicts:
        print(f"  conflict (kept this checkout's): {c}")
    return 1 if all_conflicts else 0


if __name__ == "__main__":
    raise SystemExit(main())
