"""The offline-GPU kit (scripts/offline_gpu, scripts/trainer_log_from_notebook.py)."""
from __future__ import annotations

import importlib.util
import json

import pandas as pd
import pytest

from rec_utils.data import load_dataset
from rec_utils.split import make_split
from rec_utils.utils import PROJECT_ROOT


@pytest.fixture
def tiny_split(tiny_folder):
    return make_split(load_dataset(tiny_folder), "loo", tie_order="file")


def _script(name, path):
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "scripts" / path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_payload_ships_what_the_notebooks_import_and_never_the_gpu_machines_torch():
    payload = _script("payload", "offline_gpu/payload.py")
    need = payload.closure(payload.ROOTS)
    for name in ("papermill", "nbclient", "ipykernel", "jupyter-client", "transformers", "peft", "gguf"):
        assert name in need, name
    assert "torch" in need and "torch" in payload.NEVER  # sentence-transformers needs it; the GPU build stays


def test_an_interrupted_notebooks_trainer_log_becomes_its_loss_curve(tmp_path):
    logs = _script("tlog", "trainer_log_from_notebook.py")
    nb = {"cells": [
        {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]},
         "source": ['CONFIG = {"variant": "genlist", "n_train_cases": 2000}\n', "EVAL_SESSIONS = 500\n"], "outputs": []},
        {"cell_type": "code", "metadata": {"papermill": {"duration": None}}, "source": [], "outputs": [
            {"output_type": "stream", "text": ["{'eval_loss': '2.529', 'eval_runtime': '1.1', 'epoch': 0}\n",
                                               "{'loss': '2.693', 'grad_norm': '2.5', 'learning_rate': '5e-05', 'epoch': '0.004'}\n",
                                               "{'loss': '1.409', 'grad_norm': '1.1', 'learning_rate': '3e-07', 'epoch': '1.99'}\n",
                                               "{'loss': nan, 'grad_norm': nan, 'epoch': 2.0}\n"]}]},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "06_llmseqprompt__genlist-gpu.ipynb"
    path.write_text(json.dumps(nb))
    rows = pd.DataFrame(logs.curves(path, "test"))
    assert list(rows["kind"]) == ["eval", "train", "train", "train"]
    assert list(rows["loss"][:3]) == [2.529, 2.693, 1.409] and list(rows["epoch"]) == [0.0, 0.004, 1.99, 2.0]
    assert pd.isna(rows["loss"].iloc[3])  # a diverged step's unquoted nan is kept as nan, not a crash
    assert (rows["variant"] == "genlist").all()


def test_merging_a_gpu_machines_results_adds_runs_and_rows_and_never_overwrites(tiny_split, tmp_path):
    from rec_utils import results
    from rec_utils.evaluation import run_seeds
    from rec_utils.models import build_model
    from rec_utils.setting import Setting
    from rec_utils.significance import SIGNIFICANCE_COLUMNS, read_significance, record_significance

    merge = _script("merge", "offline_gpu/merge_results.py")
    src, here = tmp_path / "gpu" / "results", tmp_path / "here"
    setting = Setting.of("MostPopular", tiny_split)
    runs = run_seeds(lambda seed: build_model("MostPopular"), tiny_split, setting, out_dir=src / "tiny",
                     seeds=[0], notebook="nb")
    results.record(runs, src / "tiny")
    row = {c: None for c in SIGNIFICANCE_COLUMNS} | {
        "model_a": "LLMSeqPrompt", "label_a": "variant=genlist", "model_b": "MostPopular", "label_b": "",
        "protocol": "temporal", "metric": "ndcg@20", "split_fingerprint": tiny_split.fingerprint, "family": "f",
        "mean_a": 0.2, "mean_b": 0.1, "diff": 0.1, "ci_low": 0.05, "ci_high": 0.15, "p_value": 0.01, "pairing": ""}
    record_significance([row, {**row, "metric": "hit_rate@20"}], src / "tiny")
    record_significance([{**row, "metric": "hit_rate@20", "diff": 0.3}], here / "tiny")  # already here, other numbers
    (src / "tiny" / "notebooks").mkdir()
    (src / "tiny" / "notebooks" / "x.ipynb").write_text("from the GPU")
    (here / "tiny" / "notebooks").mkdir(parents=True)
    (here / "tiny" / "notebooks" / "x.ipynb").write_text("already here")
    assert merge.main([str(src), "--into", str(here)]) == 1  # two conflicts, reported
    assert (here / "tiny" / "notebooks" / "x.ipynb").read_text() == "already here"
    assert results.find_runs(here / "tiny", setting=setting)  # the run record (and its lists) arrived
    assert list(results.read_summary(here / "tiny")["model"]) == ["MostPopular"]
    sig = read_significance(here / "tiny").set_index("metric")
    assert sig.loc["ndcg@20", "diff"] == 0.1 and sig.loc["hit_rate@20", "diff"] == 0.3  # new added, existing kept


def test_merging_names_the_commit_only_of_runs_whose_training_code_is_that_commits(tiny_split, tmp_path):
    import json

    from rec_utils import results
    from rec_utils.evaluation import run_seeds
    from rec_utils.models import build_model
    from rec_utils.provenance import code_fingerprint
    from rec_utils.setting import Setting

    merge = _script("merge", "offline_gpu/merge_results.py")
    src = tmp_path / "gpu" / "results"
    setting = Setting.of("MostPopular", tiny_split)
    run_seeds(lambda seed: build_model("MostPopular"), tiny_split, setting, out_dir=src / "tiny", seeds=[0], notebook="nb")
    f = next((src / "tiny" / "runs").rglob("*.json"))
    rec = json.loads(f.read_text())
    rec["git_commit"] = "unknown"  # a copy without .git
    rec["code_fingerprint"] = code_fingerprint("HEAD")  # the committed training code
    f.write_text(json.dumps(rec))
    assert merge.main([str(src), "--into", str(tmp_path / "here"), "--commit", "HEAD"]) == 0
    merged = results.find_runs(tmp_path / "here" / "tiny", setting=setting)[0]
    assert merged["git_commit"] == "HEAD" and json.loads(f.read_text())["git_commit"] == "unknown"  # source untouched
    rec["code_fingerprint"] = "0" * 12
    f.write_text(json.dumps(rec))
    with pytest.raises(SystemExit, match="did not come from that commit"):
        merge.main([str(src), "--into", str(tmp_path / "again"), "--commit", "HEAD"])


def test_a_baseline_recomputed_with_the_same_lists_pairs_with_runs_of_todays_code(tiny_split, tiny_folder, tmp_path):
    import json

    from rec_utils import results
    from rec_utils.evaluation import run_seeds
    from rec_utils.models import build_model
    from rec_utils.pairing import pairing_problems
    from rec_utils.provenance import code_fingerprint
    from rec_utils.setting import Setting

    verify = _script("verify", "verify_stored_runs.py")
    out = tmp_path / "tiny"
    setting = Setting.of("MostPopular", tiny_split)
    run = run_seeds(lambda seed: build_model("MostPopular"), tiny_split, setting, out_dir=out, seeds=[0], notebook="nb")[0]
    path = results.run_path(out, setting, tiny_split.fingerprint, 0)
    older = {**json.loads(path.read_text()), "code_fingerprint": "0" * 12, "git_commit": "older"}  # stored by older code
    path.write_text(json.dumps(older))
    today = {**run, "model": "V-SKNN"}
    assert any("different training code" in p for p in pairing_problems([today], [older], check_settings=False))
    assert verify.verify(older, load_dataset(tiny_folder), out, {}) is True  # same lists under today's code
    stored = json.loads(path.read_text())
    assert stored["verified_code_fingerprints"] == [code_fingerprint()] and stored["code_fingerprint"] == "0" * 12
    assert pairing_problems([today], [stored], check_settings=False) == []
    assert verify.verify(stored, load_dataset(tiny_folder), out, {}) is None  # nothing to do twice
