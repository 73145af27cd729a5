"""``results/index.csv``: every file under ``results/`` mapped to what it is and to its setting.

One row per file (``path`` relative to the project): ``dataset``, ``kind`` (run, run lists, run
side lists, summary table, artifact, figure, executed notebook, done marker, grid cells, tuning
study, tuned config, embeddings record, benchmark), and where the file belongs to a setting its
``model``, ``protocol``, ``label``, ``setting_id``, ``split_fingerprint``, ``seed``, ``device``
and ``status``: a stored run is ``summary`` (its setting has a row in the dataset's
summary.csv), ``validation fold`` (a fold run of a search: never a summary row), ``paired
comparison`` (an arm of a row of significance.csv or significance_refused.csv) or ``no summary
row``; a GPU run (``device`` starting with ``cuda``) is never deleted.

Artifacts named by :func:`rec_utils.results.artifact_path` (``<stem>__<id>``) get their protocol
and label back from the labels of the dataset's summary rows; side tables of runs
(:func:`rec_utils.results.save_side_table`: learning curves) and their figures carry them inside
(``label`` is ``?`` when neither says). Run it after a study (and before committing results)::

    .venv/bin/python -m rec_utils.inventory           # writes results/index.csv
    .venv/bin/python -m rec_utils.inventory --check   # fails when the index is stale or a path is too long

``--check`` also fails on a path longer than :data:`MAX_PATH` characters.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from .paths import RESULTS_ROOT
from .results import SIDE_TABLE_COLUMNS, artifact_tag, read_summary
from .utils import PROJECT_ROOT, atomic_write_text, short_hash

INDEX = "index.csv"
#: The longest path under results/ allowed (relative to the project, e.g. "results/beauty/...").
MAX_PATH = 120
COLUMNS = ("path", "dataset", "kind", "model", "protocol", "label", "setting_id", "split_fingerprint", "seed",
           "device", "status")
TOP_KINDS = {"runs": "run", "notebooks": "executed notebook", "grid": "grid cells", "tuning": "tuning study",
             "configs": "tuned config", "embeddings": "embeddings record", "figures": "figure"}


def files(root: Path) -> list[Path]:
    """Every file under ``root`` but the ad-hoc ``scratch/`` folder, the index itself and the lock
    files of writers (``*.lock``, never committed), sorted."""
    return sorted(p for p in root.rglob("*") if p.is_file() and "scratch" not in p.relative_to(root).parts[:1]
                  and p.relative_to(root).as_posix() != INDEX and "__pycache__" not in p.parts
                  and p.suffix != ".lock")


def _run_rows(root: Path) -> dict[Path, dict]:
    """Each run JSON's fields, by its path without suffix (its lists and side lists share it)."""
    out = {}
    for path in root.glob("*/runs/*/*.json"):
        rec = json.loads(path.read_text())
        out[path.with_suffix("")] = {
            "model": rec.get("model"), "protocol": rec.get("protocol"), "label": rec.get("variant", ""),
            "setting_id": rec.get("setting_id"), "split_fingerprint": rec.get("split_fingerprint"),
            "seed": rec.get("seed"), "device": rec.get("device")}
    return out


def _summarised(root: Path) -> set[tuple[str, str, str]]:
    """(dataset, setting_id, split fingerprint) of every summary row."""
    keys = set()
    for summary in root.glob("*/summary.csv"):
        s = read_summary(summary.parent)
        keys |= {(summary.parent.name, a, b) for a, b in zip(s["setting_id"], s["split_fingerprint"])}
    return keys


def _artifact_labels(root: Path) -> dict[str, dict[str, tuple[str, str]]]:
    """Per dataset: artifact id (:func:`rec_utils.results.artifact_path`) → (protocol, label),
    over the labels of its summary rows (with and without their split part)."""
    out = {}
    for summary in root.glob("*/summary.csv"):
        s = read_summary(summary.parent)
        pairs = set(zip(s["protocol"], s["variant"].fillna("")))
        ids = {}
        for protocol, label in pairs:
            for lab in {label, *(",".join(p for p in label.split(",") if p.startswith(("test_sessions", "train_sessions",
                                                                                    "tie_order", "tie_seed"))),)}:
                tag = artifact_tag(protocol, lab)
                if tag:
                    ids.setdefault(short_hash(tag)[:10], (protocol, lab))
        out[summary.parent.name] = ids
    return out


def _compared(root: Path) -> set[tuple[str, str]]:
    """(dataset, setting_id) of every arm of a paired comparison, recorded or refused
    (``significance.csv``, ``significance_refused.csv``: the refusal names the runs it refused)."""
    keys = set()
    for name in ("significance.csv", "significance_refused.csv"):
        for path in root.glob(f"*/{name}"):
            t = pd.read_csv(path, dtype=str)
            for col in ("setting_id_a", "setting_id_b"):
                if col in t:
                    keys |= {(path.parent.name, v) for v in t[col].dropna()}
    return keys


def _status(dataset: str, run: dict, summarised: set, compared: set) -> str:
    if "fold" in str(run.get("protocol")):
        return "validation fold"
    if (dataset, run["setting_id"], run["split_fingerprint"]) in summarised:
        return "summary"
    return "paired comparison" if (dataset, run["setting_id"]) in compared else "no summary row"


def build_index(root: str | Path = RESULTS_ROOT) -> pd.DataFrame:
    """The index of every file under ``root`` (module docstring); paths relative to the project."""
    root = Path(root)
    runs, summarised, labels = _run_rows(root), _summarised(root), _artifact_labels(root)
    compared = _compared(root)
    rows = []
    for path in files(root):
        rel = path.relative_to(root)
        parts = rel.parts
        dataset = parts[0] if len(parts) > 1 and parts[0] not in ("benchmarks", "figures") else ""
        row = {"path": _shown(path), "dataset": dataset}
        if parts[0] == "benchmarks":
            row["kind"] = "benchmark"
        elif parts[0] == "figures":
            row["kind"] = "figure" if path.suffix == ".png" else "figure index"
        elif len(parts) == 2:
            row["kind"] = "summary table" if path.name in ("summary.csv", "significance.csv") else "artifact"
            row.update(_artifact_fields(path, labels.get(dataset, {})))
        else:
            row["kind"] = TOP_KINDS.get(parts[1], parts[1])
            if parts[1] == "notebooks" and path.name.endswith(".done.json"):
                row["kind"] = "done marker"
            elif parts[1] == "figures":
                row.update(_artifact_fields(path, labels.get(dataset, {})))
            elif parts[1] == "runs":
                stem = path.with_name(path.name.split(".")[0])
                run = runs.get(stem)
                if run is not None:
                    row.update(run, status=_status(dataset, run, summarised, compared))
                row["kind"] = ("run" if path.suffix == ".json" else
                               "run lists" if path.name.count(".") == 1 else "run side lists")
        rows.append({c: "" if row.get(c) is None else str(row.get(c)) for c in COLUMNS})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _artifact_fields(path: Path, ids: dict) -> dict:
    """Protocol and label of an artifact named ``<stem>__<id>``; the standard split for a plain name."""
    stem = path.stem
    if "__" not in stem:
        return {"protocol": "temporal", "label": ""}
    tail = stem.rsplit("__", 1)[1]
    if tail in ids:
        protocol, label = ids[tail]
        return {"protocol": protocol, "label": label}
    inside = _side_table_fields(path.with_suffix(".csv"))
    return inside if inside is not None else {"label": "?"}  # a label no summary row has


def _side_table_fields(csv: Path) -> dict | None:
    """Protocol and label(s) a side table (:func:`rec_utils.results.save_side_table`) carries
    inside; a figure reads them from its CSV of the same name. None when there is no such table."""
    if not csv.is_file():
        return None
    t = pd.read_csv(csv, usecols=lambda c: c in SIDE_TABLE_COLUMNS, dtype=str).fillna("")
    if not set(SIDE_TABLE_COLUMNS) <= set(t.columns):
        return None
    join = lambda values: " | ".join(sorted(set(values)))
    return {"protocol": join(t["protocol"]), "label": join(t["label"].replace("", "(default)")),
            "setting_id": join(t["setting_id"])}


def _shown(path: Path) -> str:
    try:
        return path.relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def write_index(root: str | Path = RESULTS_ROOT) -> Path:
    """Write ``<root>/index.csv`` atomically; returns its path."""
    path = Path(root) / INDEX
    atomic_write_text(path, build_index(root).to_csv(index=False))
    return path


def check(root: str | Path = RESULTS_ROOT) -> list[str]:
    """What is wrong with the stored index: files it misses or lists in vain, rows that changed,
    paths longer than :data:`MAX_PATH`. Empty when all is well."""
    root = Path(root)
    fresh = build_index(root)
    shown = [p.relative_to(root.parent).as_posix() for p in files(root)]  # "results/<dataset>/..."
    problems = [f"path of {len(p)} characters (> {MAX_PATH}): {p}" for p in shown if len(p) > MAX_PATH]
    stored_path = root / INDEX
    if not stored_path.is_file():
        return problems + [f"{stored_path} is missing: run python -m rec_utils.inventory"]
    stored = pd.read_csv(stored_path, dtype=str, keep_default_na=False)
    missing = sorted(set(fresh["path"]) - set(stored["path"]))
    extra = sorted(set(stored["path"]) - set(fresh["path"]))
    problems += [f"not in the index: {p}" for p in missing] + [f"in the index but not on disk: {p}" for p in extra]
    both = fresh.merge(stored, on="path", suffixes=("", "_stored"))
    changed = both[(both[list(COLUMNS[1:])].to_numpy() != both[[f"{c}_stored" for c in COLUMNS[1:]]].to_numpy()).any(axis=1)]
    problems += [f"index row out of date: {p}" for p in changed["path"]]
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="fail when results/index.csv is stale or a path too long")
    ap.add_argument("--root", default=str(RESULTS_ROOT), help="the results folder (default results/)")
    a = ap.parse_args(argv)
    if a.check:
        problems = check(a.root)
        for p in problems[:50]:
            print(p)
        if len(problems) > 50:
            print(f"... and {len(problems) - 50} more")
        return 1 if problems else 0
    print(f"wrote {write_index(a.root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
