"""The results contract: run records, resume, summary rows, atomic replacement; the study runner."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from rec_utils import results
from rec_utils.data import load_dataset
from rec_utils.evaluation import run_seeds
from rec_utils.metrics import METRIC_COLUMNS
from rec_utils.models import build_model
from rec_utils.setting import Setting
from rec_utils.split import make_split
from rec_utils.study import expand_runs, is_done, load_plan
from rec_utils.utils import PROJECT_ROOT


def sknn_setting(split, **overrides):
    return Setting.of("SKNN", split, config={"k": 2, **overrides}, preset=None, overrides=overrides)


def pop_setting(split):
    return Setting.of("MostPopular", split, preset=None)


@pytest.fixture
def tiny_split(tiny_folder):
    return make_split(load_dataset(tiny_folder), "loo", tie_order="file")


def counting_sknn(fits, **config):
    """make_model for run_seeds that records which seeds were actually fitted."""
    def make(seed):
        m = build_model("SKNN", **{"k": 2, "sample_size": 3, **config}, seed=seed)
        fit = m.fit
        m.fit = lambda *a, **kw: (fits.append(seed), fit(*a, **kw))[1]
        return m
    return make


def test_run_seeds_stores_runs_and_resumes(tiny_split, tmp_path):
    fits = []
    make = counting_sknn(fits)
    kw = dict(notebook="nb", out_dir=tmp_path, seeds=[0, 1])
    runs = run_seeds(make, tiny_split, sknn_setting(tiny_split), **kw)
    assert fits == [0, 1] and len(runs) == 2
    stored = list((tmp_path / "runs" / "SKNN").glob("*.json"))
    assert len(stored) == 2 and len(list((tmp_path / "runs" / "SKNN").glob("*.npz"))) == 2
    rec = json.loads(stored[0].read_text())
    for key in ("split_fingerprint", "git_commit", "wall_s", "device", "config", "resolved_config", "seed", "metrics",
                "setting", "setting_id"):
        assert key in rec
    assert rec["resolved_config"]["sample_size"] == 3, "defaults and given values are both stored"
    again = run_seeds(make, tiny_split, sknn_setting(tiny_split), **kw)
    assert fits == [0, 1], "stored runs are loaded, not recomputed"
    assert [r["metrics"] for r in again] == [r["metrics"] for r in runs]
    npz = np.load(stored[0].with_suffix(".npz"))
    assert npz["recs"].shape == (len(tiny_split.test), 20)


def test_run_seeds_reruns_when_a_default_changed(tiny_split, tmp_path):
    """The run key is the *given* config; a changed code default (here sample_size, not part of
    the given config) must not silently reuse the stored run."""
    fits = []
    kw = dict(notebook="nb", out_dir=tmp_path, seeds=[0])
    setting = sknn_setting(tiny_split)
    run_seeds(counting_sknn(fits), tiny_split, setting, **kw)
    with pytest.warns(UserWarning, match="sample_size"):
        rerun = run_seeds(counting_sknn(fits, sample_size=4), tiny_split, setting, **kw)
    assert fits == [0, 0] and rerun[0]["resolved_config"]["sample_size"] == 4
    stored = json.loads(next((tmp_path / "runs" / "SKNN").glob("*.json")).read_text())
    assert stored["resolved_config"]["sample_size"] == 4, "the stale run is replaced"
    # a run stored before resolved configs existed predates the SKNN tie rule too (tie_break is
    # in SKNN.rerun_if_missing): it is run again; a model without such fields accepts it
    del stored["resolved_config"]
    next((tmp_path / "runs" / "SKNN").glob("*.json")).write_text(json.dumps(stored))
    run_seeds(counting_sknn(fits), tiny_split, setting, **kw)
    assert fits == [0, 0, 0]
    pop = pop_setting(tiny_split)
    run_seeds(lambda s: build_model("MostPopular"), tiny_split, pop, **kw)
    path = next((tmp_path / "runs" / "MostPopular").glob("*.json"))
    old = json.loads(path.read_text())
    path.write_text(json.dumps({k: v for k, v in old.items() if k != "resolved_config"}))
    again = run_seeds(lambda s: build_model("MostPopular"), tiny_split, pop, **kw)
    assert again[0]["wall_s"] == old["wall_s"], "accepted as it is"


def test_summary_rows_mean_sd_and_best_of_n(tiny_split, tmp_path):
    runs = run_seeds(lambda s: build_model("MostPopular"), tiny_split, pop_setting(tiny_split),
                     notebook="nb", out_dir=tmp_path, seeds=[0])
    fake = [dict(runs[0], seed=i, metrics={**runs[0]["metrics"], "ndcg@20": v}) for i, v in enumerate([0.1, 0.3, 0.2])]
    table = results.update_summary(results.summary_rows(fake), tmp_path)
    assert set(results.SUMMARY_COLUMNS) <= set(table.columns)
    mean = table[table["aggregate"] == "mean"].iloc[0]
    assert mean["n_seeds"] == 3 and mean["ndcg@20"] == pytest.approx(0.2) and mean["ndcg@20_sd"] == pytest.approx(0.1)
    best = table[table["aggregate"] == "best_of_3_on_test"].iloc[0]
    assert best["ndcg@20"] == pytest.approx(0.3) and str(best["seeds"]) == "1"
    # a rerun with one seed replaces both rows of that key; other models stay
    other = [dict(runs[0], model="Other")]
    results.update_summary(results.summary_rows(other), tmp_path)
    table = results.update_summary(results.summary_rows(fake[:1]), tmp_path)
    assert sorted(table["model"]) == ["MostPopular", "Other"]
    assert table[table["model"] == "MostPopular"]["aggregate"].tolist() == ["mean"]
    assert not list(tmp_path.glob(".summary.csv.*.tmp")), "no temporary files left behind"


def test_summary_rows_record_the_validation_check_of_their_runs(tiny_split, tmp_path):
    """The validation columns: means over the seeds that have a check, the flag "at or below
    MostPopular" from those means; NaN for a model without a validation score."""
    runs = run_seeds(lambda s: build_model("MostPopular"), tiny_split, pop_setting(tiny_split),
                     notebook="nb", out_dir=tmp_path, seeds=[0])
    table = results.update_summary(results.summary_rows(runs), tmp_path)
    assert table[list(results.VALIDATION_COLUMNS)].isna().all().all()

    def with_check(seed, score, ref):
        return dict(runs[0], model="SASRec", seed=seed, fit_info={"validation": {
            "cases": 10, "best_epoch": 1, "ndcg@10": score, "ndcg@20": score,
            "most_popular_ndcg@10": ref, "most_popular_ndcg@20": ref}})

    below = [with_check(0, 0.25, 0.125), with_check(1, 0.0, 0.125)]  # mean 0.125: at MostPopular's
    assert results.summary_rows(below)[0]["below_most_popular"] is True
    results.update_summary(results.summary_rows(below), tmp_path)
    read = results.read_summary(tmp_path)
    row = read[(read["model"] == "SASRec") & (read["aggregate"] == "mean")].iloc[0]
    assert row["val_ndcg@20"] == pytest.approx(0.125) and row["val_ndcg@20_most_popular"] == pytest.approx(0.125)
    assert read.loc[read["model"] == "SASRec", "below_most_popular"].tolist() == [True, True]  # mean, best-of-2
    above = results.summary_rows([with_check(0, 0.2, 0.1), dict(runs[0], model="SASRec", seed=1)])[0]
    assert above["val_ndcg@20"] == pytest.approx(0.2) and above["below_most_popular"] is False


def test_mixed_fingerprints_are_refused(tiny_split, tmp_path):
    runs = run_seeds(lambda s: build_model("MostPopular"), tiny_split, pop_setting(tiny_split),
                     notebook="nb", out_dir=tmp_path, seeds=[0])
    with pytest.raises(ValueError, match="mix split fingerprints"):
        results.summary_rows([runs[0], dict(runs[0], split_fingerprint="other")])


def test_every_metric_column_is_written(tiny_split, tmp_path):
    runs = run_seeds(lambda s: build_model("MostPopular"), tiny_split, pop_setting(tiny_split),
                     notebook="nb", out_dir=tmp_path, seeds=[0])
    table = results.record(runs, tmp_path)
    assert table[list(METRIC_COLUMNS)].notna().all().all()


def test_plans_are_valid_and_resume_markers(tmp_path):
    for name in ("default", "paper", "ci"):
        plan = load_plan(name)
        runs = expand_runs(plan, tmp_path)
        assert runs and all(r["input"].is_file() for r in runs)
        assert len({r["output"] for r in runs}) == len(runs), f"{name}: two runs write the same notebook"
    run = expand_runs(load_plan("ci"), tmp_path)[0]
    assert not is_done(run)
    run["output"].parent.mkdir(parents=True)
    run["output"].write_text("{}")
    run["marker"].write_text(json.dumps({"params_id": run["params_id"]}))
    assert is_done(run)
    run["marker"].write_text(json.dumps({"params_id": "changed"}))
    assert not is_done(run)


def test_bad_plan_is_a_clear_error(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump({"runs": [{"notebook": "99_nothing"}]}))
    with pytest.raises(FileNotFoundError, match="99_nothing"):
        load_plan(p)
    p.write_text(yaml.safe_dump({"description": "x"}))
    with pytest.raises(ValueError, match="'runs' list"):
        load_plan(p)


def test_record_aggregates_every_stored_seed_of_a_setting(tiny_folder, tmp_path):
    """Two plan entries of one setting (seeds 0-1, then 2-3) make one four-seed row; other
    settings (another k, a tie-order spread label) stay separate rows."""
    tiny_split = make_split(load_dataset(tiny_folder), "loo")  # default ties: the main row has no label
    kw = dict(notebook="nb", out_dir=tmp_path)
    make = lambda k: (lambda s: build_model("SKNN", k=k, sample_size=3, seed=s))
    a = run_seeds(make(2), tiny_split, sknn_setting(tiny_split), seeds=[0, 1], **kw)
    results.record(a, tmp_path)
    b = run_seeds(make(2), tiny_split, sknn_setting(tiny_split), seeds=[2, 3], **kw)
    table = results.record(b, tmp_path)
    mean = table[table["aggregate"] == "mean"]
    assert mean["n_seeds"].tolist() == [4] and mean["seeds"].tolist() == ["0 1 2 3"]
    c = run_seeds(make(3), tiny_split, sknn_setting(tiny_split, k=3), seeds=[0], **kw)
    spread = Setting.of("SKNN", tiny_split, config={"k": 2}, label_fields=["ties"])
    d = run_seeds(make(2), tiny_split, spread, seeds=[0], **kw)
    table = results.record(c + d, tmp_path)
    mean = table[table["aggregate"] == "mean"].set_index("variant")
    assert mean.loc["", "n_seeds"] == 4 and mean.loc["k=3", "n_seeds"] == 1
    assert mean.loc["tie_order=shuffle,tie_seed=0", "n_seeds"] == 4, "a spread run is labelled, and reuses the main runs"
    assert [r["seed"] for r in results.find_runs(tmp_path, setting=a[0]["setting_id"])] == [0, 1, 2, 3]
    assert len(results.find_runs(tmp_path, model="SKNN", tie_order="shuffle")) == 5


# ------------------------------------------------------------------ ad-hoc runs: scratch folders


def _tree(folder):
    """Every file under ``folder`` with its bytes and mtime (to show nothing was written)."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_output_dirs_sends_ad_hoc_runs_to_scratch(monkeypatch, tmp_path):
    monkeypatch.delenv(results.SCRATCH_ENV, raising=False)
    out, reuse = results.output_dirs("beauty", None)
    assert out.parent.parent == results.SCRATCH_ROOT and out.name == "beauty"
    assert reuse == results.RESULTS_ROOT / "beauty", "the study's folder, to read from"
    monkeypatch.setenv(results.SCRATCH_ENV, str(tmp_path / "s"))
    assert results.output_dirs(str(tmp_path / "data" / "tiny"), None) == (tmp_path / "s" / "tiny",
                                                                        results.RESULTS_ROOT / "tiny")
    given = tmp_path / "mine"
    assert results.output_dirs("beauty", str(given)) == (given, None), "a given folder reads nothing else"
    git_ignored = (PROJECT_ROOT / ".gitignore").read_text().split()
    assert "/results/scratch/" in git_ignored


def test_an_ad_hoc_run_copies_the_studys_runs_and_never_writes_there(tiny_split, tmp_path):
    study, scratch = tmp_path / "results" / "tiny", tmp_path / "scratch" / "tiny"
    fits = []
    kw = dict(notebook="nb", seeds=[0, 1])
    stored = run_seeds(counting_sknn(fits), tiny_split, sknn_setting(tiny_split), out_dir=study, **kw)
    results.record(stored, study)
    before = _tree(study)
    fits.clear()
    runs = run_seeds(counting_sknn(fits), tiny_split, sknn_setting(tiny_split), out_dir=scratch, reuse_from=study,
                     seeds=[0, 1, 2], notebook="nb")
    assert fits == [2], "seeds 0 and 1 are copied from the study, only seed 2 is computed"
    assert [r["metrics"] for r in runs[:2]] == [r["metrics"] for r in stored]
    copied = sorted(p.name for p in (scratch / "runs" / "SKNN").iterdir())
    assert len(copied) == 6, "JSON and top-k NPZ of every seed are in the scratch folder"
    table = results.record(runs, scratch)
    assert table.loc[table["aggregate"] == "mean", "n_seeds"].tolist() == [3]
    other = run_seeds(counting_sknn(fits), tiny_split, sknn_setting(tiny_split, k=3), out_dir=scratch,
                      reuse_from=study, seeds=[0], notebook="nb")
    assert fits == [2, 0] and other[0]["setting"]["config"]["k"] == 3, "another setting is computed"
    with pytest.warns(UserWarning, match="sample_size"):  # a stale study run is not copied
        run_seeds(counting_sknn(fits, sample_size=4), tiny_split, sknn_setting(tiny_split), out_dir=tmp_path / "s2",
                  reuse_from=study, seeds=[0], notebook="nb")
    assert fits == [2, 0, 0]
    assert _tree(study) == before, "the study's folder is only read"


def test_reuse_file_copies_a_resumable_file_once(tmp_path):
    study, scratch = tmp_path / "study", tmp_path / "scratch"
    (study / "grid").mkdir(parents=True)
    (study / "grid" / "g.csv").write_text("config_id,fold\na,1\n")
    path = results.reuse_file(scratch / "grid" / "g.csv", scratch, study)
    assert path.read_text() == "config_id,fold\na,1\n"
    path.write_text("config_id,fold\na,1\nb,1\n")
    assert results.reuse_file(path, scratch, study).read_text().count("\n") == 3, "an existing file is kept"
    assert (study / "grid" / "g.csv").read_text() == "config_id,fold\na,1\n"
    assert not results.reuse_file(scratch / "grid" / "h.csv", scratch, study).exists()
    assert not results.reuse_file(scratch / "grid" / "h.csv", scratch, None).exists()


def test_written_files_follow_the_umask(tmp_path):
    import os

    from rec_utils.utils import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644, "readable by others, as open() makes it"


def test_check_recorded_passes_a_recorded_setting_and_names_what_is_missing(tiny_split, tmp_path):
    setting = sknn_setting(tiny_split)
    runs = run_seeds(counting_sknn([]), tiny_split, setting, notebook="nb", out_dir=tmp_path, seeds=[0, 1])
    with pytest.raises(results.RecordingError, match="SKNN: setting .* expected one mean row, found 0"):
        results.check_recorded(tmp_path, {"SKNN": setting}, tiny_split)
    results.update_summary(results.summary_rows(runs), tmp_path)
    rows = results.check_recorded(tmp_path, {"SKNN": setting}, tiny_split, min_seeds=2, best_of_n=True)
    assert list(rows["setting_id"]) == [setting.id] and int(rows["n_seeds"].iloc[0]) == 2
    with pytest.raises(results.RecordingError, match="at least 3 seed"):
        results.check_recorded(tmp_path, {"SKNN": setting}, tiny_split, min_seeds=lambda s: 3)


def test_re_measured_plan_entries_give_an_assembled_total_labelled_an_estimate():
    """record_plan_time --only: the plan's assembled total is the sum of each run's latest time plus
    the runner overhead of the last full recording; a plan never recorded in full is refused."""
    import importlib.util

    import pandas as pd

    spec = importlib.util.spec_from_file_location("rpt", PROJECT_ROOT / "scripts" / "record_plan_time.py")
    rpt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rpt)
    row = lambda run, s, fin, c: {"plan": "p", "run": run, "wall_s": str(s), "finished": fin, "git_commit": c,  # noqa: E731
                                  "machine": "x", "note": ""}
    table = pd.DataFrame([row("a", 100, "1", "old"), row("b", 200, "2", "old"), row(rpt.PLAN_WALL_CLOCK, 330, "3", "old"),
                          row("b", 50, "4", "new")])
    out = rpt.assemble_total(table, "p", ["a", "b"])
    total = out[out["run"] == rpt.PLAN_ASSEMBLED].iloc[0]
    assert float(total["wall_s"]) == 100 + 50 + 30 and total["git_commit"] == "new"
    assert total["note"].startswith("an estimate, not one wall clock") and "30 s of runner overhead" in total["note"]
    assert len(rpt.assemble_total(out, "p", ["a", "b"])) == len(out)  # rewritten, not added twice
    with pytest.raises(SystemExit, match="record the whole plan first"):
        rpt.assemble_total(table, "p", ["a", "b", "c"])


def test_a_gpu_sized_entry_is_skipped_and_named_where_no_gpu_is_visible(tmp_path, monkeypatch, capsys):
    from rec_utils import study

    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump({"runs": [{"notebook": "01_baselines", "tag": "big", "needs": "gpu"}]}))
    monkeypatch.setattr(study, "resolve_device", lambda device="auto": "cpu")
    ran = []
    monkeypatch.setattr(study, "execute", lambda r, *a, **k: ran.append(r["name"]) or 0.0)
    assert study.main([str(p), "--out", str(tmp_path / "res")]) == 0
    assert ran == [] and "skipped 1 run(s) marked 'needs: gpu'" in capsys.readouterr().out
    assert study.main([str(p), "--out", str(tmp_path / "res"), "--allow-cpu"]) == 0
    assert ran == ["01_baselines__big"]
    p.write_text(yaml.safe_dump({"runs": [{"notebook": "01_baselines", "needs": "tpu"}]}))
    with pytest.raises(ValueError, match="needs must be 'gpu'"):
        load_plan(p)
