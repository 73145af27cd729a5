"""`make study DATASET=<folder>`: the generic plan sized by the data, and the flag on models
that score no better than MostPopular."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import write_dataset
from rec_utils import analysis, study


def folder(tmp_path, name="shop", sessions=50, length=6, ties=False, items=True):
    rng = np.random.default_rng(0)
    rows = [(s, int(i), 100 * s + (0 if ties and j < 2 else j))
            for s in range(sessions) for j, i in enumerate(rng.integers(0, 30, size=length))]
    return write_dataset(tmp_path / name, rows, [(i, f"item {i}") for i in range(30)] if items else None)


def params(plan, notebook):
    return next(r["parameters"] for r in plan["runs"] if r["notebook"] == notebook)


def test_generic_plan_is_sized_by_the_data(tmp_path, monkeypatch):
    data = folder(tmp_path, length=30)
    plan = study.for_dataset(study.load_plan("generic"), str(data))
    assert all(r["parameters"]["DATASET"] == str(data) for r in plan["runs"])
    monkeypatch.chdir(tmp_path)  # a relative folder is made absolute (notebooks run from notebooks/)
    assert study.for_dataset(study.load_plan("generic"), "shop")["defaults"]["DATASET"] == str(data.resolve())
    assert params(plan, "01_baselines")["SPREAD_TIE_SEEDS"] == []  # no ties in the data
    assert "MODELS" not in params(plan, "01_baselines")  # small data: every SKNN variant, faithful
    # every session has 30 items: the neural models see them whole (p95 = 30), labelled overrides
    assert params(plan, "02_sequential")["CONFIG"]["SASRec"] == {"max_len": 30}
    assert "BERT4Rec" in params(plan, "02_sequential")["MODELS"]  # 40 train sessions: within a CPU's reach
    assert params(plan, "05_llm2sequential")["CONFIG"]["LLM2SASRec"] == {"max_len": 30}
    assert params(plan, "11_results")["DATASETS"] == ["shop"]
    assert params(plan, "06_llmseqprompt")["EVAL_SESSIONS"] == 10  # the plan's own value wins
    runs = study.expand_runs(plan, tmp_path / "results")
    assert {r["output"].parent.parent for r in runs} == {tmp_path / "results" / "shop"}


def test_sizing_rules_for_large_tied_and_textless_data(tmp_path):
    big = {"name": "big", "path": "/x/big", "interactions": 1_000_000, "sessions": 100_000, "items": 50_000,
           "has_ties": True, "has_text": True, "length_percentile": 4.2}
    p01 = study.sized_parameters("01_baselines", big)
    assert p01["CONFIG_OVERRIDES"]["V-SKNN"] == {"index_cap": 1090} and "S-SKNN" not in p01["MODELS"]
    assert p01["SAMPLE_SESSIONS"] == study.MAX_TEST_SESSIONS == study.sized_parameters("11_results", big)["SAMPLE_SESSIONS"]
    assert "SPREAD_TIE_SEEDS" not in p01  # ties: the notebook's default spread
    assert study.max_len_rule(big) == 5 and "BERT4Rec" not in study.sized_parameters("02_sequential", big)["MODELS"]
    assert study.max_len_rule({**big, "length_percentile": 800}) == 200
    plan = study.for_dataset(study.load_plan("generic"), str(folder(tmp_path, items=False)))
    assert not {"03_embeddings", "04_llmseqsim", "07_hybrids"} & {r["notebook"] for r in plan["runs"]}


def test_a_sized_plan_needs_a_dataset(capsys):
    with pytest.raises(SystemExit):
        study.main(["generic"])
    assert "--dataset" in capsys.readouterr().err


def test_models_at_or_below_most_popular_are_flagged_with_advice():
    t = pd.DataFrame({"model": ["MostPopular", "SASRec", "V-SKNN", "GRU4Rec"], "label": ["", "", "", ""],
                      "protocol": ["temporal"] * 4, "split": ["a", "a", "a", "b"],
                      "ndcg@20": [0.012, 0.010, 0.05, 0.001]})
    f = analysis.flag_below_most_popular(t)
    assert f["below MostPopular"].tolist()[1:3] == [True, False]
    assert pd.isna(f["below MostPopular"].iloc[0]) and pd.isna(f["below MostPopular"].iloc[3])  # no reference on split b
    advice = analysis.tuning_advice(f, "shop")
    assert "SASRec" in advice and "V-SKNN" not in advice and 'PRESET="tuned"' in advice
    assert analysis.tuning_advice(f[f["model"] != "SASRec"], "shop") is None
