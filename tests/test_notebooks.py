"""Assertions on what the notebooks recorded when run with the tiny parameters of plans/ci.yaml.

`make test` prepares those notebooks with papermill and executes them with nbval (build/ci/)
before these tests run, so the result files below are the notebooks' own outputs. Run alone,
the fixture executes a missing notebook with papermill first.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from rec_utils.metrics import METRIC_COLUMNS
from rec_utils.results import artifact_path, read_summary
from rec_utils.study import execute, expand_runs, load_plan
from rec_utils.utils import PROJECT_ROOT

pytestmark = pytest.mark.notebooks
CI_ROOT = PROJECT_ROOT / "build" / "ci"
CI_RUNS = {r["name"]: r for r in expand_runs(load_plan("ci"), CI_ROOT)}


def results_of(name: str) -> Path:
    """The results folder of a CI notebook run, executing the notebook if nothing is there yet."""
    run = CI_RUNS[name]
    out = Path(run["parameters"]["RESULTS_DIR"])
    if not _has_outputs(name, out):
        execute(run, kernel_name="python3")
    return out


def _has_outputs(name: str, out: Path) -> bool:
    nb = name.split("__")[0]
    if nb == "00_data":
        return (out / "split_summary.csv").is_file()
    if nb == "03_embeddings":
        return any((out / "embeddings").glob("embeddings_*.json"))
    s = out / "summary.csv"
    return s.is_file() and (pd.read_csv(s)["notebook"] == nb).any()


def summary_rows(name: str) -> pd.DataFrame:
    out = results_of(name)
    s = read_summary(out)
    return s[s["notebook"] == name.split("__")[0]]


def test_every_ci_run_is_checked_here():
    checked = {"00_data", "01_baselines"}
    assert {n.split("__")[0] for n in CI_RUNS} <= checked | set(EXTRA_CHECKS), \
        "add an assertion for the new notebook to tests/test_notebooks.py"


def test_00_data_tables():
    out = results_of("00_data")
    stats = pd.read_csv(out / "data_statistics.csv", index_col="dataset")
    assert stats.loc["beauty", "sessions"] == 22363 and stats.loc["beauty", "interactions"] == 198502
    split = pd.read_csv(out / "split_summary.csv")
    assert split.loc[split["protocol"] == "temporal", "test_sessions"].item() == 4469
    lengths = pd.read_csv(out / "test_prompt_lengths.csv", index_col=0)["test_sessions"]
    assert lengths.loc[1:5].tolist() == [16, 13, 90, 1025, 655]
    ties = pd.read_csv(out / "tie_statistics.csv", index_col=0)
    assert ties.loc["beauty", "interactions_in_ties"] == pytest.approx(0.575, abs=0.001)
    assert (out / "figures" / "test_prompt_lengths.png").stat().st_size > 1000


def test_01_baselines_rows():
    run = CI_RUNS["01_baselines"]
    rows = summary_rows("01_baselines")
    models = run["parameters"].get("MODELS", ["MostPopular", "SKNN", "V-SKNN", "S-SKNN", "SF-SKNN"])
    mean = rows[rows["aggregate"] == "mean"]
    assert set(models) <= set(mean["model"])
    assert mean[list(METRIC_COLUMNS)].notna().all().all()
    assert (mean["n_test_sessions"] == run["parameters"]["SAMPLE_SESSIONS"]).all()
    assert mean["split_fingerprint"].nunique() == 1
    vsknn = mean[mean["model"] == "V-SKNN"].iloc[0]
    assert vsknn["n_seeds"] == len(run["parameters"]["SEEDS"])
    assert (rows["aggregate"] == f"best_of_{vsknn['n_seeds']}_on_test").any()
    assert vsknn["ndcg@10"] > 3 * mean[mean["model"] == "MostPopular"]["ndcg@10"].item()
    label = f"test_sessions={run['parameters']['SAMPLE_SESSIONS']}"  # a sampled run is labelled so
    assert set(mean["variant"].fillna("")) == {label}
    spread = pd.read_csv(artifact_path(results_of("01_baselines"), "tie_order_sensitivity", "temporal", label))
    assert set(spread["tie_order"]) == {"shuffle", "file"}
    assert not any(math.isnan(v) for v in spread["ndcg@10"])


def test_03_embeddings_record():
    import json

    out = results_of("03_embeddings")
    records = [json.loads(p.read_text()) for p in (out / "embeddings").glob("embeddings_*.json")]
    rec = next(r for r in records if "MiniLM" in r["model"])
    assert rec["n_items"] == 12101 and rec["stats"]["dim"] == 384  # the real local model, whole catalogue
    assert 0.3 < rec["stats"]["cosine_distance_mean"] < 1.2


def test_04_llmseqsim_rows():
    run = CI_RUNS["04_llmseqsim"]
    rows = summary_rows("04_llmseqsim")
    mean = rows[rows["aggregate"] == "mean"]
    label = f"test_sessions={run['parameters']['SAMPLE_SESSIONS']}"  # the winner's row: only the sample in its label
    main = mean[(mean["model"] == "LLMSeqSim") & (mean["variant"].fillna("") == label)]
    assert len(main) == 1
    assert main[list(METRIC_COLUMNS)].notna().all(axis=None)
    assert main["n_test_sessions"].item() == run["parameters"]["SAMPLE_SESSIONS"]
    # a real embedding model, not noise: far above MostPopular (~0.007 NDCG@20 on Beauty)
    assert main["ndcg@20"].item() > 0.015
    assert main["catalog_coverage@20"].item() > 0.2
    assert (mean["model"] == "SKNNEmb").any()


def test_02_sequential_rows():
    for name, protocol in (("02_sequential", "temporal"), ("02_sequential__loo", "loo")):
        run = CI_RUNS[name]
        rows = summary_rows(name)
        rows = rows[rows["protocol"] == protocol]
        mean = rows[rows["aggregate"] == "mean"]
        models = run["parameters"].get("MODELS", ["GRU4Rec", "SASRec", "BERT4Rec"])
        assert set(models) <= set(mean["model"]), name
        assert mean[list(METRIC_COLUMNS)].notna().all(axis=None)
        assert (mean["n_test_sessions"] == run["parameters"]["SAMPLE_SESSIONS"]).all()
        assert (mean["n_seeds"] == len(run["parameters"]["SEEDS"])).all()
        if len(run["parameters"]["SEEDS"]) > 1:
            assert rows["aggregate"].str.startswith("best_of_").any()


def test_05_llm2sequential_rows():
    """Base (init=random), LLM2 and permuted rows of every model with the CI seeds, and their
    paired comparisons (LLM2 and permuted vs base, LLM2 vs permuted) with a CI and a p-value."""
    run = CI_RUNS["05_llm2sequential"]
    out = results_of("05_llm2sequential")
    mean = read_summary(out)
    mean = mean[(mean["aggregate"] == "mean") & mean["model"].str.startswith("LLM2")]
    models = run["parameters"].get("MODELS", ["LLM2SASRec", "LLM2GRU4Rec"])
    for m in models:
        labels = list(mean.loc[mean["model"] == m, "variant"].fillna(""))
        inits = sorted("random" if "init=random" in v else "permuted" if "init=permuted" in v else "llm" for v in labels)
        assert inits == ["llm", "permuted", "random"], (m, labels)
    assert (mean["n_seeds"] == len(run["parameters"]["SEEDS"])).all()
    assert mean[list(METRIC_COLUMNS)].notna().all(axis=None)
    sig = pd.read_csv(out / "significance.csv")
    assert {"ndcg@20", "hit_rate@20"} == set(sig["metric"])
    assert len(sig) == 2 * 3 * len(models), "llm vs base, permuted vs base, llm vs permuted; two metrics each"
    assert ((sig["ci_low"] <= sig["diff"]) & (sig["diff"] <= sig["ci_high"])).all()
    assert sig["p_value"].between(0, 1).all() and (sig["n_sessions"] == run["parameters"]["SAMPLE_SESSIONS"]).all()


def test_06_llmseqprompt_rows():
    """One LLMSeqPrompt row per decoder and sweep temperature and the three baselines, all on the
    same seeded subset; the constrained decoder hallucinates nothing; shares and loss curves written."""
    run = CI_RUNS["06_llmseqprompt"]
    p = run["parameters"]
    out = results_of("06_llmseqprompt")
    rows = summary_rows("06_llmseqprompt")
    mean = rows[rows["aggregate"] == "mean"]
    llm = mean[mean["model"] == "LLMSeqPrompt"]
    assert len(llm) == len(p["DECODER"]) + len(p["TEMPERATURES"])
    assert {"MostPopular", "V-SKNN", "LLMSeqSim"} <= set(mean["model"])
    assert (mean["n_test_sessions"] == p["EVAL_SESSIONS"]).all() and mean["split_fingerprint"].nunique() == 1
    assert mean[list(METRIC_COLUMNS)].notna().all(axis=None)
    assert all(f"test_sessions={p['EVAL_SESSIONS']}" in v for v in mean["variant"].fillna(""))
    assert set(llm["variant"].str.extract(r"decoder=(\w+)")[0]) == set(p["DECODER"])
    shares = pd.concat([pd.read_csv(f) for f in out.glob("06_output_shares*.csv")])
    beam = shares[shares["decoder"] == "beam"].iloc[0]
    assert beam["hallucinated_share"] == 0 and beam["valid_name_share"] == 1
    assert shares[["unique_share", "duplicate_share"]].sum(axis=1).round(9).eq(1).all()
    assert list((out / "figures").glob("06_loss_curves*.png"))
    sig = pd.read_csv(out / "significance.csv")
    assert (sig["model_a"] == "LLMSeqPrompt").sum() == 2 * len(p["DECODER"])


#: Notebooks added by later issues register their checks here: {notebook: test function}.
EXTRA_CHECKS: dict = {"02_sequential": test_02_sequential_rows, "03_embeddings": test_03_embeddings_record,
                      "04_llmseqsim": test_04_llmseqsim_rows, "05_llm2sequential": test_05_llm2sequential_rows,
                      "06_llmseqprompt": test_06_llmseqprompt_rows}
