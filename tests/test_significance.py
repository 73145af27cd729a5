"""Paired comparison of stored runs (rec_utils.significance) on cases with known answers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rec_utils.data import load_dataset
from rec_utils.metrics import hit_rate_at_k, ndcg_at_k
from rec_utils.results import find_runs, save_run
from rec_utils.setting import Setting
from rec_utils.significance import (KEY_COLUMNS, SIGNIFICANCE_COLUMNS, bootstrap_ci, compare_runs, compare_settings,
                                    load_lists, paired_stats, per_session, read_significance, record_significance,
                                    sign_flip_test, wilcoxon_p)
from rec_utils.split import make_split

FP = "abc123abc123"


# ------------------------------------------------------------------ statistics, known answers
def test_constant_difference_gives_a_point_ci_and_a_tiny_p():
    b = np.random.default_rng(0).random(500)
    r = paired_stats(b + 0.1, b, n_boot=2000, seed=1)
    assert r["diff"] == pytest.approx(0.1, abs=1e-12)
    assert r["ci_low"] == pytest.approx(0.1, abs=1e-12) and r["ci_high"] == pytest.approx(0.1, abs=1e-12)
    assert r["p_value"] == pytest.approx(1 / 2001) and r["n_sessions"] == 500  # no sign vector reaches it
    assert r["mean_a"] - r["mean_b"] == pytest.approx(0.1)


def test_symmetric_noise_covers_zero_with_a_large_p():
    x = np.random.default_rng(3).normal(0, 0.2, 400)
    d = np.concatenate([x, -x])  # mean exactly 0, perfectly symmetric
    base = np.full(len(d), 0.5)
    r = paired_stats(base + d, base, n_boot=5000, seed=0)
    assert r["ci_low"] < 0 < r["ci_high"]
    assert r["p_value"] == 1.0  # |mean(s·d)| >= 0 = |d̄| for every sign vector
    assert abs(r["diff"]) < 1e-12


def test_hand_computed_wilcoxon_and_mean():
    # |d| ranks: 0.5→1, 1→2, 2→3, 3→4; W- = 1, W+ = 9. Of the 2^4 = 16 sign patterns, rank sums
    # <= 1 arise from {} and {1}: P(W- <= 1) = 2/16, two-sided p = 0.25 (exact test, n = 4)
    d = np.array([1.0, 2.0, 3.0, -0.5])
    assert wilcoxon_p(d) == pytest.approx(0.25)
    assert paired_stats(d, np.zeros(4))["diff"] == pytest.approx(1.375)
    # zero differences are dropped before ranking (zero_method="wilcox"): same p
    assert wilcoxon_p(np.concatenate([d, np.zeros(5)])) == pytest.approx(0.25)
    assert wilcoxon_p(np.zeros(7)) == 1.0


def test_bootstrap_ci_matches_the_normal_approximation_and_is_seeded():
    d = np.random.default_rng(5).normal(0.03, 0.3, 4000)
    lo, hi = bootstrap_ci(d, n_boot=10_000, seed=0)
    se = d.std(ddof=1) / np.sqrt(len(d))
    assert lo == pytest.approx(d.mean() - 1.96 * se, abs=0.15 * se)
    assert hi == pytest.approx(d.mean() + 1.96 * se, abs=0.15 * se)
    assert bootstrap_ci(d, 10_000, seed=0) == (lo, hi)
    assert bootstrap_ci(d, 10_000, seed=1) != (lo, hi)


def test_per_session_metrics_by_hand():
    recs = np.array([[5, 6, 7], [6, 5, 7], [8, 9, -1]])
    targets = np.array([5, 7, 4])
    np.testing.assert_allclose(per_session(recs, targets, "ndcg@20"), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(per_session(recs, targets, "hit_rate@2"), [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="metric must be"):
        per_session(recs, targets, "recall@20")


# ------------------------------------------------------------------ stored runs
def _store(out, model, seed, recs, sids, targets, config=None, fp=FP, label=None, provenance=None):
    """Store a run of ``model`` with lists ``recs`` for sessions ``sids`` (targets in the same
    order, used only for the run's stored metrics) as run_seeds does."""
    setting = Setting(model=model, dataset="syn", config=config or {})
    metrics = {"ndcg@20": float(ndcg_at_k(recs, targets, 20).mean()),
               "hit_rate@20": float(hit_rate_at_k(recs, targets, 20).mean())}
    rec = {"model": model, "variant": setting.label if label is None else label, "protocol": "temporal",
           "seed": seed, "setting": setting.to_dict(), "setting_id": setting.id, "split_fingerprint": fp,
           "metrics": metrics, "device": "cpu:test x2", "git_commit": "abc1234", "code_fingerprint": "c0de" * 3,
           **(provenance or {})}
    save_run(rec, out, recs=recs, session_ids=sids)
    return rec


def _runs(out, n=300, seeds=(0, 1, 2), seed=0):
    """A hits the target at rank 1 in ~60 % of the sessions (drawn per seed); B has it at rank 2
    in those sessions; both miss elsewhere."""
    rng = np.random.default_rng(seed)
    sids = np.arange(1000, 1000 + n)
    targets = rng.integers(0, 50, n)
    other, third = (targets + 1) % 50, (targets + 2) % 50
    A, B = [], []
    for s in seeds:
        hit = (rng.random(n) < 0.6)[:, None]
        miss = np.stack([other, third], 1)
        A.append(_store(out, "LLM2SASRec", s, np.where(hit, np.stack([targets, other], 1), miss), sids, targets))
        B.append(_store(out, "SASRec", s, np.where(hit, np.stack([other, targets], 1), miss), sids, targets))
    return A, B, pd.Series(targets, index=sids)


def test_compare_runs_pairs_seeds_and_averages_per_session(tmp_path):
    A, B, t = _runs(tmp_path)
    rows = compare_runs(A, B[:2], targets=t, out_dir=tmp_path, n_boot=2000)
    assert [r["metric"] for r in rows] == ["ndcg@20", "hit_rate@20"]
    nd, hr = rows
    assert list(nd) == list(SIGNIFICANCE_COLUMNS)
    assert nd["n_seed_pairs"] == 2 and nd["n_sessions"] == 300  # seed 2 has no partner
    assert nd["mean_a"] == pytest.approx(np.mean([A[0]["metrics"]["ndcg@20"], A[1]["metrics"]["ndcg@20"]]))
    # where A hits at rank 1, B hits at rank 2: per-session difference 1 - 1/log2(3)
    assert nd["diff"] == pytest.approx(nd["mean_a"] * (1 - 1 / np.log2(3)))
    assert 0 < nd["ci_low"] < nd["diff"] < nd["ci_high"] and nd["p_value"] == pytest.approx(1 / 2001)
    assert 0 < nd["boot_ci_low"] < nd["diff"] < nd["boot_ci_high"]
    # seed-level view: per-seed means of each side and of their difference
    sa = [A[s]["metrics"]["ndcg@20"] for s in (0, 1)]
    sb = [B[s]["metrics"]["ndcg@20"] for s in (0, 1)]
    assert nd["seed_sd_a"] == pytest.approx(np.std(sa, ddof=1)) and nd["seed_sd_b"] == pytest.approx(np.std(sb, ddof=1))
    assert nd["seed_diff_mean"] == pytest.approx(nd["diff"])
    assert nd["seed_diff_sd"] == pytest.approx(np.std(np.subtract(sa, sb), ddof=1))
    assert nd["device_a"] == nd["device_b"] == "cpu:test x2" and nd["pairing"] == ""
    assert hr["diff"] == 0.0 and hr["p_value"] == 1.0 and hr["ci_low"] == hr["ci_high"] == 0.0
    assert (nd["model_a"], nd["model_b"], nd["split_fingerprint"]) == ("LLM2SASRec", "SASRec", FP)
    assert nd["label_a"] == "" and nd["setting_id_a"] == A[0]["setting_id"]


def test_sessions_are_aligned_by_id_and_must_match(tmp_path):
    A, B, t = _runs(tmp_path, seeds=(0,))
    base = compare_runs(A, B, targets=t, out_dir=tmp_path, n_boot=500)
    lists = {r["model"]: load_lists(r, tmp_path) for r in (A[0], B[0])}
    # the same lists stored in another session order: the same answer
    perm = np.random.default_rng(1).permutation(300)
    out2 = tmp_path / "shuffled"
    for model, (sid, recs) in lists.items():
        _store(out2, model, 0, recs[perm], sid[perm], t.reindex(sid[perm]).to_numpy())
    again = compare_runs(find_runs(out2, model="LLM2SASRec"), find_runs(out2, model="SASRec"), targets=t,
                         out_dir=out2, n_boot=500)
    assert [r["diff"] for r in again] == pytest.approx([r["diff"] for r in base])
    assert [r["ci_low"] for r in again] == pytest.approx([r["ci_low"] for r in base])
    # one session fewer on one side: an error
    out3 = tmp_path / "fewer"
    sid, recs = lists["SASRec"]
    _store(out3, "SASRec", 0, recs[:-1], sid[:-1], t.reindex(sid[:-1]).to_numpy())
    sid, recs = lists["LLM2SASRec"]
    _store(out3, "LLM2SASRec", 0, recs, sid, t.reindex(sid).to_numpy())
    with pytest.raises(ValueError, match="other test sessions"):
        compare_runs(find_runs(out3, model="LLM2SASRec"), find_runs(out3, model="SASRec"), targets=t, out_dir=out3)


def test_wrong_targets_split_or_seeds_are_errors(tmp_path):
    A, B, t = _runs(tmp_path, seeds=(0, 1))
    with pytest.raises(ValueError, match="do not belong"):
        compare_runs(A, B, targets=pd.Series((t.to_numpy() + 3) % 50, index=t.index), out_dir=tmp_path)
    with pytest.raises(ValueError, match="no seed in common"):
        compare_runs(A[:1], B[1:], targets=t, out_dir=tmp_path)
    sid, recs = load_lists(B[0], tmp_path)
    other = _store(tmp_path, "SASRec", 5, recs, sid, t.reindex(sid).to_numpy(), fp="fff000fff000")
    with pytest.raises(ValueError, match="not on the same split"):
        compare_runs(A[:1], [other], targets=t, out_dir=tmp_path)
    with pytest.raises(ValueError, match="mixes settings"):
        compare_runs([A[0], B[1]], B, targets=t, out_dir=tmp_path)
    with pytest.raises(ValueError, match="give split="):
        compare_runs(A, B, out_dir=tmp_path)


def test_targets_from_a_real_split(tmp_path, tiny_folder):
    split = make_split(load_dataset(tiny_folder), "temporal", test_frac=0.5)
    p = split.test
    assert len(p) >= 2
    recs_a = np.concatenate([p.targets[:, None], np.full((len(p), 19), -1)], axis=1)  # always right
    recs_b = np.full_like(recs_a, -1)  # never
    A = [_store(tmp_path, "A", 0, recs_a, p.session_ids, p.targets, fp=split.fingerprint)]
    B = [_store(tmp_path, "B", 0, recs_b, p.session_ids, p.targets, fp=split.fingerprint)]
    nd, hr = compare_runs(A, B, split, out_dir=tmp_path, n_boot=200)
    assert nd["diff"] == hr["diff"] == 1.0 and nd["n_sessions"] == len(p)
    with pytest.raises(ValueError, match="not on the given split"):
        compare_runs([_store(tmp_path, "A", 1, recs_a, p.session_ids, p.targets)],
                     [_store(tmp_path, "B", 1, recs_b, p.session_ids, p.targets)], split, out_dir=tmp_path)
    # compare_settings finds the runs of two settings on the split
    rows = compare_settings(Setting(model="A", dataset="syn"), Setting(model="B", dataset="syn"), split,
                            out_dir=tmp_path, n_boot=200)
    assert rows[0]["diff"] == 1.0 and rows[0]["n_seed_pairs"] == 1


def test_significance_csv_replaces_rows_of_the_same_key(tmp_path):
    A, B, t = _runs(tmp_path, seeds=(0,))
    rows = compare_runs(A, B, targets=t, out_dir=tmp_path, n_boot=200)
    record_significance(rows, tmp_path)
    table = record_significance(rows, tmp_path)  # the same rows again: replaced, not appended
    assert list(table.columns) == list(SIGNIFICANCE_COLUMNS) and len(table) == 2
    # a labelled variant of A (e.g. init=permuted) adds rows beside them
    sid, recs = load_lists(A[0], tmp_path)
    perm = [_store(tmp_path, "LLM2SASRec", 0, recs, sid, t.reindex(sid).to_numpy(), config={"init": "permuted"},
                   label="init=permuted")]
    record_significance(compare_runs(perm, B, targets=t, out_dir=tmp_path, n_boot=200), tmp_path)
    table = read_significance(tmp_path)
    assert list(table.columns) == list(SIGNIFICANCE_COLUMNS)
    assert len(table) == 4 and set(table["label_a"]) == {"", "init=permuted"}
    assert not table.duplicated(list(KEY_COLUMNS)).any()
    assert set(table["split_fingerprint"]) == {FP} and set(table["label_b"]) == {""}


# ------------------------------------------------------------------ sign-flip test, CI, Holm (issue 22)
def _constructed(kind: str, n: int, rng) -> np.ndarray:
    """Per-session differences as they arise: continuous, NDCG-like (mostly 0, a few ±1/log2 ranks),
    HR-like (−1/0/+1) and seed-averaged HR over 3 seeds (±1/3, ±2/3, the case that broke Wilcoxon)."""
    shift = rng.normal(0, 0.15)
    if kind == "normal":
        return rng.normal(shift, 1.0, n)
    if kind == "ndcg":
        hit = rng.random(n) < 0.15
        return np.where(hit, rng.choice([1, -1, 0.63, -0.5], n) + shift, 0.0)
    if kind == "hr":
        return rng.choice([-1.0, 0.0, 1.0], n, p=[0.08, 0.84, 0.08] if shift < 0 else [0.06, 0.84, 0.10])
    return rng.choice([-2 / 3, -1 / 3, 0.0, 1 / 3, 2 / 3], n, p=[0.04, 0.08, 0.74, 0.09, 0.05])


@pytest.mark.parametrize("kind", ["normal", "ndcg", "hr", "hr3"])
def test_p_below_005_iff_the_95_ci_excludes_zero_on_constructed_data(kind):
    """The guarantee of significance.py: the CI is the inversion of the same sign-flip test, so the
    p-value and the CI never read differently — across many constructed data sets, including the
    discrete ones with exact ties (HR, seed-averaged HR) and borderline effects."""
    rng = np.random.default_rng(22)
    decided = {True: 0, False: 0}
    for i in range(60):
        d = _constructed(kind, int(rng.integers(8, 400)), rng)
        r = sign_flip_test(d, n_perm=999, seed=i)
        excludes = r["ci_low"] > 0 or r["ci_high"] < 0
        assert (r["p_value"] < 0.05) == excludes, (kind, i, r, d.mean())
        if np.any(d != 0):
            assert r["ci_low"] <= d.mean() <= r["ci_high"]
        decided[excludes] += 1
    assert decided[True] > 0 and decided[False] > 0  # both outcomes were exercised


def test_sign_flip_p_is_the_stated_formula_and_seeded():
    d = np.array([0.5, 1.0, -0.25, 0.75, 0.1, -0.1, 0.3])
    r = sign_flip_test(d, n_perm=500, seed=3)
    # recompute by the formula with the same sign vectors
    from rec_utils.significance import _sign_blocks
    S = np.concatenate(list(_sign_blocks(len(d), 500, 3)))
    count = np.count_nonzero(np.abs(S @ d / len(d)) >= abs(d.mean()) - 1e-12)
    assert r["p_value"] == pytest.approx((1 + count) / 501)
    assert sign_flip_test(d, 500, seed=3) == r and sign_flip_test(d, 500, seed=4) != r
    # n = 7: all 2^7 = 128 sign patterns enumerate the exact p; 500 random ones come close
    signs = np.array(np.meshgrid(*[[-1, 1]] * 7)).reshape(7, -1).T
    exact = np.mean(np.abs(signs @ d / 7) >= abs(d.mean()) - 1e-12)
    assert r["p_value"] == pytest.approx(exact, abs=0.06)


def test_inverted_ci_is_close_to_the_bootstrap_ci_in_a_large_sample():
    d = np.random.default_rng(5).normal(0.03, 0.3, 3000)
    r = sign_flip_test(d, 4000, seed=0)
    lo, hi = bootstrap_ci(d, 4000, seed=0)
    se = d.std(ddof=1) / np.sqrt(len(d))
    assert r["ci_low"] == pytest.approx(lo, abs=0.25 * se) and r["ci_high"] == pytest.approx(hi, abs=0.25 * se)


def test_holm_by_hand():
    from rec_utils.significance import holm
    # sorted 0.005, 0.01, 0.03, 0.04 (m = 4): ×4, ×3, ×2, ×1 then running max
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, np.nan, 0.005]), [0.03, 0.06, 0.06, np.nan, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])
    assert holm([]).shape == (0,)


def test_record_significance_adjusts_within_families_and_keeps_unlike_pairs_out(tmp_path):
    A, B, t = _runs(tmp_path, seeds=(0,))
    rows = compare_runs(A, B, targets=t, out_dir=tmp_path, n_boot=200)
    table = record_significance(rows, tmp_path)
    p = table["p_value"].to_numpy()
    lo, hi = np.argmin(p), np.argmax(p)  # Holm over the family of 2: 2·p_min, then max(p_max, 2·p_min)
    assert table["p_holm"][lo] == pytest.approx(min(1, 2 * p[lo]), rel=1e-5)
    assert table["p_holm"][hi] == pytest.approx(max(p[hi], min(1, 2 * p[lo])), rel=1e-5)
    # B made on a GPU: the pair is marked and goes to significance_refused.csv, never into significance.csv
    sid, recs = load_lists(B[0], tmp_path)
    gpu = [_store(tmp_path / "g", "SASRec", 0, recs, sid, t.reindex(sid).to_numpy(),
                  provenance={"device": "cuda:NVIDIA H200", "git_commit": "unknown", "code_fingerprint": None})]
    sid, recs = load_lists(A[0], tmp_path)
    cpu = [_store(tmp_path / "g", "LLM2SASRec", 0, recs, sid, t.reindex(sid).to_numpy())]
    marked = compare_runs(cpu, gpu, targets=t, out_dir=tmp_path / "g", n_boot=200)
    assert all("different devices" in r["pairing"] and "code unknown" in r["pairing"] for r in marked)
    table = record_significance(marked, tmp_path)
    assert len(table) == 0  # the same key was replaced by a refused row
    refused = read_significance(tmp_path, "significance_refused.csv")
    assert len(refused) == 2 and refused["pairing"].str.contains("cuda:NVIDIA H200").all()
    assert "p_value" not in refused.columns
    from rec_utils.llm2_comparison import PairingRefused
    with pytest.raises(PairingRefused, match="different devices"):
        compare_runs(cpu, gpu, targets=t, out_dir=tmp_path / "g", pairing="refuse")
    # a pair that pairs again leaves the refused list
    record_significance(rows, tmp_path)
    assert len(read_significance(tmp_path, "significance_refused.csv")) == 0
    assert len(read_significance(tmp_path)) == 2
