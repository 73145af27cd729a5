"""Integrity: stored runs are keyed by everything they depend on, quick runs never replace the
study's, empty evaluations are errors, and the batch runner neither hides nor misplaces."""
from __future__ import annotations

import json

import pytest

from conftest import write_dataset
from rec_utils import results
from rec_utils.data import load_dataset
from rec_utils.evaluation import run_seeds
from rec_utils.models import build_model
from rec_utils.setting import Setting
from rec_utils.split import EmptyEvaluationError, make_split
from rec_utils import study


def thirty_sessions(folder, second_train_item: int):
    """24 train sessions (20 × [5, x], 4 × [1, 3, 6]) and 6 test sessions [1, 3] (prompt [1],
    target 3). With x = 4 item 3 is the 4th most popular train item (NDCG@20 = 1/log2 5 = 0.43);
    with x = 3 it is the most popular (NDCG@20 = 1.0). Session ids and test cases are the same."""
    rows = []
    for s in range(30):
        items = [5, second_train_item] if s < 20 else [1, 3, 6] if s < 24 else [1, 3]
        rows += [(s, it, 86400 * (s + (100 if s >= 24 else 0)) + j) for j, it in enumerate(items)]
    return write_dataset(folder, rows)


def most_popular(split, out, fits=None):
    """Run MostPopular (seed 0) with resume; ``fits`` collects one entry per actual fit."""
    def make(seed):
        m = build_model("MostPopular", seed=seed)
        if fits is not None:
            fit = m.fit
            m.fit = lambda *a, **kw: (fits.append(seed), fit(*a, **kw))[1]
        return m
    return run_seeds(make, split, Setting.of("MostPopular", split), out_dir=out, seeds=[0])[0]


def test_a_stored_run_is_not_reused_after_the_train_data_changed(tmp_path):
    folder = tmp_path / "data"
    thirty_sessions(folder, second_train_item=4)
    first = most_popular(make_split(load_dataset(folder)), tmp_path / "out")
    assert first["metrics"]["ndcg@20"] == pytest.approx(0.4307, abs=1e-4)
    thirty_sessions(folder, second_train_item=3)  # only train rows change
    split = make_split(load_dataset(folder))
    assert split.fingerprint != first["split_fingerprint"]
    second = most_popular(split, tmp_path / "out")
    assert second["metrics"]["ndcg@20"] == pytest.approx(1.0), "recomputed on the new data"
    assert len(list((tmp_path / "out" / "runs" / "MostPopular").glob("*.json"))) == 2, "the first run is kept"
    thirty_sessions(folder, second_train_item=3)  # the same data written again: reused, not recomputed
    fits = []
    again = most_popular(make_split(load_dataset(folder)), tmp_path / "out", fits)
    assert fits == [] and again["metrics"] == second["metrics"]


def test_the_fingerprint_covers_timestamps_popularity_and_validation(tmp_path):
    folder = tmp_path / "data"
    thirty_sessions(folder, 4)
    base = make_split(load_dataset(folder), "loo")
    rows = []
    for s in range(30):  # same items and order, one train timestamp moved by a second
        items = [5, 4] if s < 20 else [1, 3, 6] if s < 24 else [1, 3]
        rows += [(s, it, 86400 * (s + (100 if s >= 24 else 0)) + j + (1 if s == 0 else 0)) for j, it in enumerate(items)]
    write_dataset(folder, rows)
    moved = make_split(load_dataset(folder), "loo")
    assert moved.fingerprint != base.fingerprint
    assert make_split(load_dataset(folder), "loo").fingerprint == moved.fingerprint, "deterministic"


def test_a_sampled_run_never_replaces_the_full_one(tmp_path, tiny_folder):
    split = make_split(load_dataset(tiny_folder), "loo")
    full = most_popular(split, tmp_path)
    quick = most_popular(split.sample_test(3, seed=1), tmp_path)
    results.record([full], tmp_path)
    table = results.record([quick], tmp_path)
    assert sorted(table["variant"].fillna("")) == ["", "test_sessions=3@1"]
    assert table.set_index("variant").loc["", "n_test_sessions"] == len(split.test)
    assert len(list((tmp_path / "runs" / "MostPopular").glob("*.json"))) == 2


def test_an_evaluation_without_cases_is_an_error_that_says_why(tmp_path):
    folder = write_dataset(tmp_path / "single", [(s, s % 3, 100 * s) for s in range(20)])  # one item each
    split = make_split(load_dataset(folder))
    assert len(split.test) == 0
    with pytest.raises(EmptyEvaluationError, match=r"20 sessions in the data; 4 in the test period; 4 of them "
                                                    r"dropped for having fewer than 2 interactions"):
        most_popular(split, tmp_path / "out")
    assert not (tmp_path / "out" / "runs").exists(), "nothing is recorded"
    loo = make_split(load_dataset(folder), "loo")
    with pytest.raises(EmptyEvaluationError, match="20 dropped for having fewer than 3 interactions"):
        loo.require_cases()


def test_a_setting_must_describe_its_split(tiny_folder, tmp_path):
    data = load_dataset(tiny_folder)
    setting = Setting.of("MostPopular", make_split(data, "loo"))
    other = make_split(data, "loo", tie_order="file")
    with pytest.raises(ValueError, match="tie_order='shuffle' but the split has 'file'"):
        run_seeds(lambda s: build_model("MostPopular"), other, setting, out_dir=tmp_path)


def test_labels_derive_from_the_setting(tiny_folder):
    split = make_split(load_dataset(tiny_folder), "temporal", tie_order="shuffle", tie_seed=3).sample_train(3)
    s = Setting.of("SASRec", split, preset="beauty-extended", overrides={"epochs": 2, "clipnorm": None})
    assert s.label == "tie_order=shuffle,tie_seed=3,preset=beauty-extended,clipnorm=None,epochs=2,train_sessions=3"
    assert Setting.of("SASRec", make_split(load_dataset(tiny_folder)), preset="beauty").label == ""
    assert Setting.from_dict(s.to_dict()).id == s.id
    assert Setting.of("SASRec", split, preset="beauty-extended", overrides={"epochs": 3}).id != s.id


# ------------------------------------------------------------------ the batch runner


def test_a_dataset_path_writes_results_under_results_not_into_the_data_folder(tmp_path, tiny_folder):
    plan = {"runs": [{"notebook": "01_baselines", "parameters": {"DATASET": str(tiny_folder)}}], "_path": "p"}
    run = study.expand_runs(plan, tmp_path / "results")[0]
    assert run["parameters"]["RESULTS_DIR"] == str(tmp_path / "results" / "tiny")
    assert tiny_folder not in run["output"].parents


def test_done_markers_mean_the_same_in_every_clone(tmp_path, monkeypatch):
    plan = study.load_plan("ci")
    ids = []
    for clone in ("a", "b"):
        monkeypatch.setattr(study, "PROJECT_ROOT", tmp_path / clone)
        ids.append([r["params_id"] for r in study.expand_runs(plan, tmp_path / clone / "results")])
    assert ids[0] == ids[1]


def test_a_failed_notebook_reports_its_error_type_message_and_cell(tmp_path):
    from papermill.exceptions import PapermillExecutionError

    exc = PapermillExecutionError(cell_index=7, exec_count=5, source="1/0", ename="ZeroDivisionError",
                                  evalue="division by zero" + " (details)" * 100,
                                  traceback=["\x1b[0;31mTraceback\x1b[0m", "ZeroDivisionError: division by zero"])
    msg = study.failure_message(exc, tmp_path / "nb.ipynb")
    assert msg.startswith("ZeroDivisionError: division by zero") and "(cell 5, index 7)" in msg
    assert " (details)" * 100 in msg, "never cut"
    assert "\x1b" not in msg and str(tmp_path / "nb.ipynb") in msg


def test_migrated_runs_carry_their_setting():
    """Every committed run record has a setting whose id and label match its file and row."""
    for path in sorted(results.RESULTS_ROOT.glob("*/runs/*/*.json")):
        rec = json.loads(path.read_text())
        setting = Setting.from_dict(rec["setting"])
        assert rec["setting_id"] == setting.id and path.name.split("__")[1] == setting.id, path
        assert rec["variant"] == setting.label, path


def test_the_runner_prints_an_estimate_from_the_last_run(tmp_path, monkeypatch, capsys):
    plan = study.load_plan("ci")
    runs = study.expand_runs(plan, tmp_path)
    run = runs[0]
    assert study.estimate(run) == "no earlier run to estimate from"
    run["marker"].parent.mkdir(parents=True)
    run["marker"].write_text(json.dumps({"params_id": "older", "wall_s": 754.0}))
    assert study.estimate(run) == "last run took 13 min (other parameters or notebook version)"
    run["marker"].write_text(json.dumps({"params_id": run["params_id"], "wall_s": 4000}))
    assert study.estimate(run) == "last run took 1 h 07 min"
    assert study.duration(40) == "40 s"
    calls = []
    monkeypatch.setattr(study, "execute", lambda r, kernel, log_output: calls.append(log_output) or 1.0)
    assert study.main(["ci", "--out", str(tmp_path), "--only", "00_data", "--force"]) == 0
    out = capsys.readouterr().out
    assert "[1/1] 00_data (beauty): last run took 1 h 07 min" in out and calls == [True], "streams by default"
    study.main(["ci", "--out", str(tmp_path), "--only", "00_data", "--force", "--no-log-output"])
    assert calls == [True, False]


def test_kernels_run_over_ipc_without_the_tcp_warning(tmp_path, capfd):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('from the kernel', 6 * 7)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "a.ipynb")
    study.papermill_run(tmp_path / "a.ipynb", tmp_path / "b.ipynb", {}, "python3", log_output=True)
    out, err = capfd.readouterr()
    assert "from the kernel 42" in out, "the notebook's own output is streamed"
    assert "without encryption" not in out + err
    assert nbformat.read(tmp_path / "b.ipynb", as_version=4).cells[0].outputs[0]["text"] == "from the kernel 42\n"


def test_a_text_model_reruns_when_an_item_text_changes(tmp_path, tiny_folder):
    """The item vectors a text model reads are part of the reuse check: a changed title reruns
    LLMSeqSim; the same titles reuse the stored run. (Vectors come from a fake provider file, so
    no model is loaded.)"""
    import numpy as np
    import pandas as pd

    from rec_utils.models import build_model

    def vectors(path, flip):
        ids = np.arange(6)
        vecs = np.eye(6, dtype=np.float32)[:, :4] + 0.1
        if flip:
            vecs[2] = vecs[3]
        np.savez(path, item_ids=ids, vectors=vecs)

    split = make_split(load_dataset(tiny_folder), "loo")
    items = load_dataset(tiny_folder).items
    vec_file = tmp_path / "vectors.npz"
    config = {"provider": "file", "embedding_path": str(vec_file)}
    setting = Setting.of("LLMSeqSim", split, config=config, preset=None)
    fits = []

    def make(seed):
        m = build_model("LLMSeqSim", **config, device="cpu")
        fit = m.fit
        m.fit = lambda *a, **kw: (fits.append(seed), fit(*a, **kw))[1]
        return m

    vectors(vec_file, flip=False)
    run_seeds(make, split, setting, out_dir=tmp_path / "out", items=items)
    run_seeds(make, split, setting, out_dir=tmp_path / "out", items=items)
    assert fits == [0], "same vectors: reused"
    vectors(vec_file, flip=True)  # same file name, other content
    with pytest.warns(UserWarning, match="input item_source"):
        run_seeds(make, split, setting, out_dir=tmp_path / "out", items=items)
    assert fits == [0, 0], "changed vectors: run again"
    with pytest.warns(UserWarning, match="evaluation k"):
        run_seeds(make, split, setting, out_dir=tmp_path / "out", items=items, k=10)


def test_two_settings_with_one_label_keep_a_row_each(tmp_path, tiny_folder):
    """A summary row is identified by its setting too: two search winners (both labelled "")
    are two rows, and the report shows the latest; a non-standard preset is always named."""
    split = make_split(load_dataset(tiny_folder), "loo")
    a = Setting.of("SKNN", split, config={"k": 2}, selected_by="grid A")
    b = Setting.of("SKNN", split, config={"k": 3}, selected_by="grid B")
    assert a.label == b.label == "" and a.id != b.id
    for s in (a, b):
        runs = run_seeds(lambda seed, s=s: build_model("SKNN", **s.config, sample_size=3, seed=seed), split, s,
                         out_dir=tmp_path)
        table = results.record(runs, tmp_path)
    assert sorted(table["setting_id"]) == sorted([a.id, b.id])
    assert Setting.of("V-SKNN", split, preset="default").label == "preset=default"
    assert Setting.of("V-SKNN", split, preset="beauty").label == ""  # no beauty-loo entry: beauty is standard
    assert Setting.of("SASRec", split, preset="beauty").label == "preset=beauty"  # under LOO its standard is beauty-loo


def test_a_done_marker_goes_stale_when_the_data_changes(tmp_path):
    folder = thirty_sessions(tmp_path / "data", 4)
    plan = {"runs": [{"notebook": "01_baselines", "parameters": {"DATASET": str(folder)}}], "_path": "p"}
    before = study.expand_runs(plan, tmp_path / "results")[0]["params_id"]
    assert study.expand_runs(plan, tmp_path / "results")[0]["params_id"] == before
    thirty_sessions(tmp_path / "data", 3)
    assert study.expand_runs(plan, tmp_path / "results")[0]["params_id"] != before


def test_text_runs_are_keyed_by_what_made_the_vectors_not_by_their_float_bits():
    """Embedded texts: the same model files and texts give one source fingerprint whatever the
    float noise of the CPU that embedded them (1e-7 here); another text or another model key
    gives another; vectors from a file (no model key) are keyed by their values."""
    import numpy as np
    import pandas as pd

    from rec_utils.text import ItemEmbeddings

    ids = np.array([1, 2, 3])
    texts = pd.Series(["Lego City Fire Station", "Lego Police Car", "Dog food"], index=ids)
    vecs = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    noisy = vecs + np.float32(1e-7)

    def emb(v, t=texts, key="local-abc", provider="sentence-transformers"):
        info = {} if key is None else {"model_key": key}
        return ItemEmbeddings(ids, v, np.zeros(3, bool), provider, "m", t, info)

    a, b = emb(vecs), emb(noisy)
    assert a.fingerprint != b.fingerprint and a.source_fingerprint == b.source_fingerprint
    assert emb(vecs, t=texts.replace("Dog food", "Cat food")).source_fingerprint != a.source_fingerprint
    assert emb(vecs, key="local-def").source_fingerprint != a.source_fingerprint
    f1, f2 = emb(vecs, t=None, key=None, provider="file"), emb(noisy, t=None, key=None, provider="file")
    assert f1.source_fingerprint == f1.fingerprint and f1.source_fingerprint != f2.source_fingerprint


def test_a_run_records_the_cpu_thread_count_its_numbers_depend_on(tmp_path):
    import torch

    folder = tmp_path / "data"
    thirty_sessions(folder, second_train_item=4)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        run = most_popular(make_split(load_dataset(folder)), tmp_path / "out")
    finally:
        torch.set_num_threads(before)
    assert run["cpu_threads"] == 1
    stored = json.loads(next((tmp_path / "out" / "runs" / "MostPopular").glob("*.json")).read_text())
    assert stored["cpu_threads"] == 1



def test_a_copied_trees_fingerprint_matches_only_while_its_code_is_the_commits(tmp_path):
    import shutil

    from rec_utils.provenance import tree_fingerprint
    from rec_utils.utils import PROJECT_ROOT

    here = tree_fingerprint(PROJECT_ROOT)  # what scripts/commit_env.py prints for a clean checkout
    for part in ("rec_utils", "notebooks", "plans"):
        shutil.copytree(PROJECT_ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    assert tree_fingerprint(tmp_path) == here  # a copy without .git (a GPU machine's)
    (tmp_path / "README.md").write_text("not code\n")
    assert tree_fingerprint(tmp_path) == here
    with open(tmp_path / "rec_utils" / "llm" / "generate.py", "a") as f:
        f.write("\n# an edit the commit does not hold\n")
    assert tree_fingerprint(tmp_path) != here
