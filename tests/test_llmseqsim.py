"""LLMSeqSim and SKNNEmb on hand-made embeddings, checked against brute force; their shared
EmbeddingSpec (flat keys, get_config); results unchanged by the rec_utils.text refactor and by
the row order of the embeddings (LLMSeqSim, SKNNEmb, every reduction, the LLM2 init path)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rec_utils.decay import decay_weights
from rec_utils.text import EmbeddingError, ItemEmbeddings
from rec_utils.models import build_model
from rec_utils.models.llmseqsim import LLMSeqSim
from rec_utils.models.sknn import SKNN
from rec_utils.models.sknn_emb import SKNNEmb

sys.path.insert(0, str(Path(__file__).parent))


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


# ----------------------------------------------------------------------------- refactor: same results


def test_same_predictions_as_before_the_refactor():
    """tests/data/text_golden.npz was recorded with the code before rec_utils.text (flat config
    keys, device in the config); checked bit-identical when it was written. Since then equal
    scores are ranked by the smaller item id (base.TIE_RULE; torch.topk's order among ties was
    arbitrary), so lists may differ only inside groups of equal scores: the scores are the same,
    items scored above the k-th score are the same, and ties are in id order."""
    import text_golden_cases

    want = np.load(Path(__file__).parent / "data" / "text_golden.npz")
    got = text_golden_cases.predictions()
    assert sorted(got) == sorted(want.files)
    for key in want.files:
        if not key.endswith("_recs"):
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)
            continue
        scores = want.get(key.replace("_recs", "_scores"))
        if scores is None:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
            continue
        for row, (g, w, sc) in enumerate(zip(got[key], want[key], scores)):
            kth = np.nanmin(sc)
            above = sc > kth + 1e-6
            assert set(g[above]) == set(w[above]), (key, row)
            gs = got[key.replace("_recs", "_scores")][row]
            for v in np.unique(gs[np.isfinite(gs)]):
                ids = g[np.isclose(gs, v, rtol=0, atol=1e-7)]
                assert (np.diff(ids) > 0).all(), (key, row, "ties in id order")


# ----------------------------------------------------------------------------- embeddings aligned by id


def test_unsorted_embeddings_are_aligned_by_id():
    emb = ItemEmbeddings(np.array([3, 1, 2]), np.array([[1, 0], [0, 1], [0.6, 0.8]], np.float32),
                         np.zeros(3, bool), "test", "hand")
    recs, scores = LLMSeqSim(embeddings=emb, device="cpu").fit().predict([[1]], k=2, return_scores=True)
    assert recs.tolist() == [[2, 3]]  # cos(1, 2) = 0.8 > cos(1, 3) = 0; was [[3, 2]]
    np.testing.assert_allclose(scores, [[0.8, 0.0]], atol=1e-6)
    np.testing.assert_array_equal(emb.lookup([1]), [[0, 1]])
    train = pd.DataFrame({"session_id": [0, 0, 1, 1], "item_id": [1, 2, 1, 3], "timestamp": [0, 1, 2, 3]})
    m = SKNNEmb(embeddings=emb, k=2, sample_size=2, similarity="dot").fit(train)  # raised "no embedding"
    assert m.predict([[1]], k=2).tolist() == [[2, 3]]


# ----------------------------------------------------------------------------- one embedding spec


FLAT = {"provider": "file", "embedding_model": "m", "embedding_path": "/x/vectors.npz", "text_clean": "unescape",
        "reduction": "pca", "reduced_dim": 16, "whiten": True, "normalize": False, "lda_labels": None}
SPEC = {"provider": "file", "model": "m", "path": "/x/vectors.npz", "text_clean": "unescape", "reduction": "pca",
        "reduced_dim": 16, "whiten": True, "normalize": False, "lda_labels": None}


@pytest.mark.parametrize("cls", [LLMSeqSim, SKNNEmb])
def test_flat_keys_map_into_the_embedding_spec(cls):
    from rec_utils.text import FLAT_KEYS, EmbeddingSpec

    assert sorted(FLAT) == sorted(FLAT_KEYS)
    flat = cls(**FLAT, similarity="dot", device="cpu")  # a stored config: flat keys and a device
    nested = cls(embedding=SPEC, similarity="dot")
    spec = cls(embedding=EmbeddingSpec(**SPEC), similarity="dot")
    mixed = cls(embedding={k: SPEC[k] for k in ("provider", "model", "path")}, text_clean="unescape",
                reduction="pca", reduced_dim=16, whiten=True, normalize=False, similarity="dot")
    cfg = flat.get_config()
    assert cfg == nested.get_config() == spec.get_config() == mixed.get_config()
    assert cfg["embedding"] == SPEC and "device" not in cfg and "device" not in cfg["embedding"]
    assert not set(FLAT) & set(cfg), "flat keys live only inside embedding"
    assert flat.device == "cpu" and nested.device == "auto"
    assert cls(**cfg).get_config() == cfg  # get_config round-trips
    # one form: the same fields as a dict or an EmbeddingSpec give the same spec (the model's
    # defaults fill what both leave open: here L2-normalised rows, no reduction)
    for part in ({}, {"reduction": "pca", "reduced_dim": 16}):
        a, b = cls(embedding=dict(part)).config.embedding, cls(embedding=EmbeddingSpec(**part)).config.embedding
        assert a == b and a.normalize is True and a.reduction == part.get("reduction")
    with pytest.raises(ValueError, match=r"\['reduction'\] given both"):
        cls(reduction="pca", reduced_dim=4, embedding={"reduction": "lda"})
    with pytest.raises(ValueError, match="given both"):
        cls(embedding=EmbeddingSpec(), embedding_model="m")
    with pytest.raises(TypeError, match=r"unknown config key\(s\) \['colour', 'embedding_dim'\]"):
        cls(colour="red", embedding_dim=3)
    with pytest.raises(TypeError, match=r"unknown EmbeddingSpec field\(s\) \['embedding_model'\]"):
        cls(embedding={"embedding_model": "m"})
    with pytest.raises(ValueError, match="provider must be one of"):
        cls(provider="palm")


def test_get_config_example():
    cfg = LLMSeqSim(aggregation="mean", decay="harmonic", reduction="pca", reduced_dim=128).get_config()
    assert cfg == {
        "embedding": {"provider": "sentence-transformers", "model": "sentence-transformers/all-MiniLM-L6-v2",
                      "path": None, "text_clean": "reference", "reduction": "pca", "reduced_dim": 128,
                      "whiten": False, "normalize": True, "lda_labels": None},
        "aggregation": "mean", "decay": "harmonic", "similarity": "cosine", "dedup_prompt": False,
        "filter_prompt_items": True, "batch_size": 1024, "seed": 0, "tie_break": "id",
    }
    sk = SKNNEmb(k=50, sample_size=200, reduction="pca", reduced_dim=64).get_config()
    assert sk["embedding"]["reduced_dim"] == 64 and sk["k"] == 50 and "device" not in sk


def test_spec_item_vectors_fit_on_and_labels():
    from rec_utils.text import EmbeddingSpec

    emb = make_emb(n=60, dim=12)
    items = pd.DataFrame({"item_id": emb.item_ids, "class": np.arange(60) % 4})
    spec = EmbeddingSpec(reduction="pca", reduced_dim=4)
    assert spec.item_vectors(embeddings=emb).vectors.shape == (60, 4)
    sub = spec.item_vectors(embeddings=emb, fit_on=[130, 100, 101, 100] + list(range(110, 125)))
    assert sub.item_ids.tolist() == [100, 101] + list(range(110, 125)) + [130] and sub.dim == 4
    raw = EmbeddingSpec().item_vectors(embeddings=emb, fit_on=[101, 100])
    np.testing.assert_array_equal(raw.vectors, emb.vectors[:2])  # no reduction: the raw vectors
    lda = EmbeddingSpec(reduction="lda", reduced_dim=10, lda_labels="class").item_vectors(items, embeddings=emb)
    assert lda.dim == 3
    with pytest.raises(EmbeddingError, match="no embedding"):
        spec.item_vectors(embeddings=emb, fit_on=[100, 5])
    with pytest.raises(ValueError, match="no item texts"):
        spec.item_vectors()


# ----------------------------------------------------------------------------- property: row order is irrelevant


@pytest.fixture(scope="module")
def beauty_300():
    """~300 popular Beauty items embedded with the local MiniLM, and a small temporal split."""
    from rec_utils.data import Dataset, item_texts, load_dataset
    from rec_utils.split import make_split
    from rec_utils.text import embed_items

    d = load_dataset("beauty")
    top = d.interactions["item_id"].value_counts().index[:300].to_numpy()
    items = d.items[d.items["item_id"].isin(top)].reset_index(drop=True)
    inter = d.interactions[d.interactions["item_id"].isin(top)].reset_index(drop=True)
    emb = embed_items(item_texts(items), device="cpu", show_progress=False)
    split = make_split(Dataset("beauty-300", inter, items), tie_order="file")
    return emb, items, split


def _shuffled(emb, seed=0):
    perm = np.random.default_rng(seed).permutation(len(emb))
    assert (perm != np.arange(len(emb))).any()
    return perm, ItemEmbeddings(emb.item_ids[perm], emb.vectors[perm], emb.missing_text[perm], emb.provider,
                                emb.model, emb.texts.iloc[perm], dict(emb.info))


def test_every_consumer_ignores_row_order(beauty_300):
    from rec_utils.text import EmbeddingSpec, reduction

    emb, items, split = beauty_300
    perm, shuf = _shuffled(emb)
    np.testing.assert_array_equal(shuf.item_ids, emb.item_ids)
    np.testing.assert_array_equal(shuf.vectors, emb.vectors)
    assert shuf.texts.equals(emb.texts) and (shuf.missing_text == emb.missing_text).all()
    test = split.test
    for cfg in ({}, {"aggregation": "mean", "decay": "harmonic", "similarity": "dot"},
                {"aggregation": "mean", "reduction": "pca", "reduced_dim": 32, "similarity": "euclidean"}):
        a = LLMSeqSim(embeddings=emb, device="cpu", **cfg).fit(items=items).predict(test, k=10, return_scores=True)
        reduction._CACHE.clear()
        b = LLMSeqSim(embeddings=shuf, device="cpu", **cfg).fit(items=items).predict(test, k=10, return_scores=True)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    sk = {"k": 20, "sample_size": 100, "prompt_aggregation": "mean", "training_aggregation": "mean",
          "decay": "harmonic", "reduction": "pca", "reduced_dim": 16}
    a = SKNNEmb(embeddings=emb, device="cpu", **sk).fit(split.train, items).predict(test, k=10, return_scores=True)
    reduction._CACHE.clear()
    b = SKNNEmb(embeddings=shuf, device="cpu", **sk).fit(split.train, items).predict(test, k=10, return_scores=True)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    fit_on = np.unique(split.train["item_id"])
    for spec in (EmbeddingSpec(reduction="pca", reduced_dim=16), EmbeddingSpec(reduction="pca", reduced_dim=16, whiten=True),
                 EmbeddingSpec(reduction="lda", reduced_dim=8, lda_labels="kmeans"),
                 EmbeddingSpec(reduction="random", reduced_dim=16), EmbeddingSpec(reduction="variance", reduced_dim=16),
                 EmbeddingSpec(reduction="autoencoder", reduced_dim=8)):
        reduction._CACHE.clear()
        va = spec.item_vectors(items, fit_on=fit_on, embeddings=emb, device="cpu")
        reduction._CACHE.clear()
        vb = spec.item_vectors(items, fit_on=fit_on[::-1], embeddings=shuf, device="cpu")
        np.testing.assert_array_equal(va.item_ids, vb.item_ids)
        np.testing.assert_array_equal(va.lookup(fit_on), vb.lookup(fit_on), err_msg=spec.reduction)


def test_llm2_init_ignores_row_order(beauty_300):
    """The LLM2Sequential path: a SASRec item table initialised from (reduced) text vectors."""
    from rec_utils.text import EmbeddingSpec

    emb, items, split = beauty_300
    vecs = EmbeddingSpec(reduction="pca", reduced_dim=16, normalize=False).item_vectors(items, embeddings=emb)
    perm, shuf = _shuffled(vecs, seed=1)
    kw = dict(epochs=0, emb_dim=16, num_layers=1, num_heads=2, device="cpu", progress=False, checkpoint_dir=None)
    a = build_model("SASRec", init_item_embeddings=vecs.vectors, init_item_ids=vecs.item_ids, **kw).fit(split.train)
    b = build_model("SASRec", init_item_embeddings=vecs.vectors[perm], init_item_ids=vecs.item_ids[perm],
                    **kw).fit(split.train)
    c = build_model("SASRec", init_item_embeddings=shuf.vectors, init_item_ids=shuf.item_ids, **kw).fit(split.train)
    np.testing.assert_array_equal(a.item_embeddings(), b.item_embeddings())
    np.testing.assert_array_equal(a.item_embeddings(), c.item_embeddings())
    np.testing.assert_array_equal(a.item_embeddings(), vecs.lookup(a.index_.ids))
