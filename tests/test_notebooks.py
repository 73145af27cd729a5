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

from rec_utils.data import load_dataset, p_core_filter
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
    if nb == "11_results":
        return (out.parent / "figures" / "index.csv").is_file()
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
    # section 5: MovieLens latest-small imported from its raw files with the 5-core loop
    steps = pd.read_csv(out / "import_steps.csv")
    ml = load_dataset("ml-latest-small")
    core = p_core_filter(ml.interactions, p=5)
    assert steps.iloc[0, 1:].tolist() == [ml.n_sessions, ml.n_items, len(ml.interactions)]
    assert steps.iloc[-1].tolist() == ["written", core["session_id"].nunique(), core["item_id"].nunique(), len(core)]


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
        # the validation check against MostPopular (early-stopping cases) is recorded with every row
        assert mean[["val_ndcg@20", "val_ndcg@20_most_popular"]].notna().all(axis=None)
        assert mean["below_most_popular"].isin([True, False]).all()
        assert (mean["n_test_sessions"] == run["parameters"]["SAMPLE_SESSIONS"]).all()
        assert (mean["n_seeds"] == len(run["parameters"]["SEEDS"])).all()
        if len(run["parameters"]["SEEDS"]) > 1:
            assert rows["aggregate"].str.startswith("best_of_").any()


def test_05_llm2sequential_rows():
    """Base (init=random), LLM2 and permuted arms of every model with the CI seeds, trained as pairs
    (one device, thread count and code), and their paired comparisons (LLM2 and permuted vs base,
    LLM2 vs permuted) with a CI that agrees with the p-value and Holm-adjusted p; the tuned entry
    stores each arm's TPE optimum and pairs the two tuned arms."""
    import json

    from rec_utils.llm2_comparison import VARIANT_FAMILY
    from rec_utils.significance import p_disagrees_with_ci

    run = CI_RUNS["05_llm2sequential"]
    out = results_of("05_llm2sequential")
    mean = read_summary(out)
    mean = mean[(mean["aggregate"] == "mean") & mean["model"].str.startswith("LLM2")
                & mean["variant"].fillna("").str.contains("num_threads=1") & (mean["notebook"] == "05_llm2sequential")]
    models = run["parameters"].get("MODELS", ["LLM2SASRec", "LLM2GRU4Rec"])
    for m in models:
        labels = list(mean.loc[(mean["model"] == m) & (mean["n_seeds"] == len(run["parameters"]["SEEDS"])), "variant"])
        inits = sorted("random" if "init=random" in v else "permuted" if "init=permuted" in v else "llm" for v in labels)
        assert inits == ["llm", "permuted", "random"], (m, labels)
    sig = pd.read_csv(out / "significance.csv")
    sig = sig[sig["model_a"].isin(models) & sig["family"].str.startswith("llm2-")
              & (sig["family"] != VARIANT_FAMILY)  # notebook 12's ablation pairs share the CI folder
              & ~sig["label_a"].fillna("").str.contains("tuned")]
    assert {"ndcg@10", "ndcg@20"} == set(sig["metric"])
    assert len(sig) == 2 * 3 * len(models), "llm vs base, permuted vs base, llm vs permuted; two metrics each"
    assert ((sig["ci_low"] <= sig["diff"]) & (sig["diff"] <= sig["ci_high"])).all()
    assert sig["p_value"].between(0, 1).all() and (sig["n_sessions"] == run["parameters"]["SAMPLE_SESSIONS"]).all()
    assert not p_disagrees_with_ci(sig).any() and (sig["p_holm"] >= sig["p_value"]).all()
    assert (sig["device_a"] == sig["device_b"]).all() and (sig["threads_a"].astype(str) == "1").all()
    assert (sig["pairing"].fillna("") == "").all() and sig["code_fingerprint"].notna().all()
    # the tuned entry: one optimum per arm, same budget, and the pair of tuned arms
    tuned = CI_RUNS["05_llm2sequential__tuned"]
    out_t = results_of("05_llm2sequential__tuned")
    docs = [json.loads(p.read_text()) for p in sorted((out_t / "configs").glob("LLM2GRU4Rec__init-*.json"))]
    assert sorted(d["init"] for d in docs) == ["llm", "random"]
    assert {d["n_trials"] for d in docs} == {tuned["parameters"]["TUNE_TRIALS"]} and len({d["selected_by"] for d in docs}) == 1
    sig_t = pd.read_csv(out_t / "significance.csv")
    sig_t = sig_t[sig_t["label_a"].fillna("").str.contains("tuned") & (sig_t["family"] == "llm2-fair")]
    assert len(sig_t) == 2 and (sig_t["pairing"].fillna("") == "").all()


def test_10_tuning_study_config_and_rows():
    """The CI study holds N_TRIALS finished trials; the best one is in configs/<model>.json and
    on test next to the paper's configuration (rows paper and preset=tuned, paired comparison)."""
    import json

    import optuna

    run = CI_RUNS["10_tuning"]
    p = run["parameters"]
    out = results_of("10_tuning")
    doc = json.loads((out / "configs" / f"{p['MODEL']}.json").read_text())
    comp = pd.read_csv(out / "tuning" / f"{doc['study_name']}__comparison.csv", dtype={"setting_id": str})
    assert list(comp["configuration"]) == ["paper", "tuned"]
    # the paper configuration's row may carry notebook 01's name (its runs are reused): select by setting
    rows = read_summary(out)
    mean = rows[(rows["aggregate"] == "mean") & rows["setting_id"].isin(comp["setting_id"])
                & (rows["split_fingerprint"] == comp["split_fingerprint"].astype(str).iloc[0])]
    labels = list(mean["variant"].fillna(""))
    assert len(mean) == 2 and sum("preset=tuned" in v for v in labels) == 1, labels
    assert (mean["n_test_sessions"] == p["SAMPLE_SESSIONS"]).all()
    assert mean[list(METRIC_COLUMNS)].notna().all(axis=None)
    assert comp["validation_ndcg@20"].iloc[1] == doc["value"]
    db = out / "tuning" / f"{doc['study_name']}.db"
    study = optuna.load_study(study_name=doc["study_name"], storage=f"sqlite:///{db}")
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) == p["N_TRIALS"]
    done = [t for t in finished if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(done, key=lambda t: (t.value, -t.number))
    assert (doc["trial_number"], doc["value"]) == (best.number, best.value)
    assert doc["value"] == pytest.approx(sum(doc["fold_values"]) / 3)
    for kind in ("history", "slice"):
        assert (out / "tuning" / f"{doc['study_name']}__{kind}.png").stat().st_size > 1000
    sig = pd.read_csv(out / "significance.csv")
    sig = sig[(sig["model_a"] == p["MODEL"]) & sig["label_a"].fillna("").str.contains("preset=tuned")]
    assert len(sig) == 2 and ((sig["ci_low"] <= sig["diff"]) & (sig["diff"] <= sig["ci_high"])).all()
def test_07_hybrids_rows():
    """A mean row of each hybrid's validation winner (and of the faithful-popularity variants)
    with every CI seed and 12 metrics, paired comparisons with the winners' components, and the
    per-band table of LLMSeqSim&Sequential whose hybrid column is each band's mix of its components."""
    run = CI_RUNS["07_hybrids"]
    out = results_of("07_hybrids")
    mean = summary_rows("07_hybrids")
    mean = mean[mean["aggregate"] == "mean"]
    assert {"EmbeddingEnsemble", "LLMSeqSim&Sequential", "LLMSeqSim&Popularity"} <= set(mean["model"])
    assert (mean["n_seeds"] == len(run["parameters"]["SEEDS"])).all()
    assert mean[list(METRIC_COLUMNS)].notna().all(axis=None)
    assert (mean["n_test_sessions"] == run["parameters"]["SAMPLE_SESSIONS"]).all()
    assert mean["variant"].str.contains("popularity_source=dataset").any(), "the faithful popularity variant"
    sig = pd.read_csv(out / "significance.csv")
    sig = sig[sig["model_a"].isin(mean["model"])]
    assert len(sig) >= 2 * 3 and ((sig["ci_low"] <= sig["diff"]) & (sig["diff"] <= sig["ci_high"])).all()
    bands = pd.read_csv(next(out.glob("hybrid_popularity_bands*.csv")))
    assert bands["sessions"].sum() == pytest.approx(run["parameters"]["SAMPLE_SESSIONS"])
    bands = bands[bands["sessions"] > 0]
    comp = [c for c in bands.columns if c.endswith(" ndcg@20") and not c.startswith("hybrid")]
    lo, hi = bands[comp].min(axis=1), bands[comp].max(axis=1)
    assert ((bands["hybrid ndcg@20"] >= lo - 1e-9) & (bands["hybrid ndcg@20"] <= hi + 1e-9)).all()


def test_11_results_outputs():
    """The master table (a row per recorded model with the paper's columns) and the figure index
    with a caption per figure, every listed figure written."""
    run = CI_RUNS["11_results"]
    out = results_of("11_results")
    master = pd.read_csv(out / "master_table.csv")
    assert {"ndcg@20", "ndcg@20 sd", "ndcg@20 paper", "ndcg@20 Δ", "ndcg@20 best-of-n"} <= set(master.columns)
    assert set(read_summary(out)["model"]) == set(master["model"])
    index = pd.read_csv(out.parent / "figures" / "index.csv")
    assert len(index) >= run["parameters"]["MIN_FIGURES"]
    assert index["caption"].str.len().min() > 40
    for f in index["file"]:
        path = Path(f) if Path(f).is_absolute() else PROJECT_ROOT / f
        assert path.stat().st_size > 5000, f
def test_06_llmseqprompt_rows():
    """One LLMSeqPrompt row per decoder and sweep temperature and the three baselines, all on the
    same seeded subset; the constrained decoder hallucinates nothing; shares and loss curves written."""
    run = CI_RUNS["06_llmseqprompt"]
    p = run["parameters"]
    out = results_of("06_llmseqprompt")
    rows = summary_rows("06_llmseqprompt")
    mean = rows[rows["aggregate"] == "mean"]
    other = f"max_steps={CI_RUNS['06_llmseqprompt__compare']['parameters']['CONFIG']['max_steps']}"
    llm = mean[(mean["model"] == "LLMSeqPrompt") & ~mean["variant"].str.contains(other)]  # not the compare entry's
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
    sig = sig[(sig["model_a"] == "LLMSeqPrompt") & ~sig["label_a"].str.contains(other)]
    baselines = p.get("BASELINES", ["MostPopular", "V-SKNN", "LLMSeqSim"])
    assert len(sig) == 2 * len(p["DECODER"]) * len(baselines)  # every decoder against every baseline, 2 metrics
    assert set(sig["model_b"]) == set(baselines) and sig["family"].str.startswith("06_llmseqprompt").all()
    assert (sig["p_holm"] >= sig["p_value"]).all()


def test_06_compare_with_pairs_two_llmseqprompt_configurations_on_the_same_sessions():
    """COMPARE_WITH pairs the entry's beam run with the stored beam run of the other configuration
    (here: 1 fine-tuning step against 2) on the same sessions, in its own Holm family, and they pair."""
    run = CI_RUNS["06_llmseqprompt__compare"]
    summary_rows("06_llmseqprompt")  # the configuration compared with runs first
    out = results_of("06_llmseqprompt__compare")
    sig = pd.read_csv(out / "significance.csv")
    sig = sig[(sig["model_a"] == "LLMSeqPrompt") & (sig["model_b"] == "LLMSeqPrompt")]
    assert len(sig) == 2 and set(sig["metric"]) == {"ndcg@20", "hit_rate@20"}
    assert sig["label_a"].str.contains("max_steps=1").all() and sig["label_b"].str.contains("max_steps=2").all()
    assert sig["label_a"].str.contains("decoder=beam").all() and sig["label_b"].str.contains("decoder=beam").all()
    assert sig["family"].str.endswith(" models").all() and (sig["pairing"].fillna("") == "").all()
    assert (sig["n_sessions"] == run["parameters"]["EVAL_SESSIONS"]).all()


def test_12_llm2_ablation_rows():
    """The base and every CI variant of LLM2SASRec with the CI seeds, each variant paired with the
    base (and llm+gbce with base+gbce) in family llm2-variants, all pairs pair, CIs agree with p."""
    from rec_utils.significance import p_disagrees_with_ci

    run = CI_RUNS["12_llm2_ablation"]
    p = run["parameters"]
    out = results_of("12_llm2_ablation")
    mean = read_summary(out)
    mean = mean[(mean["aggregate"] == "mean") & (mean["notebook"] == "12_llm2_ablation")
                & (mean["n_seeds"] == len(p["SEEDS"]))]
    assert len(mean) >= 1 + len(p["VARIANTS"])
    labels = " | ".join(mean["variant"].fillna(""))
    assert "item_table=offset" in labels and "loss=gbce" in labels and "whiten=True" in labels
    sig = pd.read_csv(out / "significance.csv")
    sig = sig[sig["family"] == "llm2-variants"]
    n_pairs = len(p["VARIANTS"]) + sum(v.startswith("llm+") and "base+" + v[4:] in p["VARIANTS"] for v in p["VARIANTS"])
    assert len(sig) >= 2 * n_pairs  # (a re-run with changed variants adds rows of its own settings)
    both_gbce = sig["label_a"].str.contains("loss=gbce") & sig["label_b"].str.contains("loss=gbce")
    assert set(sig.loc[both_gbce, "metric"]) == {"ndcg@10", "ndcg@20"}  # llm+gbce vs base+gbce
    assert ((sig["ci_low"] <= sig["diff"]) & (sig["diff"] <= sig["ci_high"])).all()
    assert not p_disagrees_with_ci(sig).any() and (sig["p_holm"] >= sig["p_value"]).all()
    assert (sig["pairing"].fillna("") == "").all() and (sig["n_sessions"] == p["SAMPLE_SESSIONS"]).all()
    assert list((out / "figures").glob("12_llm2_ablation_*.png"))


#: Notebooks added by later issues register their checks here: {notebook: test function}.
EXTRA_CHECKS: dict = {"02_sequential": test_02_sequential_rows, "03_embeddings": test_03_embeddings_record,
                      "04_llmseqsim": test_04_llmseqsim_rows, "05_llm2sequential": test_05_llm2sequential_rows}
EXTRA_CHECKS["10_tuning"] = test_10_tuning_study_config_and_rows
EXTRA_CHECKS.update({"07_hybrids": test_07_hybrids_rows, "11_results": test_11_results_outputs})
EXTRA_CHECKS["06_llmseqprompt"] = test_06_llmseqprompt_rows
EXTRA_CHECKS["12_llm2_ablation"] = test_12_llm2_ablation_rows
