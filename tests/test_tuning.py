"""rec_utils.tuning: one config on the folds, the resumable grid, its tie rule, the staged search
of notebook 04 and the config encoders, on a tiny synthetic dataset with fake models."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rec_utils import evaluation
from rec_utils.data import Dataset
from rec_utils.text import ItemEmbeddings
from rec_utils.models.llmseqsim import LLMSeqSim
from rec_utils.split import make_split, temporal_folds
from rec_utils.tuning import (CELL_COLUMNS, CellStore, LLMSeqSimSpace, agg_fields, best_config,
                              evaluate_on_folds, expand_grid, full_grid, grid_search, parse_red, rank_order,
                              red_fields, sized_reductions, sknnemb_configs, sknnemb_fields, staged_search)
from rec_utils.utils import config_id, short_hash


class FakeModel:
    """Deterministic: ranks the train items by a preference drawn from a hash of its config."""

    def __init__(self, **config):
        self.config = config

    def fit(self, train, items=None):
        self.items_ = np.unique(train["item_id"].to_numpy())
        rng = np.random.default_rng(int(short_hash(self.config), 16))
        self.order_ = self.items_[np.argsort(-rng.random(len(self.items_)), kind="stable")]
        return self

    def predict(self, prompts, k=20, return_scores=False):
        top = np.full(k, -1, np.int64)
        top[: min(k, len(self.order_))] = self.order_[:k]
        recs = np.tile(top, (len(prompts), 1))
        scores = np.where(recs >= 0, np.linspace(1, 0, k, dtype=np.float32), np.nan).astype(np.float32)
        return (recs, scores) if return_scores else recs


class Maker:
    """``make_model`` that counts the models it builds."""

    def __init__(self):
        self.built = []

    def __call__(self, cfg):
        self.built.append(cfg)
        return FakeModel(**cfg)


@pytest.fixture(scope="module")
def folds():
    rng = np.random.default_rng(0)
    rows = [(s, int(it), s * 100 + t) for s in range(160)
            for t, it in enumerate(rng.choice(40, rng.integers(2, 6), replace=False))]
    ds = Dataset("toy", pd.DataFrame(rows, columns=["session_id", "item_id", "timestamp"]), None)
    return temporal_folds(make_split(ds, tie_order="file"), 3)


@pytest.fixture
def scored(monkeypatch):
    """Replace the fit-predict-evaluate step: every metric of a cell is ``score(config)``."""
    calls = []

    def install(score):
        def fake(model, split, *, items=None, k=20, skip_empty=False):
            calls.append(model.config)
            v = score(model.config)
            return {"metrics": {"ndcg@20": v, "hit_rate@20": v, "n_sessions": 1, "n_empty": 0},
                    "recs": None, "scores": None, "fit_s": 0.0, "predict_s": 0.0, "wall_s": 0.0}
        monkeypatch.setattr(evaluation, "fit_predict_evaluate", fake)
        return calls
    return install


# ----------------------------------------------------------------------------- evaluate_on_folds


def test_evaluate_on_folds_is_fit_predict_evaluate_per_fold_and_reports_each_fold(folds):
    cfg = {"shift": 1}
    seen = []
    r = evaluate_on_folds(Maker(), cfg, folds, on_fold=lambda i, m: seen.append((i, m)))
    expect = [evaluation.fit_predict_evaluate(FakeModel(**cfg), f)["metrics"]["ndcg@20"] for f in folds]
    assert r["values"] == expect and len(set(expect)) > 1
    assert r["mean"] == pytest.approx(np.mean(expect)) and r["sd"] == pytest.approx(np.std(expect, ddof=1))
    assert seen == [(i, pytest.approx(np.mean(expect[: i + 1]))) for i in range(3)]
    assert r["config_id"] == config_id(cfg) and r["n_cached"] == 0
    assert [c["fold"] for c in r["cells"]] == [1, 2, 3]
    assert list(r["cells"][0])[: len(CELL_COLUMNS)] == list(CELL_COLUMNS)
    assert [c["fold_fingerprint"] for c in r["cells"]] == [f.fingerprint for f in folds]
    assert evaluate_on_folds(Maker(), cfg, folds[:1])["sd"] == 0.0


def test_on_fold_exception_stops_the_folds_and_keeps_finished_cells(folds):
    class Pruned(Exception):
        pass

    def prune(i, mean):
        if i == 1:
            raise Pruned

    make, store = Maker(), CellStore()
    with pytest.raises(Pruned):
        evaluate_on_folds(make, {"shift": 2}, folds, on_fold=prune, store=store)
    assert len(make.built) == 2 and len(store) == 2
    again = Maker()
    r = evaluate_on_folds(again, {"shift": 2}, folds, store=store)
    assert len(again.built) == 1 and r["n_cached"] == 2


def test_evaluate_on_folds_errors(folds):
    with pytest.raises(ValueError, match="at least one fold"):
        evaluate_on_folds(Maker(), {}, [])
    with pytest.raises(KeyError, match="unknown metric"):
        evaluate_on_folds(Maker(), {}, folds, metric="ndcg@7")


# ----------------------------------------------------------------------------- grid


def test_expand_grid_fields_together_where_and_duplicates():
    g = expand_grid({"agg": [{"aggregation": "last"}, {"aggregation": "mean", "decay": "log"}],
                     "k": [1, 2], "sim": ["a", "a"]}, where=lambda c: not (c["aggregation"] == "last" and c["k"] == 2))
    assert g == [{"aggregation": "last", "k": 1, "sim": "a"},
                 {"aggregation": "mean", "decay": "log", "k": 1, "sim": "a"},
                 {"aggregation": "mean", "decay": "log", "k": 2, "sim": "a"}]


def test_grid_search_resumes_from_its_csv_with_all_digit_ids(folds, tmp_path):
    """Hex ids that happen to be all digits (leading zero too) must survive the CSV round trip."""
    cfgs = [{"shift": 407}, {"shift": 1}, {"shift": 407}]  # 407's id is 0328276976; listed twice
    assert config_id(cfgs[0]) == "0328276976"
    csv = tmp_path / "grid" / "g.csv"
    make = Maker()
    t1 = grid_search(make, cfgs, folds, out_csv=csv, progress=False)
    assert len(make.built) == 6 and len(t1) == 2
    cells = pd.read_csv(csv, dtype=str)
    assert list(cells.columns) == [*CELL_COLUMNS, "ndcg@10", "hit_rate@10", "mrr@10", "catalog_coverage@10",
                                   "serendipity@10", "novelty@10", "ndcg@20", "hit_rate@20", "mrr@20",
                                   "catalog_coverage@20", "serendipity@20", "novelty@20", "n_sessions", "n_empty", "n_outside_catalog"]
    assert set(cells["config_id"]) == {"0328276976", config_id({"shift": 1})} and len(cells) == 6
    assert json.loads(cells["config"].iloc[0]) == {"shift": 407}
    again = Maker()
    t2 = grid_search(again, cfgs[:2], folds, out_csv=csv, progress=False)
    assert again.built == []
    pd.testing.assert_frame_equal(t1, t2)
    assert list(t1.columns[:3]) == ["config_id", "shift", "config"]
    assert {"mean_ndcg@20", "sd_ndcg@20", "fold3_ndcg@20", "wall_s", "catalog_coverage@20"} <= set(t1.columns)
    m = t1["mean_ndcg@20"].to_numpy()
    assert (m[:-1] >= m[1:]).all()
    # a new config adds its cells to the file, the others stay
    grid_search(Maker(), [{"shift": 3}], folds, out_csv=csv, progress=False)
    assert len(pd.read_csv(csv)) == 9


def test_ties_within_1e6_go_to_the_first_listed_config_whatever_order_cells_finished(folds, tmp_path, scored):
    calls = scored(lambda c: c["v"])
    a, b = {"name": "a", "v": 0.5}, {"name": "b", "v": 0.5 + 1e-9}
    assert best_config(grid_search(Maker(), [a, b], folds, progress=False)) == a
    csv = tmp_path / "ties.csv"
    assert best_config(grid_search(Maker(), [b, a], folds, out_csv=csv, progress=False)) == b
    n = len(calls)
    # cells now sit in the CSV in the order b, a: resumed, the listing order still decides
    assert best_config(grid_search(Maker(), [a, b], folds, out_csv=csv, progress=False)) == a and len(calls) == n
    c = {"name": "c", "v": 0.5 + 2e-6}  # a real difference wins from any position
    assert best_config(grid_search(Maker(), [a, b, c], folds, out_csv=csv, progress=False)) == c
    assert list(rank_order([0.1, np.nan, 0.3, 0.3 + 1e-9, 0.2])) == [2, 3, 4, 0, 1]


# ----------------------------------------------------------------------------- spaces


def test_config_encoders():
    assert agg_fields("last") == {"aggregation": "last", "decay": None}
    assert agg_fields("mean:log") == {"aggregation": "mean", "decay": "log"}
    assert red_fields("none", 64) == {"reduction": None, "reduced_dim": None}
    assert red_fields("pca-whiten", 64) == {"reduction": "pca", "reduced_dim": 64, "whiten": True}
    assert red_fields("lda", 8) == {"reduction": "lda", "reduced_dim": 8, "lda_labels": "kmeans"}
    assert parse_red("pca:256") == red_fields("pca", 256) and parse_red("none") == red_fields("none", None)
    assert sized_reductions(["none", "pca", "random"], [2, 4]) == [
        red_fields("none", None), red_fields("pca", 2), red_fields("pca", 4), red_fields("random", 2),
        red_fields("random", 4)]
    assert sknnemb_fields({"k": 60, "agg": "mean", "red": "pca:128", "decay": "harmonic"}) == {
        "k": 60, "decay": "harmonic", "prompt_aggregation": "mean", "training_aggregation": "mean",
        "reduction": "pca", "reduced_dim": 128}
    sk = sknnemb_configs({"k": [60, 2000], "sample_size": [1000], "agg": ["mean"], "red": ["none", "pca:8"]})
    assert [(c["k"], c["reduction"]) for c in sk] == [(60, None), (60, "pca")]
    full = LLMSeqSimSpace(["last", "mean:log"], ["none", "pca"], [2, 4], ["cosine", "dot"], ["r", "u"]).full()
    assert len(full) == 2 * 3 * 2 * 2
    assert full[0] == {"aggregation": "last", "decay": None, "reduction": None, "reduced_dim": None,
                       "similarity": "cosine", "text_clean": "r"}
    assert full[1]["text_clean"] == "u" and full[2]["similarity"] == "dot"


# ----------------------------------------------------------------------------- staged search

PARAMS = dict(AGGREGATIONS=["last", "mean", "mean:log"], REDUCTIONS=["none", "pca", "pca-whiten", "lda"],
              SIZES=[2, 4], SIMILARITIES=["cosine", "dot", "euclidean"], TEXT_CLEANS=["reference", "unescape"],
              STAGE1_REDUCTIONS=["none", "pca:4"], STAGE2_TOP=2)


def _staged(make, folds, csv, p=PARAMS):
    space = LLMSeqSimSpace(p["AGGREGATIONS"], p["REDUCTIONS"], p["SIZES"], p["SIMILARITIES"], p["TEXT_CLEANS"])
    return staged_search(make, folds, space, stage1_reductions=p["STAGE1_REDUCTIONS"],
                         stage2_top=p["STAGE2_TOP"], out_csv=csv, progress=False)


def _notebook_cell10(make, folds, grid_csv, AGGREGATIONS, REDUCTIONS, SIZES, SIMILARITIES, TEXT_CLEANS,
                     STAGE1_REDUCTIONS, STAGE2_TOP):
    """Notebook 04 cell 10 before the move (staged mode), verbatim but for ``progress``."""
    def agg_fields(a):
        name, _, decay = a.partition(":")
        return {"aggregation": name, "decay": decay or None}

    def red_fields(r, size):
        if r == "none":
            return {"reduction": None, "reduced_dim": None}
        if r == "pca-whiten":
            return {"reduction": "pca", "reduced_dim": size, "whiten": True}
        return {"reduction": r, "reduced_dim": size, **({"lda_labels": "kmeans"} if r == "lda" else {})}

    reds_sized = [red_fields("none", None)] + [red_fields(r, s) for r in REDUCTIONS if r != "none" for s in SIZES]

    def parse_red(r):
        name, _, size = r.partition(":")
        return red_fields(name, int(size) if size else None)
    stage1 = expand_grid({"agg": [agg_fields(a) for a in AGGREGATIONS], "red": [parse_red(r) for r in STAGE1_REDUCTIONS],
                          "similarity": [SIMILARITIES[0]], "text_clean": TEXT_CLEANS})
    t1 = grid_search(make, stage1, folds, out_csv=grid_csv, progress=False)
    heads = t1.drop_duplicates(["aggregation", "decay", "text_clean"]).head(STAGE2_TOP)
    tops = [{k: json.loads(c)[k] for k in ("aggregation", "decay", "text_clean")} for c in heads["config"]]
    stage2 = [{**t, **r, "similarity": SIMILARITIES[0]} for t in tops for r in reds_sized]
    t2 = grid_search(make, stage1 + stage2, folds, out_csv=grid_csv, progress=False)
    stage3 = [{**best_config(t2), "similarity": sim} for sim in SIMILARITIES]
    configs = expand_grid({"c": stage1 + stage2 + stage3})
    table = grid_search(make, configs, folds, out_csv=grid_csv, progress=False)
    return table, configs


def test_staged_search_is_the_notebooks_staged_grid_and_resumes_its_csv(folds, tmp_path):
    ref_table, ref_configs = _notebook_cell10(Maker(), folds, tmp_path / "nb.csv", **PARAMS)
    make = Maker()
    table, configs = _staged(make, folds, tmp_path / "lib.csv")
    assert configs == ref_configs and len(configs) == 12 + 10 + 2
    assert len(make.built) == len(configs) * 3  # each cell fitted once over the three stages
    pd.testing.assert_frame_equal(table.drop(columns="wall_s"), ref_table.drop(columns="wall_s"))
    again = Maker()
    table2, _ = _staged(again, folds, tmp_path / "nb.csv")  # the notebook's CSV resumes
    assert again.built == []
    pd.testing.assert_frame_equal(table2, ref_table)


def test_staged_search_configs_by_hand(folds, scored):
    """Scores chosen so the stages are known: mean:log > mean > last, unescape > reference,
    larger reduced_dim better, whitening better, dot = euclidean = cosine + 1e-9 (a tie)."""
    def score(c):
        return ({None: 0, "log": 0.2}[c["decay"]] + 0.1 * (c["aggregation"] == "mean")
                + 0.01 * (c["text_clean"] == "unescape") + 0.001 * (c["reduced_dim"] or 0)
                + 0.0001 * bool(c.get("whiten")) + 1e-9 * (c["similarity"] != "cosine"))
    scored(score)
    table, configs = _staged(Maker(), folds, None)

    def cfg(agg, decay, clean, red, sim="cosine"):
        return {"aggregation": agg, "decay": decay, **red, "similarity": sim, "text_clean": clean}
    none, pca4 = red_fields("none", None), red_fields("pca", 4)
    stage1 = [cfg(a, d, t, r) for a, d in [("last", None), ("mean", None), ("mean", "log")]
              for r in (none, pca4) for t in ("reference", "unescape")]
    tops = [("mean", "log", "unescape"), ("mean", "log", "reference")]
    new2 = [{"aggregation": a, "decay": d, "text_clean": t, **r, "similarity": "cosine"} for a, d, t in tops
            for r in (red_fields("pca", 2), red_fields("pca-whiten", 2), red_fields("pca-whiten", 4),
                      red_fields("lda", 2), red_fields("lda", 4))]
    best = {"aggregation": "mean", "decay": "log", "reduced_dim": 4, "reduction": "pca",
            "text_clean": "unescape", "whiten": True}
    new3 = [{**best, "similarity": s} for s in ("dot", "euclidean")]
    assert configs == stage1 + new2 + new3
    assert best_config(table) == {**best, "similarity": "cosine"}  # the tie goes to the first listed


def test_full_grid_ranks_the_full_space(folds, scored):
    scored(lambda c: 0.01 * (c["similarity"] == "dot") + 0.001 * (c["reduced_dim"] or 0))
    space = LLMSeqSimSpace(["last", "mean"], ["pca"], [2, 4], ["cosine", "dot"], ["reference"])
    table, configs = full_grid(Maker(), folds, space, progress=False)
    assert configs == space.full() and len(table) == 2 * 3 * 2
    assert best_config(table) == {"aggregation": "last", "decay": None, "reduction": "pca", "reduced_dim": 4,
                                  "similarity": "dot", "text_clean": "reference"}


def test_staged_search_with_llmseqsim(folds, tmp_path):
    """The real model through the whole path (fit, predict with scores, the 12 metrics)."""
    rng = np.random.default_rng(1)
    emb = ItemEmbeddings(np.arange(40), rng.standard_normal((40, 6)).astype(np.float32), np.zeros(40, bool),
                         "test", "random")
    built = []
    make = lambda cfg: built.append(cfg) or LLMSeqSim(embeddings=emb, device="cpu", **cfg)
    p = dict(AGGREGATIONS=["last", "mean:log"], REDUCTIONS=["pca"], SIZES=[2], SIMILARITIES=["cosine", "dot"],
             TEXT_CLEANS=["reference"], STAGE1_REDUCTIONS=["none"], STAGE2_TOP=1)
    table, configs = _staged(make, folds, tmp_path / "g.csv", p)
    assert len(configs) == 2 + 1 + 1 and len(built) == 4 * 3 and len(table) == 4
    assert table[["mean_ndcg@20", "catalog_coverage@20", "novelty@20"]].notna().all(axis=None)
    assert best_config(table) in configs
