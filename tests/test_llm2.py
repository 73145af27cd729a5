"""LLM2Sequential (rec_utils.models.llm2) on a tiny synthetic catalogue with hand-made vectors."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from rec_utils.models import (FAMILIES, LLM2_BASES, LLM2BERT4Rec, LLM2GRU4Rec, LLM2SASRec, MODELS, build_model,
                              model_family, preset_config)
from rec_utils.models.llm2 import BASE_INIT_STD, like_for_like
from rec_utils.models.neural.layers import glorot_
from rec_utils.setting import Setting
from rec_utils.split import make_split
from rec_utils.text import EmbeddingSpec, ItemEmbeddings

import variants_tiny as V  # tests/ is on the path (conftest.py)

torch.set_num_threads(2)
N_ITEMS, N_EXTRA, RAW_DIM = 30, 5, 24  # train items 100..129, catalogue-only items 130..134
TINY = {k: v for k, v in V.TINY.items() if k.startswith("LLM2")}


def sessions(n=150, seed=0):
    return V.sessions(n, seed, n_items=N_ITEMS, max_length=7)


TRAIN = sessions()
TRAIN_IDS = np.unique(TRAIN["item_id"])


def fake_embeddings(seed=0, dim=RAW_DIM) -> ItemEmbeddings:
    ids = np.arange(100, 100 + N_ITEMS + N_EXTRA)
    rng = np.random.default_rng(seed)
    return ItemEmbeddings(ids[::-1].copy(), rng.standard_normal((len(ids), dim)).astype(np.float32))  # any row order


EMB = fake_embeddings()


def tiny(name, **kw):
    kw = {**TINY[name], "epochs": 0, **kw}
    return build_model(name, embeddings=kw.pop("embeddings", EMB), progress=False, device="cpu", **kw)


def reduced(spec=None, ids=TRAIN_IDS, emb=EMB, seed=0, **fields):
    """The reduced vectors of ``ids`` as the spec computes them (fitted on every item of ``emb``)."""
    spec = spec or EmbeddingSpec(**{"reduction": "pca", "reduced_dim": 8, "normalize": False, **fields})
    return spec.item_vectors(embeddings=emb, seed=seed).subset(ids).vectors


def table(m):
    return m.item_embeddings()


# ------------------------------------------------------------------ config
def test_config_defaults_and_flat_keys():
    m = LLM2SASRec(emb_dim=16)
    e = m.config.embedding
    assert (e.reduction, e.reduced_dim, e.normalize) == ("pca", 16, False)
    assert m.config.init == "llm" and m.config.init_scale == "as_reduced" and not m.config.freeze
    assert LLM2SASRec().config.embedding.reduced_dim == 320  # SASRec's default emb_dim
    m = LLM2GRU4Rec(emb_dim=12, reduction="random", embedding_model="m", provider="sentence-transformers")
    assert (m.config.embedding.reduction, m.config.embedding.model, m.config.embedding.reduced_dim) == ("random", "m", 12)
    m = LLM2BERT4Rec(emb_dim=12, embedding={"reduction": "lda", "lda_labels": "kmeans"}, text_clean="unescape")
    assert (m.config.embedding.reduction, m.config.embedding.text_clean, m.config.embedding.normalize) == \
        ("lda", "unescape", False)
    # one form: a dict and an EmbeddingSpec of the same fields are the same spec (the LLM2
    # defaults fill what both leave to the model: normalize=False, PCA to emb_dim)
    for fields_ in ({}, {"reduction": "pca", "reduced_dim": 12}, {"model": "x", "normalize": True},
                    {"reduction": "random"}):
        from_dict = LLM2SASRec(emb_dim=12, embedding=dict(fields_)).config.embedding
        assert LLM2SASRec(emb_dim=12, embedding=EmbeddingSpec(**fields_)).config.embedding == from_dict, fields_
    assert LLM2SASRec(emb_dim=12, embedding=EmbeddingSpec()).config.embedding.normalize is False
    assert LLM2SASRec(emb_dim=12, embedding={"normalize": True}).config.embedding.normalize is True
    # a stored resolved config (embedding as a dict of every field) rebuilds the same config
    for model in (m, LLM2SASRec(emb_dim=12, init="permuted", freeze=True)):
        assert type(model)(**model.get_config()).config == model.config


def test_config_errors():
    with pytest.raises(ValueError, match="reduction's size is the model's emb_dim"):
        LLM2SASRec(emb_dim=16, reduced_dim=8)
    with pytest.raises(ValueError, match="both flat and inside"):
        LLM2SASRec(embedding={"reduction": "pca"}, reduction="random")
    with pytest.raises(ValueError, match="both flat and inside"):
        LLM2SASRec(embedding=EmbeddingSpec(reduction="pca", reduced_dim=320), embedding_model="x")
    with pytest.raises(TypeError, match="unknown config fields"):
        LLM2SASRec(colour="red")
    with pytest.raises(ValueError, match="init must be one of"):
        LLM2SASRec(init="semantic")
    with pytest.raises(ValueError, match="init_scale must be one of"):
        LLM2SASRec(init_scale="unit")
    with pytest.raises(ValueError, match="give one of them"):
        LLM2SASRec(freeze=True, freeze_epochs=2)
    with pytest.raises(TypeError, match="init table comes from"):
        LLM2SASRec(init_item_embeddings=np.zeros((3, 320)))


def test_registry_family_and_presets():
    assert set(LLM2_BASES) <= set(MODELS) and set(LLM2_BASES) <= set(FAMILIES["neural"])
    assert all(model_family(name) == "neural" for name in LLM2_BASES)
    for preset in ("beauty", "beauty-loo"):  # like-for-like: the base's config + PCA + pad_dims
        for llm2, base in LLM2_BASES.items():
            cfg = preset_config(llm2, preset)
            assert cfg == like_for_like(preset_config(base, preset)) == {**preset_config(base, preset),
                                                                          "reduction": "pca", "pad_dims": True}
            m = build_model(llm2, **cfg)
            assert m.config.embedding.reduced_dim == m.config.emb_dim == preset_config(base, preset)["emb_dim"]
    rec23 = preset_config("LLM2BERT4Rec", "beauty-recsys23")  # §7 [OM23]
    assert rec23 == {"learning_rate": 0.0001, "weight_decay": 0.002, "clipnorm": 5.0, "batch_size": 256,
                     "emb_dim": 208, "drop_rate": 0.0, "num_layers": 3, "num_heads": 3, "mask_prob": 0.5,
                     "reduction": "pca"}
    ext = {m: preset_config(m, "beauty-extended") for m in LLM2_BASES}  # §7 [OM]
    assert ext["LLM2BERT4Rec"]["reduction"] == "lda" and ext["LLM2BERT4Rec"]["lda_labels"] == "kmeans"
    assert (ext["LLM2SASRec"]["emb_dim"], ext["LLM2SASRec"]["learning_rate"], ext["LLM2SASRec"]["clipnorm"]) == \
        (448, 0.0001, 43.0)
    assert (ext["LLM2GRU4Rec"]["reduction"], ext["LLM2GRU4Rec"]["hidden_dim"]) == ("random", 496)
    for preset in ("beauty-extended", "steam-extended", "dh-extended", "beauty-recsys23"):
        for name in LLM2_BASES:
            if preset_config(name, preset):
                assert build_model(name, **preset_config(name, preset)).config.embedding.reduces


def test_the_run_key_changes_with_the_embedder():
    a = Setting(model="LLM2SASRec", dataset="beauty", config={**preset_config("LLM2SASRec", "beauty"),
                                                               "embedding_model": "sentence-transformers/all-MiniLM-L6-v2"})
    b = Setting(model="LLM2SASRec", dataset="beauty", config={**a.config, "embedding_model": "all-mpnet-base-v2"})
    c = Setting(model="LLM2SASRec", dataset="beauty", config={**a.config, "init": "permuted"})
    assert len({a.id, b.id, c.id}) == 3
    assert build_model("LLM2SASRec", **b.config).get_config()["embedding"]["model"] == "all-mpnet-base-v2"


# ------------------------------------------------------------------ the init table
@pytest.mark.parametrize("name", list(LLM2_BASES))
def test_init_table_is_the_reduced_vectors_at_epoch_zero(name):
    m = tiny(name).fit(TRAIN)
    np.testing.assert_array_equal(table(m), reduced())
    info = m.fit_info_["llm2"]
    assert (info["init"], info["vector_dim"], info["emb_dim_used"], info["n_vectors"]) == ("llm", 8, 8, N_ITEMS)
    # padding / mask rows and every other weight are the base model's init with the same seed
    base = MODELS[LLM2_BASES[name]](progress=False, device="cpu", **{**TINY[name], "epochs": 0}).fit(TRAIN)
    sa, sb = m.module_.state_dict(), base.module_.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        if k != "item_emb.weight":
            assert torch.equal(sa[k], sb[k]), k
    torch.testing.assert_close(sa["item_emb.weight"][N_ITEMS:], sb["item_emb.weight"][N_ITEMS:], rtol=0, atol=0)
    # the head is tied: logits are the hidden state times this very table
    h = torch.randn(3, m.module_.head.dense.in_features)
    with torch.no_grad():
        z = m.module_.head.act(m.module_.head.dense(h))
        torch.testing.assert_close(m.module_.logits(h), z @ torch.as_tensor(reduced()).T + m.module_.head.bias)


def test_base_std_scale_and_the_base_init_std():
    m = tiny("LLM2SASRec", init_scale="base_std").fit(TRAIN)
    Z = reduced()
    factor = m.fit_info_["llm2"]["scale_factor"]
    np.testing.assert_allclose(table(m), Z * factor, rtol=1e-6)
    assert np.sqrt(np.mean(table(m).astype(np.float64) ** 2)) == pytest.approx(BASE_INIT_STD, rel=1e-5)
    # BASE_INIT_STD is the std of the base models' item-table init (layers.glorot_)
    emb = torch.nn.Embedding(20000, 16)
    glorot_(emb)
    assert emb.weight.std().item() == pytest.approx(BASE_INIT_STD, rel=0.01)


def test_reduce_on_train_fits_the_reducer_on_the_train_items():
    m = tiny("LLM2GRU4Rec", reduce_on="train").fit(TRAIN)
    spec = m.config.embedding
    np.testing.assert_array_equal(table(m), spec.item_vectors(embeddings=EMB, fit_on=TRAIN_IDS).vectors)
    assert not np.allclose(table(m), reduced())


def test_random_init_is_the_base_model():
    llm2 = tiny("LLM2SASRec", init="random", epochs=2).fit(TRAIN)
    base = MODELS["SASRec"](progress=False, device="cpu", **{**TINY["LLM2SASRec"], "epochs": 2}).fit(TRAIN)
    for k, v in base.module_.state_dict().items():
        assert torch.equal(llm2.module_.state_dict()[k], v), k
    p = [[100, 101, 102], [110]]
    np.testing.assert_array_equal(llm2.predict(p, k=5), base.predict(p, k=5))
    assert llm2.fit_info_["llm2"]["init"] == "random" and "vector_dim" not in llm2.fit_info_["llm2"]


def test_permuted_is_a_seeded_row_permutation_of_the_true_table():
    true = table(tiny("LLM2SASRec").fit(TRAIN))
    perm = table(tiny("LLM2SASRec", init="permuted").fit(TRAIN))
    assert not np.array_equal(perm, true)
    # the same rows, in another order: row i holds the vector of item order[i]
    order = np.random.default_rng(0).permutation(N_ITEMS)  # permutation_seed None = the model's seed (0)
    np.testing.assert_array_equal(perm, true[order])
    again = table(tiny("LLM2SASRec", init="permuted", permutation_seed=0).fit(TRAIN))
    np.testing.assert_array_equal(again, perm)
    other = table(tiny("LLM2SASRec", init="permuted", permutation_seed=7).fit(TRAIN))
    np.testing.assert_array_equal(other, true[np.random.default_rng(7).permutation(N_ITEMS)])
    # scaling commutes with the permutation (one scalar)
    scaled = tiny("LLM2SASRec", init="permuted", init_scale="base_std").fit(TRAIN)
    np.testing.assert_allclose(table(scaled), perm * scaled.fit_info_["llm2"]["scale_factor"], rtol=1e-6)


@pytest.mark.parametrize("name", ["LLM2SASRec", "LLM2BERT4Rec"])
def test_freeze_keeps_the_table_fixed(name):
    m = tiny(name, freeze=True, epochs=2, patience=9, weight_decay=0.1).fit(TRAIN)
    full = m.module_.item_emb.weight.detach()
    np.testing.assert_array_equal(table(m), reduced())  # no update, no weight decay
    start = tiny(name).fit(TRAIN).module_
    assert torch.equal(full, start.item_emb.weight.detach())  # padding / mask rows too
    moved = [k for k, v in m.module_.state_dict().items() if not torch.equal(v, start.state_dict()[k])]
    assert moved and "item_emb.weight" not in moved  # the rest trained
    unfrozen = tiny(name, epochs=2, patience=9).fit(TRAIN)
    assert not np.allclose(table(unfrozen), reduced())


def test_freeze_epochs_fine_tunes_after_k_epochs_and_chains_the_callback(tmp_path):
    seen = []
    m = tiny("LLM2GRU4Rec", freeze_epochs=1, epochs=3, patience=9, checkpoint_dir=tmp_path,
             on_epoch=lambda row, module: seen.append(module.item_emb.weight.detach().clone())).fit(TRAIN)
    assert len(seen) == 3
    np.testing.assert_array_equal(seen[0][:N_ITEMS].numpy(), reduced())  # frozen in epoch 1
    assert not torch.equal(seen[1], seen[0])  # fine-tuned from epoch 2
    assert m.on_epoch is not None and m.fit_info_["loaded_from_checkpoint"] is None
    assert not list(tmp_path.glob("*.pt"))  # a schedule bypasses the checkpoint cache, as any callback


# ------------------------------------------------------------------ sizes
def test_short_vectors_clip_the_model_or_pad_it():
    small = fake_embeddings(dim=6)  # the embedder has fewer dims than emb_dim = 8
    with pytest.warns(RuntimeWarning, match="built with emb_dim 6"):
        m = tiny("LLM2SASRec", embeddings=small).fit(TRAIN)
    assert m.module_.item_emb.embedding_dim == 6 and m.fit_info_["llm2"]["emb_dim_used"] == 6
    assert m.get_config()["emb_dim"] == 8  # the config is untouched
    assert m.predict([[100, 101]], k=3).shape == (1, 3)
    with pytest.warns(RuntimeWarning, match="keep the random init"):
        p = tiny("LLM2SASRec", embeddings=small, pad_dims=True).fit(TRAIN)
    Z = reduced(emb=small, spec=p.config.embedding)
    assert p.module_.item_emb.embedding_dim == 8 and Z.shape[1] == 6
    np.testing.assert_array_equal(table(p)[:, :6], Z)
    base = MODELS["SASRec"](progress=False, device="cpu", **{**TINY["LLM2SASRec"], "epochs": 0}).fit(TRAIN)
    np.testing.assert_array_equal(table(p)[:, 6:], base.item_embeddings()[:, 6:])
    with pytest.raises(ValueError, match="more than emb_dim"):
        tiny("LLM2SASRec", reduction="none").fit(TRAIN)  # "none": the raw vectors (None: the LLM2 default, PCA)


# ------------------------------------------------------------------ fit / predict / cache
@pytest.mark.parametrize("name", list(LLM2_BASES))
def test_fit_predict_and_learn(name):
    m = tiny(name, epochs=2, patience=9).fit(TRAIN)
    recs = m.predict([[100, 101, 102], [120]], k=5)
    assert recs.shape == (2, 5) and not set(recs[0]) & {100, 101, 102}
    assert m.history_[-1]["loss"] < m.history_[0]["loss"]
    assert set(m.fit_info_) >= {"llm2", "best_epoch", "precision_used"}


def test_embeds_the_items_when_no_vectors_are_given(tmp_path):
    path = tmp_path / "vectors.npz"
    np.savez(path, item_ids=EMB.item_ids, vectors=EMB.vectors)
    items = pd.DataFrame({"item_id": np.arange(100, 100 + N_ITEMS + N_EXTRA), "title": "x"})
    m = build_model("LLM2SASRec", provider="file", embedding_path=str(path), progress=False, device="cpu",
                    **{**TINY["LLM2SASRec"], "epochs": 0}).fit(TRAIN, items=items)
    np.testing.assert_array_equal(table(m), reduced())
    assert m.fit_info_["llm2"]["provider"] == "file"
    with pytest.raises(ValueError, match="no item texts"):
        build_model("LLM2SASRec", progress=False, device="cpu", **TINY["LLM2SASRec"]).fit(TRAIN)


def test_checkpoint_is_keyed_by_the_vectors(tmp_path):
    a = tiny("LLM2GRU4Rec", epochs=1, checkpoint_dir=tmp_path).fit(TRAIN)
    again = tiny("LLM2GRU4Rec", epochs=1, checkpoint_dir=tmp_path).fit(TRAIN)
    assert again.fit_info_["loaded_from_checkpoint"] and again.fit_info_["llm2"]["init"] == "llm"
    np.testing.assert_array_equal(table(again), table(a))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tiny("LLM2GRU4Rec", epochs=1, checkpoint_dir=tmp_path, embeddings=fake_embeddings(seed=1)).fit(TRAIN)
        tiny("LLM2GRU4Rec", epochs=1, checkpoint_dir=tmp_path, init="permuted").fit(TRAIN)
    assert len(list(tmp_path.glob("LLM2GRU4Rec__*.pt"))) == 3


def test_run_seeds_stores_resumes_and_compares(tmp_path, tiny_folder):
    """The notebook path: Setting → run_seeds (stored, then resumed without a rerun) → paired
    comparison against the base model on the same test sessions."""
    from rec_utils.data import load_dataset
    from rec_utils.evaluation import run_seeds
    from rec_utils.significance import compare_settings

    split = make_split(load_dataset(tiny_folder), "temporal", test_frac=0.5)
    emb = ItemEmbeddings(np.arange(6), np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32))
    cfg = {"emb_dim": 4, "num_heads": 1, "epochs": 1, "batch_size": 4}
    llm2 = Setting.of("LLM2SASRec", split, config={**cfg, "reduction": "pca"})
    base = Setting.of("SASRec", split, config=cfg)

    def make(setting):
        extra = {"embeddings": emb} if setting.model in LLM2_BASES else {}
        return lambda seed: build_model(setting.model, **{**setting.config, "seed": seed}, progress=False,
                                        device="cpu", **extra)

    runs = {s.model: run_seeds(make(s), split, s, out_dir=tmp_path, seeds=[0, 1]) for s in (llm2, base)}
    assert runs["LLM2SASRec"][0]["fit_info"]["llm2"]["vector_dim"] == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a changed resolved config would warn and rerun
        again = run_seeds(make(llm2), split, llm2, out_dir=tmp_path, seeds=[0, 1])
    assert [r["wall_s"] for r in again] == [r["wall_s"] for r in runs["LLM2SASRec"]]
    rows = compare_settings(llm2, base, split, out_dir=tmp_path, n_boot=100)
    assert rows[0]["n_seed_pairs"] == 2 and rows[0]["n_sessions"] == len(split.test)
    assert rows[0]["model_a"] == "LLM2SASRec" and rows[0]["model_b"] == "SASRec"
