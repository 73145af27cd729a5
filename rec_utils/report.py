"""Generate the README's result tables from ``results/<dataset>/summary.csv`` (never typed).

    .venv/bin/python -m rec_utils.report            # rewrite the marked blocks of README.md
    .venv/bin/python -m rec_utils.report --check    # exit 1 if README.md is out of date

README.md holds blocks delimited by ``<!-- BEGIN generated:NAME -->`` / ``<!-- END generated:NAME -->``;
each NAME is produced by a ``table_*`` function below, which returns a DataFrame (or a note when
there is nothing to show yet); Markdown is only the rendering (:func:`to_markdown`). Rows are
selected by what they are (model family, protocol, label), never by the notebook that wrote
them; where one label has rows of several split fingerprints (the data changed), the latest wins.
"""
from __future__ import annotations

import argparse
import json
import re
import sys

import numpy as np
import pandas as pd

from .analysis import latest_with_family, read_figure_index
from .metrics import METRIC_COLUMNS
from .paper import paper_results, paper_value
from .results import RESULTS_ROOT, below_most_popular, read_summary
from .significance import read_significance
from .utils import PROJECT_ROOT

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


def to_markdown(table: pd.DataFrame | str) -> str:
    """A table as GitHub Markdown (a note string passes through); ``table.attrs["note"]`` is
    appended as an italic line."""
    if isinstance(table, str):
        return table
    out = _md(table)
    note = table.attrs.get("note")
    return out + (f"\n\n_{note}_" if note else "")


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


def table_metrics(dataset: str = "beauty", protocol: str = "temporal") -> pd.DataFrame | str:
    """All twelve metrics (mean ± sd over seeds) for every model of a protocol, and where any row
    has one, the validation check against MostPopular (:func:`_validation_cell`)."""
    s = _mean_rows(dataset, protocol)
    if s.empty:
        return f"_No {protocol} results for {dataset} yet: run `make study`._"
    s = s[~_is_tie_spread_row(s)]  # the tie-order table shows those
    s = s.sort_values("ndcg@20", ascending=False)
    # the validation check (summary columns val_ndcg@20, val_ndcg@20_most_popular) where any row has one
    checked = "val_ndcg@20" in s.columns and pd.to_numeric(s["val_ndcg@20"], errors="coerce").notna().any()
    rows = []
    for _, r in s.iterrows():
        name = r["model"] + (f" ({r['variant']})" if r["variant"] else "")
        row = {"model": name, "seeds": int(r["n_seeds"])}
        for c in METRIC_COLUMNS:
            m, k = c.split("@")
            digits = 3 if m == "novelty" else 4
            sd = r.get(f"{c}_sd") if m in ("ndcg", "hit_rate") else None
            row[f"{SHORT[m]}@{k}"] = _fmt(r[c], sd, digits)
        row["split"] = r["split_fingerprint"]
        if checked:
            row["val NDCG@20 (MostPopular)"] = _validation_cell(r["model"], r.get("val_ndcg@20"),
                                                                r.get("val_ndcg@20_most_popular"))
        rows.append(row)
    return pd.DataFrame(rows)


def table_vs_paper(dataset: str = "beauty") -> pd.DataFrame | str:
    """Ours (mean ± sd, and best of n on test) next to the paper's §9 values, temporal protocol."""
    s = summary(dataset)
    if s.empty:
        return "_No results yet._"
    s = s[(s["protocol"] == "temporal") & (s["variant"] == "")]
    paper = paper_results(dataset, section=None)
    rows = []
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
        rows.append(row)
    if not rows:
        return "_No temporal results yet._"
    return pd.DataFrame(rows).sort_values("ndcg@20 ours", ascending=False)


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
    paper = paper_results(dataset, section=None)
    rows = []
    for _, r in s.sort_values(["model", "variant"]).iterrows():
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
        })
    return pd.DataFrame(rows)


def table_benchmarks() -> pd.DataFrame | str:
    path = RESULTS_ROOT / "benchmarks" / "baselines_cpu.csv"
    if not path.is_file():
        return "_Run `python scripts/benchmark_baselines.py`._"
    b = pd.read_csv(path)
    fp = b[b["benchmark"] == "fit_predict"].groupby("model")[["fit_s", "predict_s"]].median()
    fp["test sessions/s"] = (b[b["benchmark"] == "fit_predict"].groupby("model")["sessions_per_s"].median()).round(0)
    fp = fp.round(3).reset_index()
    fp.attrs["note"] = (f"{b['device'].iloc[0]}, load average {b['load_avg_1m'].iloc[0]:.1f} during the run, "
                        f"commit {b['git_commit'].iloc[0]}.")
    return fp


def table_benchmarks_sknn_scale() -> pd.DataFrame | str:
    """V-SKNN predict time per session and peak memory by data size, faithful against indexed."""
    path = RESULTS_ROOT / "benchmarks" / "sknn_scale.csv"
    if not path.is_file():
        return "_Run `python scripts/benchmark_sknn_scale.py`._"
    b = pd.read_csv(path)
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
    path = RESULTS_ROOT / "benchmarks" / "study_workers.csv"
    if not path.is_file():
        return "_Run `python scripts/benchmark_study_workers.py --dataset <folder>`._"
    b = pd.read_csv(path)
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
    rows = []
    for _, r in sig.iterrows():
        rows.append({
            "A": r["model_a"] + (f" ({r['label_a']})" if r["label_a"] else ""),
            "B": r["model_b"] + (f" ({r['label_b']})" if r["label_b"] else ""),
            "protocol": r["protocol"], "metric": r["metric"], "seeds": int(r["n_seed_pairs"]),
            "sessions": int(r["n_sessions"]), "A mean": _fmt(r["mean_a"]), "B mean": _fmt(r["mean_b"]),
            "A − B": f"{r['diff']:+.4f}", "95 % CI": f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]",
            "gain": _delta(r["mean_a"], r["mean_b"]) if r["mean_b"] else "–",
            "p (sign-flip)": f"{r['p_value']:.2g}",
            "p (Holm)": f"{r['p_holm']:.2g}" if r.get("p_holm") == r.get("p_holm") else "–",
            "device": str(r.get("device_a", "")).split(":")[0] or "–",
        })
    return pd.DataFrame(rows).sort_values(["protocol", "A", "B", "metric"], kind="stable")


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
    (same split fingerprint), with the output shares each LLMSeqPrompt run recorded."""
    s = summary(dataset)
    if s.empty or not (s["model"] == "LLMSeqPrompt").any():
        return "_Run notebook 06 (`make study`) for LLMSeqPrompt._"
    s = s[(s["aggregate"] == "mean") & (s["notebook"] == "06_llmseqprompt")]
    shares = {}
    for path in sorted((RESULTS_ROOT / dataset / "runs" / "LLMSeqPrompt").glob("*.json")):
        r = json.loads(path.read_text())
        out = (r.get("fit_info") or {}).get("output") or {}
        shares[(r["setting_id"], r["split_fingerprint"])] = out
    rows = []
    for fp, g in s.groupby("split_fingerprint", sort=False):
        for _, r in g.sort_values("ndcg@20", ascending=False).iterrows():
            o = shares.get((r["setting_id"], fp), {})
            pct = lambda k: f"{o[k]:.0%}" if k in o else "–"  # noqa: E731
            rows.append({"model": r["model"] + (f" ({r['variant']})" if r["variant"] else ""),
                         "sessions": int(r["n_test_sessions"]), "NDCG@20": _fmt(r["ndcg@20"]),
                         "HR@20": _fmt(r["hit_rate@20"]), "MRR@20": _fmt(r["mrr@20"]),
                         "Cov@20": _fmt(r["catalog_coverage@20"]), "unique": pct("unique_share"),
                         "duplicate": pct("duplicate_share"), "hallucinated": pct("hallucinated_share"),
                         "parse failures": pct("parse_failure_share"), "wall s": f"{r['wall_s']:.0f}",
                         "split": fp})
    return pd.DataFrame(rows)


def table_benchmarks_llmseqprompt() -> pd.DataFrame | str:
    """Fine-tuning tokens/s and generation items/s of the stored LLMSeqPrompt runs."""
    path = RESULTS_ROOT / "benchmarks" / "llmseqprompt.csv"
    if not path.is_file():
        return "_Run `.venv/bin/python scripts/benchmark_llmseqprompt.py`._"
    b = pd.read_csv(path).fillna({"decoder": ""})
    cols = ["benchmark", "llm_variant", "model", "decoder", "value", "n", "seconds", "threads", "load_avg_1m", "device"]
    return b[[c for c in cols if c in b.columns]].round(2)


def table_plan_times() -> pd.DataFrame | str:
    """Minutes per notebook run of each plan's latest from-nothing recording
    (``results/benchmarks/plan_times.csv``, ``scripts/record_plan_time.py``) and the plan's
    measured wall clock; the conditions of each recording as a note."""
    path = RESULTS_ROOT / "benchmarks" / "plan_times.csv"
    if not path.is_file():
        return "_No plan recorded: `scripts/record_plan_time.py` after a plan ran from nothing._"
    b = pd.read_csv(path, dtype={"git_commit": str}).fillna("")
    latest = b.groupby("plan")["finished"].transform("max")
    last_commit = b[b["finished"] == latest].groupby("plan")["git_commit"].first()
    b = b[b["git_commit"] == b["plan"].map(last_commit)]
    t = b.assign(minutes=(b["wall_s"].astype(float) / 60).round(1))[["plan", "run", "minutes", "git_commit"]]
    t.attrs["note"] = " ".join(f"{p}: {n}." for p, n in b.groupby("plan")["note"].first().items())
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
}


def table_hybrids(dataset: str = "beauty") -> pd.DataFrame | str:
    """The hybrids of §6.6 (notebook 07) on the temporal test split: mean ± sd over seeds of
    NDCG/HR at 10 and 20, the paper's §9.4 values and the relative difference (standard label
    only; the faithful-popularity rows are labelled), and the components the grid chose."""
    s = _mean_rows(dataset, "temporal")
    s = s[s["family"] == "hybrid"] if len(s) else s
    if s.empty:
        return "_Run notebook 07 (`make study`) for the hybrids._"
    paper = paper_results(dataset, section="9.4")
    rows = []
    for _, r in s.sort_values(["model", "variant"]).iterrows():
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
    return pd.DataFrame(rows)


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


def table_master(dataset: str = "beauty") -> pd.DataFrame | str:
    """The master table of notebook 11 (``results/<dataset>/master_table.csv``), compact: every
    model × protocol × label with NDCG@10/20 and HR@20 (mean ± sd), coverage and novelty @20,
    the paper's NDCG@20 with the relative difference, the best-of-n NDCG@20 (labelled extra) and
    the validation check: validation NDCG@20 with MostPopular's on the same validation cases in
    brackets, "below: tune" where it is not above (:func:`_validation_cell`)."""
    path = RESULTS_ROOT / dataset / "master_table.csv"
    if not path.is_file():
        return "_Run notebook 11 (`make study`) for the master table._"
    t = pd.read_csv(path, dtype={"label": str, "split": str}).fillna({"label": ""})
    rows = []
    for _, r in t.iterrows():
        rows.append({"model": r["model"] + (f" ({r['label']})" if r["label"] else ""), "protocol": r["protocol"],
                     "seeds": int(r["seeds"]),
                     **{f"{SHORT[c.split('@')[0]]}@{c.split('@')[1]}": _fmt(r[c], r[f"{c} sd"])
                        for c in ("ndcg@10", "ndcg@20", "hit_rate@20")},
                     "Cov@20": _fmt(r["catalog_coverage@20"]), "Nov@20": _fmt(r["novelty@20"], digits=3),
                     "NDCG@20 paper": _fmt(r["ndcg@20 paper"]), "Δ paper": _delta(r["ndcg@20"], r["ndcg@20 paper"]),
                     "NDCG@20 best-of-n (extra)": _fmt(r["ndcg@20 best-of-n"]),
                     "val NDCG@20 (MostPopular)": _validation_cell(r["model"], r.get("val ndcg@20"),
                                                                   r.get("val ndcg@20 MostPopular"))})
    return pd.DataFrame(rows)


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


BLOCKS.update({
    "llm2-fair": table_llm2_fair,
    "benchmarks-llm2-pairs": table_benchmarks_llm2_pairs,
    "beauty-significance-refused": lambda: table_significance_refused("beauty"),
})


BLOCKS.update({
    "beauty-hybrids": lambda: table_hybrids("beauty"),
    "beauty-hybrid-bands": lambda: table_hybrid_bands("beauty"),
    "beauty-master": lambda: table_master("beauty"),
    "results-figures": figures_block,
})


def render(text: str) -> str:
    def repl(m):
        name = m.group(1)
        body = to_markdown(BLOCKS[name]()) if name in BLOCKS else f"_unknown block {name}_"
        return f"<!-- BEGIN generated:{name} -->\n{body}\n<!-- END generated:{name} -->"

    return re.sub(r"<!-- BEGIN generated:([\w-]+) -->.*?<!-- END generated:\1 -->", repl, text, flags=re.S)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="regenerate README result tables")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    old = README.read_text()
    new = render(old)
    if args.check:
        if new != old:
            print("README.md tables are out of date: run `.venv/bin/python -m rec_utils.report`")
            return 1
        return 0
    README.write_text(new)
    print("README.md tables regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
