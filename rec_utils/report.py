"""Generate the result tables of README.md and docs/*.md from the result files (never typed).

    .venv/bin/python -m rec_utils.report            # rewrite every generated block and the master tables
    .venv/bin/python -m rec_utils.report --check    # exit 1, naming them, if any is out of date

A document (README.md or any docs/*.md) holds blocks delimited by ``<!-- BEGIN generated:NAME -->`` /
``<!-- END generated:NAME -->``; each NAME is produced by a ``table_*`` function below (see
``BLOCKS``), which returns a DataFrame, a list of them (one per test population) or a note when
there is nothing to show yet; ``figure-<stem>`` blocks show one figure of notebook 11's index.
Markdown is only the rendering (:func:`to_markdown`); links are rebased to the document's folder.
``results/<dataset>/master_table.csv`` is regenerated (and checked) as
:func:`rec_utils.analysis.master_table` writes it.

What a table may hold: one test population (the full test set, or one seeded sample of ``n``
sessions: :func:`populations`), one row per distinct result (:func:`dedupe`), labels of at most
:data:`MAX_LABEL` characters with a legend (:func:`compact_labels`), and a ``flag`` column marking
rows below MostPopular and rows with a run that stopped at its first epoch (:func:`row_flags`).
Rows are selected by what they are (model family, protocol, label), never by the notebook that
wrote them; where one label has rows of several split fingerprints (the data changed), the latest wins.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .analysis import latest_with_family, read_figure_index
from .metrics import METRIC_COLUMNS
from .paper import paper_results, paper_value
from .results import RESULTS_ROOT, below_most_popular, read_summary
from .significance import read_significance
from .utils import PROJECT_ROOT, atomic_write_text

README = PROJECT_ROOT / "README.md"
SHORT = {"ndcg": "NDCG", "hit_rate": "HR", "mrr": "MRR", "catalog_coverage": "Cov",
         "serendipity": "Ser", "novelty": "Nov"}


def _fmt(x, sd=None, digits=4) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "–"
    s = f"{x:.{digits}f}"
    if sd is not None and not (isinstance(sd, float) and np.isnan(sd)) and sd > 0:
        s += f" ± {sd:.{digits}f}"
    return s


def to_markdown(table: pd.DataFrame | list | str) -> str:
    """A table as GitHub Markdown (a note string passes through; a list renders each table):
    ``table.attrs["title"]`` goes above it in bold, ``table.attrs["note"]`` below as an italic line."""
    if isinstance(table, str):
        return table
    if isinstance(table, (list, tuple)):  # several tables, one test population each
        return "\n\n".join(to_markdown(t) for t in table)
    out = _md(table)
    title = table.attrs.get("title")
    note = table.attrs.get("note")
    return (f"**{title}**\n\n" if title else "") + out + (f"\n\n_{note}_" if note else "")


def _md(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _delta(ours: float, theirs: float) -> str:
    return f"{(ours - theirs) / theirs:+.0%}" if theirs == theirs else "–"


def summary(dataset: str) -> pd.DataFrame:
    """The dataset's summary rows, the latest per (model, protocol, label, aggregate) when a
    label has rows of several split fingerprints (older data), with a ``family`` column."""
    return latest_with_family(read_summary(RESULTS_ROOT / dataset))


def _mean_rows(dataset: str, protocol: str) -> pd.DataFrame:
    s = summary(dataset)
    if s.empty:
        return s
    return s[(s["protocol"] == protocol) & (s["aggregate"] == "mean")]


def _ties(s: pd.DataFrame) -> pd.DataFrame:
    """Each row's tie order and whether its setting is a tie variant (its label names the ties),
    read from the stored setting (``setting`` column), never parsed from the label."""
    settings = [json.loads(x) if isinstance(x, str) and x else {} for x in s["setting"]]
    order = [d.get("tie_order", "shuffle") for d in settings]
    variant = [(d.get("tie_order", "shuffle"), d.get("tie_seed", 0)) != ("shuffle", 0)
               or "ties" in d.get("label_fields", ()) for d in settings]
    return pd.DataFrame({"tie_order": order, "tie_variant": variant}, index=s.index)


def _is_tie_spread_row(s: pd.DataFrame) -> pd.Series:
    """Rows the tie-order table shows: the baselines' and LLMSeqSim's temporal tie variants
    (the neural models' tie variants are in the neural sensitivity table)."""
    return (s["protocol"] == "temporal") & _ties(s)["tie_variant"] & (s["family"] != "neural")


# --- what a table row is: its test population, its runs, its flags, its short label -------------------------------

FLAG_LEGEND = {
    "↓MP": ("at or below MostPopular on the validation cases the model early-stops on (`below MostPopular` of "
            "master_table.csv; decided on validation, never on test): tune it (notebook 10, `PRESET=\"tuned\"`)"),
    "<MP": ("at or below MostPopular's NDCG@20 on the same test sessions (descriptive only: whether to tune is "
            "decided on validation, ↓MP)"),
    "e1": "a run of the row stopped training at its first epoch (best validation epoch 1): a failed run, not a result",
}
#: a label longer than this is shortened (shared fields to a note, else a footnote)
MAX_LABEL = 60
_CACHE: dict = {}
_FIELD_SPLIT = re.compile(r",(?=[A-Za-z_][\w.]*=)")


def _cached(key, make):
    key = (str(RESULTS_ROOT),) + tuple(key)
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def _setting(row) -> dict:
    x = row.get("setting") if hasattr(row, "get") else None
    return json.loads(x) if isinstance(x, str) and x else {}


def _is_sampled(row) -> bool:
    """Whether the row was evaluated on a seeded sample of the test sessions (``test_sample``)."""
    return bool(_setting(row).get("test_sample") or 0)


def _runs(dataset: str) -> list[dict]:
    from .results import load_runs

    return _cached(("runs", dataset), lambda: load_runs(RESULTS_ROOT / dataset))


def first_epoch_stop(record: dict) -> bool:
    """Whether a stored run stopped training at its first epoch: its best validation epoch is
    epoch 1 of several (``fit_info`` as :func:`rec_utils.pairing.failed_run` reads it, else the
    run's ``history``, whose best epoch is the last one marked ``best``)."""
    from .pairing import failed_run

    if failed_run(record):
        return True
    info = record.get("fit_info") or {}
    if info.get("best_epoch") is not None:
        return False
    hist = record.get("history")
    if not isinstance(hist, list) or len(hist) < 2:
        return False
    best = [e.get("epoch") for e in hist if isinstance(e, dict) and e.get("best")]
    return bool(best) and best[-1] == 1


def _seeds(row) -> set[int]:
    return {int(x) for x in str(row.get("seeds", "")).split()} if str(row.get("seeds", "")).strip() else set()


def _first_epoch_rows(dataset: str) -> set[tuple[str, str]]:
    """(setting_id, split fingerprint, seed) of every stored run that stopped at its first epoch."""
    return _cached(("e1", dataset), lambda: {(r["setting_id"], r["split_fingerprint"], int(r["seed"]))
                                             for r in _runs(dataset) if first_epoch_stop(r)})


def _master(dataset: str) -> pd.DataFrame:
    from .analysis import master_table

    return _cached(("master", dataset), lambda: master_table(RESULTS_ROOT / dataset, dataset))


def _below_mp(dataset: str) -> dict:
    m = _master(dataset)
    if m.empty or "below MostPopular" not in m:
        return {}
    return {(r["model"], r["label"] if isinstance(r["label"], str) else "", r["protocol"], r["split"]): r["below MostPopular"]
            for _, r in m.iterrows()}


def _most_popular_test(dataset: str) -> dict:
    """(protocol, split fingerprint) → MostPopular's test NDCG@20 (its unlabelled row, or the row
    whose label only names the test sample)."""
    def make():
        s = summary(dataset)
        if s.empty:
            return {}
        mp = s[(s["model"] == "MostPopular") & (s["aggregate"] == "mean")
               & s["variant"].fillna("").str.fullmatch(r"(test_sessions=\d+)?")]
        return {(r["protocol"], r["split_fingerprint"]): float(r["ndcg@20"]) for _, r in mp.iterrows()}
    return _cached(("mp-test", dataset), make)


def row_flags(dataset: str, row) -> str:
    """The marks of a summary row (see :data:`FLAG_LEGEND`): ``↓MP`` (decided on validation),
    ``<MP`` (descriptive: at or below MostPopular on the row's own test sessions) and ``e1``."""
    flags = []
    below = _below_mp(dataset).get((row["model"], row["variant"], row["protocol"], row["split_fingerprint"]))
    if below is True or below == 1.0:
        flags.append("↓MP")
    mp = _most_popular_test(dataset).get((row["protocol"], row["split_fingerprint"]))
    if row["model"] != "MostPopular" and mp is not None and float(row["ndcg@20"]) <= mp:
        flags.append("<MP")
    e1 = _first_epoch_rows(dataset)
    if any((row["setting_id"], row["split_fingerprint"], s) in e1 for s in _seeds(row)):
        flags.append("e1")
    return " ".join(flags)


def result_key(row) -> tuple:
    """What makes two summary rows the same result: the same test sessions (protocol, split,
    number of sessions), the same seeds and the same twelve metrics (rows that come from the same
    stored runs, e.g. a default label and its explicit ``tie_seed=0``, or settings whose runs are
    identical)."""
    return (row["protocol"], row["split_fingerprint"], int(row["n_test_sessions"]), str(row.get("seeds", "")),
            tuple(round(float(row[c]), 8) for c in METRIC_COLUMNS))


def dedupe(s: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """One row per :func:`result_key` (the standard label, else the shortest, is kept) and a
    note per dropped row saying which shown row holds its results."""
    if s.empty:
        return s, []
    s = s.assign(_key=[result_key(r) for _, r in s.iterrows()], _len=s["variant"].str.len())
    keep = s.sort_values(["_len"], kind="stable").drop_duplicates("_key")
    notes = []
    for _, r in s[~s.index.isin(keep.index)].iterrows():
        k = keep[keep["_key"] == r["_key"]].iloc[0]
        notes.append(f"{_name(r['model'], r['variant'])} = {_name(k['model'], k['variant'])}")
    keep = s.loc[s.index.isin(keep.index)]
    return keep.drop(columns=["_key", "_len"]), notes


def _name(model: str, label: str) -> str:
    return model + (f" ({label})" if label else "")


def compact_labels(models, labels, drop=()) -> tuple[list[str], list[str]]:
    """Display names ``model (label)`` of a table's rows with labels no longer than
    :data:`MAX_LABEL`: fields in ``drop`` (e.g. ``test_sessions``, which the table's ``n`` says)
    are left out; for a model whose labels are longer, the fields all its long labels share go to
    a note (the name gets ``†``), and a label still too long is replaced by a footnote key."""
    fields = [[f for f in _FIELD_SPLIT.split(lab or "") if f and f.split("=")[0] not in drop] for lab in labels]
    models = list(models)
    shown = [",".join(f) for f in fields]
    notes = []
    for m in dict.fromkeys(models):
        idx = [i for i, mm in enumerate(models) if mm == m and len(shown[i]) > MAX_LABEL]
        if len(idx) < 2:
            continue
        common = [f for f in fields[idx[0]] if all(f in fields[i] for i in idx)]
        if common:
            for i in idx:
                shown[i] = ",".join(f for f in fields[i] if f not in common) + " †"
            notes.append(f"† {m} rows also have {', '.join(common)}")
    out, keys = [], 0
    for m, lab, full in zip(models, shown, fields):
        if len(lab) > MAX_LABEL + 2:
            keys += 1
            notes.append(f"[{keys}] {m} ({','.join(full)})")
            lab = f"[{keys}]"
        out.append(_name(m, lab.strip()) if lab.strip() != "†" else f"{m} †")
    return out, notes


def populations(s: pd.DataFrame) -> list[tuple[int | None, pd.DataFrame]]:
    """Rows by test population: (None, the rows on the full test set) first, then (n, the rows
    evaluated on a seeded sample of n test sessions) per n, largest first."""
    if s.empty:
        return []
    sampled = np.array([_is_sampled(r) for _, r in s.iterrows()], dtype=bool)
    out = [(None, s[~sampled])] if (~sampled).any() else []
    samp = s[sampled]
    for n in sorted(samp["n_test_sessions"].astype(int).unique(), reverse=True):
        out.append((int(n), samp[samp["n_test_sessions"].astype(int) == n]))
    return out


def _finish(t: pd.DataFrame, rows: pd.DataFrame, notes: list[str], flags: bool = True) -> pd.DataFrame:
    """A table's attrs: its test populations and result keys (for the tests) and its note (the
    label legend, merged rows, the flags' meaning)."""
    t.attrs["n_test_sessions"] = sorted({int(x) for x in rows["n_test_sessions"]}) if len(rows) else []
    t.attrs["result_keys"] = [result_key(r) for _, r in rows.iterrows()]
    parts = list(notes)
    if flags and "flag" in t and (t["flag"] != "").any():
        used = {f for v in t["flag"] for f in v.split()}
        parts += [f"{k}: {v}" for k, v in FLAG_LEGEND.items() if k in used]
    if parts:
        t.attrs["note"] = "; ".join(parts) + "."
    return t


def _metric_rows(dataset: str, protocol: str) -> pd.DataFrame:
    s = _mean_rows(dataset, protocol)
    return s if s.empty else s[~_is_tie_spread_row(s)]  # the tie-order table shows those


def _metrics_frame(dataset: str, rows: pd.DataFrame, sampled: bool) -> pd.DataFrame:
    rows, merged = dedupe(rows.sort_values("ndcg@20", ascending=False, kind="stable"))
    names, notes = compact_labels(rows["model"], rows["variant"], drop=("test_sessions",) if sampled else ())
    # the validation check (summary columns val_ndcg@20, val_ndcg@20_most_popular) where any row has one
    checked = "val_ndcg@20" in rows.columns and pd.to_numeric(rows["val_ndcg@20"], errors="coerce").notna().any()
    out = []
    for name, (_, r) in zip(names, rows.iterrows()):
        row = {"model": name, "seeds": int(r["n_seeds"])}
        if sampled:
            row["n"] = int(r["n_test_sessions"])
        for c in METRIC_COLUMNS:
            m, k = c.split("@")
            digits = 3 if m == "novelty" else 4
            sd = r.get(f"{c}_sd") if m in ("ndcg", "hit_rate") else None
            row[f"{SHORT[m]}@{k}"] = _fmt(r[c], sd, digits)
        row["split"] = r["split_fingerprint"]
        if checked:
            row["val NDCG@20 (MostPopular)"] = _validation_cell(r["model"], r.get("val_ndcg@20"),
                                                                r.get("val_ndcg@20_most_popular"))
        row["flag"] = row_flags(dataset, r)
        out.append(row)
    if merged:
        notes.append("same results, shown once: " + "; ".join(merged))
    return _finish(pd.DataFrame(out), rows, notes)


def table_metrics(dataset: str = "beauty", protocol: str = "temporal") -> pd.DataFrame | str:
    """All twelve metrics (mean ± sd over seeds) of every model of a protocol on the **full** test
    set (rows on a sample of test sessions are in :func:`table_metrics_sampled`), one row per
    distinct result (:func:`dedupe`), flagged (:func:`row_flags`)."""
    s = _metric_rows(dataset, protocol)
    if s.empty:
        return f"_No {protocol} results for {dataset} yet: run `make study`._"
    full = [rows for n, rows in populations(s) if n is None]
    if not full:
        return f"_No {protocol} results on the full test set of {dataset} yet._"
    return _metrics_frame(dataset, full[0], sampled=False)


def table_metrics_sampled(dataset: str = "beauty", protocol: str = "temporal") -> list[pd.DataFrame] | str:
    """The rows of :func:`table_metrics` evaluated on a seeded sample of test sessions: one table
    per sample size ``n`` (each a population of its own: never compare them with the full-test rows)."""
    s = _metric_rows(dataset, protocol)
    frames = []
    for n, rows in populations(s):
        if n is not None:
            t = _metrics_frame(dataset, rows, sampled=True)
            t.attrs["title"] = f"n = {n} test sessions (seeded sample; split {rows['split_fingerprint'].iloc[0]})"
            frames.append(t)
    return frames or f"_No {protocol} rows on a sample of test sessions for {dataset}._"


def table_vs_paper(dataset: str = "beauty") -> pd.DataFrame | str:
    """Ours (mean ± sd, and best of n on test) next to the paper's §9 values, temporal protocol."""
    s = summary(dataset)
    if s.empty:
        return "_No results yet._"
    s = s[(s["protocol"] == "temporal") & (s["variant"] == "")]
    paper = paper_results(dataset, section=None)
    rows, used = [], []
    for model, g in s.groupby("model", sort=False):
        mean = g[g["aggregate"] == "mean"]
        if mean.empty:
            continue
        mean = mean.iloc[0]
        best = g[g["aggregate"].str.startswith("best_of")]
        row = {"model": model, "seeds": int(mean["n_seeds"])}
        for c in ("ndcg@10", "ndcg@20", "hit_rate@20"):
            ours = mean[c]
            theirs = paper_value(paper, model, c)
            row[f"{c} ours"] = _fmt(ours, mean[f"{c}_sd"])
            if c != "hit_rate@20":
                row[f"{c} best-of-n"] = _fmt(best.iloc[0][c]) if len(best) else "–"
            row[f"{c} paper"] = _fmt(theirs)
            row[f"{c} Δ"] = _delta(ours, theirs)
        row["flag"] = row_flags(dataset, mean)
        rows.append(row)
        used.append(mean)
    if not rows:
        return "_No temporal results yet._"
    t = pd.DataFrame(rows)
    t["_order"] = [float(u["ndcg@20"]) for u in used]
    order = t.sort_values("_order", ascending=False, kind="stable").index
    return _finish(t.loc[order].drop(columns="_order").reset_index(drop=True),
                   pd.DataFrame(used).reset_index(drop=True).loc[order], [])


def table_tie_order(dataset: str = "beauty") -> pd.DataFrame | str:
    """NDCG@10/@20 over tie seeds (mean ± sd) and with the file's order: the baselines' spread
    from 01 (``tie_order_sensitivity.csv``) and every ``tie_order=...`` variant row of summary.csv."""
    frames = []
    path = RESULTS_ROOT / dataset / "tie_order_sensitivity.csv"
    if path.is_file():
        frames.append(pd.read_csv(path)[["model", "tie_order", "ndcg@10", "ndcg@20"]])
    s = summary(dataset)
    if not s.empty:
        v = s[(s["aggregate"] == "mean") & _is_tie_spread_row(s)]
        if len(v):
            frames.append(v.assign(tie_order=_ties(v)["tie_order"])[["model", "tie_order", "ndcg@10", "ndcg@20"]])
    if not frames:
        return "_Run notebooks 01 and 04 to measure the tie-order sensitivity._"
    t = pd.concat(frames, ignore_index=True).drop_duplicates()
    paper = paper_results(dataset, section=None)
    rows = []
    for model, g in t.groupby("model"):
        sh = g[g["tie_order"] == "shuffle"]
        fi = g[g["tie_order"] == "file"]
        row = {"model": model, "tie seeds": len(sh)}
        for c in ("ndcg@10", "ndcg@20"):
            row[f"{c} shuffled ties (mean ± sd)"] = _fmt(sh[c].mean(), sh[c].std(ddof=1))
            row[f"{c} min – max"] = f"{sh[c].min():.4f} – {sh[c].max():.4f}"
            row[f"{c} file order"] = _fmt(fi[c].iloc[0]) if len(fi) else "–"
            row[f"{c} paper"] = _fmt(paper_value(paper, model, c))
        rows.append(row)
    return pd.DataFrame(rows)


def table_neural_sensitivity(dataset: str = "beauty") -> pd.DataFrame | str:
    """The neural models on the temporal split under each setting that was run (notebook 02):
    the paper's configuration (variant "", shuffled ties, per-item bias) and its labelled
    variants (tie order, head bias, training budgets, ...), next to the paper's NDCG@10."""
    s = _mean_rows(dataset, "temporal")
    if s.empty:
        return "_No results yet._"
    s = s[s["family"] == "neural"]
    if s.empty:
        return "_Run notebook 02 (`make study PLAN=paper`) for the neural models._"
    s = next((rows for n, rows in populations(s) if n is None), s.iloc[:0])
    s, merged = dedupe(s.sort_values(["model", "variant"]))
    paper = paper_results(dataset, section=None)
    rows = []
    for _, r in s.iterrows():
        theirs = paper_value(paper, r["model"], "ndcg@10")
        rows.append({
            "model": r["model"],
            "setting": r["variant"] or ("like-for-like: the base's paper config, LLM-initialised item table"
                                        if r["model"].startswith("LLM2") else "paper config (shuffled ties, per-item bias)"),
            "seeds": int(r["n_seeds"]),
            "NDCG@10": _fmt(r["ndcg@10"], r["ndcg@10_sd"]),
            "NDCG@20": _fmt(r["ndcg@20"], r["ndcg@20_sd"]),
            "Cov@10": _fmt(r["catalog_coverage@10"]),
            "Nov@10": _fmt(r["novelty@10"], digits=3),
            "paper NDCG@10": _fmt(theirs),
            "paper Cov@10": _fmt(paper_value(paper, r["model"], "catalog_coverage@10")),
            "Δ paper": _delta(r["ndcg@10"], theirs),
            "flag": row_flags(dataset, r),
        })
    return _finish(pd.DataFrame(rows), s, ["same results, shown once: " + "; ".join(merged)] if merged else [])


def _benchmark(name: str, how: str, table) -> pd.DataFrame | str:
    """``table`` (a function of the frame) of ``results/benchmarks/<name>``, or the line saying
    which command writes that file (``how``) when it is missing."""
    path = RESULTS_ROOT / "benchmarks" / name
    return table(pd.read_csv(path)) if path.is_file() else f"_Run `{how}`._"


def table_benchmarks() -> pd.DataFrame | str:
    return _benchmark("baselines_cpu.csv", "python scripts/benchmark_baselines.py", _baselines)


def _baselines(b: pd.DataFrame) -> pd.DataFrame:
    fp = b[b["benchmark"] == "fit_predict"].groupby("model")[["fit_s", "predict_s"]].median()
    fp["test sessions/s"] = (b[b["benchmark"] == "fit_predict"].groupby("model")["sessions_per_s"].median()).round(0)
    fp = fp.round(3).reset_index()
    fp.attrs["note"] = (f"{b['device'].iloc[0]}, load average {b['load_avg_1m'].iloc[0]:.1f} during the run, "
                        f"commit {b['git_commit'].iloc[0]}.")
    return fp


def table_benchmarks_sknn_scale() -> pd.DataFrame | str:
    """V-SKNN predict time per session and peak memory by data size, faithful against indexed."""
    return _benchmark("sknn_scale.csv", "python scripts/benchmark_sknn_scale.py", _sknn_scale)


def _sknn_scale(b: pd.DataFrame) -> pd.DataFrame:
    t = b.assign(**{"interactions": b["interactions"].map("{:,}".format)})[
        ["interactions", "model", "n_predicted", "fit_s", "predict_ms_per_session", "peak_rss_mb"]
        + (["hit_rate@20_common"] if "hit_rate@20_common" in b else ["hit_rate@20"])].round(3)
    t = t.rename(columns={"n_predicted": "sessions predicted", "fit_s": "fit s", "peak_rss_mb": "peak MB",
                          "predict_ms_per_session": "predict ms/session"})
    t.attrs["note"] = (f"{b['device'].iloc[0]} ({b['cpu_count'].iloc[0]} cores), 1-minute load average "
                       f"{b['load_avg_1m_start'].min():.1f}-{b['load_avg_1m_end'].max():.1f} during the runs "
                       f"(a shared machine), commit {b['git_commit'].iloc[0]}.")
    return t


def table_study_workers() -> pd.DataFrame | str:
    """Wall time of one plan with 1 and with several workers (rec_utils.study --workers)."""
    return _benchmark("study_workers.csv", "python scripts/benchmark_study_workers.py --dataset <folder>",
                      _study_workers)


def _study_workers(b: pd.DataFrame) -> pd.DataFrame:
    t = b[["plan", "dataset", "runs", "workers", "wall_s", "load_avg_1m_start", "load_avg_1m_end"]].rename(
        columns={"wall_s": "wall s", "load_avg_1m_start": "load before", "load_avg_1m_end": "load after"})
    t.attrs["note"] = f"{b['device'].iloc[0]} ({b['cpu_count'].iloc[0]} cores, shared), commit {b['git_commit'].iloc[0]}."
    return t


def table_benchmarks_neural() -> pd.DataFrame | str:
    """Seconds per epoch (estimated from timed steps) and prediction time, per model, variant and device."""
    frames = [pd.read_csv(p) for p in sorted((RESULTS_ROOT / "benchmarks").glob("neural_*.csv"))]
    if not frames:
        return "_Run `python scripts/benchmark_neural.py`._"
    b = pd.concat(frames, ignore_index=True)
    b["device"] = b["device"].str.replace(r"^cpu:.*", "cpu", regex=True)
    b["threads"] = b["threads"].astype(object).fillna("–")
    t = (b.groupby(["model", "device", "threads", "variant"])[["epoch_s_est", "train_seq_per_s", "predict_s"]]
         .last().round(2).reset_index())
    return t.rename(columns={"epoch_s_est": "s/epoch", "train_seq_per_s": "train seq/s",
                             "predict_s": "predict 4,469 sessions (s)"})


def table_benchmarks_llm() -> pd.DataFrame | str:
    path = RESULTS_ROOT / "benchmarks" / "llm_embeddings.csv"
    if not path.is_file():
        return "_Run `make bench-llm`._"
    return pd.read_csv(path).drop(columns=["time", "n_items"], errors="ignore").round(3)


def table_significance(dataset: str = "beauty") -> pd.DataFrame | str:
    """Paired comparisons of ``results/<dataset>/significance.csv`` (notebooks 05, 06, 07, 10): A vs B
    on the same test sessions, mean per-session difference with its 95 % CI (the inverted sign-flip
    test), relative gain, the sign-flip p-value and its Holm adjustment within the file; only pairs
    of runs on one device, thread count and training code are in the file (the others are in
    ``significance_refused.csv``, :func:`table_significance_refused`)."""
    sig = read_significance(RESULTS_ROOT / dataset)
    if sig.empty:
        return "_Run notebook 05 (`make study`) for the paired comparisons._"
    sig = sig.fillna({"label_a": "", "label_b": ""})
    frames = []
    for n, g in sorted(sig.groupby("n_sessions"), key=lambda x: -x[0]):
        g = g.sort_values(["protocol", "model_a", "label_a", "model_b", "label_b", "metric"], kind="stable")
        names, notes = compact_labels(list(g["model_a"]) + list(g["model_b"]), list(g["label_a"]) + list(g["label_b"]),
                                      drop=("test_sessions",))
        rows = []
        for i, (_, r) in enumerate(g.iterrows()):
            rows.append({
                "A": names[i], "B": names[len(g) + i],
                "protocol": r["protocol"], "metric": r["metric"], "seeds": int(r["n_seed_pairs"]),
                "sessions": int(r["n_sessions"]), "A mean": _fmt(r["mean_a"]), "B mean": _fmt(r["mean_b"]),
                "A − B": f"{r['diff']:+.4f}", "95 % CI": f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]",
                "gain": _delta(r["mean_a"], r["mean_b"]) if r["mean_b"] else "–",
                "p (sign-flip)": f"{r['p_value']:.2g}",
                "p (Holm)": f"{r['p_holm']:.2g}" if r.get("p_holm") == r.get("p_holm") else "–",
                "device": str(r.get("device_a", "")).split(":")[0] or "–",
            })
        t = pd.DataFrame(rows)
        t.attrs["n_test_sessions"] = [int(n)]
        t.attrs["title"] = f"{int(n):,} test sessions" + (" (the full test set)" if n == sig["n_sessions"].max() else
                                                         " (a seeded sample)")
        if notes:
            t.attrs["note"] = "; ".join(notes) + "."
        frames.append(t)
    return frames


def table_tuning(dataset: str = "beauty") -> pd.DataFrame | str:
    """Notebook 10's TPE studies (``results/<dataset>/tuning/*__comparison.csv``): per study the
    paper's and the best trial's configuration, validation NDCG@20 on the same folds (mean of 3)
    and test NDCG@20 (mean ± sd over seeds), and the paired test difference tuned − paper with its
    95 % bootstrap CI."""
    files = sorted((RESULTS_ROOT / dataset / "tuning").glob("*__comparison.csv"))
    if not files:
        return "_Run notebook 10 (`make study`) for the TPE searches._"
    rows = []
    for f in files:
        comp = pd.read_csv(f)
        for _, r in comp.iterrows():
            tuned = r["configuration"] == "tuned"
            fold = ("all" if not r["fold_sample"] else f"{int(r['fold_sample'])} cases") + (
                f", {int(r['fold_train_sample'])} train sessions" if r["fold_train_sample"] else "")
            rows.append({
                "model": r["model"], "study": r["study"], "folds": fold,
                "fixed": "" if r["fixed"] in ("{}", None) or pd.isna(r["fixed"]) else r["fixed"],
                "configuration": f"tuned (trial {int(r['trial'])} of {int(r['n_trials'])})" if tuned else "paper",
                "validation NDCG@20": _fmt(r["validation_ndcg@20"], digits=5),
                "test NDCG@20": _fmt(r["test_ndcg@20"], r["test_ndcg@20_sd"]), "seeds": int(r["n_seeds"]),
                "test tuned − paper [95 % CI]": (f"{r['test_diff_tuned_minus_paper']:+.4f} "
                                                f"[{r['test_diff_ci_low']:+.4f}, {r['test_diff_ci_high']:+.4f}]")
                if tuned else "",
            })
    return pd.DataFrame(rows)


def table_llmseqprompt(dataset: str = "beauty") -> pd.DataFrame | str:
    """Notebook 06: every LLMSeqPrompt row beside the baselines evaluated on the same test subset
    (same split fingerprint), with the output shares each LLMSeqPrompt run recorded: one table
    per subset (a test population of its own), largest first."""
    s = summary(dataset)
    if s.empty or not (s["model"] == "LLMSeqPrompt").any():
        return "_Run notebook 06 (`make study`) for LLMSeqPrompt._"
    s = s[(s["aggregate"] == "mean") & (s["notebook"] == "06_llmseqprompt")]
    shares = {}
    for path in sorted((RESULTS_ROOT / dataset / "runs" / "LLMSeqPrompt").glob("*.json")):
        r = json.loads(path.read_text())
        out = (r.get("fit_info") or {}).get("output") or {}
        shares[(r["setting_id"], r["split_fingerprint"])] = out
    frames = []
    for fp, g in s.groupby("split_fingerprint", sort=False):
        g, merged = dedupe(g.sort_values("ndcg@20", ascending=False, kind="stable"))
        names, notes = compact_labels(g["model"], g["variant"], drop=("test_sessions",))
        rows = []
        for name, (_, r) in zip(names, g.iterrows()):
            o = shares.get((r["setting_id"], fp), {})
            pct = lambda k: f"{o[k]:.0%}" if k in o else "–"  # noqa: E731
            rows.append({"model": name, "n": int(r["n_test_sessions"]), "NDCG@20": _fmt(r["ndcg@20"]),
                         "HR@20": _fmt(r["hit_rate@20"]), "MRR@20": _fmt(r["mrr@20"]),
                         "Cov@20": _fmt(r["catalog_coverage@20"]), "unique": pct("unique_share"),
                         "duplicate": pct("duplicate_share"), "hallucinated": pct("hallucinated_share"),
                         "parse failures": pct("parse_failure_share"), "wall s": f"{r['wall_s']:.0f}",
                         "flag": row_flags(dataset, r)})
        if merged:
            notes.append("same results, shown once: " + "; ".join(merged))
        t = _finish(pd.DataFrame(rows), g, notes)
        t.attrs["title"] = f"n = {int(g['n_test_sessions'].iloc[0])} test sessions (split {fp})"
        frames.append(t)
    return sorted(frames, key=lambda t: -t["n"].iloc[0])


def _llmseqprompt_rows(b: pd.DataFrame) -> pd.DataFrame:
    """``llmseqprompt.csv`` with the columns later options added filled for the rows made before
    them: fp32, beam decoding every name to its end, no LoRA (LoRA on every layer); empty decoder /
    path / batching. ``lora`` reads "LoRA" or "LoRA top-k" (adapters on the top k layers only)."""
    b = b.copy()
    for c in ("decoder", "code_path", "batching", "beam_stop"):
        b[c] = b[c].fillna("") if c in b else ""
    b["precision"] = b["precision"].fillna("fp32") if "precision" in b else "fp32"
    b.loc[(b["decoder"] == "beam") & (b["beam_stop"] == ""), "beam_stop"] = "end"
    b["lora"] = b["lora"].map({True: "LoRA", "True": "LoRA"}).fillna("") if "lora" in b else ""
    if "lora_layers" in b:
        top = pd.to_numeric(b["lora_layers"], errors="coerce").fillna(0).astype(int)
        b.loc[(b["lora"] == "LoRA") & (top > 0), "lora"] = "LoRA top-" + top.astype(str)
    return b


def table_benchmarks_llmseqprompt() -> pd.DataFrame | str:
    """Fine-tuning tokens/s and generation items/s of the stored LLMSeqPrompt runs."""
    path = RESULTS_ROOT / "benchmarks" / "llmseqprompt.csv"
    if not path.is_file():
        return "_Run `.venv/bin/python scripts/benchmark_llmseqprompt.py`._"
    b = _llmseqprompt_rows(pd.read_csv(path))
    cols = ["benchmark", "code_path", "precision", "batching", "lora", "llm_variant", "model", "decoder", "beam_stop",
            "value", "n", "seconds", "threads", "load_avg_1m", "device"]
    return b[[c for c in cols if c in b.columns]].round(2)


#: Issue 24's throughput targets on 2 threads of the 2-core CPU.
LLMSEQPROMPT_TARGETS = {"generation_items_per_s": 20.0, "finetune_train_tokens_per_s": 300.0}


def table_benchmarks_llmseqprompt_latest() -> pd.DataFrame | str:
    """The latest ``--measure`` run of ``scripts/benchmark_llmseqprompt.py`` per benchmark, one
    row per code path (reference = the revision-2 loops / padded full-head fine-tuning, measured in
    the same run, interleaved): mean over its rounds, × the reference, and issue 24's target."""
    return _benchmark("llmseqprompt.csv", "python scripts/benchmark_llmseqprompt.py --measure", _llmseqprompt_latest)


def _llmseqprompt_latest(b: pd.DataFrame) -> pd.DataFrame | str:
    if "measurement" not in b:
        return "_No `--measure` run yet._"
    b = _llmseqprompt_rows(b[(b["source"] == "benchmark") & b["measurement"].notna()])
    parts, notes = [], []
    for bench, g in b.groupby("benchmark", sort=False):
        g = g[g["measurement"] == g["measurement"].max()]
        keys = ["decoder", "code_path", "precision", "beam_stop", "batching", "lora"]
        t = g.groupby(keys, sort=False).agg(value=("value", "mean"), rounds=("value", "size"),
                                           load=("load_avg_1m", "mean")).reset_index()
        ref = t[t["code_path"] == "reference"].set_index("decoder")["value"]
        t["x_reference"] = (t["value"] / t["decoder"].map(ref)).round(2)
        t["target"] = LLMSEQPROMPT_TARGETS.get(bench)
        t["meets_target"] = (t["value"] >= t["target"]).map({True: "yes", False: "no"})
        t.insert(0, "benchmark", bench)
        parts.append(t)
        notes.append(f"{bench}: run {g['measurement'].iloc[0]}, commit {g['run_git_commit'].iloc[0]}, "
                     f"{int(g['threads'].iloc[0])} threads, {g['device'].iloc[0]}, load average "
                     f"{g['load_avg_1m'].min():.1f}-{g['load_avg_1m'].max():.1f}, n = {int(g['n'].iloc[0])}")
    t = pd.concat(parts, ignore_index=True).round({"value": 2, "load": 2})
    t.attrs["note"] = "; ".join(notes) + ". beam_stop unique is another ranking (a name scored by its shortest unique prefix)."
    return t


#: Rows of results/benchmarks/plan_times.csv that are a plan's totals (scripts/record_plan_time.py):
#: the measured wall clock of a full recording, and the estimate assembled from re-measured runs.
PLAN_WALL_CLOCK = "TOTAL (make study, wall clock)"
PLAN_ASSEMBLED = "TOTAL (assembled from each run's latest from-nothing time)"


def table_plan_times() -> pd.DataFrame | str:
    """Minutes per notebook run of each plan, each run's latest from-nothing recording
    (``results/benchmarks/plan_times.csv``, ``scripts/record_plan_time.py``; its commit beside it),
    the plan's measured wall clock and, where entries were re-measured on their own since, the
    assembled total (labelled an estimate); the conditions of each recording as a note."""
    path = RESULTS_ROOT / "benchmarks" / "plan_times.csv"
    if not path.is_file():
        return "_No plan recorded: `scripts/record_plan_time.py` after a plan ran from nothing._"
    b = pd.read_csv(path, dtype={"git_commit": str}).fillna("")
    first_seen = {k: i for i, k in reversed(list(enumerate(zip(b["plan"], b["run"]))))}
    total = PLAN_WALL_CLOCK  # an assembled total goes right after its plan's measured one
    # the runs of each plan's latest full recording, and any run recorded (re-measured) after it
    full = b[b["run"] == total].sort_values("finished", kind="stable").groupby("plan").tail(1).set_index("plan")
    in_full = set(zip(b["plan"], b["run"], b["git_commit"]))
    keep = [p not in full.index or (p, r, full.at[p, "git_commit"]) in in_full or f >= full.at[p, "finished"]
            for p, r, f in zip(b["plan"], b["run"], b["finished"])]
    b = b[keep].sort_values("finished", kind="stable").groupby(["plan", "run"], sort=False).tail(1)
    b = b.assign(_order=[first_seen.get((p, total), first_seen[(p, r)]) + 0.5 if r == PLAN_ASSEMBLED
                         else first_seen[(p, r)] for p, r in zip(b["plan"], b["run"])]).sort_values("_order")
    t = b.assign(minutes=(b["wall_s"].astype(float) / 60).round(1))[["plan", "run", "minutes", "git_commit"]]
    notes = b.drop_duplicates(["plan", "git_commit", "note"])
    t.attrs["note"] = " ".join(f"{p} ({c}): {n}." for p, c, n in zip(notes["plan"], notes["git_commit"], notes["note"]))
    return t


BLOCKS = {
    "benchmarks-plans": table_plan_times,
    "beauty-tuning": lambda: table_tuning("beauty"),
    "beauty-significance": lambda: table_significance("beauty"),
    "beauty-vs-paper": lambda: table_vs_paper("beauty"),
    "beauty-temporal": lambda: table_metrics("beauty", "temporal"),
    "beauty-loo": lambda: table_metrics("beauty", "loo"),
    "ml-latest-small-temporal": lambda: table_metrics("ml-latest-small", "temporal"),
    "beauty-tie-order": lambda: table_tie_order("beauty"),
    "beauty-neural-sensitivity": lambda: table_neural_sensitivity("beauty"),
    "benchmarks-baselines": table_benchmarks,
    "benchmarks-neural": table_benchmarks_neural,
    "benchmarks-sknn-scale": table_benchmarks_sknn_scale,
    "benchmarks-study-workers": table_study_workers,
    "benchmarks-llm": table_benchmarks_llm,
    "beauty-llmseqprompt": lambda: table_llmseqprompt("beauty"),
    "benchmarks-llmseqprompt": table_benchmarks_llmseqprompt,
    "benchmarks-llmseqprompt-latest": table_benchmarks_llmseqprompt_latest,
}


def table_hybrids(dataset: str = "beauty") -> pd.DataFrame | str:
    """The hybrids of §6.6 (notebook 07) on the temporal test split: mean ± sd over seeds of
    NDCG/HR at 10 and 20, the paper's §9.4 values and the relative difference (standard label
    only; the faithful-popularity rows are labelled), and the components the grid chose."""
    s = _mean_rows(dataset, "temporal")
    s = s[s["family"] == "hybrid"] if len(s) else s
    if s.empty:
        return "_Run notebook 07 (`make study`) for the hybrids._"
    s = next((rows for n, rows in populations(s) if n is None), s.iloc[:0])
    s, merged = dedupe(s.sort_values(["model", "variant"]))
    paper = paper_results(dataset, section="9.4")
    rows = []
    for _, r in s.iterrows():
        cfg = json.loads(r["config"])
        params = {k: cfg.get(k) for k in ("rank", "confidence", "quantile", "diversity_quantile") if cfg.get(k) is not None}
        row = {"hybrid": r["model"] + (f" ({r['variant']})" if r["variant"] else ""), "seeds": int(r["n_seeds"]),
               "chosen on the folds": ", ".join(filter(None, [cfg.get("method"), cfg.get("model_1"), cfg.get("model_2")]
                                                          + [f"{k}={v}" for k, v in params.items()]))}
        for c in ("ndcg@10", "hit_rate@10", "ndcg@20", "hit_rate@20"):
            theirs = paper_value(paper, r["model"], c) if r["variant"] == "" else np.nan
            m, k = c.split("@")
            sd = r.get(f"{c}_sd")
            row[f"{SHORT[m]}@{k}"] = _fmt(r[c], sd if sd == sd and sd >= 5e-7 else None)  # float noise is no spread
            row[f"{SHORT[m]}@{k} paper"] = _fmt(theirs)
            row[f"{SHORT[m]}@{k} Δ"] = _delta(r[c], theirs)
        rows.append(row)
    return _finish(pd.DataFrame(rows), s, ["same results, shown once: " + "; ".join(merged)] if merged else [],
                   flags=False)


def table_hybrid_bands(dataset: str = "beauty") -> pd.DataFrame | str:
    """LLMSeqSim&Sequential per popularity band of the last prompt item (notebook 07's
    ``hybrid_popularity_bands.csv``): sessions and NDCG@20 of each component and hybrid (HR@20 is in the file)."""
    path = RESULTS_ROOT / dataset / "hybrid_popularity_bands.csv"
    if not path.is_file():
        return "_Run notebook 07 (`make study`) for the per-band table._"
    b = pd.read_csv(path)
    cols = [c for c in b.columns if c.endswith("ndcg@20")]
    out = b[["band (last item popularity)", "sessions"] + cols].copy()
    for c in cols:
        out[c] = out[c].map(_fmt)
    out["sessions"] = out["sessions"].round().astype(int)
    return out


def table_master(dataset: str = "beauty") -> list[pd.DataFrame] | str:
    """The master table of notebook 11 (``results/<dataset>/master_table.csv``, checked by
    ``--check`` to be what :func:`rec_utils.analysis.master_table` writes), compact: one table per
    protocol and test population (full test set, then each sample size), one row per distinct
    result, with NDCG@10/20 and HR@20 (mean ± sd), coverage and novelty @20, the paper's NDCG@20
    with the relative difference, the best-of-n NDCG@20 (labelled extra) and the row's flags."""
    path = RESULTS_ROOT / dataset / "master_table.csv"
    if not path.is_file():
        return "_Run notebook 11 (`make study`) for the master table._"
    t = pd.read_csv(path, dtype={"label": str, "split": str}).fillna({"label": ""})
    by_key = {(r["model"], r["label"], r["protocol"], r["split"]): r for _, r in t.iterrows()}
    s = _mean_rows_all(dataset)
    s = s[[(r["model"], r["variant"], r["protocol"], r["split_fingerprint"]) in by_key for _, r in s.iterrows()]]
    checked = "val ndcg@20" in t.columns and pd.to_numeric(t["val ndcg@20"], errors="coerce").notna().any()
    frames = []
    for protocol in dict.fromkeys(t["protocol"]):
        for n, rows in populations(s[s["protocol"] == protocol]):
            rows, merged = dedupe(rows.sort_values("ndcg@20", ascending=False, kind="stable"))
            names, notes = compact_labels(rows["model"], rows["variant"], drop=("test_sessions",) if n else ())
            out = []
            for name, (_, sr) in zip(names, rows.iterrows()):
                r = by_key[(sr["model"], sr["variant"], sr["protocol"], sr["split_fingerprint"])]
                out.append({"model": name, **({"n": n} if n else {}), "seeds": int(r["seeds"]),
                            **{f"{SHORT[c.split('@')[0]]}@{c.split('@')[1]}": _fmt(r[c], r[f"{c} sd"])
                               for c in ("ndcg@10", "ndcg@20", "hit_rate@20")},
                            "Cov@20": _fmt(r["catalog_coverage@20"]), "Nov@20": _fmt(r["novelty@20"], digits=3),
                            "NDCG@20 paper": _fmt(r["ndcg@20 paper"]), "Δ paper": _delta(r["ndcg@20"], r["ndcg@20 paper"]),
                            "NDCG@20 best-of-n (extra)": _fmt(r["ndcg@20 best-of-n"]),
                            **({"val NDCG@20 (MostPopular)": _validation_cell(r["model"], r.get("val ndcg@20"),
                                                                              r.get("val ndcg@20 MostPopular"))}
                               if checked else {}),
                            "flag": row_flags(dataset, sr)})
            if merged:
                notes.append("same results, shown once: " + "; ".join(merged))
            f = _finish(pd.DataFrame(out), rows, notes)
            f.attrs["title"] = f"{protocol}, " + ("full test set" if n is None else f"n = {n} test sessions (seeded sample)")
            frames.append(f)
    return frames


def _mean_rows_all(dataset: str) -> pd.DataFrame:
    s = summary(dataset)
    return s if s.empty else s[s["aggregate"] == "mean"]


def _validation_cell(model: str, score, ref) -> str:
    """A table's validation check of a row: "0.0342 (0.0400) below: tune ..." where the
    validation NDCG@20 ``score`` is at or below MostPopular's ``ref`` on the same validation cases
    (the flag of :func:`rec_utils.analysis.flag_below_most_popular`, recorded with the summary
    row), the two numbers alone where above, "" for rows without a validation score (models that
    do not early-stop on one; tables written before the check)."""
    score, ref = pd.to_numeric(pd.Series([score, ref]), errors="coerce").tolist()
    if not (score == score and ref == ref):
        return ""
    below = below_most_popular(score, ref) is True and model != "MostPopular"
    return f"{_fmt(score)} ({_fmt(ref)})" + (' below: tune (notebook 10, PRESET="tuned")' if below else "")


def figures_block() -> str:
    """The figures notebook 11 wrote (``results/figures/index.csv``), as Markdown images with
    their captions."""

    idx = read_figure_index()
    if idx.empty:
        return "_Run notebook 11 (`make study`) for the figures._"
    return "\n\n".join(f"**{r['title']}**\n\n![{r['title']}]({r['file']})\n\n_{r['caption']}_"
                        for _, r in idx.iterrows())


def table_significance_refused(dataset: str = "beauty") -> pd.DataFrame | str:
    """Pairs kept out of significance.csv (``significance_refused.csv``): which, and why (device,
    thread count, training code, settings, failed run), one row per pair (its metrics together)."""
    from .significance import read_significance

    ref = read_significance(RESULTS_ROOT / dataset, "significance_refused.csv")
    if ref.empty:
        return "_No refused pair._"
    ref = ref.fillna({"label_a": "", "label_b": ""})
    ref = ref.drop_duplicates(["model_a", "label_a", "model_b", "label_b", "protocol", "split_fingerprint"])
    return pd.DataFrame([{
        "A": r["model_a"] + (f" ({r['label_a']})" if r["label_a"] else ""),
        "B": r["model_b"] + (f" ({r['label_b']})" if r["label_b"] else ""),
        "protocol": r["protocol"], "seeds": int(r["n_seed_pairs"]), "why not paired": r["pairing"],
    } for _, r in ref.iterrows()]).sort_values(["protocol", "A", "B"], kind="stable")


def table_llm2_fair(datasets=("beauty", "ml-latest-small")) -> pd.DataFrame | str:
    """"Does LLM initialisation help?" (issue 22): per dataset, model and protocol, the base
    (``init=random``) and the LLM2 arm trained as pairs by :mod:`rec_utils.llm2_comparison` (same
    split, device, threads, code; each arm's own preset or equal-budget TPE optimum): mean ± sd over
    seeds, the paired Δ NDCG@10 / @20 with the 95 % CI of the inverted sign-flip test and the
    Holm-adjusted p (family: this table's rows of the dataset), the device and code both share,
    and the paper's relative gain beside ours. Refused pairs are shown with their reason."""
    from .llm2_comparison import FAIR_FAMILY, paper_gain
    from .significance import read_significance

    rows = []
    for ds in datasets:
        sig = read_significance(RESULTS_ROOT / ds)
        ref = read_significance(RESULTS_ROOT / ds, "significance_refused.csv")
        sig = sig[sig["family"] == FAIR_FAMILY] if "family" in sig else sig.iloc[:0]
        ref = ref[ref["family"] == FAIR_FAMILY] if "family" in ref else ref.iloc[:0]
        for (model, la, lb, protocol), g in sig.groupby(["model_a", "label_a", "label_b", "protocol"], sort=True):
            by = {r["metric"]: r for _, r in g.iterrows()}
            if not {"ndcg@10", "ndcg@20"} <= set(by):
                continue
            r10, r20 = by["ndcg@10"], by["ndcg@20"]
            ours = r10["diff"] / r10["mean_b"] if r10["mean_b"] else float("nan")
            rows.append({
                "dataset": ds, "model": model, "protocol": protocol,
                "configs": la.split("tuned: ", 1)[1] if "tuned: " in la else "preset (like-for-like)",
                "seeds": str(int(r10["n_seed_pairs"])),
                "base NDCG@10": _fmt(r10["mean_b"], r10["seed_sd_b"]),
                "LLM2 NDCG@10": _fmt(r10["mean_a"], r10["seed_sd_a"]),
                "Δ NDCG@10 [95 % CI]": f"{r10['diff']:+.4f} [{r10['ci_low']:+.4f}, {r10['ci_high']:+.4f}]",
                "p Holm @10": f"{r10['p_holm']:.2g}",
                "base NDCG@20": _fmt(r20["mean_b"], r20["seed_sd_b"]),
                "LLM2 NDCG@20": _fmt(r20["mean_a"], r20["seed_sd_a"]),
                "Δ NDCG@20 [95 % CI]": f"{r20['diff']:+.4f} [{r20['ci_low']:+.4f}, {r20['ci_high']:+.4f}]",
                "p Holm @20": f"{r20['p_holm']:.2g}",
                "gain @10 ours / paper": f"{ours:+.0%} / " + (f"{g_:+.0%}" if (g_ := paper_gain(model, ds, 'ndcg@10')) == g_ else "–"),
                "device, code (commits)": f"{str(r10['device_a']).split(' x')[0]}, {r10['threads_a']} thr, "
                                          f"{r10['code_fingerprint']} ({r10['git_commit_a']})",
            })
        for (model, la, lb, protocol), g in ref.groupby(["model_a", "label_a", "label_b", "protocol"], sort=True):
            rows.append({"dataset": ds, "model": model, "protocol": protocol,
                         "configs": la.split("tuned: ", 1)[1] if "tuned: " in la else "preset (like-for-like)",
                         "seeds": str(int(g["n_seed_pairs"].iloc[0])), "base NDCG@10": "refused",
                         "LLM2 NDCG@10": g["pairing"].iloc[0]})
    from .models.llm2 import LLM2_BASES

    have = {(r["dataset"], r["model"], r["protocol"]) for r in rows}
    for model in LLM2_BASES:  # the paper's claim beside a model not yet paired
        if ("beauty", model, "temporal") not in have:
            g_ = paper_gain(model, "beauty", "ndcg@10")
            rows.append({"dataset": "beauty", "model": model, "protocol": "temporal", "base NDCG@10": "not paired yet",
                         "gain @10 ours / paper": "– / " + (f"{g_:+.0%}" if g_ == g_ else "–")})
    cols = ["dataset", "model", "protocol", "configs", "seeds", "base NDCG@10", "LLM2 NDCG@10", "Δ NDCG@10 [95 % CI]",
            "p Holm @10", "base NDCG@20", "LLM2 NDCG@20", "Δ NDCG@20 [95 % CI]", "p Holm @20",
            "gain @10 ours / paper", "device, code (commits)"]
    return pd.DataFrame(rows).reindex(columns=cols).astype(object).fillna("")


def table_llm2_fair_by_dataset(datasets=("beauty", "ml-latest-small")) -> list[pd.DataFrame] | str:
    """:func:`table_llm2_fair` as one table per dataset and protocol (each a test population of its
    own), titled with its number of test sessions; datasets without any row are left out."""
    from .llm2_comparison import FAIR_FAMILY
    from .significance import read_significance

    frames = []
    for ds in datasets:
        t = table_llm2_fair((ds,))
        t = t[t["dataset"] == ds].drop(columns="dataset").reset_index(drop=True)
        if t.empty:
            continue
        sig = read_significance(RESULTS_ROOT / ds)
        sig = sig[sig["family"] == FAIR_FAMILY] if "family" in sig else sig.iloc[:0]
        for protocol in dict.fromkeys(t["protocol"]):
            f = t[t["protocol"] == protocol].reset_index(drop=True)
            n = sorted({int(x) for x in sig.loc[sig["protocol"] == protocol, "n_sessions"]})
            f.attrs["n_test_sessions"] = n
            f.attrs["title"] = f"{ds}, {protocol}" + (f": {n[0]:,} test sessions" if len(n) == 1 else "")
            frames.append(f)
    return frames or "_No fair LLM2 pair yet: `.venv/bin/python scripts/run_llm2_pairs.py`._"


def table_benchmarks_llm2_pairs() -> pd.DataFrame | str:
    """scripts/benchmark_llm2_pairs.py: seconds per paired run and per search trial, measured on this
    (shared) machine, and the plans' sizes extrapolated from them (labelled)."""
    path = RESULTS_ROOT / "benchmarks" / "llm2_pairs.csv"
    if not path.is_file():
        return "_Run `.venv/bin/python scripts/benchmark_llm2_pairs.py`._"
    b = pd.read_csv(path)
    cols = [c for c in ("kind", "dataset", "model", "protocol", "arm", "device", "threads", "runs", "run_s",
                        "epochs", "s_per_epoch", "what", "total_s", "hours") if c in b]
    t = b[cols].copy()
    for c in ("threads", "runs"):
        if c in t:
            t[c] = t[c].map(lambda v: "" if v != v else str(int(v)) if isinstance(v, (int, float)) else str(v))
    for c in ("run_s", "s_per_epoch", "total_s"):
        if c in t:
            t[c] = t[c].round(0)
    for c in ("epochs", "hours"):
        if c in t:
            t[c] = t[c].round(1)
    t = t.astype(object).where(t.notna(), "")
    t.attrs["note"] = (f"load average {b['load_avg_1m'].iloc[0]:.1f} on 2 cores when written (other jobs ran beside), "
                       f"commit {b['git_commit'].iloc[0]}; extrapolated rows are estimates, not measurements.")
    return t


def table_benchmarks_llm2_variants() -> pd.DataFrame | str:
    """scripts/benchmark_llm2_variants.py: seconds per epoch of every LLM2 initialisation variant
    and training objective (issue 23) against the base, from a timed slice of one epoch; a variant
    costing more than twice the base per epoch is marked."""
    return _benchmark("llm2_variants.csv", ".venv/bin/python scripts/benchmark_llm2_variants.py", _llm2_variants)


def _llm2_variants(b: pd.DataFrame) -> pd.DataFrame:
    t = b[["model", "variant", "loss", "epoch_cpu_s", "x_base", "epoch_s", "x_base_wall", "over_2x_base", "error"]].copy()
    t["over 2× base"] = t.pop("over_2x_base").map(lambda v: "yes" if v is True or str(v) == "True" else "")
    t["error"] = t["error"].fillna("").astype(str).str.slice(0, 60)
    t = t.rename(columns={"epoch_cpu_s": "CPU s/epoch", "x_base": "× base (CPU)", "epoch_s": "wall s/epoch",
                          "x_base_wall": "× base (wall)"}).round(2)
    t = t.astype(object).where(t.notna(), "")
    t.attrs["note"] = (f"{b['device'].iloc[0]}, {int(b['threads'].iloc[0])} thread, a timed slice of one epoch scaled "
                       f"to the epoch (fraction per row in the CSV); load average {b['load_avg_1m_before'].min():.1f}-"
                       f"{b['load_avg_1m_after'].max():.1f} (a shared machine: CPU seconds are the steadier measure, "
                       f"ratios carry about ±15 % noise), commit {b['git_commit'].iloc[0]}.")
    return t


BLOCKS.update({
    "benchmarks-llm2-variants": table_benchmarks_llm2_variants,
    "llm2-fair": table_llm2_fair_by_dataset,
    "benchmarks-llm2-pairs": table_benchmarks_llm2_pairs,
    "beauty-significance-refused": lambda: table_significance_refused("beauty"),
})


BLOCKS.update({
    "beauty-hybrids": lambda: table_hybrids("beauty"),
    "beauty-hybrid-bands": lambda: table_hybrid_bands("beauty"),
    "beauty-master": lambda: table_master("beauty"),
    "results-figures": figures_block,
})


# --- the README's headline: the paper's three questions ---------------------------------------------------------

HEADLINE_METRIC = "ndcg@20"


def _split_of(dataset: str, row):
    """The split a summary row was evaluated on, rebuilt from its setting and checked by fingerprint."""
    from .data import load_dataset
    from .split import make_split

    st = _setting(row)
    key = tuple(st.get(k) for k in ("protocol", "tie_order", "tie_seed", "test_sample", "test_sample_seed",
                                    "train_sample", "train_sample_seed"))

    def make():
        protocol, tie_order, tie_seed, n_test, s_test, n_train, s_train = key
        with warnings.catch_warnings():  # the data's warnings (empty titles) are notebook 00's to show
            warnings.simplefilter("ignore")
            data = _cached(("data", dataset), lambda: load_dataset(dataset))
        return (make_split(data, protocol, tie_order=tie_order or "shuffle", tie_seed=tie_seed or 0)
                .sample_test(n_test or 0, seed=s_test or 0).sample_train(n_train or 0, seed=s_train or 0))

    split = _cached(("split", dataset) + key, make)
    if split.fingerprint != row["split_fingerprint"]:
        raise ValueError(f"{dataset}: the split rebuilt for {_name(row['model'], row['variant'])} has fingerprint "
                         f"{split.fingerprint}, its rows {row['split_fingerprint']}: the data changed, rerun the study")
    return split


def paired_on_sessions(dataset: str, row_a, row_b, metric: str = HEADLINE_METRIC) -> dict:
    """A − B on the same test sessions for two summary rows of one split: per session the metric
    of each side's stored top-20 lists averaged over that side's seeds (a deterministic model has
    one), then :func:`rec_utils.significance.paired_stats` (mean difference, the inverted
    sign-flip 95 % CI and p). ValueError when the rows are of different splits or a run has no lists."""
    from .significance import load_lists, paired_stats, per_session

    if row_a["split_fingerprint"] != row_b["split_fingerprint"]:
        raise ValueError("paired_on_sessions: the rows are of different splits")
    split = _split_of(dataset, row_a)
    targets = pd.Series(np.asarray(split.test.targets, np.int64), index=np.asarray(split.test.session_ids, np.int64))

    def side(row):
        runs = [r for r in _runs(dataset) if r["setting_id"] == row["setting_id"]
                and r["split_fingerprint"] == row["split_fingerprint"] and int(r["seed"]) in _seeds(row)]
        if not runs:
            raise ValueError(f"no stored runs for {_name(row['model'], row['variant'])}")
        vals = []
        for r in runs:
            ids, recs = load_lists(r, RESULTS_ROOT / dataset)
            v = pd.Series(per_session(recs, targets.reindex(ids).to_numpy(), metric), index=ids)
            vals.append(v.reindex(targets.index).to_numpy())
        return np.mean(vals, axis=0)

    return paired_stats(side(row_a), side(row_b))


def _paper_pair(dataset: str, a: str, b: str, metric: str, sections=(None,)) -> tuple[float, float]:
    for section in sections:
        paper = paper_results(dataset, section=section)
        va, vb = paper_value(paper, a, metric), paper_value(paper, b, metric)
        if va == va and vb == vb:
            return va, vb
    paper = paper_results(dataset, section=None)
    return paper_value(paper, a, metric), paper_value(paper, b, metric)


def _paper_cell(a: str, b: str, va: float, vb: float) -> str:
    if va != va and vb != vb:
        return "–"
    return f"{_fmt(va)} vs {_fmt(vb)} ({_delta(va, vb)})"


def _paired_or_missing(dataset: str, row_a, row_b, metric: str) -> dict:
    """:func:`paired_on_sessions`, or (when a side's stored lists are missing) the seed means with
    a NaN CI, so the headline still renders and says that the pair could not be computed."""
    try:
        return paired_on_sessions(dataset, row_a, row_b, metric)
    except (FileNotFoundError, ValueError) as e:
        nan = float("nan")
        return {"mean_a": float(row_a[metric]), "mean_b": float(row_b[metric]), "diff": nan, "ci_low": nan,
                "ci_high": nan, "error": str(e)}


def _pair_row(table: pd.DataFrame, row_a, row_b, metric: str):
    """The last row of a significance table for these two summary rows' settings, split and metric."""
    if table.empty or not {"setting_id_a", "setting_id_b", "split_fingerprint"} <= set(table.columns):
        return None
    t = table[(table["setting_id_a"] == row_a["setting_id"]) & (table["setting_id_b"] == row_b["setting_id"])
              & (table["split_fingerprint"] == row_a["split_fingerprint"]) & (table["metric"] == metric)]
    return t.iloc[-1] if len(t) else None


def _stored_or_paired(dataset: str, row_a, row_b, metric: str, stored: pd.DataFrame | None = None,
                      refused: pd.DataFrame | None = None) -> dict:
    """The pair as its notebook recorded it in significance.csv (``stored``; same settings, split
    and metric: the CI a reader finds there too); a pair the pairing rules refused
    (significance_refused.csv, ``refused``) has no CI, only the reason (key ``refused``); else
    :func:`_paired_or_missing` (recomputed here). The tables are read when not given."""
    stored = read_significance(RESULTS_ROOT / dataset) if stored is None else stored
    h = _pair_row(stored, row_a, row_b, metric)
    if h is not None:
        return {k: float(h[k]) for k in ("mean_a", "mean_b", "diff", "ci_low", "ci_high")}
    refused = read_significance(RESULTS_ROOT / dataset, "significance_refused.csv") if refused is None else refused
    r = _pair_row(refused, row_a, row_b, metric)
    if r is not None:  # the pairing rules refuse this pair: never shown as a comparison
        nan = float("nan")
        return {"mean_a": float(row_a[metric]), "mean_b": float(row_b[metric]), "diff": nan, "ci_low": nan,
                "ci_high": nan, "refused": str(r["pairing"])}
    return _paired_or_missing(dataset, row_a, row_b, metric)


def _ci(st) -> str:
    if st.get("refused"):
        return f"refused, {st['refused']}"[:140]
    if st["ci_low"] != st["ci_low"]:
        return "not computed: " + str(st.get("error", "no stored lists"))[:80]
    return f"{st['diff']:+.4f} [{st['ci_low']:+.4f}, {st['ci_high']:+.4f}]"


def verdict(st) -> str:
    """The answer a paired comparison gives: ``A better`` / ``B better`` when its 95 % CI excludes
    0 on that side, ``no difference shown`` when it contains 0."""
    if st["ci_low"] != st["ci_low"]:
        return "–"
    if st["ci_low"] > 0:
        return "A better"
    if st["ci_high"] < 0:
        return "B better"
    return "no difference shown"


def table_headline(dataset: str = "beauty") -> list[pd.DataFrame] | str:
    """The paper's three questions on ``dataset``'s temporal split, NDCG@20, ours beside the paper's
    (its values on its own test set; §9):

    1. LLMSeqSim against the best sequential (neural) model, standard settings, full test set;
    2. LLM initialisation: per LLM2 model the paired gain over its base trained as a pair (the
       ``llm2-fair`` rows of significance.csv, :func:`table_llm2_fair`);
    3. the fine-tuned LLM (LLMSeqPrompt) against MostPopular and V-SKNN on the same sampled test sessions.

    A − B is the mean per-session difference with the 95 % CI of the inverted sign-flip test
    (the stored pair of significance.csv where one was recorded: questions 2 and 3; else
    :func:`paired_on_sessions`). Two tables: the full test set
    (questions 1, 2) and the largest sample of test sessions (question 3), never mixed."""
    from .llm2_comparison import FAIR_FAMILY
    from .models.llm2 import LLM2_BASES
    from .significance import read_significance

    m = HEADLINE_METRIC
    s = _mean_rows(dataset, "temporal")
    if s.empty:
        return "_No results yet: run `make study`._"
    pops = populations(s)
    full = next((rows for n, rows in pops if n is None), s.iloc[:0])
    std = full[full["variant"] == ""]
    rows_full = []
    sim = std[std["model"] == "LLMSeqSim"]
    seq = std[std["family"] == "neural"].sort_values(m, ascending=False, kind="stable")
    paper = paper_results(dataset, section=None)
    if len(sim) and len(seq):
        a, b = sim.iloc[0], seq.iloc[0]
        st = _paired_or_missing(dataset, a, b, m)
        paper_seq = max((x for x in paper.index if model_family_safe(x) == "neural"),
                        key=lambda x: paper_value(paper, x, m) if paper_value(paper, x, m) == paper_value(paper, x, m) else -1,
                        default=None)
        va, vb = paper_value(paper, "LLMSeqSim", m), paper_value(paper, paper_seq, m) if paper_seq else float("nan")
        rows_full.append({"question": "1. LLMSeqSim vs the best sequential model", "A": "LLMSeqSim",
                          "B": f"{b['model']} (our best)", "seeds A / B": f"{int(a['n_seeds'])} / {int(b['n_seeds'])}",
                          "A NDCG@20": _fmt(a[m], a[f"{m}_sd"]), "B NDCG@20": _fmt(b[m], b[f"{m}_sd"]),
                          "A − B [95 % CI]": _ci(st), "answer": verdict(st), "gain": _delta(st["mean_a"], st["mean_b"]),
                          "paper A vs B (gain)": _paper_cell("LLMSeqSim", paper_seq, va, vb) + (f", B = {paper_seq}" if paper_seq else ""),
                          "flag": " ".join(dict.fromkeys(filter(None, [row_flags(dataset, a), row_flags(dataset, b)])))})
    sig = read_significance(RESULTS_ROOT / dataset)
    refused = read_significance(RESULTS_ROOT / dataset, "significance_refused.csv")
    fair = sig[sig["family"] == FAIR_FAMILY] if "family" in sig else sig.iloc[:0]
    fair = fair[(fair["metric"] == m) & (fair["protocol"] == "temporal")]
    for model in LLM2_BASES:
        base = LLM2_BASES[model]
        va, vb = _paper_pair(dataset, model, base, m, sections=("9.2", "9.1"))
        g = fair[fair["model_a"] == model]
        if g.empty:
            rows_full.append({"question": "2. LLM-initialised item table vs random", "A": model, "B": f"{base} (= {model}, init=random)",
                              "seeds A / B": "–", "A NDCG@20": "not paired yet", "B NDCG@20": "", "A − B [95 % CI]": "",
                              "answer": "open", "gain": "", "paper A vs B (gain)": _paper_cell(model, base, va, vb), "flag": ""})
            continue
        for _, r in g.iterrows():
            cfg = r["label_a"].split("tuned: ", 1)[1] if "tuned: " in str(r["label_a"]) else "preset"
            rows_full.append({"question": "2. LLM-initialised item table vs random", "A": f"{model} ({cfg})",
                              "B": f"{base} (= {model}, init=random)",
                              "seeds A / B": f"{int(r['n_seed_pairs'])} / {int(r['n_seed_pairs'])} (pairs)",
                              "A NDCG@20": _fmt(r["mean_a"], r["seed_sd_a"]), "B NDCG@20": _fmt(r["mean_b"], r["seed_sd_b"]),
                              "A − B [95 % CI]": _ci(r), "answer": verdict(r), "gain": _delta(r["mean_a"], r["mean_b"]),
                              "paper A vs B (gain)": _paper_cell(model, base, va, vb), "flag": ""})
            if int(r["n_sessions"]) != int(full["n_test_sessions"].iloc[0]):
                raise ValueError(f"{model}'s fair pair is on {r['n_sessions']} sessions, not the full test set")
    frames = []
    if rows_full:
        t = pd.DataFrame(rows_full)
        t.attrs["n_test_sessions"] = sorted({int(x) for x in full["n_test_sessions"]})
        t.attrs["title"] = f"Full test set: {int(full['n_test_sessions'].iloc[0]):,} test sessions ({dataset}, temporal split)"
        frames.append(t)
    sampled = [(n, rows) for n, rows in pops if n is not None and (rows["model"] == "LLMSeqPrompt").any()]
    if sampled:
        n, rows = sampled[0]
        rows, _ = dedupe(rows)
        prompt = rows[rows["model"] == "LLMSeqPrompt"].sort_values(m, ascending=False, kind="stable")
        names, notes = compact_labels(prompt["model"], prompt["variant"], drop=("test_sessions",))
        out = []
        for name, (_, a) in zip(names, prompt.iterrows()):
            for bname in ("MostPopular", "V-SKNN", "LLMSeqSim"):
                bb = rows[(rows["model"] == bname) & (rows["split_fingerprint"] == a["split_fingerprint"])]
                if bb.empty:
                    continue
                b = bb.iloc[0]
                st = _stored_or_paired(dataset, a, b, m, sig, refused)
                out.append({"question": "3. fine-tuned LLM vs baselines, same sessions", "n": int(a["n_test_sessions"]),
                            "A": name, "B": bname, "seeds A / B": f"{int(a['n_seeds'])} / {int(b['n_seeds'])}",
                            "A NDCG@20": _fmt(a[m], a[f"{m}_sd"]), "B NDCG@20": _fmt(b[m], b[f"{m}_sd"]),
                            "A − B [95 % CI]": _ci(st), "answer": verdict(st),
                            "gain": _delta(st["mean_a"], st["mean_b"]) if st["mean_b"] and not st.get("refused") else "–",
                            "paper A vs B (gain)": _paper_cell("LLMSeqPrompt", bname,
                                                               paper_value(paper, _paper_prompt(paper), m), paper_value(paper, bname, m)),
                            "flag": row_flags(dataset, a)})
        if out:
            t = pd.DataFrame(out)
            t.attrs["n_test_sessions"] = [int(n)]
            t.attrs["title"] = (f"A seeded sample of n = {n} test sessions (the largest LLMSeqPrompt was run on; "
                                f"split {rows['split_fingerprint'].iloc[0]})")
            notes.append(f"paper: its LLMSeqPrompt ({_paper_prompt(paper)}) on its full test set")
            t.attrs["note"] = "; ".join(notes) + "."
            frames.append(t)
    for f in frames:
        if "flag" in f and (f["flag"] != "").any():
            flags = {x for v in f["flag"] for x in v.split()}
            extra = "; ".join(f"{k}: {v}" for k, v in FLAG_LEGEND.items() if k in flags)
            f.attrs["note"] = (f.attrs.get("note", "").rstrip(".") + "; " if f.attrs.get("note") else "") + extra + "."
    return frames or "_No results yet: run `make study`._"


def _paper_prompt(paper: pd.DataFrame) -> str:
    return next((x for x in paper.index if x.startswith("LLMSeqPrompt")), "LLMSeqPrompt")


def model_family_safe(name: str) -> str | None:
    from .models import model_family

    try:
        return model_family(name)
    except Exception:  # a paper-only name (e.g. "LLMSeqSim (last item, dot)")
        return None


def tuning_figures(dataset: str = "beauty") -> str:
    """Notebook 10's figures of every study in the tuning table (``<study>__history.png``,
    ``__importances.png``), as Markdown images, found by the studies' comparison files."""
    folder = RESULTS_ROOT / dataset / "tuning"
    out = []
    for comp in sorted(folder.glob("*__comparison.csv")):
        study = comp.name[: -len("__comparison.csv")]
        for kind, what in (("history", "search history"), ("importances", "parameter importances")):
            png = folder / f"{study}__{kind}.png"
            if png.is_file():
                out.append(f"![{study}: {what}]({Path(os.path.relpath(png, PROJECT_ROOT)).as_posix()})")
    return "\n\n".join(out) if out else "_Run notebook 10 (`make study`) for the search figures._"


def benchmark_figure(name: str) -> str:
    """``results/benchmarks/<name>.png`` as a Markdown image (or a note when it is missing)."""
    png = RESULTS_ROOT / "benchmarks" / f"{name}.png"
    if not png.is_file():
        return f"_No figure results/benchmarks/{name}.png yet._"
    return f"![{name}]({Path(os.path.relpath(png, PROJECT_ROOT)).as_posix()})"


BLOCKS.update({
    "headline": lambda: table_headline("beauty"),
    "beauty-temporal-sampled": lambda: table_metrics_sampled("beauty", "temporal"),
    "ml-latest-small-temporal-sampled": lambda: table_metrics_sampled("ml-latest-small", "temporal"),
    "beauty-tuning-figures": lambda: tuning_figures("beauty"),
    "benchmarks-baselines-figure": lambda: benchmark_figure("baselines_cpu"),
})


def figure_block(stem: str) -> str:
    """One figure of ``results/figures/index.csv`` (block ``figure-<file stem>``), as a Markdown
    image with its title and caption, so a document shows it next to the text that discusses it."""
    idx = read_figure_index()
    hit = idx[[Path(f).stem == stem for f in idx["file"]]] if len(idx) else idx
    if hit.empty:
        return f"_No figure {stem} yet: run notebook 11 (`make study`)._"
    r = hit.iloc[0]
    return f"**{r['title']}**\n\n![{r['title']}]({r['file']})\n\n_{r['caption']}_"


def block_body(name: str) -> str:
    if name in BLOCKS:
        return to_markdown(BLOCKS[name]())
    if name.startswith("figure-"):
        return figure_block(name[len("figure-"):])
    return f"_unknown block {name}_"


_LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s#:]+)(\))")


def _rebase(body: str, doc_dir: Path) -> str:
    """Relative links of a block (written relative to the project root) made relative to the
    folder of the document that holds it, so they work on GitHub and in a local browser."""
    if doc_dir.resolve() == PROJECT_ROOT.resolve():
        return body
    return _LINK.sub(lambda m: m.group(1) + os.path.relpath(PROJECT_ROOT / m.group(2), doc_dir).replace(os.sep, "/")
                     + m.group(3), body)


def render(text: str, doc_dir: Path | None = None) -> str:
    """``text`` with every generated block rewritten; links rebased to ``doc_dir`` (default the project root)."""
    doc_dir = PROJECT_ROOT if doc_dir is None else Path(doc_dir)

    def repl(m):
        name = m.group(1)
        body = _rebase(block_body(name), doc_dir)
        return f"<!-- BEGIN generated:{name} -->\n{body}\n<!-- END generated:{name} -->"

    return re.sub(r"<!-- BEGIN generated:([\w-]+) -->.*?<!-- END generated:\1 -->", repl, text, flags=re.S)


def documents() -> list[Path]:
    """Every document that may hold generated blocks: README.md and docs/*.md."""
    return [README, *sorted((PROJECT_ROOT / "docs").glob("*.md"))]


def master_tables() -> dict[Path, str]:
    """``results/<dataset>/master_table.csv`` → the text :func:`rec_utils.analysis.master_table`
    gives for every dataset folder with a summary.csv (what notebook 11 writes)."""
    out = {}
    for d in sorted(p for p in RESULTS_ROOT.iterdir() if p.is_dir() and (p / "summary.csv").is_file()):
        t = _master(d.name)
        if not t.empty:
            out[d / "master_table.csv"] = t.to_csv(index=False)
    return out


def stale(paths=None) -> list[str]:
    """What is out of date: documents whose generated blocks differ from what the result files
    give, and master tables that differ from what the code writes (empty when all is current)."""
    _CACHE.clear()
    bad = []
    for doc in (documents() if paths is None else paths):
        old = doc.read_text()
        if render(old, doc.parent) != old:
            bad.append(str(doc.relative_to(PROJECT_ROOT)))
    for path, text in master_tables().items():
        if not path.is_file() or path.read_text() != text:
            bad.append(str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path))
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="regenerate the generated blocks of README.md and docs/*.md, and the "
                                             "master tables results/<dataset>/master_table.csv")
    ap.add_argument("--check", action="store_true", help="exit 1 (naming them) if any block or master table is out of date")
    args = ap.parse_args(argv)
    if args.check:
        bad = stale()
        if bad:
            print("out of date: " + ", ".join(bad) + "\nrun `.venv/bin/python -m rec_utils.report`")
            return 1
        print(f"{len(documents())} documents and {len(master_tables())} master tables are current")
        return 0
    _CACHE.clear()
    for path, text in master_tables().items():  # first: the master blocks render these files
        if not path.is_file() or path.read_text() != text:
            atomic_write_text(path, text)
            print(f"{path} regenerated")
    for doc in documents():
        old = doc.read_text()
        new = render(old, doc.parent)
        if new != old:
            atomic_write_text(doc, new)
            print(f"{doc.relative_to(PROJECT_ROOT)}: blocks regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
