"""README tables are generated from summary.csv."""
from __future__ import annotations

from rec_utils import report, results
from rec_utils.data import load_dataset
from rec_utils.evaluation import run_seeds
from rec_utils.models import build_model
from rec_utils.setting import Setting
from rec_utils.split import make_split


def pretend_temporal(split):
    split.info["dataset"] = "beauty"
    split.protocol = "temporal"  # pretend, to exercise the paper comparison
    return split


def test_render_fills_marked_blocks_from_summary(tmp_path, monkeypatch, tiny_folder):
    split = pretend_temporal(make_split(load_dataset(tiny_folder), "loo"))
    out = tmp_path / "beauty"
    runs = run_seeds(lambda s: build_model("MostPopular"), split, Setting.of("MostPopular", split),
                     notebook="01_baselines", out_dir=out, seeds=[0])
    results.record(runs, out)
    monkeypatch.setattr(report, "RESULTS_ROOT", tmp_path)
    text = "x\n<!-- BEGIN generated:beauty-vs-paper -->\nold\n<!-- END generated:beauty-vs-paper -->\ny"
    new = report.render(text)
    assert "old" not in new and new.startswith("x\n") and new.endswith("\ny")
    assert "| MostPopular | 1 |" in new and "0.0045" in new  # the paper's MostPopular NDCG@10
    assert "No loo results" in report.render("<!-- BEGIN generated:beauty-loo --><!-- END generated:beauty-loo -->")


def test_neural_sensitivity_and_tie_tables_keep_their_rows_apart(tmp_path, monkeypatch, tiny_folder):
    """The neural models' tie-order variants go to the neural sensitivity table (next to the
    paper's NDCG@10), not into the baselines' tie-spread table; other families' stay there. Rows
    are told apart by model family, whichever notebook wrote them."""
    data = load_dataset(tiny_folder)
    shuffled = pretend_temporal(make_split(data, "loo"))
    file_order = pretend_temporal(make_split(data, "loo", tie_order="file"))
    out = tmp_path / "beauty"
    for model, split in [("SASRec", shuffled), ("SASRec", file_order), ("MostPopular", file_order)]:
        setting = Setting.of(model, split, config={})  # a stand-in model: the labels are what is tested
        runs = run_seeds(lambda s: build_model("MostPopular"), split, setting, notebook="any", out_dir=out, seeds=[0])
        results.record(runs, out)
    monkeypatch.setattr(report, "RESULTS_ROOT", tmp_path)
    neural = report.to_markdown(report.table_neural_sensitivity("beauty"))
    assert "| SASRec | paper config (shuffled ties, per-item bias) | 1 |" in neural
    assert "| SASRec | tie_order=file | 1 |" in neural and "0.0276" in neural  # paper's SASRec NDCG@10
    assert "MostPopular" not in neural
    ties = report.to_markdown(report.table_tie_order("beauty"))
    assert "MostPopular" in ties and "SASRec" not in ties
    metrics = report.to_markdown(report.table_metrics("beauty", "temporal"))
    assert "SASRec (tie_order=file)" in metrics and "MostPopular (tie_order=file)" not in metrics


def test_tables_are_dataframes_and_the_latest_row_of_a_label_wins(tmp_path, monkeypatch, tiny_folder):
    """A label with rows of two split fingerprints (the data changed in between) shows the latest."""
    import pandas as pd

    split = pretend_temporal(make_split(load_dataset(tiny_folder), "loo"))
    out = tmp_path / "beauty"
    runs = run_seeds(lambda s: build_model("MostPopular"), split, Setting.of("MostPopular", split),
                     out_dir=out, seeds=[0])
    results.record(runs, out)
    old = results.read_summary(out)
    stale = old.assign(split_fingerprint="0" * 12, created="2000-01-01T00:00:00", **{"ndcg@10": 0.5})
    pd.concat([stale, old]).to_csv(out / "summary.csv", index=False)
    monkeypatch.setattr(report, "RESULTS_ROOT", tmp_path)
    table = report.table_metrics("beauty", "temporal")
    assert isinstance(table, pd.DataFrame) and len(table) == 1
    assert table["split"].item() == split.fingerprint


def test_plan_times_show_each_plans_latest_recording_with_its_conditions(tmp_path, monkeypatch):
    import pandas as pd

    (tmp_path / "benchmarks").mkdir()
    rows = [("default", "01_baselines", 60, "2026-01-01T00:01:00", "aaa", "old"),
            ("default", "TOTAL (make study, wall clock)", 600, "2026-01-01T00:10:00", "aaa", "old"),
            ("default", "01_baselines", 30, "2026-02-01T00:01:00", "bbb", "idle box"),
            ("default", "TOTAL (make study, wall clock)", 300, "2026-02-01T00:05:00", "bbb", "idle box"),
            ("ml", "00_data", 6, "2026-01-15T00:00:06", "aaa", "busy box")]
    pd.DataFrame(rows, columns=["plan", "run", "wall_s", "finished", "git_commit", "note"]).to_csv(
        tmp_path / "benchmarks" / "plan_times.csv", index=False)
    monkeypatch.setattr(report, "RESULTS_ROOT", tmp_path)
    t = report.table_plan_times()
    assert set(t.loc[t["plan"] == "default", "git_commit"]) == {"bbb"}
    assert t.loc[(t["plan"] == "default") & t["run"].str.startswith("TOTAL"), "minutes"].item() == 5.0
    assert "ml: busy box." in t.attrs["note"] and "idle box" in t.attrs["note"] and "old" not in t.attrs["note"]
