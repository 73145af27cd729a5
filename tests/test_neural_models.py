"""Sequential neural models (GRU4Rec, SASRec, BERT4Rec) and their shared trainer."""
from __future__ import annotations

import warnings
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from rec_utils.metrics import ndcg_at_k
from rec_utils.models import BERT4Rec, GRU4Rec, MostPopular, SASRec, build_model, preset_config
from rec_utils.models.base import ItemIndex, as_prompts
from rec_utils.models.neural import batching as B
from rec_utils.models.neural import trainer as T
from rec_utils.models.neural.bert4rec import BERT4RecModule, cloze_copies
from rec_utils.models.neural.gru4rec import GRU4RecModule
from rec_utils.models.neural.layers import SoftmaxCrossEntropy
from rec_utils.models.neural.sasrec import SASRecModule
from rec_utils.split import inner_validation_split

torch.set_num_threads(2)
MODELS = {"GRU4Rec": GRU4Rec, "SASRec": SASRec, "BERT4Rec": BERT4Rec}
TINY = {
    "GRU4Rec": dict(emb_dim=16, hidden_dim=24, batch_size=32, learning_rate=0.01),
    "SASRec": dict(emb_dim=16, num_layers=1, num_heads=2, drop_rate=0.1, batch_size=32, learning_rate=0.01),
    "BERT4Rec": dict(emb_dim=16, num_layers=1, num_heads=2, drop_rate=0.1, batch_size=64, learning_rate=0.01,
                     mask_prob=0.4, n_random_copies=3, weight_decay=0.0),
}


def cyclic_sessions(n_sessions=400, n_items=30, seed=0, min_len=3, max_len=9, id_offset=100):
    """Sessions walking the items in a fixed cycle: the next item is always (last + 1) mod n."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_sessions):
        start, length = rng.integers(n_items), rng.integers(min_len, max_len + 1)
        for t in range(length):
            rows.append((s, id_offset + (start + t) % n_items, t))
    return pd.DataFrame(rows, columns=["session_id", "item_id", "timestamp"])


def cyclic_prompts(n=200, n_items=30, seed=1, id_offset=100):
    rng = np.random.default_rng(seed)
    seqs, targets = [], []
    for _ in range(n):
        start, length = rng.integers(n_items), rng.integers(2, 7)
        items = id_offset + (start + np.arange(length + 1)) % n_items
        seqs.append(items[:-1])
        targets.append(items[-1])
    p = as_prompts(seqs)
    p.targets[:] = targets
    return p


def tiny(name, **kw):
    return MODELS[name](progress=False, device="cpu", **{**TINY[name], "epochs": 3, **kw})


# --------------------------------------------------------------------------- data layout
def test_left_pad_keeps_last_items_right_aligned():
    indptr = np.array([0, 3, 4, 9])
    items = np.arange(9)
    out = B.left_pad(indptr, items, 4, pad=-7)
    assert out.tolist() == [[-7, 0, 1, 2], [-7, -7, -7, 3], [5, 6, 7, 8]]


def test_bucketed_batches_cover_every_row_once_and_group_lengths():
    lengths = np.random.default_rng(0).integers(1, 20, 1000)
    batches = B.bucketed_batches(lengths, 32, np.random.default_rng(1), bucket=True, pool=50)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    plain = B.bucketed_batches(lengths, 32, np.random.default_rng(1), bucket=False)
    assert spread < np.mean([np.ptp(lengths[b]) for b in plain]) / 3


def test_session_csr_rejects_ungrouped_sessions():
    df = pd.DataFrame({"session_id": [1, 2, 1], "item_id": [1, 2, 3]})
    with pytest.raises(ValueError, match="grouped by session"):
        B.session_csr(df, np.array([0, 1, 2]))


# ------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("name", list(MODELS))
def test_predict_shapes_ids_and_prompt_exclusion(name):
    train = cyclic_sessions(120)
    m = tiny(name, epochs=1).fit(train)
    p = cyclic_prompts(50)
    recs, scores = m.predict(p, k=20, return_scores=True)
    assert recs.shape == (50, 20) and recs.dtype == np.int64
    assert scores.shape == (50, 20) and scores.dtype == np.float32
    assert np.isin(recs, train["item_id"].unique()).all()
    for i in range(len(p)):
        assert not np.isin(recs[i], p[i][-m.config.max_len:]).any(), "prompt items must be excluded"
        assert len(set(recs[i])) == 20
    assert (np.diff(scores, axis=1) <= 1e-6).all(), "scores sorted best first"
    # k larger than what is left after exclusion: padded with -1 / NaN
    recs40, sc40 = m.predict(p, k=40, return_scores=True)
    assert recs40.shape == (50, 40) and (recs40[:, 30:] == -1).all() and np.isnan(sc40[:, 30:]).all()


@pytest.mark.parametrize("name", list(MODELS))
def test_trimming_batches_is_exact(name):
    """Left padding + padding keys masked (GRU: packed) → trimming leading padding changes nothing."""
    m = tiny(name, epochs=0).fit(cyclic_sessions(60))
    mod = m.module_.eval()
    x = torch.full((4, m.config.max_len), m.pad_)
    x[0, -3:] = torch.tensor([1, 2, 3])
    x[1, -5:] = torch.tensor([4, 5, 6, 7, 8])
    x[2, -1:] = 9
    x[3, -2:] = torch.tensor([3, 1])
    with torch.no_grad():
        full = mod.score(x)
        trimmed = mod.score(x[:, -5:])
    torch.testing.assert_close(full, trimmed, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------ masking
def test_sasrec_has_no_future_leakage():
    m = tiny("SASRec", epochs=0, num_layers=2).fit(cyclic_sessions(60))
    mod = m.module_.eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, m.n_items_, (8, m.config.max_len), generator=g)
    x[:3, :4] = m.pad_
    with torch.no_grad():
        h = mod.encode(x)
        for t in range(m.config.max_len - 1):
            x2 = x.clone()
            x2[:, t + 1] = (x2[:, t + 1] + 1) % m.n_items_
            h2 = mod.encode(x2)
            torch.testing.assert_close(h2[:, : t + 1], h[:, : t + 1], rtol=1e-5, atol=1e-5)
            assert not torch.allclose(h2[3:, t + 1], h[3:, t + 1]), "the changed position itself must change"


def test_bert4rec_is_bidirectional():
    m = tiny("BERT4Rec", epochs=0).fit(cyclic_sessions(60))
    mod = m.module_.eval()
    x = torch.randint(0, m.n_items_, (4, m.config.max_len))
    x2 = x.clone()
    x2[:, -1] = (x2[:, -1] + 1) % m.n_items_
    with torch.no_grad():
        assert not torch.allclose(mod.encode(x)[:, 0], mod.encode(x2)[:, 0])


def test_cloze_generator():
    pad, mask = 50, 51
    rng = np.random.default_rng(0)
    seqs = np.full((300, 10), pad)
    lens = rng.integers(1, 11, 300)
    for i, n in enumerate(lens):
        seqs[i, 10 - n:] = rng.integers(0, 50, n)
    x, y = cloze_copies(seqs, pad, mask, mask_prob=0.3, n_copies=10, rng=np.random.default_rng(1))
    n = len(seqs)
    # block 1: only the last item masked
    assert (x[:n, -1] == mask).all() and (y[:n, -1] == seqs[:, -1]).all()
    assert (x[:n, :-1] == seqs[:, :-1]).all() and (y[:n, :-1] == B.IGNORE).all()
    # random copies: targets exactly at masked positions, the original item as target
    xr, yr = x[n:], y[n:]
    masked = xr == mask
    assert (masked == (yr != B.IGNORE)).all()
    assert masked.any(1).all(), "copies without any masked position are dropped"
    expected = 10 * np.sum(1 - 0.7 ** lens)  # copies with at least one masked position
    assert abs(len(xr) - expected) < 4 * np.sqrt(expected)
    # padding is never masked and unmasked positions are unchanged
    assert ((xr == pad) | masked | (xr < 50)).all()
    rate = masked.sum() / (xr != pad).sum()
    assert 0.27 < rate < 0.40  # ≈ mask_prob, conditioned on at least one mask per row
    # regenerated with fresh randomness each epoch
    x2, _ = cloze_copies(seqs, pad, mask, 0.3, 10, np.random.default_rng(2))
    assert x2.shape != x.shape or not (x2 == x).all()


# --------------------------------------------------------------------------- tied head
@pytest.mark.parametrize("item_bias", [False, True])
@pytest.mark.parametrize("name", list(MODELS))
def test_projection_head_is_tied_to_the_item_table(name, item_bias):
    m = tiny(name, epochs=0, item_bias=item_bias).fit(cyclic_sessions(60))
    mod = m.module_
    big = [n for n, p in mod.named_parameters() if m.n_items_ in p.shape or m.n_items_ + 1 in p.shape
           or m.n_items_ + 2 in p.shape]
    # the reference's BiasLayer is a scalar (no per-item bias) unless item_bias is asked for
    expected = ["item_emb.weight", "head.bias"] if item_bias else ["item_emb.weight"]
    assert big == expected, f"only the item table (and the optional bias) may span the catalogue, got {big}"
    x = torch.randint(0, m.n_items_, (3, 5))
    with torch.no_grad():
        h = mod.encode(x)[:, -1]
        z = mod.head.act(mod.head.dense(h))
        manual = z @ mod.item_emb.weight[: m.n_items_].T + mod.head.bias
        torch.testing.assert_close(mod.score(x), manual)
        assert mod.score(x).shape == (3, m.n_items_)
        assert (mod.head.bias == 0).all(), "bias starts at zero"
        assert mod.head.bias.requires_grad == item_bias
        mod.item_emb.weight[7] += 1.0  # the output side moves with the table
        assert not torch.allclose(mod.score(x)[:, 7], manual[:, 7])


def test_init_item_embeddings_hook():
    train = cyclic_sessions(80)
    ids = np.sort(train["item_id"].unique())
    rng = np.random.default_rng(0)
    table = rng.normal(size=(len(ids) + 5, 16)).astype(np.float32)
    all_ids = np.r_[ids, np.arange(900, 905)][::-1].copy()  # any order, extra rows ignored
    table_by_id = dict(zip(all_ids.tolist(), table))
    m = tiny("SASRec", epochs=0, init_item_embeddings=table, init_item_ids=all_ids).fit(train)
    got = m.item_embeddings()
    np.testing.assert_allclose(got, np.stack([table_by_id[i] for i in m.index_.ids]), rtol=0, atol=0)
    with pytest.raises(ValueError, match="lack"):
        tiny("SASRec", epochs=0, init_item_embeddings=table[:10], init_item_ids=ids[:10]).fit(train)
    with pytest.raises(ValueError, match=r"\(n, 16\)"):
        tiny("SASRec", epochs=0, init_item_embeddings=table[:, :8]).fit(train)
    dup = np.r_[ids, ids[:1]]
    with pytest.raises(ValueError, match="unique"):
        tiny("SASRec", epochs=0, init_item_embeddings=table[: len(dup)], init_item_ids=dup).fit(train)


def test_init_table_row_order_changes_nothing(tmp_path):
    """The same vectors in another row order (ids shuffled alike) give the identical module,
    predictions and checkpoint key."""
    train, p = cyclic_sessions(100), cyclic_prompts(40)
    ids = np.r_[np.sort(train["item_id"].unique()), 900, 901]  # two rows of unknown items, ignored
    table = np.random.default_rng(0).normal(size=(len(ids), 16)).astype(np.float32)
    perm = np.random.default_rng(1).permutation(len(ids))
    a = tiny("SASRec", epochs=2, init_item_embeddings=table, init_item_ids=ids, checkpoint_dir=tmp_path).fit(train)
    b = tiny("SASRec", epochs=2, init_item_embeddings=table[perm], init_item_ids=ids[perm]).fit(train)
    sa, sb = a.module_.state_dict(), b.module_.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    ra, ca = a.predict(p, return_scores=True)
    rb, cb = b.predict(p, return_scores=True)
    assert np.array_equal(ra, rb) and np.array_equal(ca, cb)
    c = tiny("SASRec", epochs=2, init_item_embeddings=table[perm], init_item_ids=ids[perm],
             checkpoint_dir=tmp_path).fit(train)
    assert c.fit_info_["loaded_from_checkpoint"] is not None, "the key is that of the aligned table"


# ------------------------------------------------------------------------ early stopping
def test_early_stopping_logic():
    es = T.EarlyStopping(patience=2)
    scores = [0.1, 0.2, 0.15, 0.25, 0.24, 0.23, 0.5]
    stopped_at = None
    for epoch, s in enumerate(scores, 1):
        es.step(s, epoch)
        if es.stopped:
            stopped_at = epoch
            break
    assert stopped_at == 6 and es.best_epoch == 4 and es.best == 0.25
    with pytest.raises(ValueError):
        T.EarlyStopping().step(float("nan"), 1)


def test_training_restores_the_best_epoch():
    """With a learning rate that wrecks the model, training stops after `patience` bad epochs
    and the weights of the best epoch come back (checked by re-validating)."""
    train = cyclic_sessions(200)
    m = tiny("GRU4Rec", epochs=8, learning_rate=0.3, patience=2).fit(train)
    h = pd.DataFrame(m.history_)
    best = h.loc[h["val_ndcg@20"].idxmax()]
    assert bool(best["best"]) and m.best_epoch_ == int(best["epoch"])
    assert len(h) == 8 or len(h) == m.best_epoch_ + 2
    assert m.fit_info_["stopped_by"] == ("epochs" if len(h) == 8 else "early_stopping")
    assert m.fit_info_["best_epoch"] == m.best_epoch_ and m.fit_info_["epochs_run"] == len(h)
    from rec_utils.split import inner_validation_split
    _, val = inner_validation_split(train, seed=m.config.seed)
    recs = m.predict(val, k=20)
    assert ndcg_at_k(recs, val.targets, 20).mean() == pytest.approx(best["val_ndcg@20"], abs=1e-6)


def test_time_budget_stops_training():
    m = tiny("GRU4Rec", epochs=50, time_budget_s=0.0).fit(cyclic_sessions(100))
    assert len(m.history_) == 1
    assert m.fit_info_["stopped_by"] == "time_budget" and m.fit_info_["epochs_run"] == 1


class _ScoresByWindow(torch.nn.Module):
    """A stand-in model whose score rows are fixed random vectors looked up by the window's
    content (a base-`base` number of the items read from the right, padding = digit 0), so the
    scores do not depend on how a batch is trimmed."""

    def __init__(self, windows: np.ndarray, scores: torch.Tensor, pad: int):
        super().__init__()
        self.base, self.pad = pad + 2, pad
        self.keys = self.key(torch.as_tensor(windows))
        assert len(torch.unique(self.keys)) == len(self.keys)
        self.order = torch.argsort(self.keys)
        self.scores = scores

    def key(self, x: torch.Tensor) -> torch.Tensor:
        digits = torch.where(x == self.pad, 0, x + 1).flip(1)
        return (digits * self.base ** torch.arange(x.shape[1])).sum(1)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        pos = torch.searchsorted(self.keys[self.order], self.key(x))
        return self.scores[self.order[pos]]


def test_early_stopping_ndcg_agrees_with_metrics_ndcg_at_k():
    """The NDCG that early stopping monitors (trainer.evaluate_ndcg / ndcg_of_scores) equals
    the mean of metrics.ndcg_at_k on the top-k lists of the same scores, prompt items masked."""
    rng = np.random.default_rng(0)
    n_items, width, pad = 60, 5, 60
    windows = np.unique(rng.integers(0, n_items, (400, width)), axis=0)
    windows = windows[rng.permutation(len(windows))][:300]
    lens = rng.integers(1, width + 1, len(windows))
    windows[np.arange(width) < (width - lens)[:, None]] = pad  # left padding, 1..5 real items
    windows = np.unique(windows, axis=0)
    n = len(windows)
    targets = rng.integers(0, n_items, n)
    targets[:40] = windows[:40, -1]  # a masked prompt item: NDCG 0
    targets[40:50] = -1  # unknown target: NDCG 0
    scores = torch.as_tensor(rng.random((n, n_items)), dtype=torch.float32)
    assert (scores.sort(1).values.diff(1) > 0).all(), "no ties"
    model = _ScoresByWindow(windows, scores, pad)
    masked = scores.numpy().astype(np.float64)
    rows = np.repeat(np.arange(n), width)
    real = windows.ravel() != pad
    masked[rows[real], windows.ravel()[real]] = -np.inf
    top = np.argsort(-masked, axis=1, kind="stable")
    x, t = torch.as_tensor(windows), torch.as_tensor(targets)
    got = T.evaluate_ndcg(model, x, x, t, pad, batch_size=64, precision="fp32", device="cpu")
    for k in (10, 20):
        expected = ndcg_at_k(top[:, :k], targets, k).mean()
        assert 0 < expected < 1
        assert got[f"ndcg@{k}"] == pytest.approx(expected, abs=1e-6)
        per_row = T.ndcg_of_scores(T.mask_window(scores, x), t, k).numpy()
        np.testing.assert_allclose(per_row, ndcg_at_k(top[:, :k], targets, k), rtol=0, atol=1e-6)


# --------------------------------------------------------------- on_epoch and fit_info_
def test_on_epoch_sees_every_epoch_and_can_stop_training():
    train = cyclic_sessions(100)
    seen = []

    def stop_after_two(row, module):
        seen.append((dict(row), module))
        return row["epoch"] == 2

    m = tiny("SASRec", epochs=5, patience=99, on_epoch=stop_after_two).fit(train)
    assert [r["epoch"] for r, _ in seen] == [1, 2] and all(mod is m.module_ for _, mod in seen)
    assert all("val_ndcg@20" in r for r, _ in seen), "called after validation"
    assert len(m.history_) == 2 and m.history_[-1]["stopped_by_callback"] is True
    assert "stopped_by_callback" not in m.history_[0]
    assert m.fit_info_["stopped_by"] == "callback" and m.fit_info_["epochs_run"] == 2
    assert "on_epoch" not in m.get_config(), "a runtime setting, not a config field"
    with pytest.raises(TypeError, match="on_epoch"):
        SASRec(on_epoch=3)


def test_on_epoch_exceptions_propagate():
    class Pruned(Exception):
        pass

    def prune(row, module):
        raise Pruned(row["epoch"])

    with pytest.raises(Pruned):
        tiny("GRU4Rec", epochs=3, on_epoch=prune).fit(cyclic_sessions(60))


def test_on_epoch_may_freeze_and_unfreeze_parameters(tmp_path):
    """A callback freezes the item table after epoch 1 and unfreezes it after epoch 2: the
    table does not move in epoch 2 (no decay either) and moves again in epoch 3. The cache is
    bypassed while a callback is set."""
    tables = []

    def schedule(row, module):
        tables.append(module.item_emb.weight.detach().clone())
        module.item_emb.weight.requires_grad_(row["epoch"] != 1)

    m = tiny("SASRec", epochs=3, patience=99, weight_decay=0.1, on_epoch=schedule,
             checkpoint_dir=tmp_path).fit(cyclic_sessions(100))
    assert len(tables) == 3 and m.fit_info_["stopped_by"] == "epochs"
    assert torch.equal(tables[0], tables[1]) and not torch.equal(tables[1], tables[2])
    assert m.fit_info_["loaded_from_checkpoint"] is None and not list(tmp_path.glob("*.pt"))


def test_fit_info_records_what_was_used():
    m = tiny("GRU4Rec", epochs=2, patience=5).fit(cyclic_sessions(80))
    info = m.fit_info_
    check = info.pop("validation")
    assert info == {"precision_requested": "fp32", "precision_used": "fp32",
                    "bf16_native": T.native_bf16("cpu"), "best_epoch": m.best_epoch_, "epochs_run": 2,
                    "stopped_by": "epochs", "loaded_from_checkpoint": None}
    assert check["best_epoch"] == m.best_epoch_
    assert GRU4Rec().fit_info_ is None


def test_validation_check_sets_the_best_epoch_beside_most_popular_on_the_same_cases(tmp_path):
    """fit_info_["validation"]: the restored epoch's validation NDCG beside the faithful
    MostPopular's, fitted on the same interactions and scored on the same inner-validation
    cases; a checkpoint reload records the same check."""
    train = cyclic_sessions(200)
    m = tiny("SASRec", epochs=3, patience=5, checkpoint_dir=tmp_path).fit(train)
    check = m.fit_info_["validation"]
    best = next(h for h in m.history_ if h["epoch"] == m.best_epoch_)
    assert (check["ndcg@20"], check["ndcg@10"]) == (best["val_ndcg@20"], best["val_ndcg@10"])
    rest, val = inner_validation_split(train, frac=m.config.val_frac, max_sessions=m.config.val_max_sessions,
                                       seed=m.config.seed)
    pop = MostPopular().fit(rest).predict(val, k=20)
    assert check["cases"] == len(val) == 20
    assert check["most_popular_ndcg@20"] == pytest.approx(ndcg_at_k(pop, val.targets, 20).mean())
    assert check["ndcg@20"] > check["most_popular_ndcg@20"]  # the cycle is learnt, popularity is flat
    again = tiny("SASRec", epochs=3, patience=5, checkpoint_dir=tmp_path).fit(train)
    assert again.loaded_from_checkpoint_ is not None and again.fit_info_["validation"] == check


def test_bf16_falls_back_to_fp32_where_the_device_lacks_it(monkeypatch):
    """precision="bf16" on a device without native bf16: one warning, then exactly the fp32
    numbers; fit_info_ records what was asked and what was used."""
    monkeypatch.setattr(T, "native_bf16", lambda device: False)
    monkeypatch.setattr(T, "_BF16_WARNED", set())
    train, p = cyclic_sessions(80), cyclic_prompts(20)
    with pytest.warns(RuntimeWarning, match="natively.*fp32"):
        a = tiny("SASRec", epochs=1, precision="bf16").fit(train)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once only
        tiny("SASRec", epochs=0, precision="bf16").fit(train)
    ref = tiny("SASRec", epochs=1).fit(train)
    assert a.fit_info_["precision_requested"] == "bf16" and a.fit_info_["precision_used"] == "fp32"
    assert a.fit_info_["bf16_native"] is False
    ra, sa = a.predict(p, return_scores=True)
    rr, sr = ref.predict(p, return_scores=True)
    assert np.array_equal(ra, rr) and np.array_equal(sa, sr)
    assert [h["loss"] for h in a.history_] == [h["loss"] for h in ref.history_]


def test_native_bf16_reads_the_cpu_flags(monkeypatch, tmp_path):
    check = T.native_bf16.__wrapped__  # uncached
    info = tmp_path / "cpuinfo"
    monkeypatch.setattr(T, "Path", lambda _: info)
    assert check("cpu") is False, "unreadable /proc/cpuinfo"
    for flags, native in [("fpu avx512f avx512_vnni", False), ("fpu avx512f avx512_bf16", True),
                          ("fpu amx_bf16 amx_tile", True)]:
        info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        assert check("cpu") is native
    assert check("meta") is False
    monkeypatch.undo()
    assert T.native_bf16("cpu") is T.native_bf16("cpu") and T.native_bf16.cache_info().hits >= 1


def test_train_settings_are_read_from_the_config_by_name():
    c = SASRec(epochs=7, clipnorm=3.0, precision="bf16", time_budget_s=9.0).config
    s = T.TrainSettings.from_config(c, precision="fp32")
    assert s.precision == "fp32" and s.eval_batch_size == 1024
    for f in fields(T.TrainSettings):
        if f.name not in ("precision", "eval_batch_size"):
            assert getattr(s, f.name) == getattr(c, f.name), f.name
    with pytest.raises(TypeError, match="unknown overrides"):
        T.TrainSettings.from_config(c, epoch=1)
    with pytest.raises(TypeError, match="lacks fields"):
        T.TrainSettings.from_config(object())


# -------------------------------------------------------------------------- determinism
MODULES = {"GRU4Rec": GRU4RecModule, "SASRec": SASRecModule, "BERT4Rec": BERT4RecModule}


def _hand_written_fit_predict(name, train, prompts, **kw):
    """fit + predict written out from the building blocks, as the trainer is documented to
    work: seed, index, inner split, module, epoch rows, bucketed trimmed batches, AdamW with
    per-tensor clipnorm, validation NDCG@20 (metrics.ndcg_at_k), best epoch restored."""
    c = MODELS[name].config_class(**{**TINY[name], **kw})
    torch.manual_seed(c.seed)
    np.random.seed(c.seed)
    index = ItemIndex(train["item_id"].to_numpy())
    pad = len(index)
    fit_df, val = inner_validation_split(train, frac=c.val_frac, max_sessions=c.val_max_sessions, seed=c.seed)
    module = MODULES[name](len(index), c)
    seqs = B.train_sequences(fit_df, index.to_index(fit_df["item_id"].to_numpy()), c.max_len + 1, pad)
    if name == "BERT4Rec":
        def rows(rng):
            return cloze_copies(seqs[:, 1:], pad, pad + 1, c.mask_prob, c.n_random_copies, rng)

        def inputs(w):
            return np.concatenate([w[:, 1:], np.full((len(w), 1), pad + 1)], axis=1)
    else:
        x_rows, y_rows = B.next_item_targets(seqs, pad)

        def rows(rng):
            return x_rows, y_rows

        def inputs(w):
            return w

    @torch.no_grad()
    def top(p, k):
        module.eval()
        x, = B.trim(torch.as_tensor(inputs(B.prompt_windows(p, index.to_index(p.items), c.max_len, pad))), pad)
        s = T.mask_window(module.score(x), x)
        v, i = torch.topk(s, k, dim=1)
        return i.numpy(), v.numpy()

    rng = np.random.default_rng(c.seed)
    opt = T.make_optimizer(module, c.learning_rate, c.weight_decay)
    states, val_ndcg = [], []
    for _ in range(c.epochs):
        xs, ys = rows(rng)
        module.train()
        for idx in B.bucketed_batches((xs != pad).sum(1), c.batch_size, rng, bucket=c.bucket):
            xb, yb = B.trim(torch.as_tensor(xs[idx]), pad, torch.as_tensor(ys[idx]))
            if not (yb != B.IGNORE).any():
                continue
            loss = module.loss(xb, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            T.clip_per_tensor(list(module.parameters()), c.clipnorm)
            opt.step()
        val_ndcg.append(ndcg_at_k(top(val, 20)[0], index.to_index(val.targets), 20).mean())
        states.append({k: v.clone() for k, v in module.state_dict().items()})
    module.load_state_dict(states[int(np.argmax(val_ndcg))])
    i, v = top(prompts, 20)
    return index.to_ids(i), v, val_ndcg


@pytest.mark.parametrize("name", list(MODELS))
def test_fit_predict_equals_the_hand_written_loop(name):
    """Regression pin: same seed, same numbers as the building blocks put together by hand
    (expected arrays computed here, not stored)."""
    train, p = cyclic_sessions(150), cyclic_prompts(60)
    recs, scores, val_ndcg = _hand_written_fit_predict(name, train, p, epochs=2, seed=3)
    m = tiny(name, epochs=2, seed=3, patience=5).fit(train)
    got_recs, got_scores = m.predict(p, k=20, return_scores=True)
    np.testing.assert_allclose([h["val_ndcg@20"] for h in m.history_], val_ndcg, rtol=0, atol=1e-6)
    assert np.array_equal(got_recs, recs) and np.array_equal(got_scores, scores)


@pytest.mark.parametrize("name", ["SASRec", "BERT4Rec"])
def test_same_seed_same_numbers(name):
    train, p = cyclic_sessions(150), cyclic_prompts(80)
    a = tiny(name, epochs=2, seed=3).fit(train)
    b = tiny(name, epochs=2, seed=3).fit(train)
    c = tiny(name, epochs=2, seed=4).fit(train)
    ra, sa = a.predict(p, return_scores=True)
    rb, sb = b.predict(p, return_scores=True)
    assert (ra == rb).all() and np.array_equal(sa, sb)
    assert [h["loss"] for h in a.history_] == [h["loss"] for h in b.history_]
    assert [h["loss"] for h in a.history_] != [h["loss"] for h in c.history_]


def test_checkpoint_reloads_without_training(tmp_path):
    train, p = cyclic_sessions(100), cyclic_prompts(40)
    a = tiny("SASRec", epochs=2, checkpoint_dir=tmp_path).fit(train)
    assert a.loaded_from_checkpoint_ is None and len(list(tmp_path.glob("*.pt"))) == 1
    b = tiny("SASRec", epochs=2, checkpoint_dir=tmp_path).fit(train)
    assert b.loaded_from_checkpoint_ is not None and b.history_ == a.history_
    assert (a.predict(p) == b.predict(p)).all()
    c = tiny("SASRec", epochs=2, checkpoint_dir=tmp_path, seed=1).fit(train)
    assert c.loaded_from_checkpoint_ is None, "another seed is another checkpoint"


def test_checkpoint_is_keyed_by_content(tmp_path, monkeypatch):
    """Same inputs → loaded (no training); another config field, one other train interaction
    or one changed init vector → retrained."""
    train = cyclic_sessions(100)
    ids = np.sort(train["item_id"].unique())
    table = np.random.default_rng(0).normal(size=(len(ids), 16)).astype(np.float32)
    base = dict(epochs=1, checkpoint_dir=tmp_path, init_item_embeddings=table, init_item_ids=ids)
    a = tiny("SASRec", **base).fit(train)
    assert a.fit_info_["loaded_from_checkpoint"] is None
    path = next(tmp_path.glob("*.pt"))
    other_item = train.copy()
    other_item.loc[5, "item_id"] = ids[(np.searchsorted(ids, other_item.loc[5, "item_id"]) + 1) % len(ids)]
    other_vector = table.copy()
    other_vector[3, 0] += 1e-3
    changed = [tiny("SASRec", **{**base, "learning_rate": 0.02}).fit(train),
               tiny("SASRec", **base).fit(other_item),
               tiny("SASRec", **{**base, "init_item_embeddings": other_vector}).fit(train)]
    assert all(m.fit_info_["loaded_from_checkpoint"] is None for m in changed)
    assert len(list(tmp_path.glob("*.pt"))) == 4

    def no_training(*args, **kwargs):
        raise AssertionError("trained although a checkpoint exists")

    monkeypatch.setattr(T, "fit_module", no_training)
    same = tiny("SASRec", **{**base, "init_item_embeddings": table.copy()}).fit(train.copy())
    assert same.fit_info_["loaded_from_checkpoint"] == str(path) == same.loaded_from_checkpoint_
    assert same.history_ == a.history_
    assert {k: v for k, v in same.fit_info_.items() if k != "loaded_from_checkpoint"} == \
        {k: v for k, v in a.fit_info_.items() if k != "loaded_from_checkpoint"}


# ----------------------------------------------------------------------------- errors
def test_bad_input_gives_clear_errors():
    with pytest.raises(TypeError, match="unknown config fields"):
        SASRec(emb_dims=3)
    with pytest.raises(ValueError, match="mask_prob"):
        BERT4Rec(mask_prob=0.0)
    with pytest.raises(ValueError, match="precision"):
        GRU4Rec(precision="fp8")
    with pytest.raises(ValueError, match="no interactions"):
        tiny("SASRec").fit(cyclic_sessions(5).iloc[:0])
    with pytest.raises(RuntimeError, match="fit"):
        SASRec().predict([[1, 2]])
    with pytest.raises(ValueError, match="ffn_scale"):
        SASRec(ffn_scale=0)


def test_sasrec_ffn_width_follows_ffn_scale():
    """The reference fixes SASRec's FFN inner width to emb_dim; ffn_scale widens it (BERT-style 4)."""
    for scale in (1, 4):
        m = tiny("SASRec", epochs=0, ffn_scale=scale).fit(cyclic_sessions(30))
        inner = m.module_.blocks[0]["ffn"][0]
        assert inner.out_features == scale * m.config.emb_dim


def test_sasrec_dot_head_is_the_original_prediction_layer():
    """head="dot": scores are the last hidden state times the item table, no Dense/activation."""
    m = tiny("SASRec", epochs=0, head="dot", item_bias=False).fit(cyclic_sessions(30))
    mod = m.module_.eval()
    assert not any(n.startswith("head.dense") for n, _ in mod.named_parameters())
    x = torch.randint(0, m.n_items_, (3, 5))
    with torch.no_grad():
        manual = mod.encode(x)[:, -1] @ mod.item_emb.weight[: m.n_items_].T
        torch.testing.assert_close(mod.score(x), manual)
    with pytest.raises(ValueError, match="head"):
        SASRec(head="mlp")


def test_gru4rec_reference_padding_mode():
    """pack_padding=False: the GRU reads the padding tokens, so the score of a session depends
    on how much padding precedes it in a full window, but never on batch trimming."""
    m = tiny("GRU4Rec", epochs=0, pack_padding=False).fit(cyclic_sessions(60))
    mod = m.module_.eval()
    x = torch.full((2, m.config.max_len), m.pad_)
    x[0, -3:] = torch.tensor([1, 2, 3])
    x[1, -5:] = torch.tensor([4, 5, 6, 7, 8])
    packed = tiny("GRU4Rec", epochs=0).fit(cyclic_sessions(60)).module_.eval()
    packed.load_state_dict(mod.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(mod.score(x), mod.score(x[:, -5:]), rtol=1e-5, atol=1e-5)
        assert not torch.allclose(mod.score(x), packed.score(x), atol=1e-4), "padding must be read"
    assert m.fit(cyclic_sessions(60)).predict(cyclic_prompts(10), k=5).shape[0] == 10


def test_presets_and_registry():
    assert preset_config("SASRec", "beauty")["emb_dim"] == 320
    assert preset_config("BERT4Rec", "beauty-extended")["mask_prob"] == 0.9
    assert preset_config("SASRec", "beauty-loo")["max_len"] == 50
    m = build_model("GRU4Rec", **preset_config("GRU4Rec", "beauty"))
    assert m.get_config()["hidden_dim"] == 320 and m.get_config()["emb_dim"] == 208
    assert SASRec().get_config() == {**SASRec().get_config(), **preset_config("SASRec", "beauty")}


# ---------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("name", list(MODELS))
def test_learns_an_obvious_pattern_and_beats_most_popular(name):
    train, p = cyclic_sessions(500), cyclic_prompts(200)
    pop = ndcg_at_k(MostPopular(exclude_prompt_items=True).fit(train).predict(p, k=10), p.targets, 10).mean()
    m = tiny(name, epochs=15 if name != "BERT4Rec" else 25, patience=3).fit(train)
    ndcg = ndcg_at_k(m.predict(p, k=10), p.targets, 10).mean()
    assert ndcg > 0.8 and ndcg > pop + 0.5, (ndcg, pop)
    assert m.history_[-1]["loss"] < m.history_[0]["loss"]


def test_loo_validation_cases_replace_the_inner_split():
    train, val = cyclic_sessions(150), cyclic_prompts(60, seed=5)
    m = tiny("SASRec", epochs=2, validation=val).fit(train)
    assert all("val_ndcg@20" in h for h in m.history_)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_softmax_cross_entropy_matches_pytorch(dtype):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(37, 8, generator=g).to(dtype).requires_grad_()
    W = torch.randn(101, 8, generator=g).to(dtype).requires_grad_()
    b = torch.randn(101, generator=g).requires_grad_()
    y = torch.randint(0, 101, (37,), generator=g)
    ours = SoftmaxCrossEntropy.apply(z, W, b, y)
    gz, gW, gb = torch.autograd.grad(ours * 3.0, (z, W, b))
    ref = F.cross_entropy(torch.addmm(b.to(dtype), z, W.t()).float(), y)
    rz, rW, rb = torch.autograd.grad(ref * 3.0, (z, W, b))
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(ours, ref, **tol)
    for a, r in [(gz, rz), (gW, rW), (gb, rb)]:
        torch.testing.assert_close(a.float(), r.float(), **tol)


@pytest.mark.parametrize("name", list(MODELS))
def test_bf16_autocast_trains_and_predicts(name):
    m = tiny(name, epochs=1, precision="bf16").fit(cyclic_sessions(80))
    recs, scores = m.predict(cyclic_prompts(20), return_scores=True)
    assert np.isfinite(m.history_[0]["loss"]) and recs.shape == (20, 20) and np.isfinite(scores).all()


def test_clip_per_tensor_is_keras_clipnorm():
    """Each gradient tensor is rescaled to norm <= clipnorm on its own; smaller ones untouched."""
    a = torch.nn.Parameter(torch.zeros(3))
    b = torch.nn.Parameter(torch.zeros(2))
    a.grad = torch.tensor([3.0, 4.0, 0.0])  # norm 5 -> clipped to 2
    b.grad = torch.tensor([0.6, 0.8])  # norm 1 -> unchanged
    T.clip_per_tensor([a, b], 2.0)
    torch.testing.assert_close(a.grad, torch.tensor([1.2, 1.6, 0.0]))
    torch.testing.assert_close(b.grad, torch.tensor([0.6, 0.8]))
    T.clip_per_tensor([a, b], None)  # None: no clipping
    torch.testing.assert_close(a.grad, torch.tensor([1.2, 1.6, 0.0]))


def test_optimizer_is_adamw_with_keras_epsilon_and_decoupled_decay():
    w = torch.nn.Linear(4, 1, bias=False)
    torch.nn.init.ones_(w.weight)
    opt = T.make_optimizer(w, lr=0.1, weight_decay=0.5)
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["eps"] == 1e-7
    w.weight.grad = torch.zeros_like(w.weight)  # zero gradient: only the decoupled decay acts
    opt.step()
    torch.testing.assert_close(w.weight, torch.full((1, 4), 1 - 0.1 * 0.5))
