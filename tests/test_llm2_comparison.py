"""The fair LLM2 comparison (rec_utils.llm2_comparison, rec_utils.provenance): arms trained in one
process pair; runs that differ in device, threads, code or training settings, or a failed
control, are refused with the reason."""
from __future__ import annotations

import copy
import subprocess

import numpy as np
import pytest

from rec_utils.data import load_dataset
from rec_utils.llm2_comparison import (PairingRefused, arm_setting, check_pair, failed_run, pairing_problems,
                                       run_arms, tuned_arm_setting, tuned_config_path)
from rec_utils.provenance import code_fingerprint, run_code_fingerprint
from rec_utils.split import make_split
from rec_utils.text import ItemEmbeddings

TINY = {"emb_dim": 4, "num_heads": 1, "num_layers": 1, "epochs": 2, "batch_size": 4, "patience": 2}


def _record(**kw):
    """A stored-run record as run_seeds writes it (the fields the pairing rules read)."""
    r = {"model": "LLM2SASRec", "variant": "", "seed": 0, "split_fingerprint": "f" * 12, "device": "cpu:X x2",
         "cpu_threads": 1, "git_commit": "abc1234", "code_fingerprint": "c" * 12,
         "setting": {"dataset": "beauty", "protocol": "temporal", "tie_order": "shuffle", "tie_seed": 0,
                     "test_sample": 0, "test_sample_seed": 0, "train_sample": 0, "train_sample_seed": 0,
                     "selected_by": None},
         "resolved_config": {"learning_rate": 0.001, "epochs": 100, "patience": 2, "init": "llm", "emb_dim": 64,
                             "embedding": {"reduction": "pca"}, "precision": "fp32"},
         "fit_info": {"best_epoch": 5, "epochs_run": 7, "stopped_by": "early_stopping", "precision_used": "fp32"},
         "history": [{"epoch": 1}]}
    for k, v in kw.items():
        if isinstance(v, dict) and isinstance(r.get(k), dict):
            r[k] = {**r[k], **v}
        else:
            r[k] = v
    return r


def _base(**kw):
    return _record(**{"resolved_config": {"init": "random", "embedding": {"reduction": "pca"}}, **kw})


def test_arms_that_differ_only_in_the_init_pair_even_across_commits_of_one_code():
    assert pairing_problems([_record()], [_base()]) == []
    # another commit, same training code (fingerprint): pairs
    assert pairing_problems([_record()], [_base(git_commit="def5678")]) == []


@pytest.mark.parametrize("change, reason", [
    ({"device": "cuda:NVIDIA H200"}, "different devices"),
    ({"cpu_threads": 2}, "different CPU thread counts"),
    ({"cpu_threads": None}, "thread count not recorded"),
    ({"code_fingerprint": "d" * 12}, "different training code"),
    ({"code_fingerprint": None, "git_commit": "abc1234-dirty"}, "code unknown"),
    ({"code_fingerprint": None, "git_commit": "unknown"}, "code unknown"),
    ({"split_fingerprint": "e" * 12}, "different split_fingerprint"),
    ({"setting": {"tie_order": "file"}}, "different tie_order"),
    ({"resolved_config": {"learning_rate": 0.01}}, "training setting learning_rate differs"),
    ({"resolved_config": {"epochs": 3}}, "training setting epochs differs"),
    ({"fit_info": {"precision_used": "bf16"}}, "different precision used"),
    ({"fit_info": {"best_epoch": 1, "epochs_run": 3}}, "stopped at its first epoch"),
])
def test_unlike_runs_are_refused_with_the_reason(change, reason):
    base = _base(**copy.deepcopy(change))
    problems = pairing_problems([_record()], [base])
    assert any(reason in p for p in problems), problems
    with pytest.raises(PairingRefused, match=reason):
        check_pair([_record()], [base])


def test_equal_budget_tuning_lets_the_searched_fields_differ_but_not_the_stopping_rule():
    tuned = {"setting": {"selected_by": "TPE t: 8 trials on the validation folds"}}
    a = _record(**copy.deepcopy(tuned))
    b = _base(**copy.deepcopy(tuned), resolved_config={"learning_rate": 0.004, "emb_dim": 128})
    assert pairing_problems([a], [b]) == []
    c = _base(**copy.deepcopy(tuned), resolved_config={"learning_rate": 0.004, "patience": 5})
    assert any("patience differs" in p for p in pairing_problems([a], [c]))
    other_budget = _base(setting={"selected_by": "TPE t: 40 trials on the validation folds"},
                         resolved_config={"learning_rate": 0.004})
    assert any("tuning budgets differ" in p for p in pairing_problems([a], [other_budget]))
    # untuned arms: the same difference is refused
    assert any("learning_rate" in p for p in pairing_problems([_record()], [_base(resolved_config={"learning_rate": 0.004})]))


def test_a_control_stopped_at_its_first_epoch_is_a_failed_run():
    assert failed_run(_base(fit_info={"best_epoch": 1})).startswith("LLM2SASRec (init=random) seed 0 stopped")
    assert failed_run(_record(fit_info={"best_epoch": 1})).startswith("LLM2SASRec (init=llm) seed 0")  # names the arm
    assert failed_run(_base(fit_info={"best_epoch": 1, "stopped_by": "epochs"})) is None  # an epoch cap, not a collapse
    assert failed_run(_base()) is None


def test_code_fingerprint_follows_the_training_path_not_other_files(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True,
                       env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                            "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})

    (tmp_path / "rec_utils" / "models").mkdir(parents=True)
    (tmp_path / "rec_utils" / "models" / "m.py").write_text("x = 1\n")
    (tmp_path / "README.md").write_text("a\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "one")
    first = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    tree = code_fingerprint(root=tmp_path)
    assert code_fingerprint(first, root=tmp_path) == tree  # working tree == its clean commit
    (tmp_path / "README.md").write_text("b\n")
    git("commit", "-q", "-am", "readme")
    second = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    assert code_fingerprint(second, root=tmp_path) == tree  # README is not training code
    (tmp_path / "rec_utils" / "models" / "m.py").write_text("x = 2\n")
    assert code_fingerprint(root=tmp_path) != tree
    assert run_code_fingerprint({"git_commit": f"{second}-dirty"}, root=tmp_path) is None
    assert run_code_fingerprint({"git_commit": second}, root=tmp_path) == tree
    assert run_code_fingerprint({"git_commit": "unknown", "code_fingerprint": "abc"}, root=tmp_path) == "abc"


def test_arm_settings_differ_in_the_init_and_name_the_thread_count(tiny_folder):
    split = make_split(load_dataset(tiny_folder), "temporal", test_frac=0.5)
    base = arm_setting("LLM2SASRec", "random", split, config=TINY, num_threads=1)
    llm = arm_setting("LLM2SASRec", "llm", split, config=TINY, num_threads=1)
    assert {k for k in base.config.keys() | llm.config.keys() if base.config.get(k) != llm.config.get(k)} == {"init"}
    assert base.label == "init=random,num_threads=1" and llm.label == "num_threads=1"
    assert base.id != arm_setting("LLM2SASRec", "random", split, config=TINY).id  # threads are part of the key
    with pytest.raises(ValueError, match="init must be"):
        arm_setting("LLM2SASRec", "bogus", split)


def test_run_arms_trains_pairs_in_one_process_that_pair_and_resume(tmp_path, tiny_folder):
    from rec_utils.significance import compare_runs

    split = make_split(load_dataset(tiny_folder), "temporal", test_frac=0.5)
    emb = ItemEmbeddings(np.arange(6), np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32))
    arms = {i: arm_setting("LLM2SASRec", i, split, config={**TINY, "reduction": "pca"}, num_threads=1)
            for i in ("random", "llm")}
    seen = []
    runs = run_arms(arms, split, out_dir=tmp_path, seeds=[0, 1], embeddings=emb,
                    on_run=lambda arm, r: seen.append((arm, r["seed"])))
    assert seen == [("random", 0), ("llm", 0), ("random", 1), ("llm", 1)]  # seed outer: complete pairs first
    r = runs["llm"][0]
    assert r["cpu_threads"] == 1 and r["code_fingerprint"] and r["device"].startswith("cpu")
    assert pairing_problems(runs["llm"], runs["random"], check_failed=False) == []
    rows = compare_runs(runs["llm"], runs["random"], split, out_dir=tmp_path, n_boot=99, pairing="refuse",
                        same_settings=True, check_metrics=True)
    assert rows[0]["pairing"] == "" and rows[0]["code_fingerprint"] == r["code_fingerprint"]
    again = run_arms(arms, split, out_dir=tmp_path, seeds=[0, 1], embeddings=emb)  # stored: loaded, not retrained
    assert [x["wall_s"] for x in again["llm"]] == [x["wall_s"] for x in runs["llm"]]


def test_tuned_arm_needs_a_finished_search(tmp_path, tiny_folder):
    import json

    split = make_split(load_dataset(tiny_folder), "temporal", test_frac=0.5)
    with pytest.raises(FileNotFoundError, match="tune_arm"):
        tuned_arm_setting("LLM2SASRec", "llm", split, tag="t8", root=tmp_path)
    path = tuned_config_path(tmp_path, "LLM2SASRec", "llm", "t8")
    path.parent.mkdir(parents=True)
    doc = {"n_trials": 3, "budget_trials": 8, "config": {**TINY, "init": "llm"}, "selected_by": "TPE t8: 8 trials"}
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="3 of its 8 trials"):
        tuned_arm_setting("LLM2SASRec", "llm", split, tag="t8", root=tmp_path)
    path.write_text(json.dumps({**doc, "n_trials": 8}))
    s = tuned_arm_setting("LLM2SASRec", "llm", split, tag="t8", root=tmp_path, num_threads=1)
    assert s.selected_by == "TPE t8: 8 trials" and s.config["emb_dim"] == 4 and "init" not in s.config
    assert s.config["num_threads"] == 1 and s.preset is None


def test_the_headline_table_shows_pairs_refusals_and_the_papers_gain(tmp_path, tiny_folder, monkeypatch):
    """report.table_llm2_fair: a paired model gets base / LLM2 mean ± sd, Δ with CI and Holm p, the
    shared device and code; a refused pair shows its reason; an unpaired model the paper's gain."""
    from rec_utils import report
    from rec_utils.llm2_comparison import compare_arms
    from rec_utils.significance import record_significance

    split = make_split(load_dataset(tiny_folder), "temporal", test_frac=0.5)
    emb = ItemEmbeddings(np.arange(6), np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32))
    out = tmp_path / "beauty"
    arms = {i: arm_setting("LLM2SASRec", i, split, config={**TINY, "reduction": "pca"}, num_threads=1)
            for i in ("random", "llm")}
    runs = run_arms(arms, split, out_dir=out, seeds=[0, 1], embeddings=emb)
    record_significance(compare_arms(arms, runs, split, out_dir=out, n_boot=99), out)
    arms_gru = {i: arm_setting("LLM2GRU4Rec", i, split, config={"emb_dim": 4, "hidden_dim": 4, "epochs": 1},
                               num_threads=1) for i in ("random", "llm")}
    gru = run_arms(arms_gru, split, out_dir=out, seeds=[0], embeddings=emb)
    gru["random"] = [{**r, "device": "cuda:NVIDIA H200"} for r in gru["random"]]  # an unlike base: refused
    record_significance(compare_arms(arms_gru, gru, split, out_dir=out, n_boot=99), out)
    monkeypatch.setattr(report, "RESULTS_ROOT", tmp_path)
    t = report.table_llm2_fair(("beauty",))
    sas = t[t["model"] == "LLM2SASRec"].iloc[0]
    assert sas["seeds"] == "2" and sas["configs"] == "preset (like-for-like)" and "[" in sas["Δ NDCG@10 [95 % CI]"] and sas["p Holm @10"] != ""
    assert sas["device, code (commits)"].startswith("cpu") and runs["llm"][0]["code_fingerprint"] in sas["device, code (commits)"]
    assert sas["gain @10 ours / paper"].endswith("+27%")
    gru_row = t[t["model"] == "LLM2GRU4Rec"].iloc[0]
    assert gru_row["base NDCG@10"] == "refused" and "different devices" in gru_row["LLM2 NDCG@10"]
    bert = t[t["model"] == "LLM2BERT4Rec"].iloc[0]
    assert bert["base NDCG@10"] == "not paired yet" and bert["gain @10 ours / paper"] == "– / +20%"


def test_a_resumed_finished_search_keeps_its_stored_record(tmp_path, monkeypatch):
    """tune_arm on a search that has nothing left to run leaves the stored optimum's file as the
    search wrote it (its commit and search time are not overwritten by the resuming call)."""
    import json
    from types import SimpleNamespace

    import pandas as pd

    from rec_utils import llm2_comparison
    from rec_utils.tuning import optuna_search, worker

    best = SimpleNamespace(number=3, value=0.05, params={"learning_rate": 0.01},
                           user_attrs={"fold_values": [0.05], "config": {**TINY, "init": "llm"}})
    study = SimpleNamespace(study_name="s1")
    monkeypatch.setattr(worker, "prepare_search", lambda *a, **k: object())
    monkeypatch.setattr(worker, "run_worker", lambda *a, **k: study)
    monkeypatch.setattr(optuna_search, "n_finished", lambda s: 4)
    monkeypatch.setattr(optuna_search, "best_trial", lambda s: best)
    monkeypatch.setattr(optuna_search, "trials_table", lambda s: pd.DataFrame({"duration_s": [1.0, 2.0]}))
    kw = dict(tag="t4", n_trials=4, n_startup=2, dataset="beauty", root=tmp_path)
    first = llm2_comparison.tune_arm("LLM2SASRec", "llm", **kw)
    path = tuned_config_path(tmp_path, "LLM2SASRec", "llm", "t4")
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({**stored, "git_commit": "first00", "search_wall_s_this_call": 285.5}))
    again = llm2_comparison.tune_arm("LLM2SASRec", "llm", **kw)
    assert again["git_commit"] == "first00" and again["search_wall_s_this_call"] == 285.5
    assert json.loads(path.read_text())["search_wall_s_this_call"] == 285.5 and first["trial_number"] == 3
    best.number, best.value = 5, 0.06  # the search found a better trial: the file is rewritten
    assert llm2_comparison.tune_arm("LLM2SASRec", "llm", **kw)["trial_number"] == 5
    assert json.loads(path.read_text())["trial_number"] == 5


def test_a_budgeted_searchs_epochs_hold_in_its_trials_only(tmp_path, tiny_folder):
    """tuned_arm_setting(search_only=...) leaves the search's budget fields out of the pair's config:
    the optimum of a 2-epoch search trains with the model's own epochs and early stopping."""
    import json

    split = make_split(load_dataset(tiny_folder), "temporal", test_frac=0.5)
    path = tuned_config_path(tmp_path, "LLM2SASRec", "llm", "b2")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"n_trials": 2, "budget_trials": 2, "selected_by": "TPE b2: 2 trials",
                                "config": {**TINY, "init": "llm", "epochs": 2}}))
    budgeted = tuned_arm_setting("LLM2SASRec", "llm", split, tag="b2", root=tmp_path, search_only={"epochs": 2})
    assert "epochs" not in budgeted.config and budgeted.config["emb_dim"] == TINY["emb_dim"]
    assert tuned_arm_setting("LLM2SASRec", "llm", split, tag="b2", root=tmp_path).config["epochs"] == 2


def test_two_llmseqprompt_configurations_pair_only_with_the_same_llm_code():
    def llm(**kw):
        return _record(**{"model": "LLMSeqPrompt", "history": None, "llm_code_fingerprint": "1" * 12, **kw})

    most_popular = _record(model="MostPopular", history=None, resolved_config={}, fit_info={})
    assert pairing_problems([llm()], [llm(git_commit="def5678")], check_settings=False) == []
    other_llm_code = llm(llm_code_fingerprint="2" * 12, git_commit="def5678")
    assert any("different LLM code" in p for p in pairing_problems([llm()], [other_llm_code], check_settings=False))
    unknown = llm(llm_code_fingerprint=None, git_commit="abc1234-dirty")
    assert any("LLM code unknown" in p for p in pairing_problems([llm()], [unknown], check_settings=False))
    # against another model the LLM code is part of one side's model: not a pairing rule
    assert pairing_problems([other_llm_code], [most_popular], check_settings=False) == []
