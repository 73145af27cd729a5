"""LLMSeqSim and SKNNEmb on hand-made embeddings, checked against brute force."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rec_utils.decay import decay_weights
from rec_utils.embeddings import ItemEmbeddings
from rec_utils.models import build_model
from rec_utils.models.llmseqsim import LLMSeqSim
from rec_utils.models.sknn import SKNN
from rec_utils.models.sknn_emb import SKNNEmb


def make_emb(n=40, dim=6, seed=0, zero=()):
    rng = np.random.default_rng(seed)
    V = rng.standard_normal((n, dim)).astype(np.float32)
    missing = np.zeros(n, bool)
    for z in zero:
        V[z] = 0
        missing[z] = True
    ids = np.arange(100, 100 + n)  # dataset ids differ from indices
    return ItemEmbeddings(ids, V, missing, "test", "random")


def brute(emb, prompt, aggregation, decay, similarity, k):
    E = emb.vectors.astype(np.float64)
    idx = [int(np.flatnonzero(emb.item_ids == i)[0]) for i in prompt]
    if aggregation == "last":
        s = E[idx[-1]]
    else:
        L = len(idx)
        w = decay_weights(decay, np.arange(L, 0, -1), np.full(L, L))
        s = (w[:, None] * E[idx]).sum(0) / w.sum()
    if similarity == "dot":
        sc = E @ s
    elif similarity == "cosine":
        sc = (E @ s) / np.maximum(np.linalg.norm(E, axis=1) * np.linalg.norm(s), 1e-12)
    else:
        sc = 1 / (1 + np.linalg.norm(E - s, axis=1))
    sc[idx] = -np.inf
    order = np.argsort(-sc, kind="stable")[:k]
    return emb.item_ids[order], sc[order]


PROMPTS = [[100, 105, 110], [120], [101, 101, 133, 102], [139, 100]]


@pytest.mark.parametrize("aggregation,decay", [("last", None), ("mean", None), ("mean", "harmonic"),
                                               ("mean", "scaling_quadratic"), ("mean", "constant_linear"),
                                               ("mean", "squared_harmonic"), ("mean", "log")])
@pytest.mark.parametrize("similarity", ["cosine", "dot", "euclidean"])
def test_matches_brute_force(aggregation, decay, similarity):
    emb = make_emb()
    m = LLMSeqSim(embeddings=emb, aggregation=aggregation, decay=decay, similarity=similarity, device="cpu").fit()
    recs, scores = m.predict(PROMPTS, k=10, return_scores=True)
    assert recs.shape == (4, 10) and scores.dtype == np.float32
    for i, p in enumerate(PROMPTS):
        ids, sc = brute(emb, p, aggregation, decay, similarity, 10)
        np.testing.assert_allclose(scores[i], sc, rtol=1e-4, atol=1e-5)
        assert recs[i].tolist() == ids.tolist()
        assert not set(p) & set(recs[i].tolist()), "prompt items are excluded"
        assert (np.diff(scores[i]) <= 1e-7).all()


def test_edge_cases_and_padding():
    emb = make_emb(n=5, zero=(4,))
    m = LLMSeqSim(embeddings=emb, similarity="cosine").fit()
    recs, scores = m.predict([[100], [999], []], k=8, return_scores=True)
    assert recs[0, :4].tolist() != [-1] * 4 and (recs[0, 4:] == -1).all()  # 4 candidates, padded
    assert np.isnan(scores[0, 4:]).all()
    assert (recs[1] == -1).all() and (recs[2] == -1).all()  # unknown / empty prompt: nothing
    assert 0.0 in scores[0, :4]  # the item without text has cosine 0
    assert build_model("LLMSeqSim", embeddings=emb).fit().predict([[101]], k=2).shape == (1, 2)
    with pytest.raises(ValueError, match="aggregation"):
        LLMSeqSim(aggregation="max")
    with pytest.raises(ValueError, match="unknown decay"):
        LLMSeqSim(aggregation="mean", decay="exp")
    with pytest.raises(ValueError, match="only applies"):
        LLMSeqSim(aggregation="last", decay="harmonic")


def test_reduction_inside_fit_and_filter_off():
    emb = make_emb(n=60, dim=12)
    m = LLMSeqSim(embeddings=emb, reduction="pca", reduced_dim=4, similarity="dot").fit()
    assert m.vectors_.shape == (60, 4)
    np.testing.assert_allclose(np.linalg.norm(m.vectors_, axis=1), 1, atol=1e-5)
    m2 = LLMSeqSim(embeddings=emb, filter_prompt_items=False, similarity="cosine").fit()
    assert m2.predict([[100]], k=1)[0, 0] == 100  # an item is most similar to itself


def _train(seed=0, n_sessions=60, n_items=25):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_sessions):
        L = rng.integers(2, 7)
        for t, it in enumerate(rng.choice(n_items, L, replace=False)):
            rows.append((s, 100 + int(it), s * 100 + t))
    return pd.DataFrame(rows, columns=["session_id", "item_id", "timestamp"])


def test_sknn_emb_matches_brute_force():
    train = _train()
    emb = make_emb(n=25, dim=5)
    prompts = [[100, 103, 107], [110], [115, 100, 115]]
    m = SKNNEmb(embeddings=emb, k=5, sample_size=1000, sampling="recent", similarity="cosine",
                prompt_aggregation="mean", training_aggregation="mean", decay="harmonic").fit(train)
    recs, scores = m.predict(prompts, k=5, return_scores=True)
    E = {int(i): v.astype(np.float64) for i, v in zip(emb.item_ids, emb.vectors)}
    sessions = {s: g["item_id"].tolist() for s, g in train.groupby("session_id")}
    S = {s: np.mean([E[i] for i in items], axis=0) for s, items in sessions.items()}
    for r, p in enumerate(prompts):
        p = list(dict.fromkeys(p))
        w = 1.0 / np.arange(len(p), 0, -1)
        pv = (w[:, None] * np.array([E[i] for i in p])).sum(0) / w.sum()
        cand = [s for s, items in sessions.items() if set(items) & set(p)]
        sims = {s: pv @ S[s] / (np.linalg.norm(pv) * np.linalg.norm(S[s])) for s in cand}
        top = sorted(cand, key=lambda s: -sims[s])[:5]
        score = {}
        for s in top:
            for i in sessions[s]:
                if i not in p:
                    score[i] = score.get(i, 0.0) + sims[s]
        best = sorted(score.items(), key=lambda kv: -kv[1])[:5]
        np.testing.assert_allclose(scores[r, :len(best)], [v for _, v in best], rtol=1e-4)
        for j, item in enumerate(recs[r, :len(best)]):
            assert score[int(item)] == pytest.approx(scores[r, j], rel=1e-4)


def test_sknn_emb_reduction_fits_on_train_items_and_registry():
    train = _train(1, n_items=20)
    emb = make_emb(n=40, dim=8)  # catalogue larger than the train items
    m = build_model("SKNNEmb", embeddings=emb, k=10, sample_size=50, reduction="pca", reduced_dim=3,
                    similarity="dot", prompt_aggregation="last", training_aggregation="last").fit(train)
    assert m.name == "SKNNEmb" and m.item_vectors_.shape == (len(m.index_), 3) and len(m.index_) <= 20
    recs = m.predict([[100, 101], [105]], k=5)
    assert recs.shape == (2, 5)
    assert SKNN(k=10, sample_size=50).fit(train).name == "SKNN"


def test_lda_with_item_classes_and_kmeans():
    emb = make_emb(n=60, dim=12)
    items = pd.DataFrame({"item_id": emb.item_ids, "title": "x", "class": np.arange(60) % 4})
    m = LLMSeqSim(embeddings=emb, reduction="lda", reduced_dim=10, lda_labels="class").fit(items=items)
    assert m.vectors_.shape == (60, 3)  # clipped to 4 classes - 1
    with pytest.raises(ValueError, match="no such column"):
        LLMSeqSim(embeddings=emb, reduction="lda", reduced_dim=3, lda_labels="genre").fit(items=items)
    with pytest.raises(ValueError, match="labels='kmeans'"):
        LLMSeqSim(embeddings=emb, reduction="lda", reduced_dim=3).fit()
    m = LLMSeqSim(embeddings=emb, reduction="lda", reduced_dim=5, lda_labels="kmeans").fit()
    assert m.vectors_.shape == (60, 5)


def test_summary_all_digit_ids(tmp_path):
    """Hex ids that happen to be all digits must survive a CSV round trip (they are read as str;
    the grid CSV's side is in tests/test_tuning.py)."""
    from rec_utils import results

    (tmp_path / "summary.csv").write_text("split_fingerprint,config_id,variant,seeds\n409566827248,0123456789,,0\n")
    s = results.read_summary(tmp_path)
    assert s["split_fingerprint"].iloc[0] == "409566827248" and s["config_id"].iloc[0] == "0123456789"
