"""The tables of README.md and docs/*.md are generated from the result files: one test population
per table, one row per result, short labels, flags, and --check over every document and master table."""
from __future__ import annotations

import pandas as pd

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
    assert "| MostPopular" not in neural  # no row of it (the flag legend may name it)
    ties = report.to_markdown(report.table_tie_order("beauty"))
    assert "MostPopular" in ties and "SASRec" not in ties
    metrics = report.to_markdown(report.table_metrics("beauty", "temporal"))
    assert "SASRec (tie_order=file)" in metrics and "MostPopular (tie_order=file)" not in metrics


def test_tables_are_dataframes_and_the_latest_row_of_a_label_wins(tmp_path, monkeypatch, tiny_folder):
    """A label with rows of two split fingerprints (the data changed in between) shows the latest."""
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
    assert "ml (aaa): busy box." in t.attrs["note"] and "idle box" in t.attrs["note"] and "old" not in t.attrs["note"]


def test_plan_times_show_a_re_measured_entry_and_the_assembled_total_beside_the_full_recording(tmp_path, monkeypatch):
    (tmp_path / "benchmarks").mkdir()
    rows = [("default", "01_gone", 10, "2026-01-01T00:01:00", "aaa", "old"),  # not in the latest full recording
            ("default", "01_baselines", 60, "2026-02-01T00:01:00", "bbb", "full"),
            ("default", "05_llm2", 120, "2026-02-01T00:03:00", "bbb", "full"),
            ("default", "TOTAL (make study, wall clock)", 200, "2026-02-01T00:05:00", "bbb", "full"),
            ("default", "05_llm2", 240, "2026-03-01T00:00:00", "ccc", "05 alone"),
            ("default", "TOTAL (assembled from each run's latest from-nothing time)", 320, "2026-03-01T00:00:00",
             "ccc", "an estimate")]
    pd.DataFrame(rows, columns=["plan", "run", "wall_s", "finished", "git_commit", "note"]).to_csv(
        tmp_path / "benchmarks" / "plan_times.csv", index=False)
    monkeypatch.setattr(report, "RESULTS_ROOT", tmp_path)
    t = report.table_plan_times()
    assert t["run"].tolist() == ["01_baselines", "05_llm2", "TOTAL (make study, wall clock)",
                                 "TOTAL (assembled from each run's latest from-nothing time)"]
    assert t["git_commit"].tolist() == ["bbb", "ccc", "bbb", "ccc"] and t["minutes"].tolist() == [1.0, 4.0, 3.3, 5.3]
    assert "05 alone" in t.attrs["note"] and "old" not in t.attrs["note"]


# --- one test population per table, one row per result, flags, and --check over every document -----------------

def _record(out, split, model="MostPopular", *, label_fields=(), build="MostPopular", seeds=(0,)):
    setting = Setting.of(model, split, config={} if model != build else None, label_fields=label_fields)
    runs = run_seeds(lambda s: build_model(build), split, setting, notebook="any", out_dir=out, seeds=list(seeds))
    results.record(runs, out)
    return runs


def test_sampled_rows_get_tables_of_their_own_one_per_sample_size(tmp_path, monkeypatch, tiny_folder):
    """Rows evaluated on a seeded sample of test sessions never share a table with full-test rows
    (nor with another sample size): the full-test table has one n, the sampled ones an `n` column each."""
    full = pretend_temporal(make_split(load_dataset(tiny_folder), "loo"))
    out = tmp_path / "beauty"
    _record(out, full)
    for n in (2, 4):
        _record(out, pretend_temporal(make_split(load_dataset(tiny_folder), "loo").sample_test(n, seed=0)))
    monkeypatch.setattr(report, "RESULTS_ROOT", tmp_path)
    t = report.table_metrics("beauty", "temporal")
    assert len(t) == 1 and t.attrs["n_test_sessions"] == [len(full.test.targets)]
    sampled = report.table_metrics_sampled("beauty", "temporal")
    assert [x.attrs["n_test_sessions"] for x in sampled] == [[4], [2]]
    assert all(set(x["n"]) == set(x.attrs["n_test_sessions"]) for x in sampled)
    assert "test_sessions=" not in report.to_markdown(sampled)  # the n column says it


def test_rows_of_the_same_runs_are_shown_once_and_named_in_the_note(tmp_path, monkeypatch, tiny_folder):
    """A default label and its explicit `tie_order=shuffle,tie_seed=0` come from the same runs:
    the master table shows one row, and its note says which label the row also stands for."""
    from rec_utils.analysis import master_table

    split = pretend_temporal(make_split(load_dataset(tiny_folder), "loo"))
    out = tmp_path / "beauty"
    _record(out, split)
    _record(out, split, label_fields=("ties",))
    master_table(out, "beauty").to_csv(out / "master_table.csv", index=False)
    monkeypatch.setattr(report, "RESULTS_ROOT", tmp_path)
    assert len(results.read_summary(out).query("aggregate == 'mean'")) == 2
    kept, merged = report.dedupe(report._mean_rows("beauty", "temporal"))
    assert list(kept["variant"]) == [""] and merged == ["MostPopular (tie_order=shuffle,tie_seed=0) = MostPopular"]
    (t,) = report.table_master("beauty")
    assert list(t["model"]) == ["MostPopular"] and len(set(t.attrs["result_keys"])) == len(t)
    assert "MostPopular (tie_order=shuffle,tie_seed=0) = MostPopular" in t.attrs["note"]


def test_long_labels_are_shortened_with_a_legend():
    label = "decoder={},epochs=1,eval_steps=2,lora=False,max_case_tokens=256,max_prompt_items=5,model=smollm2,test_sessions=9"
    names, notes = report.compact_labels(["LLMSeqPrompt"] * 2 + ["V-SKNN"], [label.format("beam"), label.format("sample"), ""],
                                         drop=("test_sessions",))
    assert names[0] == "LLMSeqPrompt (decoder=beam †)" and names[2] == "V-SKNN"
    assert all(len(n) <= report.MAX_LABEL + len("LLMSeqPrompt ()") for n in names)
    assert notes == ["† LLMSeqPrompt rows also have epochs=1, eval_steps=2, lora=False, max_case_tokens=256, "
                     "max_prompt_items=5, model=smollm2"]
    one, notes = report.compact_labels(["X"], ["a=" + "1" * 80])
    assert one == ["X ([1])"] and notes == ["[1] X (a=" + "1" * 80 + ")"]


def test_a_run_that_stopped_at_its_first_epoch_is_flagged():
    stopped = {"fit_info": {"stopped_by": "early_stopping", "best_epoch": 1, "epochs_run": 3}}
    fine = {"fit_info": {"stopped_by": "early_stopping", "best_epoch": 4, "epochs_run": 6}}
    old = {"history": [{"epoch": 1, "best": True}, {"epoch": 2, "best": False}, {"epoch": 3, "best": False}]}
    assert report.first_epoch_stop(stopped) and report.first_epoch_stop(old)
    assert not report.first_epoch_stop(fine) and not report.first_epoch_stop({"history": [{"epoch": 1, "best": True}]})
    assert not report.first_epoch_stop({})


def test_a_row_at_most_popular_on_test_is_marked_descriptively_not_flagged_for_tuning(tmp_path, monkeypatch,
                                                                                       tiny_folder):
    """<MP (at or below MostPopular on the row's own test sessions) is a description; ↓MP, the advice
    to tune, is decided on validation only (tests/test_generic_plan.py), so a run without a
    validation check never gets it."""
    split = pretend_temporal(make_split(load_dataset(tiny_folder), "loo"))
    out = tmp_path / "beauty"
    _record(out, split)
    _record(out, split, model="SASRec")  # MostPopular's lists under another name: not above it
    monkeypatch.setattr(report, "RESULTS_ROOT", tmp_path)
    t = report.table_metrics("beauty", "temporal")
    # same lists, so one row is shown (MostPopular's, the other named in the note); the flag is computed per row
    s = report._mean_rows("beauty", "temporal")
    sas = s[s["model"] == "SASRec"].iloc[0]
    assert report.row_flags("beauty", sas) == "<MP"
    mp = s[s["model"] == "MostPopular"].iloc[0]
    assert report.row_flags("beauty", mp) == ""  # MostPopular is not compared with itself
    assert "SASRec = MostPopular" in t.attrs["note"]


def test_check_covers_every_document_and_the_master_tables(tmp_path, monkeypatch, tiny_folder):
    """`--check` fails on a stale block in docs/*.md (not only README.md) and on a master table
    that differs from what rec_utils.analysis.master_table writes; the rewrite fixes both."""
    split = pretend_temporal(make_split(load_dataset(tiny_folder), "loo"))
    out = tmp_path / "results" / "beauty"
    _record(out, split)
    root = tmp_path / "project"
    (root / "docs").mkdir(parents=True)
    block = "<!-- BEGIN generated:beauty-temporal -->\nold\n<!-- END generated:beauty-temporal -->\n"
    (root / "README.md").write_text("# x\n")
    (root / "docs" / "results.md").write_text(block)
    monkeypatch.setattr(report, "RESULTS_ROOT", tmp_path / "results")
    monkeypatch.setattr(report, "PROJECT_ROOT", root)
    monkeypatch.setattr(report, "README", root / "README.md")
    assert report.main(["--check"]) == 1
    assert set(report.stale()) == {"docs/results.md", str(out / "master_table.csv")}
    assert report.main([]) == 0
    assert "| MostPopular |" in (root / "docs" / "results.md").read_text()
    assert report.main(["--check"]) == 0
    (out / "master_table.csv").write_text((out / "master_table.csv").read_text().replace("MostPopular", "Other"))
    assert report.stale() == [str(out / "master_table.csv")]


def test_figure_links_work_from_the_document_that_holds_them():
    body = "![t](results/figures/a.png) [x](https://example.org/y.png) [r](#anchor)"
    assert report._rebase(body, report.PROJECT_ROOT / "docs") == (
        "![t](../results/figures/a.png) [x](https://example.org/y.png) [r](#anchor)")
    assert report._rebase(body, report.PROJECT_ROOT) == body


def test_committed_tables_keep_one_population_and_one_row_per_result():
    """The blocks of the committed documents, built from the committed results: no table mixes
    test-set sizes, none shows the same result twice, and every block name is known."""
    import re

    names = {m for doc in report.documents() for m in re.findall(r"<!-- BEGIN generated:([\w-]+) -->", doc.read_text())}
    assert "headline" in names and not [n for n in names if n not in report.BLOCKS and not n.startswith("figure-")]
    for name in sorted(n for n in names if n in report.BLOCKS):
        got = report.BLOCKS[name]()
        for t in got if isinstance(got, list) else [got]:
            if not isinstance(t, pd.DataFrame):
                continue
            assert len(t.attrs.get("n_test_sessions", [])) <= 1, f"{name} mixes test populations"
            if "n" in t and "n_test_sessions" in t.attrs:  # (a benchmark's n counts something else)
                assert t["n"].nunique() == 1, f"{name} mixes sample sizes"
            keys = t.attrs.get("result_keys", [])
            assert len(keys) == len(set(keys)), f"{name} shows one result twice"


def test_the_headline_answer_reads_the_confidence_interval():
    assert report.verdict({"ci_low": 0.001, "ci_high": 0.02}) == "A better"
    assert report.verdict({"ci_low": -0.02, "ci_high": -0.001}) == "B better"
    assert report.verdict({"ci_low": -0.01, "ci_high": 0.0}) == "no difference shown"


def test_headline_answers_the_three_questions_from_the_committed_results():
    """README's headline, from the committed result files: questions 1 and 2 on the full test
    set, question 3 on one sample of test sessions (a table of its own), every pair computed."""
    full, sample = report.table_headline("beauty")
    assert set(full["question"].str[:2]) == {"1.", "2."} and set(sample["question"].str[:2]) == {"3."}
    assert len(full.attrs["n_test_sessions"]) == len(sample.attrs["n_test_sessions"]) == 1
    assert full.attrs["n_test_sessions"] != sample.attrs["n_test_sessions"] and sample["n"].nunique() == 1
    assert not pd.concat([full, sample])["A − B [95 % CI]"].str.startswith("not computed").any()
    assert set(sample["B"]) == {"MostPopular", "V-SKNN", "LLMSeqSim"}


def test_the_headline_never_shows_a_refused_pair_as_a_comparison(tmp_path, monkeypatch):
    """report._stored_or_paired: a pair stored in significance.csv gives its stored CI; a pair in
    significance_refused.csv gives no CI, only 'refused, <reason>' (verdict '–'), never a recomputation."""
    from rec_utils.significance import REFUSED_COLUMNS, SIGNIFICANCE_COLUMNS

    out = tmp_path / "beauty"
    out.mkdir()
    base = {"setting_id_a": "a1", "setting_id_b": "b1", "split_fingerprint": "f1", "metric": "ndcg@20",
            "mean_a": 0.02, "mean_b": 0.01, "diff": 0.01, "ci_low": 0.005, "ci_high": 0.015}
    pd.DataFrame([base], columns=list(SIGNIFICANCE_COLUMNS)).to_csv(out / "significance.csv", index=False)
    pd.DataFrame([{**base, "setting_id_a": "a2", "pairing": "different training code: x; y"}],
                 columns=list(REFUSED_COLUMNS)).to_csv(out / "significance_refused.csv", index=False)
    monkeypatch.setattr(report, "RESULTS_ROOT", tmp_path)
    row = lambda sid: pd.Series({"setting_id": sid, "split_fingerprint": "f1", "ndcg@20": 0.02})  # noqa: E731
    stored = report._stored_or_paired("beauty", row("a1"), pd.Series({**row("b1"), "setting_id": "b1"}), "ndcg@20")
    assert (stored["ci_low"], stored["ci_high"]) == (0.005, 0.015) and report.verdict(stored) == "A better"
    refused = report._stored_or_paired("beauty", row("a2"), pd.Series({**row("b1"), "setting_id": "b1"}), "ndcg@20")
    assert report._ci(refused) == "refused, different training code: x; y" and report.verdict(refused) == "–"
