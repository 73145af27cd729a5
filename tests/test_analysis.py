"""The results notebook's analyses (rec_utils.analysis) and the hybrids' component lists
(rec_utils.hybrid_runs) on hand-made lists and the tiny dataset, with known answers."""
import numpy as np
import pandas as pd
import pytest

from rec_utils import analysis, results
from rec_utils.data import load_dataset
from rec_utils.evaluation import run_seeds
from rec_utils.hybrid_runs import Component, component_lists, hybrid_configs
from rec_utils.models import build_model
from rec_utils.setting import Setting
from rec_utils.split import make_split


def test_overlap_counts_common_items_and_row_normalised_common_hits():
    a = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    b = np.array([[4, 3, 9, 9], [5, 0, -1, -1]])  # repeated 9 and padding count once / not at all
    targets = np.array([3, 6])
    common, correct = analysis.overlap({"a": a, "b": b}, targets, k=4)
    assert common.loc["a", "b"] == common.loc["b", "a"] == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert common.loc["a", "a"] == 1.0
    # a hits both sessions, b only the first: of a's hits b has 1/2; of b's hits a has 1/1
    assert correct.loc["a", "b"] == 0.5 and correct.loc["b", "a"] == 1.0


def test_hit_rate_by_length_pools_long_prompts_and_averages_seeds(tmp_path, tiny_folder):
    data = load_dataset(tiny_folder)
    split = make_split(data, "loo")
    runs = run_seeds(lambda s: build_model("MostPopular"), split, Setting.of("MostPopular", split), out_dir=tmp_path,
                     seeds=[0, 1])
    table = analysis.hit_rate_by_length({"MostPopular": runs}, split, tmp_path, max_length=2)
    assert set(table["prompt_length"]) <= {1, 2} and table["sessions"].sum() == len(split.test)
    hits = [r["metrics"]["hit_rate@20"] for r in runs]
    overall = (table["hit_rate@20"] * table["sessions"]).sum() / table["sessions"].sum()
    assert overall == pytest.approx(np.mean(hits))


def test_master_table_has_the_paper_value_and_relative_difference_of_standard_rows(tmp_path, tiny_folder):
    split = make_split(load_dataset(tiny_folder), "loo")
    split.info["dataset"], split.protocol = "beauty", "temporal"  # pretend, to exercise the paper columns
    runs = run_seeds(lambda s: build_model("MostPopular"), split, Setting.of("MostPopular", split), out_dir=tmp_path,
                     seeds=[0])
    results.record(runs, tmp_path)
    t = analysis.master_table(tmp_path, "beauty")
    row = t.iloc[0]
    assert row["model"] == "MostPopular" and row["ndcg@10 paper"] == pytest.approx(0.004515)
    assert row["ndcg@10 Δ"] == pytest.approx((row["ndcg@10"] - 0.004515) / 0.004515)
    assert np.isnan(row["ndcg@20 best-of-n"])  # one seed: no best-of-n extra


def test_protocol_ranks_keep_only_models_under_both_protocols(tmp_path):
    rows = [{"model": m, "variant": "", "protocol": p, "aggregate": "mean", "ndcg@20": v, "split_fingerprint": p,
             "setting_id": m + p, "created": "t"} for m, p, v in
            [("A", "temporal", 0.1), ("B", "temporal", 0.2), ("A", "loo", 0.3), ("B", "loo", 0.1), ("C", "loo", 0.5)]]
    results.update_summary(rows, tmp_path)
    r = analysis.protocol_ranks(tmp_path).set_index(["model", "protocol"])["rank"]
    assert r.to_dict() == {("A", "temporal"): 2, ("B", "temporal"): 1, ("A", "loo"): 1, ("B", "loo"): 2}


def test_figure_index_refuses_a_file_listed_twice(tmp_path):
    e = {"file": "f.png", "title": "t", "caption": "c"}
    with pytest.raises(ValueError, match="listed twice"):
        analysis.write_figure_index([e, e], tmp_path / "index.csv")
    analysis.write_figure_index([e], tmp_path / "index.csv")
    assert analysis.read_figure_index(tmp_path / "index.csv").to_dict("records") == [e]


def test_component_lists_longer_than_the_run_come_from_a_side_file_keyed_by_the_run(tmp_path, tiny_folder):
    data = load_dataset(tiny_folder)
    split = make_split(data, "loo")
    comp = Component("pop", "MostPopular", preset=None, k=30)
    first = component_lists(comp, split, out_dir=tmp_path, items=None)
    run = results.find_runs(tmp_path, model="MostPopular")[0]
    stem = results.run_path(tmp_path, Setting.from_dict(run["setting"]), run["split_fingerprint"], 0)
    side = stem.with_name(f"{stem.stem}.top30.npz")
    assert side.is_file() and first.recs.shape == (len(split.test), 30)
    with np.load(stem.with_suffix(".npz")) as z:
        assert np.array_equal(first.recs[:, :20], z["recs"])  # the run's own top-20 are the head
    again = component_lists(comp, split, out_dir=tmp_path, items=None)
    assert again.source == str(side) and np.array_equal(again.recs, first.recs)


def test_hybrid_configs_cover_the_paper_grid_for_every_component_choice():
    comps = {n: Component(n, "LLMSeqSim") for n in ("x", "y", "z")} | {"s": Component("s", "SASRec")}
    ens = hybrid_configs("EmbeddingEnsemble", comps, llmseqsim=["x", "y", "z"])
    assert len(ens) == 6 * (8 + 10)  # ordered pairs x (8 ranks + 10 confidences)
    seq = hybrid_configs("LLMSeqSim&Sequential", comps, llmseqsim=["x", "y"], sequential=["s"])
    assert len(seq) == 2 * 3 and {c["model_2"] for c in seq} == {"s"}
    assert all(c["popularity_source"] == "train" for c in seq)
    pop = hybrid_configs("LLMSeqSim&Popularity", comps, llmseqsim=["x"])
    assert len(pop) == 3 + 3 + 9
    with pytest.raises(ValueError, match="not defined"):
        hybrid_configs("EmbeddingEnsemble", comps, llmseqsim=["x", "nope"])


def test_component_lists_keep_the_stored_top20_when_a_rebuild_ranks_near_ties_differently(tmp_path, tiny_folder):
    """A rebuild whose top-20 differs from the stored run (re-embedded vectors, float noise) gives long
    lists that start with the stored run's top-20 exactly and go on with the rebuild's other items,
    with a warning; keep_stored_prefix is the rebuild itself where the prefixes agree."""
    from rec_utils.hybrid_runs import keep_stored_prefix

    stored = np.array([[3, 1], [2, 5]])
    rebuilt = np.array([[1, 3, 4, 0], [2, 5, 0, -1]])
    assert keep_stored_prefix(stored, rebuilt).tolist() == [[3, 1, 4, 0], [2, 5, 0, -1]]

    split = make_split(load_dataset(tiny_folder), "loo")
    comp = Component("pop", "MostPopular", preset=None, k=30)
    component_lists(comp, split, out_dir=tmp_path, items=None)
    run = results.find_runs(tmp_path, model="MostPopular")[0]
    stem = results.run_path(tmp_path, Setting.from_dict(run["setting"]), run["split_fingerprint"], 0)
    with np.load(stem.with_suffix(".npz")) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["recs"][0, [0, 1]] = arrays["recs"][0, [1, 0]]  # the stored run ranked a near-tie the other way
    np.savez_compressed(stem.with_suffix(".npz"), **arrays)
    stem.with_name(f"{stem.stem}.top30.npz").unlink()
    with pytest.warns(UserWarning, match="differs from the stored run in 1 of"):
        lists = component_lists(comp, split, out_dir=tmp_path, items=None)
    assert np.array_equal(lists.recs[:, :20], arrays["recs"]) and lists.recs.shape[1] == 30
