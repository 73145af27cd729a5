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


def test_models_at_or_below_most_popular_on_validation_are_flagged_with_advice():
    # the flag reads the recorded validation scores, never the test columns: SASRec is above
    # MostPopular on test here and still flagged, V-SKNN below on test and not flagged
    t = pd.DataFrame({"model": ["MostPopular", "SASRec", "V-SKNN", "GRU4Rec"], "label": ["", "", "", ""],
                      "protocol": ["temporal"] * 4, "split": ["a", "a", "a", "b"],
                      "ndcg@20": [0.012, 0.030, 0.001, 0.001],
                      "val ndcg@20": [np.nan, 0.010, np.nan, 0.04],
                      "val ndcg@20 MostPopular": [np.nan, 0.010, np.nan, 0.03]})
    f = analysis.flag_below_most_popular(t)
    flag = f["below MostPopular"]
    assert flag.iloc[1] is True and flag.iloc[3] is False  # equal counts as below; above is not
    assert pd.isna(flag.iloc[0]) and pd.isna(flag.iloc[2])  # MostPopular itself; no validation score
    advice = analysis.tuning_advice(f, "shop")
    assert "SASRec" in advice and "V-SKNN" not in advice and "GRU4Rec" not in advice and 'PRESET="tuned"' in advice
    assert analysis.tuning_advice(f[f["model"] != "SASRec"], "shop") is None
    # a table without validation columns flags nothing (no fallback to the test scores)
    assert analysis.flag_below_most_popular(t[["model", "label", "protocol", "split", "ndcg@20"]])[
        "below MostPopular"].isna().all()


def test_the_validation_flag_goes_from_the_runs_through_summary_and_master_table_to_the_report(
        tmp_path, monkeypatch):
    from rec_utils import report, results
    from rec_utils.data import load_dataset
    from rec_utils.evaluation import run_seeds
    from rec_utils.models import build_model
    from rec_utils.setting import Setting
    from rec_utils.split import make_split

    split = make_split(load_dataset(folder(tmp_path)), "temporal")
    out = tmp_path / "results" / "shop"
    rows = []
    # cheap stand-ins with lists of their own (the report shows rows with identical results once):
    # the recorded check is what is tested
    for model, check, stand_in in [("MostPopular", None, "MostPopular"), ("SASRec", (0.01, 0.02), "V-SKNN"),
                                   ("GRU4Rec", (0.05, 0.02), "SKNN")]:
        setting = Setting.of(model, split, config={})
        run = run_seeds(lambda s, m=stand_in: build_model(m), split, setting, out_dir=out, seeds=[0])[0]
        if check:
            run["fit_info"] = {"validation": {"cases": 5, "best_epoch": 1, "ndcg@10": check[0], "ndcg@20": check[0],
                                              "most_popular_ndcg@10": check[1], "most_popular_ndcg@20": check[1]}}
        rows += results.summary_rows([run])
    results.update_summary(rows, out)
    master = analysis.master_table(out, "shop")
    flags = dict(zip(master["model"], master["below MostPopular"]))
    assert flags["SASRec"] is True and flags["GRU4Rec"] is False and pd.isna(flags["MostPopular"])
    assert "SASRec" in analysis.tuning_advice(master, "shop")
    assert analysis.validation_flags(results.read_summary(out))["model"].tolist() == ["GRU4Rec", "SASRec"]
    master.to_csv(out / "master_table.csv", index=False)
    monkeypatch.setattr(report, "RESULTS_ROOT", tmp_path / "results")
    cells = pd.concat(report.table_master("shop")).set_index("model")["val NDCG@20 (MostPopular)"]
    assert cells["SASRec"].startswith("0.0100 (0.0200) below: tune") and 'PRESET="tuned"' in cells["SASRec"]
    assert cells["GRU4Rec"] == "0.0500 (0.0200)" and cells["MostPopular"] == ""
    metrics = report.table_metrics("shop", "temporal").set_index("model")["val NDCG@20 (MostPopular)"]
    assert metrics.to_dict() == cells.to_dict()  # the README's per-dataset table shows the same check


def test_backfilled_validation_check_equals_the_one_a_new_run_records(tmp_path):
    """scripts/backfill_validation.py rebuilds the inner-validation cases of a stored neural run
    made before the check was recorded and writes the very check a new run records; the
    summary row gets its validation columns and keeps its ``created``."""
    import importlib.util
    import json

    from rec_utils import results
    from rec_utils.data import load_dataset
    from rec_utils.evaluation import run_seeds
    from rec_utils.models import build_model
    from rec_utils.setting import Setting
    from rec_utils.split import make_split
    from rec_utils.utils import PROJECT_ROOT

    data = folder(tmp_path, sessions=120)
    split = make_split(load_dataset(data), "temporal")
    setting = Setting.of("SASRec", split, config={"epochs": 2, "emb_dim": 8, "num_heads": 1, "max_len": 6})
    out = tmp_path / "results" / "shop"
    run = run_seeds(lambda s: build_model("SASRec", **{**setting.config, "seed": s}, device="cpu", progress=False),
                    split, setting, out_dir=out, seeds=[0])[0]
    results.record([run], out)
    new_check = run["fit_info"]["validation"]
    path = results.run_path(out, setting, split.fingerprint, 0)
    stored = json.loads(path.read_text())
    del stored["fit_info"]["validation"]  # as a run made before the check
    path.write_text(json.dumps(stored))
    before = results.read_summary(out)
    before = before.drop(columns=list(results.VALIDATION_COLUMNS))
    before.to_csv(out / "summary.csv", index=False)

    spec = importlib.util.spec_from_file_location("backfill", PROJECT_ROOT / "scripts" / "backfill_validation.py")
    backfill = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(backfill)
    assert backfill.main([str(out), "--data", str(data)]) == 0
    assert json.loads(path.read_text())["fit_info"]["validation"] == new_check
    after = results.read_summary(out)
    assert after["val_ndcg@20"].tolist() == pytest.approx([new_check["ndcg@20"]], rel=1e-5)
    assert after["val_ndcg@20_most_popular"].tolist() == pytest.approx([new_check["most_popular_ndcg@20"]], rel=1e-5)
    assert after["created"].tolist() == before["created"].tolist()
    assert backfill.backfill_run(path, {"data_path": str(data)}, dry_run=True) == "already has the check"


@pytest.mark.notebooks
def test_the_generic_plan_takes_a_folder_dataset_through_11_results(tmp_path):
    """`make study DATASET=<folder>` end to end on a tiny folder outside data/: the generic plan's
    sizing, its 01 / 02 / 11 notebooks (00 and the text-based ones are covered by the CI notebook
    runs; tiny training parameters written over the sized ones), and 11's master table of the
    folder's dataset with the validation check of the neural row. About 35 s on an idle 2-core box."""
    import yaml

    from rec_utils import results

    data = folder(tmp_path, name="myshop", sessions=60, length=5)
    generic = study.load_plan("generic")
    tiny = {"01_baselines": {"MODELS": ["MostPopular", "V-SKNN"], "SEEDS": [0]},
            "02_sequential": {"MODELS": ["SASRec"], "CONFIG": {"SASRec": {"epochs": 2, "emb_dim": 8}},
                              "CHECKPOINT_DIR": None, "PROGRESS": False},
            "11_results": {"LENGTH_MODELS": ["MostPopular", "V-SKNN", "SASRec"]}}
    runs = [{**r, "parameters": {**(r.get("parameters") or {}), **tiny[r["notebook"]]}}
            for r in generic["runs"] if r["notebook"] in tiny]
    plan = {"description": "generic plan, tiny", "sized_by_data": True, "runs": runs}
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    out = tmp_path / "results"
    assert study.main([str(tmp_path / "plan.yaml"), "--dataset", str(data), "--out", str(out), "--no-log-output"]) == 0
    master = pd.read_csv(out / "myshop" / "master_table.csv")
    assert {"MostPopular", "V-SKNN", "SASRec"} <= set(master["model"])
    sasrec = master[master["model"] == "SASRec"].iloc[0]
    assert sasrec["label"] == "emb_dim=8,epochs=2"  # the plan's CONFIG wins over the sized one (max_len=5)
    assert sasrec["val ndcg@20"] == sasrec["val ndcg@20"] and "below MostPopular" in master.columns
    assert results.read_summary(out / "myshop")["val_ndcg@20"].notna().sum() == 1  # only the neural row has one
    assert (out / "figures" / "myshop" / "index.csv").is_file()
