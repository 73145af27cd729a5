"""The twelve metrics: hand-computed cases, an independent library, edge cases."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rec_utils.metrics import (METRIC_COLUMNS, as_rec_matrix, catalog_coverage_at_k, dedup_truncate,
                               evaluate, hit_rate_at_k, mrr_at_k, ndcg_at_k, novelty_at_k,
                               serendipity_at_k)

COUNTS = pd.Series({1: 50, 2: 30, 3: 10, 4: 5, 5: 5})  # total 100


def test_twelve_columns_in_paper_order():
    assert METRIC_COLUMNS[:6] == ("ndcg@10", "hit_rate@10", "mrr@10", "catalog_coverage@10",
                                  "serendipity@10", "novelty@10")
    assert len(METRIC_COLUMNS) == 12 and METRIC_COLUMNS[6] == "ndcg@20"


def test_hand_computed_accuracy():
    recs = np.array([[3, 1, 2], [4, 5, -1], [2, 2, 3]])
    targets = np.array([1, 3, 3])
    # row 0: hit at rank 2; row 1: miss; row 2: dedup -> [2, 3], hit at rank 2
    np.testing.assert_allclose(hit_rate_at_k(recs, targets, 3), [1, 0, 1])
    np.testing.assert_allclose(ndcg_at_k(recs, targets, 3), [1 / math.log2(3), 0, 1 / math.log2(3)])
    np.testing.assert_allclose(mrr_at_k(recs, targets, 3), [0.5, 0, 0.5])
    # truncation happens before de-duplication: at k=2 row 2 is [2, 2] -> [2], the 3 is cut
    np.testing.assert_allclose(hit_rate_at_k(recs, targets, 2), [1, 0, 0])


def test_dedup_keeps_first_occurrence_and_ranks():
    r, valid, rank = dedup_truncate(np.array([[7, 8, 7, 9, 8, 10]]), 6)
    assert valid.tolist() == [[True, True, False, True, False, True]]
    assert rank[valid].tolist() == [1, 2, 3, 4]


def test_beyond_accuracy_hand_examples():
    recs = np.array([[1, 2], [4, 5], [-1, -1]])
    targets = np.array([1, 4, 3])
    # coverage: {1, 2, 4, 5} of a 10-item catalogue
    assert catalog_coverage_at_k(recs, 2, n_items=10) == pytest.approx(0.4)
    # serendipity@2: top-2 popular = {1, 2}; row 0 hits 1 (expected -> 0), row 1 hits 4 (unexpected -> 1)
    np.testing.assert_allclose(serendipity_at_k(recs, targets, 2, COUNTS), [0, 1, 0])
    # novelty: mean of -log2(count/100)
    nov = novelty_at_k(recs, 2, COUNTS)
    assert nov[0] == pytest.approx((-math.log2(0.5) - math.log2(0.3)) / 2)
    assert nov[1] == pytest.approx(-math.log2(0.05))
    assert nov[2] == 0
    # an item without a count adds 0 but counts in the length
    assert novelty_at_k(np.array([[1, 99]]), 2, COUNTS)[0] == pytest.approx(1 / 2)


def test_empty_predictions_score_zero_or_are_skipped():
    recs = as_rec_matrix([[1, 2], [], [3]])
    targets = np.array([1, 2, 3])
    zero = evaluate(recs, targets, COUNTS, n_items=5, cutoffs=(10,))
    skip = evaluate(recs, targets, COUNTS, n_items=5, cutoffs=(10,), skip_empty=True)
    assert zero["hit_rate@10"] == pytest.approx(2 / 3) and zero["n_empty"] == 1
    assert skip["hit_rate@10"] == pytest.approx(1.0) and skip["n_sessions"] == 2


def test_matches_ranx_on_random_lists():
    ranx = pytest.importorskip("ranx")
    rng = np.random.default_rng(0)
    n, n_items = 400, 60
    recs = np.stack([rng.choice(n_items, size=20, replace=False) for _ in range(n)])
    targets = rng.integers(0, n_items, size=n)
    qrels = ranx.Qrels({f"q{i}": {f"d{targets[i]}": 1} for i in range(n)})
    run = ranx.Run({f"q{i}": {f"d{d}": float(20 - j) for j, d in enumerate(recs[i])} for i in range(n)})
    ours = evaluate(recs, targets, pd.Series(np.ones(n_items), index=np.arange(n_items)), n_items)
    theirs = ranx.evaluate(qrels, run, ["ndcg@10", "ndcg@20", "hit_rate@10", "hit_rate@20", "mrr@10", "mrr@20"])
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, abs=1e-9), key


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 recommendation lists for 3 targets"):
        evaluate(np.zeros((2, 3), int), np.zeros(3, int), COUNTS, 5)


# ----------------------------------------------------------------------------- catalogue coverage


def test_coverage_with_more_ids_than_the_catalogue_is_an_error():
    with pytest.raises(ValueError, match=r"catalog coverage@10: the lists hold 3 distinct item ids but the "
                                         r"catalogue has n_items=2"):
        catalog_coverage_at_k(np.array([[1, 2, 3]]), 10, n_items=2)
    # exactly as many distinct ids as n_items is fine (padding and repeats do not count)
    assert catalog_coverage_at_k(np.array([[1, 2, 2, -1], [2, 1, -1, -1]]), 10, n_items=2) == 1.0
    with pytest.raises(ValueError, match="n_items must be >= 1"):
        catalog_coverage_at_k(np.array([[1]]), 10, n_items=0)


def test_coverage_ignores_ids_outside_the_given_catalogue():
    assert catalog_coverage_at_k(np.array([[1, 2, 3]]), 10, n_items=2, catalog=np.array([1, 2])) == 1.0
    # items listed in items.csv without interactions (here 98, 99) are not catalogue items
    recs = np.array([[1, 98, 99], [2, 99, -1]])
    assert catalog_coverage_at_k(recs, 10, n_items=4, catalog=[1, 2, 5, 6]) == pytest.approx(0.5)
    assert catalog_coverage_at_k(recs, 1, n_items=4, catalog=[6, 5, 2, 1, 1]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="n_items=3 but catalog has 4 distinct item ids"):
        catalog_coverage_at_k(recs, 10, n_items=3, catalog=[1, 2, 5, 6])


def test_coverage_never_exceeds_one_on_random_lists():
    rng = np.random.default_rng(1)
    catalog = np.arange(0, 60, 2)
    recs = rng.integers(-1, 80, size=(300, 20))
    for k in (1, 10, 20):
        c = catalog_coverage_at_k(recs, k, n_items=len(catalog), catalog=catalog)
        assert 0 < c <= 1
    assert catalog_coverage_at_k(recs, 20, len(catalog), catalog) == 1.0


def test_evaluate_passes_the_catalogue_and_counts_ids_outside():
    recs = np.array([[1, 98, 99], [2, 99, -1]])
    targets = np.array([1, 5])
    with pytest.raises(ValueError, match="4 distinct item ids but the catalogue has n_items=2"):
        evaluate(recs, targets, COUNTS, n_items=2, cutoffs=(10,))
    out = evaluate(recs, targets, COUNTS, n_items=4, cutoffs=(1, 10), catalog=np.array([1, 2, 5, 6]))
    assert out["catalog_coverage@10"] == pytest.approx(0.5) and out["catalog_coverage@1"] == pytest.approx(0.5)
    assert out["n_outside_catalog"] == 2  # 98 and 99 (distinct ids within the top max(cutoffs))
    assert "n_outside_catalog" not in evaluate(recs[:, :1], targets, COUNTS, n_items=5, cutoffs=(10,))


def test_evaluation_without_cases_is_an_error():
    with pytest.raises(ValueError, match=r"no evaluation cases: 0 targets \(and 0 recommendation lists\)"):
        evaluate(np.zeros((0, 20), int), np.zeros(0, int), COUNTS, 5)
    with pytest.raises(ValueError, match=r"no evaluation cases: 0 targets \(and 2 recommendation lists\)"):
        evaluate(np.zeros((2, 20), int), np.zeros(0, int), COUNTS, 5)
    with pytest.raises(ValueError, match="no evaluation cases"):
        evaluate([], [], COUNTS, 5)
    with pytest.raises(ValueError, match="no evaluation cases left: all 2 sessions have no prediction"):
        evaluate(as_rec_matrix([[], []], width=20), np.array([1, 2]), COUNTS, 5, skip_empty=True)
