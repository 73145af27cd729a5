"""The paper's published numbers (``data/paper_results.csv``, from the spec §9) for comparison."""
from __future__ import annotations

import pandas as pd

from .data import DATA_ROOT

PAPER_RESULTS = DATA_ROOT / "paper_results.csv"
#: Our model names → the paper table's names, where they differ.
PAPER_NAMES = {"LLMSeqSim": "LLMSeqSim (last item, dot)"}


def paper_results(dataset: str = "beauty", section: str | None = "9.1") -> pd.DataFrame:
    """Wide table (model × ``metric@k``) of the paper's values for a dataset.

    ``section`` picks the source table of the spec (9.1 = the RecSys'23 Beauty table with all
    12 metrics; None = every section, first value per model and metric).
    """
    d = pd.read_csv(PAPER_RESULTS)
    d = d.loc[d["dataset"] == dataset]
    if section is not None:
        d = d.loc[d["source_section"].astype(str) == str(section)]
    d = d.assign(column=d["metric"] + "@" + d["k"].astype(str))
    return d.pivot_table(index="model", columns="column", values="value", aggfunc="first")


def paper_value(paper: pd.DataFrame, model: str, column: str) -> float:
    """The paper's value of ``column`` (``ndcg@20``) for our model name, NaN when the paper has
    none; ``paper`` from :func:`paper_results`."""
    pname = PAPER_NAMES.get(model, model)
    return float(paper.loc[pname, column]) if pname in paper.index and column in paper.columns else float("nan")


def compare_with_paper(summary: pd.DataFrame, dataset: str = "beauty",
                       metrics=("ndcg@10", "ndcg@20", "hit_rate@20")) -> pd.DataFrame:
    """Our mean rows next to the paper's values, with the relative difference."""
    paper = paper_results(dataset, section=None)
    rows = []
    for _, r in summary.loc[summary["aggregate"] == "mean"].iterrows():
        for m in metrics:
            ours = r[m]
            theirs = paper_value(paper, r["model"], m)
            rows.append({"model": r["model"], "variant": r.get("variant", ""), "protocol": r["protocol"],
                         "metric": m, "ours": ours, "ours_sd": r.get(f"{m}_sd"), "paper": theirs,
                         "rel_diff": (ours - theirs) / theirs if theirs == theirs else float("nan")})
    return pd.DataFrame(rows)
