"""Issue 23: LLM2 initialisation variants (whitening, variance selection, frozen text table + adapter
or bounded offset, mpnet) and the sampled training objectives (sampled softmax with logQ, gBCE)."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
import variants_tiny as V  # noqa: E402

from rec_utils.models.llm2 import LLM2_VARIANTS, MPNET  # noqa: E402
from rec_utils.models.neural.layers import FrozenItemTable, SoftmaxCrossEntropy  # noqa: E402
from rec_utils.models.neural.objectives import (SampledObjective, gbce_beta, gbce_loss,  # noqa: E402
                                                sampled_softmax_loss)
from rec_utils.text import EmbeddingSpec, Reducer, reduce_embeddings  # noqa: E402
from rec_utils.text.vectors import EmbeddingError  # noqa: E402

torch.set_num_threads(1)
FIXTURE = Path(__file__).parent / "data" / "llm2_variants_default.npz"
TRAIN = V.sessions()


def losses(m) -> list[float]:
    return [h["loss"] for h in m.history_]


#: Enough training for a tiny loss curve to fall: no early stopping, 5 epochs, 4 BERT4Rec copies.
TRAINS = dict(epochs=5, patience=100)


def trained(name, **kw):
    extra = {"n_random_copies": 4} if "BERT4Rec" in name else {}
    return V.build(name, **{**TRAINS, **extra, **kw}).fit(TRAIN)


# ------------------------------------------------------------------ the default path is unchanged
@pytest.mark.parametrize("name", V.FIXTURE_MODELS)
def test_default_path_reproduces_the_runs_stored_before_the_options(name):
    """Losses, top-10 lists and scores of a 3-epoch run equal those computed at commit 7ba5093
    (before the issue-23 options existed); scores up to float noise across CPUs."""
    with np.load(FIXTURE) as old:
        new = V.default_run(name)
        np.testing.assert_allclose(new["loss"], old[f"{name}/loss"], rtol=1e-5)
        np.testing.assert_allclose(new["scores"], old[f"{name}/scores"], rtol=1e-4, atol=1e-5)
        assert (new["recs"] == old[f"{name}/recs"]).mean() >= 0.95  # a near-tie may swap under another CPU


def test_options_off_use_the_full_softmax_head_and_the_plain_embedding():
    m = V.build("LLM2SASRec", epochs=1).fit(TRAIN)
    assert m.module_.objective is None and isinstance(m.module_.item_emb, torch.nn.Embedding)
    assert m.module_.item_table() is m.module_.item_emb.weight
    assert "item_table" not in m.fit_info_["llm2"]


def test_checkpoint_key_of_the_default_config_leaves_the_new_fields_out(tmp_path):
    a = V.build("SASRec", epochs=1, checkpoint_dir=tmp_path).fit(TRAIN)
    b = V.build("SASRec", epochs=1, checkpoint_dir=tmp_path, loss="sampled_softmax").fit(TRAIN)
    assert b.loaded_from_checkpoint_ is None  # another objective: another key
    from dataclasses import asdict

    from rec_utils.models.neural.base import KEY_OMITTED_AT
    assert set(KEY_OMITTED_AT) <= set(asdict(V.build("LLM2SASRec").config))
    c = V.build("SASRec", epochs=1, checkpoint_dir=tmp_path).fit(TRAIN)
    assert c.loaded_from_checkpoint_ is not None and a.loaded_from_checkpoint_ is None


# ------------------------------------------------------------------ objectives: identities
def _head_inputs(T=12, n=30, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(T, d, generator=g, dtype=torch.float64)
    W = torch.randn(n, d, generator=g, dtype=torch.float64)
    b = torch.randn(n, generator=g, dtype=torch.float64)
    y = torch.randint(0, n, (T,), generator=g)
    return z, W, b, y


def test_sampled_softmax_with_every_item_as_negative_is_the_full_softmax():
    z, W, b, y = _head_inputs()
    full = F.cross_entropy(F.linear(z, W, b), y)
    obj = SampledObjective("sampled_softmax", 30, n_negatives=30, negatives="uniform")
    assert float(obj(z, W, b, y)) == pytest.approx(float(full), rel=1e-6)
    z32, W32, b32 = z.float(), W.float(), b.float()
    assert float(obj(z32, W32, b32, y)) == pytest.approx(float(SoftmaxCrossEntropy.apply(z32, W32, b32, y)), rel=1e-5)


def test_sampled_softmax_gradient_with_every_item_equals_the_full_softmax_gradient():
    z, W, b, y = _head_inputs()
    z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
    F.cross_entropy(F.linear(z1, W, b), y).backward()
    sampled_softmax_loss(z2, W, b, y, torch.arange(30)).backward()
    torch.testing.assert_close(z1.grad.float(), z2.grad.float(), rtol=1e-5, atol=1e-7)


def test_sampled_softmax_masks_accidental_hits_and_applies_logq():
    z, W, b, y = _head_inputs(T=4, n=10)
    cand = torch.tensor([0, 1, 2, 3])
    logq = torch.log(torch.linspace(0.05, 0.3, 10, dtype=torch.float64))
    got = sampled_softmax_loss(z, W, b, y, cand, logq[y], logq[cand])
    s = F.linear(z, W, b).float() - logq.float()
    want = []
    for r in range(4):  # one row at a time: the target plus the candidates that are not the target
        negs = [int(c) for c in cand if c != y[r]]
        row = torch.cat([s[r, y[r]][None], s[r, negs]])
        want.append(torch.logsumexp(row, 0) - s[r, y[r]])
    assert float(got) == pytest.approx(float(torch.stack(want).mean()), rel=1e-5)


def test_in_batch_logq_uses_the_popularity_of_the_targets():
    z, W, b, y = _head_inputs(T=8, n=10)
    pop = np.arange(1, 11, dtype=float)
    obj = SampledObjective("sampled_softmax", 10, n_negatives=5, negatives="in_batch", popularity=pop)
    cand = torch.unique(y)
    logq = torch.log(8 * torch.as_tensor(pop / pop.sum(), dtype=torch.float32))
    want = sampled_softmax_loss(z, W, b, y, cand, logq[y], logq[cand])
    assert float(obj(z, W, b, y)) == pytest.approx(float(want), rel=1e-6)
    no = SampledObjective("sampled_softmax", 10, n_negatives=5, negatives="in_batch", logq=False, popularity=pop)
    assert float(no(z, W, b, y)) == pytest.approx(float(sampled_softmax_loss(z, W, b, y, cand)), rel=1e-6)


def test_gbce_with_t_zero_is_plain_bce_over_the_target_and_its_negatives():
    z, W, b, y = _head_inputs(n=40)
    negs = torch.tensor([0, 5, 7, 11, 30])
    y = torch.where(torch.isin(y, negs), (y + 1) % 40, y)
    y = torch.where(torch.isin(y, negs), (y + 1) % 40, y)  # no accidental hit
    assert gbce_beta(5, 40, 0.0) == pytest.approx(1.0)
    logits = torch.cat([(z * W[y]).sum(1, keepdim=True) + b[y, None], F.linear(z, W[negs], b[negs])], 1)
    labels = torch.zeros_like(logits)
    labels[:, 0] = 1
    want = F.binary_cross_entropy_with_logits(logits, labels)
    assert float(gbce_loss(z, W, b, y, negs, beta=1.0)) == pytest.approx(float(want), rel=1e-6)


def test_gbce_positive_term_equals_the_gsasrec_transform():
    """gSASRec turns the positive logit s into log(1 / (σ(s)^-β − 1)), so that σ(s') = σ(s)^β; the
    stable β·softplus(−s) must give the same loss."""
    z, W, b, y = _head_inputs(n=40)
    negs = torch.tensor([39])
    y = torch.where(y == 39, torch.zeros_like(y), y)
    t, k, n = 0.75, 1, 40
    beta = gbce_beta(k, n, t)
    alpha = k / (n - 1)
    assert beta == pytest.approx(alpha * (t * (1 - 1 / alpha) + 1 / alpha))
    pos = (z * W[y]).sum(1) + b[y]
    eps = 1e-10
    p = torch.clamp(torch.sigmoid(pos), eps, 1 - eps)
    adj = torch.clamp(p.pow(-beta), 1 + eps, torch.finfo(torch.float64).max)
    pos_t = torch.clamp(1.0 / (adj - 1), eps, torch.finfo(torch.float64).max).log()
    logits = torch.stack([pos_t, (z * W[39]).sum(1) + b[39]], 1)
    labels = torch.tensor([[1.0, 0.0]], dtype=torch.float64).expand_as(logits)
    want = F.binary_cross_entropy_with_logits(logits, labels)
    assert float(gbce_loss(z, W, b, y, negs, beta)) == pytest.approx(float(want), rel=1e-5)


def test_per_target_negatives_score_each_row_against_its_own_draws():
    z, W, b, y = _head_inputs(T=5, n=20)
    negs = torch.randint(0, 20, (5, 7), generator=torch.Generator().manual_seed(1))
    negs[0, 0] = y[0]  # an accidental hit: no loss
    want = []
    for r in range(5):
        s_pos = float(z[r] @ W[y[r]] + b[y[r]])
        s_neg = [float(z[r] @ W[j] + b[j]) for j in negs[r] if j != y[r]]
        want.append(0.4 * math.log1p(math.exp(-s_pos)) + sum(math.log1p(math.exp(s)) for s in s_neg))
    assert float(gbce_loss(z, W, b, y, negs, beta=0.4)) == pytest.approx(sum(want) / (5 * 8), rel=1e-5)
    obj = SampledObjective("gbce", 20, 7, negative_sharing="target", seed=0)
    assert obj.uniform(5).shape == (5, 7)


def test_objective_settings_are_checked_with_the_parameter_named():
    for kw, word in (({"loss": "bpr"}, "loss"), ({"loss": "gbce", "negatives": "in_batch"}, "gbce"),
                     ({"loss": "sampled_softmax", "n_negatives": 0}, "n_negatives"), ({"gbce_t": 1.5}, "gbce_t"),
                     ({"negative_sharing": "row"}, "negative_sharing"),
                     ({"loss": "sampled_softmax", "negatives": "mixed", "negative_sharing": "target"}, "target")):
        with pytest.raises(ValueError, match=word):
            V.build("SASRec", **kw)


def test_negative_draws_are_seeded():
    a = SampledObjective("gbce", 100, 10, seed=3)
    b = SampledObjective("gbce", 100, 10, seed=3)
    assert all(torch.equal(a.uniform(), b.uniform()) for _ in range(3))
    assert len(torch.unique(a.uniform())) == 10


# ------------------------------------------------------------------ every variant trains
OBJECTIVES = {"sampled_softmax-uniform": dict(loss="sampled_softmax", n_negatives=10),
              "sampled_softmax-in_batch": dict(loss="sampled_softmax", negatives="in_batch"),
              "sampled_softmax-mixed": dict(loss="sampled_softmax", negatives="mixed", n_negatives=10),
              "gbce": dict(loss="gbce", n_negatives=10, gbce_t=0.75),
              "gbce-per-target": dict(loss="gbce", n_negatives=10, negative_sharing="target"),
              "sampled_softmax-per-target": dict(loss="sampled_softmax", n_negatives=10, negative_sharing="target")}


@pytest.mark.parametrize("model", ["SASRec", "GRU4Rec", "BERT4Rec"])
@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_each_objective_trains_every_model_and_its_loss_decreases(model, objective):
    m = trained(model, **OBJECTIVES[objective])
    ls = losses(m)
    assert all(math.isfinite(x) for x in ls) and ls[-1] < ls[0]
    assert type(m.module_.objective).__name__ == "SampledObjective"


INIT_VARIANTS = {"whiten": dict(whiten=True, init_scale="base_std"), "whiten-random": dict(whiten=True, reduction="random"),
                 "variance": dict(reduction="variance"), "adapter": dict(item_table="adapter"),
                 "adapter_mlp": dict(item_table="adapter_mlp"), "offset-tanh": dict(item_table="offset"),
                 "offset-clip": dict(item_table="offset", offset_bound="clip", offset_radius=0.05)}


@pytest.mark.parametrize("variant", sorted(INIT_VARIANTS))
@pytest.mark.parametrize("model", ["LLM2SASRec", "LLM2BERT4Rec"])
def test_each_init_variant_trains_and_its_loss_decreases(model, variant):
    m = trained(model, **INIT_VARIANTS[variant])
    ls = losses(m)
    assert all(math.isfinite(x) for x in ls) and ls[-1] < ls[0]
    recs = m.predict(V.PROMPTS, k=5)
    assert recs.shape == (len(V.PROMPTS), 5)


def test_whitened_init_has_the_whitened_pca_vectors_as_rows():
    m = V.build("LLM2SASRec", epochs=0, whiten=True).fit(TRAIN)
    spec = EmbeddingSpec(reduction="pca", reduced_dim=8, whiten=True, normalize=False)
    want = spec.item_vectors(embeddings=V.raw_embeddings()).subset(np.unique(TRAIN["item_id"])).vectors
    np.testing.assert_allclose(m.item_embeddings(), want, rtol=1e-5, atol=1e-6)
    assert np.allclose(want.std(0, ddof=1), 1.0, atol=0.15)  # about unit variance per component (train subset)


def test_variance_selection_keeps_the_highest_variance_text_dims():
    m = V.build("LLM2SASRec", epochs=0, reduction="variance", emb_dim=4).fit(TRAIN)
    X = V.raw_embeddings().vectors
    top = np.sort(np.argsort(-X.var(0))[:4])
    ids = np.unique(TRAIN["item_id"])
    np.testing.assert_allclose(m.item_embeddings(), V.raw_embeddings().subset(ids).vectors[:, top])
    assert {0, 1} <= set(top.tolist())  # the two strong (cos, sin) dims


@pytest.mark.parametrize("method", ["random", "autoencoder"])
def test_whitening_before_random_projection_and_autoencoder(method):
    X = V.raw_embeddings().vectors
    r = Reducer(method, 6, normalize=False, whiten=True, ae_epochs=1).fit(X)
    Xw = X @ r.whitener_[1] - r.whitener_[0]
    np.testing.assert_allclose(np.cov(Xw.T), np.eye(Xw.shape[1]), atol=1e-4)
    assert not np.allclose(reduce_embeddings(X, method, 6, normalize=False, whiten=True, cache=False),
                           reduce_embeddings(X, method, 6, normalize=False, cache=False))


@pytest.mark.parametrize("reduction", ["variance", "lda", "none"])
def test_whitening_where_it_means_nothing_is_an_error(reduction):
    with pytest.raises(ValueError, match="whiten"):
        EmbeddingSpec(reduction=reduction, reduced_dim=4, whiten=True).resolved()
    with pytest.raises(ValueError, match="whiten"):
        V.build("LLM2SASRec", reduction=reduction, whiten=True)


# ------------------------------------------------------------------ frozen text tables
@pytest.mark.parametrize("kind", ["adapter", "adapter_mlp", "offset"])
def test_frozen_variants_never_update_the_frozen_table(kind):
    m = V.build("LLM2SASRec", epochs=3, item_table=kind).fit(TRAIN)
    emb = m.module_.item_emb
    assert isinstance(emb, FrozenItemTable) and not emb.weight.requires_grad
    ids = np.unique(TRAIN["item_id"])
    init = m.init_vectors(ids).vectors  # the reduced text vectors the table started from
    np.testing.assert_array_equal(emb.weight[: m.n_items_].detach().numpy(), init)
    trainable = [p for p in emb.parameters() if p.requires_grad]
    assert trainable and any(float(p.detach().abs().sum()) > 0 for p in trainable if p is not emb.extra)
    assert not np.allclose(m.item_embeddings(), init)  # the effective table did learn


def test_frozen_table_starts_as_the_text_vectors():
    base = torch.randn(7, 4)
    for kind in ("adapter", "adapter_mlp", "offset"):
        t = FrozenItemTable(base, 5, kind, radius=0.5)
        torch.testing.assert_close(t.table(), base)
        x = torch.tensor([[0, 4, 5, 6]])
        torch.testing.assert_close(t(x), base[x])


@pytest.mark.parametrize("bound", ["tanh", "clip"])
def test_bounded_offset_stays_within_its_radius(bound):
    m = V.build("LLM2SASRec", epochs=4, item_table="offset", offset_bound=bound, offset_radius=0.05,
                learning_rate=0.05).fit(TRAIN)
    emb = m.module_.item_emb
    r = m.fit_info_["llm2"]["offset_radius_abs"]
    base = emb.weight[: m.n_items_].detach().numpy()
    rms = np.sqrt(np.mean(np.sum(base.astype(np.float64) ** 2, 1)))
    assert r == pytest.approx(0.05 * rms, rel=1e-6)
    moved = np.linalg.norm(m.item_embeddings() - base, axis=1)
    assert moved.max() <= r * (1 + 1e-5)
    assert float(emb.offset.detach().norm(dim=1).max()) > r  # the raw parameter left the ball: the bound did the work
    big = emb.bounded_offset(torch.full((3, base.shape[1]), 100.0))
    assert float(big.norm(dim=1).max()) <= r * (1 + 1e-6)


def test_frozen_table_options_are_checked():
    with pytest.raises(ValueError, match="item_table"):
        V.build("LLM2SASRec", item_table="lora")
    with pytest.raises(ValueError, match="freeze"):
        V.build("LLM2SASRec", item_table="offset", freeze=True)
    with pytest.raises(ValueError, match="offset_radius"):
        V.build("LLM2SASRec", item_table="offset", offset_radius=0)


def test_frozen_table_checkpoint_round_trip(tmp_path):
    a = V.build("LLM2SASRec", epochs=2, item_table="offset", checkpoint_dir=tmp_path).fit(TRAIN)
    b = V.build("LLM2SASRec", epochs=2, item_table="offset", checkpoint_dir=tmp_path).fit(TRAIN)
    assert b.loaded_from_checkpoint_ is not None
    np.testing.assert_array_equal(a.predict(V.PROMPTS), b.predict(V.PROMPTS))


# ------------------------------------------------------------------ mpnet and the variant table
def test_mpnet_option_errors_clearly_when_the_embedder_is_not_installed(tmp_path, monkeypatch):
    from rec_utils.text.local import resolve_local_model
    try:
        resolve_local_model(MPNET)
    except EmbeddingError:
        pass
    else:
        pytest.skip("all-mpnet-base-v2 is installed here")
    import pandas as pd
    items = pd.DataFrame({"item_id": np.arange(100, 145), "title": [f"item {i}" for i in range(45)]})
    m = V.build("LLM2SASRec", embeddings=None, embedding_model=MPNET, epochs=1)
    assert m.config.embedding.model == MPNET
    monkeypatch.setenv("REC_UTILS_EMBEDDING_CACHE", str(tmp_path / "emb"))
    with pytest.raises(EmbeddingError, match="make embedders"):
        m.fit(TRAIN, items=items)


def test_every_named_variant_builds_and_is_labelled_by_its_overrides():
    for name, (init, over) in LLM2_VARIANTS.items():
        m = V.build("LLM2SASRec", init=init, **over)
        for k, v in over.items():
            got = getattr(m.config, k, None)
            got = getattr(m.config.embedding, {"embedding_model": "model"}.get(k, k)) if got is None else got
            assert got == v, (name, k)


# ------------------------------------------------------------------ the ablation through the fair comparison
def test_variant_arms_pair_with_the_base_and_objectives_with_their_base(tmp_path, tiny_folder):
    from rec_utils.data import load_dataset
    from rec_utils.llm2_comparison import compare_variants, run_arms, variant_arms, variant_pairs
    from rec_utils.split import make_split
    from rec_utils.text import ItemEmbeddings

    assert variant_pairs(["base", "offset", "base+gbce", "llm+gbce"]) == [
        ("offset", "base"), ("base+gbce", "base"), ("llm+gbce", "base"), ("llm+gbce", "base+gbce")]
    with pytest.raises(ValueError, match="unknown variant"):
        variant_arms("LLM2SASRec", None, ["lora"])
    split = make_split(load_dataset(tiny_folder), "temporal", test_frac=0.5)
    tiny = {"emb_dim": 4, "num_heads": 1, "num_layers": 1, "epochs": 2, "batch_size": 4, "patience": 2,
            "n_negatives": 3}
    arms = variant_arms("LLM2SASRec", split, ["offset", "base+gbce", "llm+gbce"], preset=None, overrides=tiny,
                        num_threads=1)
    assert arms["base"].config["init"] == "random" and arms["offset"].config["item_table"] == "offset"
    assert "loss=gbce" in arms["llm+gbce"].label and "init=random" in arms["base+gbce"].label
    emb = ItemEmbeddings(np.arange(6), np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32))
    runs = run_arms(arms, split, out_dir=tmp_path, seeds=[0, 1], embeddings=emb, notebook="12_llm2_ablation")
    rows = compare_variants(arms, runs, split, out_dir=tmp_path, n_boot=99)
    assert len(rows) == 2 * 4 and {r["family"] for r in rows} == {"llm2-variants"}
    assert all(r["pairing"] == "" for r in rows), [r["pairing"] for r in rows if r["pairing"]]


@pytest.mark.parametrize("kw", [dict(loss="gbce", n_negatives=10), dict(loss="sampled_softmax", negatives="mixed"),
                                dict(item_table="adapter"), dict(item_table="offset")])
def test_sampled_objectives_and_frozen_tables_run_under_bf16_autocast(kw):
    m = V.build("LLM2SASRec", epochs=0, **kw).fit(TRAIN)
    x, y = (torch.as_tensor(a[:16]) for a in m.epoch_data(np.random.default_rng(0)))
    m.module_.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = m.module_.loss(x, y)
    low.backward()
    assert math.isfinite(float(low.detach())) and low.dtype == torch.float32


def test_objective_search_spaces_are_opt_in_and_their_samples_build():
    import optuna

    from rec_utils.models import build_model, preset_config
    from rec_utils.tuning.optuna_search import suggest
    from rec_utils.tuning.spaces import TPE_SPACES, tpe_space

    assert "loss" not in TPE_SPACES["SASRec"].params  # the paper's spaces are unchanged
    for name in ("SASRec", "LLM2SASRec", "BERT4Rec"):
        space = tpe_space(f"{name}+objective")
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        for _ in range(6):
            trial = study.ask()
            cfg = space.to_config(suggest(trial, space))
            m = build_model(name, **{**preset_config(name, "beauty"), **cfg})
            assert m.config.loss in ("ce", "sampled_softmax", "gbce")
            study.tell(trial, 0.0)
