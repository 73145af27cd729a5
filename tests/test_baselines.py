"""MostPopular and the SKNN family: hand examples, variants, and the paper's Beauty anchors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rec_utils.evaluation import evaluate_recs
from rec_utils.models import MODELS, build_model, preset_config
from rec_utils.models.base import topk_from_scores, topk_tensor
from rec_utils.models.popular import MostPopular, MostPopularConfig
from rec_utils.models.sknn import SKNN
from rec_utils.split import make_split


def frame(sessions):
    rows = [(s, it, t) for s, items in enumerate(sessions) for t, it in enumerate(items, start=10 * s)]
    return pd.DataFrame(rows, columns=["session_id", "item_id", "timestamp"])


TRAIN = frame([[1, 2, 3], [1, 2, 4], [2, 3, 5], [6, 7], [1, 6], [3, 5]])


def test_most_popular_counts_and_ties():
    m = MostPopular().fit(TRAIN)
    recs, scores = m.predict([[1], [6, 7]], k=4, return_scores=True)
    # counts: 1:3, 2:3, 3:3, 5:2, 6:2 -> ties by smaller id
    assert recs.tolist() == [[1, 2, 3, 5], [1, 2, 3, 5]]
    assert scores[0].tolist() == [3, 3, 3, 2]
    excl = MostPopular(exclude_prompt_items=True).fit(TRAIN).predict([[1, 3]], k=3)
    assert excl.tolist() == [[2, 5, 6]]


def test_sknn_hand_example_dot_similarity():
    m = SKNN(k=2, sample_size=10, similarity="dot").fit(TRAIN)
    recs, scores = m.predict([[1, 2]], k=5, return_scores=True)
    # neighbours sharing items with {1,2}: s0 (2 shared), s1 (2), s2 (1), s4 (1); k=2 keeps s0, s1
    # candidates: 3 (from s0), 4 (from s1), each scored 2; prompt items excluded; the tie goes
    # to the smaller item id
    assert recs[0].tolist() == [3, 4, -1, -1, -1]
    assert scores[0][:2].tolist() == [2, 2]


def test_cosine_and_idf_weighting():
    m = SKNN(k=4, sample_size=10, similarity="cosine", idf_weighting=True).fit(TRAIN)
    recs, scores = m.predict([[6]], k=3, return_scores=True)
    # neighbours of {6}: s3 [6,7] cos 1/sqrt(2), s4 [1,6] cos 1/sqrt(2)
    n, df1, df7 = 6, 3, 1
    want = {7: (1 / np.sqrt(2)) * (1 + np.log(n / df7)), 1: (1 / np.sqrt(2)) * (1 + np.log(n / df1))}
    got = dict(zip(recs[0][:2].tolist(), scores[0][:2].tolist()))
    assert got == pytest.approx(want, rel=1e-5)
    assert recs[0][0] == 7  # rarer item wins through idf


def test_v_sknn_decay_weights_recent_items():
    # prompt [5, 4]: harmonic decay gives item 4 weight 1, item 5 weight 1/2
    train = frame([[4, 8], [5, 9]])
    recs, scores = SKNN(k=2, sample_size=2, similarity="dot", decay="harmonic").fit(train).predict([[5, 4]], k=2, return_scores=True)
    assert recs[0].tolist() == [8, 9] and scores[0].tolist() == pytest.approx([1.0, 0.5])


def test_s_sknn_sequential_weighting():
    train = frame([[4, 8], [5, 9], [7, 3]])
    m = SKNN(k=3, sample_size=3, similarity="dot", sequential_weighting=True).fit(train)
    recs, scores = m.predict([[4, 5, 6, 7]], k=2, return_scores=True)
    # 6 is unknown and dropped (as the reference does): prompt [4, 5, 7], L = 3.
    # neighbour [7, 3] shares 7 at position 3 -> 3/3; [5, 9] shares 5 at 2 -> 2/3; [4, 8] -> 1/3
    assert recs[0].tolist() == [3, 9] and scores[0].tolist() == pytest.approx([1.0, 2 / 3])


def test_sf_sknn_only_followers_of_last_item():
    m = SKNN(k=6, sample_size=6, sequential_filter=True).fit(TRAIN)
    recs = m.predict([[1, 2]], k=5)
    # items that followed 2 somewhere: 3 (s0, s2), 4 (s1)
    assert set(recs[0][recs[0] >= 0]) == {3, 4}


def test_recent_sampling_keeps_latest_sessions():
    m = SKNN(k=1, sample_size=1, sampling="recent", similarity="dot").fit(TRAIN)
    # candidates for [1]: s0, s1, s4 -> the most recent is s4 = [1, 6]
    assert m.predict([[1]], k=1).tolist() == [[6]]


def test_random_sampling_is_seeded():
    a = SKNN(k=1, sample_size=1, seed=3).fit(TRAIN).predict([[1]] * 20, k=2)
    b = SKNN(k=1, sample_size=1, seed=3).fit(TRAIN).predict([[1]] * 20, k=2)
    np.testing.assert_array_equal(a, b)
    assert len({tuple(r) for r in a}) > 1  # different sessions got different samples


def test_unknown_and_repeated_prompt_items():
    m = SKNN(k=2, sample_size=10, similarity="dot").fit(TRAIN)
    a = m.predict([[1, 2, 1, 999]], k=5)
    b = m.predict([[1, 2]], k=5)
    np.testing.assert_array_equal(a, b)
    assert m.predict([[999]], k=3).tolist() == [[-1, -1, -1]]


def test_invalid_configs():
    with pytest.raises(ValueError, match="k <= sample_size"):
        SKNN(k=10, sample_size=5)
    with pytest.raises(ValueError, match="unknown decay"):
        SKNN(decay="cubic")
    with pytest.raises(ValueError, match="unknown model"):
        build_model("ItemKNN")


@pytest.fixture(scope="module")
def beauty_temporal(beauty):
    return make_split(beauty, "temporal")


def test_beauty_most_popular_anchor(beauty_temporal, beauty):
    recs = MostPopular().fit(beauty_temporal.train).predict(beauty_temporal.test, k=20)
    m = evaluate_recs(recs, beauty_temporal)
    # the list is fixed; with the file's ASIN tie order NDCG@10 is 0.0038 (paper, random order: 0.0045)
    file_split = make_split(beauty, "temporal", tie_order="file")
    m_file = evaluate_recs(MostPopular().fit(file_split.train).predict(file_split.test, k=20), file_split)
    assert m_file["ndcg@10"] == pytest.approx(0.00381, abs=2e-5)
    assert 0.0035 < m["ndcg@10"] < 0.0065
    assert m["catalog_coverage@10"] == pytest.approx(10 / 12101)
    assert m["novelty@10"] == pytest.approx(9.187262, abs=1e-5)  # the paper's value, exactly


def test_beauty_v_sknn_anchor(beauty_temporal):
    cfg = preset_config("V-SKNN", "beauty")
    recs = build_model("V-SKNN", **cfg, seed=0).fit(beauty_temporal.train).predict(beauty_temporal.test, k=20)
    m = evaluate_recs(recs, beauty_temporal)
    assert m["ndcg@10"] == pytest.approx(0.0415, rel=0.10)  # paper §9.1: 0.041488
    assert m["catalog_coverage@20"] == pytest.approx(0.889, rel=0.05)


# ----------------------------------------------------------------------------- tie rule of top-k


def reference_topk(scores: np.ndarray, k: int) -> np.ndarray:
    """The rule spelled out: finite scores only, higher score first, then the smaller index."""
    out = np.full((len(scores), k), -1, np.int64)
    for i, row in enumerate(scores):
        keep = sorted((j for j in range(len(row)) if np.isfinite(row[j])), key=lambda j: (-row[j], j))[:k]
        out[i, : len(keep)] = keep
    return out


def tie_matrix(rng, n=200, m=40, levels=4, p_inf=0.2):
    """Scores from a few levels (many ties), some −inf, a few NaN."""
    s = rng.integers(0, levels, size=(n, m)).astype(np.float64)
    s[rng.random((n, m)) < p_inf] = -np.inf
    s[rng.random((n, m)) < 0.02] = np.nan
    return s


def test_topk_ties_straddling_the_k_boundary():
    scores = np.array([
        [3.0, 1, 1, 1, 0],  # the 1s straddle place 2: the smallest index (1) gets in
        [1.0, 2, 2, 0, 2],  # the 2s fill places 1-3 in index order
        [5.0, 5, 5, 5, 5],  # all tied
        [0.0, -np.inf, 7, np.nan, 7],  # −inf and NaN never appear
    ])
    idx, val = topk_from_scores(scores, 3)
    assert idx.tolist() == [[0, 1, 2], [1, 2, 4], [0, 1, 2], [2, 4, 0]]
    assert val[0].tolist() == [3, 1, 1]
    idx, val = topk_from_scores(np.array([[2.0, -np.inf, 2.0], [-np.inf] * 3]), 5)  # k > m: padded
    assert idx.tolist() == [[0, 2, -1, -1, -1], [-1] * 5]
    assert np.isnan(val[0, 2:]).all() and np.isnan(val[1]).all()
    assert topk_from_scores(np.zeros((2, 0)), 2)[0].tolist() == [[-1, -1]] * 2
    assert topk_from_scores(np.array([[1, 3, 3, 2]]), 2)[0].tolist() == [[1, 2]]  # integer scores


@pytest.mark.parametrize("k", [1, 3, 7, 20, 40, 45])
def test_topk_matches_the_rule_on_random_ties(k):
    scores = tie_matrix(np.random.default_rng(k))
    np.testing.assert_array_equal(topk_from_scores(scores, k)[0], reference_topk(scores, k))


def test_topk_does_not_depend_on_the_order_ties_are_processed(monkeypatch):
    """argpartition may return any valid partition; one that visits the columns in another
    order (another machine, another numpy) must give the same lists."""
    scores = tie_matrix(np.random.default_rng(7), levels=3)
    want = topk_from_scores(scores, 10)
    real = np.argpartition
    for seed in range(5):
        perm = np.random.default_rng(seed).permutation(scores.shape[1])

        def shuffled_argpartition(a, kth, axis=-1, perm=perm):
            return perm[real(a[:, perm], kth, axis=axis)]  # a valid partition, other tie order

        monkeypatch.setattr(np, "argpartition", shuffled_argpartition)
        got = topk_from_scores(scores, 10)
        monkeypatch.setattr(np, "argpartition", real)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_topk_tensor_is_the_numpy_twin(monkeypatch):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for trial in range(6):
        scores = tie_matrix(rng, n=150, m=int(rng.integers(5, 60)), levels=int(rng.integers(2, 6)))
        for k in (1, 5, 20, 70):
            want_idx, want_val = topk_from_scores(scores, k)
            for dev in devices:
                idx, val = topk_tensor(torch.tensor(scores, device=dev), k)
                assert idx.dtype == torch.int64 and val.dtype == torch.float32 and idx.shape == (150, k)
                np.testing.assert_array_equal(idx.cpu().numpy(), want_idx)
                np.testing.assert_array_equal(val.cpu().numpy(), want_val)  # NaN padding equal too
    # torch.topk's order among ties is unspecified: a column-permuted topk must not matter
    scores = torch.tensor(tie_matrix(np.random.default_rng(9), levels=2))
    want = topk_tensor(scores, 10)[0]
    real = torch.topk
    perm = torch.randperm(scores.shape[1], generator=torch.Generator().manual_seed(0))

    def shuffled_topk(a, kk, dim=1):
        v, i = real(a[:, perm], kk, dim=dim)
        return v, perm[i]

    monkeypatch.setattr(torch, "topk", shuffled_topk)
    assert torch.equal(topk_tensor(scores, 10)[0], want)
    monkeypatch.setattr(torch, "topk", real)
    assert topk_tensor(torch.zeros((2, 0)), 3)[0].tolist() == [[-1] * 3] * 2


def test_sknn_item_score_ties_go_to_the_smaller_id():
    # prompt [1]: neighbours s0 [1,2,3], s1 [1,2,4], s4 [1,6] with dot similarity 1 each;
    # 2 scores 2, then 3, 4 and 6 tie at 1: the k=2 cut takes 3, the smallest id
    m = SKNN(k=3, sample_size=10, similarity="dot").fit(TRAIN)
    recs, scores = m.predict([[1]], k=4, return_scores=True)
    assert recs.tolist() == [[2, 3, 4, 6]] and scores[0].tolist() == [2, 1, 1, 1]
    assert m.predict([[1]], k=2).tolist() == [[2, 3]]


# ----------------------------------------------------------------------------- one constructor convention


def test_most_popular_is_built_from_its_config_and_ignores_seed():
    assert MostPopular(seed=5).config == MostPopularConfig(exclude_prompt_items=False, seed=5)
    prompts = [[1], [6, 7], [3, 2]]
    base = MostPopular().fit(TRAIN).predict(prompts, k=4)
    for seed in (0, 1, 123):
        np.testing.assert_array_equal(build_model("MostPopular", seed=seed).fit(TRAIN).predict(prompts, k=4), base)
    excl = build_model("MostPopular", **{"exclude_prompt_items": True, "seed": 2}).fit(TRAIN)
    assert excl.predict([[1, 3]], k=3).tolist() == [[2, 5, 6]]
    with pytest.raises(TypeError, match="unexpected keyword argument 'k'"):
        MostPopular(k=3)


def test_every_model_is_built_the_same_way_with_a_seed():
    for name in MODELS:
        cfg = preset_config(name, "beauty")
        m = build_model(name, **{**cfg, "seed": 7})
        assert m.get_config()["seed"] == 7, name
