"""README tables are generated from summary.csv."""
from __future__ import annotations

from rec_utils import report, results
from rec_utils.data import load_dataset
from rec_utils.evaluation import run_seeds
from rec_utils.models import build_model
from rec_utils.split import make_split


def test_render_fills_marked_blocks_from_summary(tmp_path, monkeypatch, tiny_folder):
    split = make_split(load_dataset(tiny_folder), "loo", tie_order="file")
    split.info["dataset"] = "beauty"
    split.protocol = "temporal"  # pretend, to exercise the paper comparison
    out = tmp_path / "beauty"
    runs = run_seeds(lambda s: build_model("MostPopular"), split, model_name="MostPopular", config={},
                     notebook="01_baselines", out_dir=out, seeds=[0])
    results.record(runs, out)
    monkeypatch.setattr(report, "RESULTS_ROOT", tmp_path)
    text = "x\n<!-- BEGIN generated:beauty-vs-paper -->\nold\n<!-- END generated:beauty-vs-paper -->\ny"
    new = report.render(text)
    assert "old" not in new and new.startswith("x\n") and new.endswith("\ny")
    assert "| MostPopular | 1 |" in new and "0.0045" in new  # the paper's MostPopular NDCG@10
    assert "No loo results" in report.render("<!-- BEGIN generated:beauty-loo --><!-- END generated:beauty-loo -->")


def test_neural_sensitivity_and_tie_tables_keep_their_rows_apart(tmp_path, monkeypatch, tiny_folder):
    """Notebook 02's tie-order variants go to the neural sensitivity table (next to the paper's
    NDCG@10), not into the baselines' tie-spread table; other notebooks' stay there."""
    split = make_split(load_dataset(tiny_folder), "loo", tie_order="file")
    split.info["dataset"] = "beauty"
    split.protocol = "temporal"
    out = tmp_path / "beauty"
    for notebook, model, variant in [("02_sequential", "SASRec", ""), ("02_sequential", "SASRec", "tie_order=file"),
                                     ("01_baselines", "MostPopular", "tie_order=file")]:
        runs = run_seeds(lambda s: build_model("MostPopular"), split, model_name=model, config={},
                         notebook=notebook, out_dir=out, seeds=[0], variant=variant)
        results.record(runs, out)
    monkeypatch.setattr(report, "RESULTS_ROOT", tmp_path)
    neural = report.table_neural_sensitivity("beauty")
    assert "| SASRec | paper config (shuffled ties, per-item bias) | 1 |" in neural
    assert "| SASRec | tie_order=file | 1 |" in neural and "0.0276" in neural  # paper's SASRec NDCG@10
    assert "MostPopular" not in neural
    ties = report.table_tie_order("beauty")
    assert "MostPopular" in ties and "SASRec" not in ties
    metrics = report.table_metrics("beauty", "temporal")
    assert "SASRec (tie_order=file)" in metrics and "MostPopular (tie_order=file)" not in metrics
