"""The hybrids of §6.6 on hand-made lists with known answers (rec_utils.models.hybrids)."""
import numpy as np
import pandas as pd
import pytest

from rec_utils.models.hybrids import (ComponentLists, EmbeddingEnsemble, LLMSeqSimPopularity, LLMSeqSimSequential,
                                      confidence_ensemble, dedup_truncate, diversity_rerank, popularity_filter,
                                      popularity_switch, rank_ensemble, session_popularity, similarity_threshold)
from rec_utils.split import Prompts


def test_dedup_truncate_keeps_first_occurrences_in_order_and_pads():
    out = dedup_truncate(np.array([[3, 1, 3, -1, 2, 1], [5, 5, 5, 5, 5, 5]]), k=4)
    assert out.tolist() == [[3, 1, 2, -1], [5, -1, -1, -1]]


def test_rank_ensemble_takes_r_items_of_model_1_then_model_2_without_duplicates():
    a = np.array([[1, 2, 3, 4]])
    b = np.array([[2, 9, 8, 7]])
    assert rank_ensemble(a, b, 0, k=4).tolist() == [[2, 9, 8, 7]]  # r = 0: model 2 alone
    assert rank_ensemble(a, b, 2, k=4).tolist() == [[1, 2, 9, 8]]  # 2 repeated: kept once
    assert rank_ensemble(a, b, 10, k=4).tolist() == [[1, 2, 3, 4]]


def test_confidence_ensemble_stops_at_the_first_score_below_c():
    a = np.array([[1, 2, 3, 4], [1, 2, 3, 4]])
    s = np.array([[0.95, 0.7, 0.99, 0.9], [0.5, 0.99, 0.99, 0.99]], dtype=np.float32)
    b = np.array([[7, 8, 9, 6], [7, 8, 9, 6]])
    out = confidence_ensemble(a, s, b, 0.8, k=4)
    assert out.tolist() == [[1, 7, 8, 9], [7, 8, 9, 6]]  # item 3 (0.99) after the 0.7 is not taken


def test_session_popularity_is_the_share_of_sessions_containing_the_item():
    inter = pd.DataFrame({"session_id": [1, 1, 1, 2, 3, 4], "item_id": [10, 10, 11, 10, 12, 11]})
    pop = session_popularity(inter)
    assert pop.to_dict() == {10: 0.5, 11: 0.5, 12: 0.25}


def test_popularity_switch_uses_the_sequential_list_for_popular_last_items():
    pop = pd.Series({1: 0.1, 2: 0.2, 3: 0.3, 4: 0.4})  # 50 % quantile = 0.25
    llm = np.array([[11, 12], [11, 12], [11, 12]])
    seq = np.array([[21, 22], [21, 22], [21, 22]])
    recs, use = popularity_switch(llm, seq, np.array([1, 3, 99]), pop, 0.5, k=2)
    assert use.tolist() == [False, True, False]  # unknown item 99: popularity 0
    assert recs.tolist() == [[11, 12], [21, 22], [11, 12]]


def test_popularity_filter_deletes_the_first_unpopular_items_while_more_than_k_remain():
    pop = pd.Series({1: 0.9, 2: 0.01, 3: 0.01, 4: 0.9, 5: 0.01, 6: 0.9})  # 50 % quantile: 0.455
    recs = np.array([[2, 1, 3, 5, 4, 6]])
    # 6 items, k = 4: two deletions allowed -> the first two unpopular ones (2, 3) go, 5 stays
    assert popularity_filter(recs, pop, 0.5, k=4).tolist() == [[1, 5, 4, 6]]
    # k = 6: nothing can go
    assert popularity_filter(recs, pop, 0.5, k=6).tolist() == [[2, 1, 3, 5, 4, 6]]


def test_diversity_rerank_skips_items_too_similar_to_a_kept_one_without_backfill():
    ids = np.array([1, 2, 3, 4])
    vecs = np.array([[1, 0], [0.99, 0.141], [0, 1], [0.7071, 0.7071]], dtype=np.float32)
    recs = np.array([[1, 2, 3, 4]])
    # 2 is ~1 x item 1 (cos 0.99); 4 has cos 0.707 to 1 and 3
    assert diversity_rerank(recs, ids, vecs, 0.8, k=3).tolist() == [[1, 3, 4]]
    assert diversity_rerank(recs, ids, vecs, 0.5, k=3).tolist() == [[1, 3, -1]]  # no back-fill


def test_similarity_threshold_is_exact_on_small_catalogues():
    vecs = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    # off-diagonal cosines: 0, 0, .7071 (twice each)
    assert similarity_threshold(vecs, 0.0) == pytest.approx(0.0)
    assert similarity_threshold(vecs, 1.0) == pytest.approx(np.sqrt(0.5), rel=1e-6)


def _prompts(session_ids, prompts):
    lens = [len(p) for p in prompts]
    return Prompts(np.array(session_ids), np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
                   np.concatenate(prompts).astype(np.int64), np.full(len(prompts), -1))


def test_hybrid_recommenders_look_up_component_lists_by_session_id():
    lists = {"a": ComponentLists([7, 5], [[1, 2, 3], [4, 5, 6]], [[0.9, 0.8, 0.1], [0.1, 0.1, 0.1]]),
             "b": ComponentLists([5, 7], [[9, 8, 7], [6, 5, 4]])}
    ens = EmbeddingEnsemble(lists, method="confidence", model_1="a", model_2="b", confidence=0.85).fit(None)
    assert ens.predict(_prompts([5, 7], [[1], [2]]), k=3).tolist() == [[9, 8, 7], [1, 6, 5]]
    train = pd.DataFrame({"session_id": [1, 2, 2, 3], "item_id": [100, 100, 200, 300]})
    seq = LLMSeqSimSequential(lists, method="popularity", model_1="a", model_2="b", quantile=0.5).fit(train)
    # threshold = median of {100: 2/3, 200: 1/3, 300: 1/3} = 1/3: last item 100 popular, 999 not
    assert seq.predict(_prompts([5, 7], [[100], [999]]), k=3).tolist() == [[9, 8, 7], [1, 2, 3]]
    pop = LLMSeqSimPopularity(lists, method="popularity", model_1="a", quantile=0.5).fit(train)
    assert pop.predict(_prompts([7], [[1]]), k=3).tolist() == [[1, 2, 3]]  # 3 items, k 3: nothing to delete


def test_hybrid_errors_name_the_missing_component_and_session():
    lists = {"a": ComponentLists([1], [[1, 2]])}
    with pytest.raises(KeyError, match="'b'"):
        EmbeddingEnsemble(lists, method="rank", model_1="a", model_2="b", rank=1).fit(None)
    ens = EmbeddingEnsemble({**lists, "b": ComponentLists([1], [[3, 4]])}, method="rank", model_1="a",
                            model_2="b", rank=1).fit(None)
    with pytest.raises(KeyError, match="session 2"):
        ens.predict(_prompts([2], [[5]]))
    with pytest.raises(ValueError, match="needs \\['rank'\\]"):
        EmbeddingEnsemble({**lists, "b": lists["a"]}, method="rank", model_1="a", model_2="b").fit(None)
    with pytest.raises(ValueError, match="method must be one of"):
        EmbeddingEnsemble(lists, method="popularity", model_1="a", model_2="b")
    with pytest.raises(TypeError, match="unknown config field.*quantile"):  # each hybrid has only its own fields
        EmbeddingEnsemble(lists, method="rank", model_1="a", model_2="b", rank=1, quantile=0.5)
