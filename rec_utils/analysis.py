"""The results notebook's logic (``notebooks/11_results.ipynb``): the master table against the
paper and the analyses of §8 (session length §8.2, recommendation overlap §8.3), all computed
from the result files (``summary.csv``, the stored runs and their top-20 lists), never typed.

* :func:`master_table` — per dataset every model × protocol × label (mean rows): the 12
  metrics as mean ± sd over seeds, the paper's value and the relative difference where the
  paper has one (§9.1, §9.2, §9.4), and the best-of-n-on-test NDCG@20 as a labelled extra.
* :func:`flag_below_most_popular` / :func:`tuning_advice` — rows whose **validation** NDCG@20
  is no better than MostPopular's on the same validation cases (a configuration that did not
  transfer; recorded with the summary row), and what to do. :func:`validation_flags`: the same
  check for a notebook's own summary rows.
* :func:`representative_runs` — one setting per model (the latest mean row of the requested
  label, default the standard setting ``""``) with its stored runs.
* :func:`hit_rate_by_length` — §8.2: per model and test-prompt length, the mean HitRate@20.
* :func:`overlap` — §8.3: the share of common recommendations (|A ∩ B| / k averaged over
  sessions; symmetric) and of common correct recommendations (of the row model's hits, the
  share the column model also hits; row-normalised, asymmetric).
* :func:`protocol_ranks` — the same models ranked under the temporal and the leave-one-out protocol.
* :func:`write_figure_index` / :func:`read_figure_index` — the figures' files and captions
  (``results/figures/index.csv``), which the README block renders.

Per-session values average the seeds of a setting (as :mod:`rec_utils.significance`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import METRIC_COLUMNS
from .models import model_family
from .paper import paper_results, paper_value
from .results import RESULTS_ROOT, below_most_popular, find_runs, latest_rows, load_runs, read_summary
from .significance import load_lists, per_session
from .utils import atomic_write_text

FIGURES = RESULTS_ROOT / "figures"


def latest_with_family(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`rec_utils.results.latest_rows` of a summary table with each model's ``family``."""
    s = latest_rows(summary)
    return s.assign(family=s["model"].map(model_family)) if not s.empty else s.assign(family=[])


def master_table(out_dir: str | Path, dataset: str = "beauty") -> pd.DataFrame:
    """One row per (model, protocol, label) of ``out_dir/summary.csv`` (the latest split where a
    label has several): seeds, the 12 metrics (mean, and ``<metric> sd``), the paper's value
    ``<metric> paper`` and ``<metric> Δ`` (relative difference, for the temporal protocol,
    standard label only), and ``ndcg@20 best-of-n`` (the paper's protocol: the seed with the
    best test NDCG@20; NaN for one seed), the validation scores recorded with the summary row,
    ``val ndcg@20`` and ``val ndcg@20 MostPopular`` (MostPopular on the same validation cases;
    NaN for models without a validation score), and ``below MostPopular``
    (:func:`flag_below_most_popular`). Sorted by protocol, then test NDCG@20."""
    s = latest_with_family(read_summary(out_dir))
    if s.empty:
        return pd.DataFrame()
    paper = paper_results(dataset, section=None)
    mean = s[s["aggregate"] == "mean"]
    best = s[s["aggregate"].str.startswith("best_of")].set_index(["model", "protocol", "variant"])
    rows = []
    for _, r in mean.iterrows():
        row = {"model": r["model"], "label": r["variant"], "family": r["family"], "protocol": r["protocol"],
               "seeds": int(r["n_seeds"]), "split": r["split_fingerprint"]}
        for c in METRIC_COLUMNS:
            row[c] = r[c]
            row[f"{c} sd"] = r.get(f"{c}_sd", np.nan)
            standard = r["protocol"] == "temporal" and r["variant"] == ""
            theirs = paper_value(paper, r["model"], c) if standard else np.nan
            row[f"{c} paper"] = theirs
            row[f"{c} Δ"] = (r[c] - theirs) / theirs if theirs == theirs else np.nan
        key = (r["model"], r["protocol"], r["variant"])
        row["ndcg@20 best-of-n"] = best.loc[[key], "ndcg@20"].iloc[0] if key in best.index else np.nan
        row["val ndcg@20"] = _number(r.get("val_ndcg@20"))
        row["val ndcg@20 MostPopular"] = _number(r.get("val_ndcg@20_most_popular"))
        rows.append(row)
    t = flag_below_most_popular(pd.DataFrame(rows))
    return t.sort_values(["protocol", "ndcg@20"], ascending=[False, False], kind="stable").reset_index(drop=True)


def _number(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return np.nan


def flag_below_most_popular(table: pd.DataFrame, metric: str = "ndcg@20") -> pd.DataFrame:
    """``table`` (master-table rows: model, label, protocol, ...) with a column ``below
    MostPopular``: True where a row's **validation** ``metric`` (column ``val <metric>``, recorded
    with its summary row: the best epoch's early-stopping score, mean over seeds) is at or below
    MostPopular's on the same validation cases (column ``val <metric> MostPopular``): the
    configuration, e.g. Beauty's presets on another dataset, did not transfer. False where it is
    above; NaN where the row has no validation score (models that do not early-stop on one, runs
    stored before the check was recorded) and for MostPopular itself. Decided on validation, never
    on the test split (a test comparison would be a model choice on test); the remedy is a search
    on the validation folds (notebook 10). Only NDCG@20 is recorded: another ``metric`` flags
    nothing unless the table has its two columns."""
    t = table.copy()
    if t.empty:
        return t.assign(**{"below MostPopular": []})
    score = pd.to_numeric(t.get(f"val {metric}", pd.Series(np.nan, index=t.index)), errors="coerce")
    ref = pd.to_numeric(t.get(f"val {metric} MostPopular", pd.Series(np.nan, index=t.index)), errors="coerce")
    flag = pd.Series([below_most_popular(a, b) for a, b in zip(score, ref)], index=t.index, dtype=object)
    flag[(t["model"] == "MostPopular").to_numpy()] = np.nan
    t["below MostPopular"] = flag
    return t


def validation_flags(summary: pd.DataFrame) -> pd.DataFrame:
    """The validation check of summary rows (a notebook's own ``mean`` rows): model, label,
    protocol, ``val ndcg@20``, ``val ndcg@20 MostPopular`` and ``below MostPopular``, one row per
    mean row that has a validation score (empty when none has)."""
    s = summary[summary["aggregate"] == "mean"] if "aggregate" in summary.columns else summary
    t = pd.DataFrame({"model": s["model"].to_numpy(), "label": s["variant"].fillna("").astype(str).to_numpy(),
                      "protocol": s["protocol"].to_numpy(),
                      "val ndcg@20": [_number(v) for v in s.get("val_ndcg@20", [np.nan] * len(s))],
                      "val ndcg@20 MostPopular": [_number(v) for v in s.get("val_ndcg@20_most_popular",
                                                                            [np.nan] * len(s))]})
    t = flag_below_most_popular(t)
    return t[t["val ndcg@20"].notna()].reset_index(drop=True)


def tuning_advice(table: pd.DataFrame, dataset: str, metric: str = "ndcg@20") -> str | None:
    """One paragraph naming the rows flagged by :func:`flag_below_most_popular` and the remedy,
    or None when none is flagged."""
    if "below MostPopular" not in table.columns:
        table = flag_below_most_popular(table, metric)
    bad = table[table["below MostPopular"] == True]  # noqa: E712 (object column with NaN)
    if bad.empty:
        return None
    names = ", ".join(f"{r.model}{f' ({r.label})' if r.label else ''} {getattr(r, 'protocol')}" for r in bad.itertuples())
    return (f"{dataset}: {len(bad)} row(s) score validation {metric} at or below MostPopular on the same validation "
            f"cases: {names}. Their configurations (the Beauty presets) do not transfer to this data: tune them on "
            f'its validation folds (notebook 10_tuning with MODEL=<model>), then rerun with PRESET="tuned".')


def representative_runs(out_dir: str | Path, protocol: str = "temporal", label: str = "",
                        models=None) -> dict[str, list[dict]]:
    """Model → the stored runs of its latest mean row of ``protocol`` with ``label`` (every
    seed), for the models of ``models`` (default: every model with such a row)."""
    s = latest_with_family(read_summary(out_dir))
    s = s[(s["aggregate"] == "mean") & (s["protocol"] == protocol) & (s["variant"] == label)]
    runs = load_runs(Path(out_dir))
    out = {}
    for _, r in s.iterrows():
        if models is not None and r["model"] not in models:
            continue
        rs = [x for x in runs if x["setting_id"] == r["setting_id"] and x["split_fingerprint"] == r["split_fingerprint"]]
        if rs:
            out[r["model"]] = sorted(rs, key=lambda x: int(x["seed"]))
    if models is not None:
        out = {m: out[m] for m in models if m in out}
    return out


def session_values(runs: list[dict], split, out_dir: str | Path, metric: str = "hit_rate@20") -> np.ndarray:
    """Per test session of ``split`` (its order) the metric of a setting's runs, averaged over
    seeds. ValueError when a run is of another split or lacks sessions."""
    t = pd.Series(np.asarray(split.test.targets, np.int64), index=np.asarray(split.test.session_ids, np.int64))
    vals = []
    for r in runs:
        if r["split_fingerprint"] != split.fingerprint:
            raise ValueError(f"{r['model']} seed {r['seed']}: run of split {r['split_fingerprint']}, "
                             f"not of {split.fingerprint}")
        sid, recs = load_lists(r, out_dir)
        order = pd.Series(np.arange(len(sid)), index=sid).reindex(t.index)
        if order.isna().any():
            raise ValueError(f"{r['model']} seed {r['seed']}: no list for {int(order.isna().sum())} test session(s)")
        vals.append(per_session(recs[order.to_numpy(dtype=np.int64)], t.to_numpy(), metric))
    return np.mean(vals, axis=0)


def lists_on_split(runs: list[dict], split, out_dir: str | Path) -> np.ndarray:
    """The first seed's top-20 lists in the order of ``split.test`` ((n, 20) ids)."""
    r = runs[0]
    sid, recs = load_lists(r, out_dir)
    pos = pd.Series(np.arange(len(sid)), index=sid).reindex(np.asarray(split.test.session_ids, np.int64))
    if pos.isna().any():
        raise ValueError(f"{r['model']}: no list for {int(pos.isna().sum())} test session(s)")
    return recs[pos.to_numpy(dtype=np.int64)]


def hit_rate_by_length(by_model: dict[str, list[dict]], split, out_dir: str | Path, max_length: int = 20,
                       metric: str = "hit_rate@20") -> pd.DataFrame:
    """§8.2: long table (model, prompt_length 1..``max_length``, sessions, value) of the mean
    per-session ``metric`` per test-prompt length (longer prompts are pooled into ``max_length``,
    labelled ``max_length`` and counted in ``sessions``)."""
    length = np.minimum(split.test.lengths, max_length)
    rows = []
    for model, runs in by_model.items():
        v = session_values(runs, split, out_dir, metric)
        df = pd.DataFrame({"prompt_length": length, "value": v})
        g = df.groupby("prompt_length")["value"].agg(["mean", "size"]).reset_index()
        rows += [{"model": model, "prompt_length": int(a), "sessions": int(n), metric: float(m)}
                 for a, m, n in g[["prompt_length", "mean", "size"]].itertuples(index=False)]
    return pd.DataFrame(rows)


def _common_counts(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row, how many (distinct, non-padding) items two (n, k) lists share."""
    n = len(a)
    span = int(max(a.max(initial=0), b.max(initial=0))) + 2
    rows = np.repeat(np.arange(n, dtype=np.int64), a.shape[1])
    ka = np.unique((rows * span + a.ravel() + 1)[a.ravel() >= 0])
    rows = np.repeat(np.arange(n, dtype=np.int64), b.shape[1])
    kb = np.unique((rows * span + b.ravel() + 1)[b.ravel() >= 0])
    common = np.intersect1d(ka, kb, assume_unique=True)
    return np.bincount(common // span, minlength=n)


def overlap(lists: dict[str, np.ndarray], targets: np.ndarray, k: int = 20) -> tuple[pd.DataFrame, pd.DataFrame]:
    """§8.3 between every pair of models' (n, ≥k) lists on the same sessions (same order):
    ``(common, correct)`` — ``common[a][b]`` = mean over sessions of |top-k(a) ∩ top-k(b)| / k
    (symmetric, 1 on the diagonal for lists of k distinct items); ``correct[a][b]`` = of the
    sessions where ``a`` hits the target in its top-k, the share where ``b`` hits it too (row
    model ``a``; NaN when ``a`` never hits)."""
    names = list(lists)
    targets = np.asarray(targets, dtype=np.int64)
    L = {n: np.asarray(v, dtype=np.int64)[:, :k] for n, v in lists.items()}
    hits = {n: (v == targets[:, None]).any(axis=1) for n, v in L.items()}
    common = pd.DataFrame(np.nan, index=names, columns=names)
    correct = pd.DataFrame(np.nan, index=names, columns=names)
    for i, a in enumerate(names):
        for b in names[i:]:
            c = float(_common_counts(L[a], L[b]).mean() / k)
            common.loc[a, b] = common.loc[b, a] = c
        for b in names:
            n_a = hits[a].sum()
            correct.loc[a, b] = float((hits[a] & hits[b]).sum() / n_a) if n_a else np.nan
    return common, correct


def protocol_ranks(out_dir: str | Path, metric: str = "ndcg@20", protocols=("temporal", "loo")) -> pd.DataFrame:
    """Models (model + label) with a mean row under every protocol of ``protocols``: their
    ``metric`` and rank (1 = best) under each, for the temporal vs leave-one-out comparison."""
    s = latest_with_family(read_summary(out_dir))
    s = s[(s["aggregate"] == "mean") & s["protocol"].isin(protocols)]
    s = s.assign(name=s["model"] + s["variant"].map(lambda v: f" ({v})" if v else ""))
    wide = s.pivot_table(index="name", columns="protocol", values=metric, aggfunc="last").dropna()
    out = []
    for p in protocols:
        if p not in wide.columns:
            return pd.DataFrame()
    for name, row in wide.iterrows():
        out += [{"model": name, "protocol": p, metric: row[p]} for p in protocols]
    t = pd.DataFrame(out)
    if t.empty:
        return t
    t["rank"] = t.groupby("protocol")[metric].rank(ascending=False, method="min").astype(int)
    return t


def write_figure_index(entries: list[dict], path: str | Path = FIGURES / "index.csv") -> Path:
    """The figures' ``file`` (relative to the project root), ``title`` and ``caption``, written
    atomically (the README block :func:`rec_utils.report.figures_block` renders it)."""
    df = pd.DataFrame(entries, columns=["file", "title", "caption"])
    if df["file"].duplicated().any():
        raise ValueError(f"figure files listed twice: {df.loc[df['file'].duplicated(), 'file'].tolist()}")
    atomic_write_text(path, df.to_csv(index=False))
    return Path(path)


def read_figure_index(path: str | Path = FIGURES / "index.csv") -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=["file", "title", "caption"])
    return pd.read_csv(path, dtype=str).fillna("")


__all__ = ["FIGURES", "hit_rate_by_length", "lists_on_split", "latest_with_family", "master_table", "overlap", "protocol_ranks",
           "read_figure_index", "representative_runs", "session_values", "write_figure_index"]
