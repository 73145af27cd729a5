"""The indexed SKNN / V-SKNN (VMIS-kNN index) against the faithful model: identical lists and
scores (ties included) where the cap does not bind; the cap really bounds the candidates."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rec_utils.models import build_model
from rec_utils.models.base import topk_from_scores
from rec_utils.models.sknn import SKNN
from rec_utils.models.sknn_index import IndexedSKNN, sparse_topk


def zipf_sessions(n_sessions=600, n_items=150, max_len=8, seed=0, day_ties=True) -> pd.DataFrame:
    """Sessions with Zipf-like item popularity; timestamps in coarse steps so that sessions tie
    on their last time (recency ties) and item scores tie often (few items, short sessions)."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_items + 1)
    p /= p.sum()
    rows = []
    for s in range(n_sessions):
        L = int(rng.integers(1, max_len + 1))
        items = rng.choice(n_items, size=L, p=p)
        t0 = (s // 3) * 10 if day_ties else s * 10
        rows += [(s, int(i), t0 + j) for j, i in enumerate(items)]
    return pd.DataFrame(rows, columns=["session_id", "item_id", "timestamp"])


@pytest.fixture(scope="module")
def data():
    df = zipf_sessions()
    train = df[df.session_id < 500]
    prompts = [g.item_id.tolist() for _, g in df[df.session_id >= 500].groupby("session_id")]
    prompts += [[149], [1, 1, 1], [10_000], []]  # a rare item, repeats, an unknown item, empty
    return train, prompts


CONFIGS = [
    {"decay": "harmonic", "similarity": "dot", "idf_weighting": True},  # V-SKNN as in the Beauty preset
    {"decay": "harmonic", "similarity": "cosine"},
    {"decay": "linear", "similarity": "dot", "last_n_items": 3},
    {"similarity": "cosine", "idf_weighting": True},  # SKNN
]


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("k,sample_size", [(5, 20), (30, 60), (50, 500)])
def test_recent_sampling_equals_faithful_when_cap_covers_the_sample(data, cfg, k, sample_size):
    train, prompts = data
    common = dict(cfg, k=k, sample_size=sample_size, sampling="recent")
    faithful = SKNN(**common).fit(train)
    indexed = IndexedSKNN(**common, index_cap=sample_size).fit(train)
    assert indexed.max_df_ > sample_size or sample_size == 500  # the cap binds on popular items
    r1, s1 = faithful.predict(prompts, k=20, return_scores=True)
    r2, s2 = indexed.predict(prompts, k=20, return_scores=True)
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(s1, s2)


@pytest.mark.parametrize("cfg", CONFIGS[:2])
def test_random_sampling_equals_faithful_when_nothing_is_cut(data, cfg):
    train, prompts = data
    n_sessions = train.session_id.nunique()
    common = dict(cfg, k=40, sample_size=n_sessions, sampling="random", seed=3)
    indexed = IndexedSKNN(**common, index_cap=n_sessions).fit(train)
    assert indexed.max_df_ <= n_sessions
    r1, s1 = SKNN(**common).fit(train).predict(prompts, k=20, return_scores=True)
    r2, s2 = indexed.predict(prompts, k=20, return_scores=True)
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(s1, s2)


def test_equal_item_scores_go_to_the_smaller_id(data):
    train, _ = data
    # every neighbour of [0] contains item 0; equal scores are common at k=1 with dot similarity
    m = IndexedSKNN(k=1, sample_size=5, sampling="recent", similarity="dot", index_cap=5).fit(train)
    recs, scores = m.predict([[0]] * 3, k=5, return_scores=True)
    for r, s in zip(recs, scores):
        ok = r >= 0
        pairs = list(zip(-s[ok], r[ok]))
        assert pairs == sorted(pairs)


def test_the_cap_bounds_the_candidates(data):
    train, _ = data
    m = IndexedSKNN(k=2, sample_size=10, sampling="recent", index_cap=3).fit(train)
    assert np.diff(m.J_.indptr).max() == 3
    # each item's kept sessions are its 3 most recent ones
    item = 0
    col = m.index_.to_index(np.array([item]))[0]
    kept = set(m.by_rank_[m.J_.indices[m.J_.indptr[col]:m.J_.indptr[col + 1]]])
    has = np.flatnonzero(m.T_[:, col].toarray().ravel())
    newest = set(has[np.argsort(-m.recency_[has])][:3])
    assert kept == newest


def test_sparse_topk_is_the_dense_rule():
    rng = np.random.default_rng(0)
    dense = rng.integers(0, 4, size=(50, 30)).astype(np.float64)
    dense[dense == 0] = -np.inf  # absent entries
    r, c = np.nonzero(np.isfinite(dense))
    idx, val = sparse_topk(r, c, dense[r, c], 50, 7)
    ref_idx, ref_val = topk_from_scores(dense, 7)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(val, ref_val)


def test_build_model_chooses_the_index_and_rejects_what_it_cannot_do():
    assert isinstance(build_model("V-SKNN", index_cap=100), IndexedSKNN)
    assert type(build_model("V-SKNN")) is SKNN
    assert build_model("V-SKNN", index_cap=100).name == "V-SKNN"
    with pytest.raises(ValueError, match="sequential_weighting"):
        build_model("S-SKNN", index_cap=100)
    with pytest.raises(ValueError, match="index_cap >= 1"):
        IndexedSKNN(index_cap=0)
    with pytest.raises(ValueError, match="indexed implementation"):
        SKNN(index_cap=10)


@pytest.mark.parametrize("cls", [SKNN, IndexedSKNN])
def test_equal_similarities_go_to_the_more_recent_train_session(cls):
    # three train sessions equally similar to the prompt [0]; k=1 keeps the most recent, session 1
    train = pd.DataFrame({"session_id": [0, 0, 1, 1, 2, 2], "item_id": [0, 1, 0, 3, 0, 2],
                          "timestamp": [0, 1, 50, 51, 10, 11]})
    extra = {"index_cap": 3} if cls is IndexedSKNN else {}
    recs = cls(k=1, sample_size=3, sampling="recent", similarity="dot", **extra).fit(train).predict([[0]], k=1)
    assert recs.tolist() == [[3]]
