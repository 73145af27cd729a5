"""Shared machinery of the sequential neural models (paper §6.4): config base, building blocks
(tied projection head, self-attention block) and the ``Recommender`` wrapper that fits and
predicts with the trainer of :mod:`rec_utils.train`.

Common to GRU4Rec, SASRec and BERT4Rec:

* the last ``max_len`` (N = 20) items of a session, left-padded; item ids re-indexed over the
  train split (index ``n_items`` is padding, BERT4Rec adds ``n_items + 1`` as its mask token);
* a **tied projection head**: Dense(emb_dim, activation) → item table transposed (padding/mask
  rows excluded) → + per-item bias (zero init; the reference's is in effect a scalar, reproduced
  by ``item_bias=False``), full-softmax cross-entropy over the whole catalogue, computed only at target
  positions;
* AdamW (lr, weight decay, optional Keras-style per-tensor clipnorm), up to 100 epochs, early
  stopping on validation NDCG@20 with patience 2, best epoch restored;
* prediction excludes the items of the (truncated) input window;
* ``init_item_embeddings`` initialises the item table from a matrix (LLM2Sequential hook).

Runtime settings that do not change results (device, threads, checkpoint folder, progress
bars) are constructor arguments, not config fields, so they do not enter the run's config id.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .. import train as T
from ..split import Prompts, inner_validation_split
from ..utils import PROJECT_ROOT, resolve_device
from .base import ItemIndex, Recommender, as_prompts

DEFAULT_CHECKPOINT_DIR = PROJECT_ROOT / ".cache" / "neural"


@dataclass
class SequentialConfig:
    """Fields shared by all sequential models (the model files add theirs)."""

    max_len: int = 20  # int: last N items of a session fed to the model (paper N = 20; LOO: 50)
    emb_dim: int = 64  # int: item-embedding size d (also the head's Dense width)
    drop_rate: float = 0.2  # float: dropout probability (reference code default 0.2)
    learning_rate: float = 1e-3  # float: AdamW learning rate
    weight_decay: float = 0.0  # float: AdamW decoupled weight decay (Keras semantics: lr·wd·w)
    clipnorm: float | None = None  # float|None: per-tensor gradient-norm clip (Keras clipnorm)
    batch_size: int = 128  # int: training sequences per step (fit_batch_size in the reference)
    epochs: int = 100  # int: maximum epochs (paper: 100 with early stopping)
    patience: int = 2  # int: epochs without validation NDCG@20 gain before stopping (paper: 2)
    val_frac: float = 0.1  # float: share of train sessions held out for early stopping (paper 0.1)
    val_max_sessions: int = 500  # int: cap on held-out sessions (paper: 500)
    item_bias: bool = True  # bool: per-item output bias as the spec describes; False = what the reference computes (a scalar, a no-op under softmax), see TiedHead
    bucket: bool = True  # bool: sort by length inside pools of 50 batches so batches trim well
    precision: str = "fp32"  # str: "fp32" or "bf16" (autocast; faster on CPUs with avx512_bf16)
    time_budget_s: float | None = None  # float|None: stop after this many training seconds
    seed: int = 0  # int: seeds weights, dropout, batch order, masking and the inner split


# --------------------------------------------------------------------------- building blocks
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "linear": nn.Identity}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, not {name!r}")
    return ACTIVATIONS[name]()


def glorot_(module: nn.Module) -> None:
    """Keras defaults: Glorot-uniform kernels, zero biases, uniform(±0.05) embeddings."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.uniform_(m.weight, -0.05, 0.05)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class SoftmaxCrossEntropy(torch.autograd.Function):
    """Mean full-softmax cross-entropy of ``z @ W.T + b`` against ``y``, with few passes over
    the (targets × catalogue) logits: one matmul, one fused softmax (row-local, cache
    friendly), a gather; the backward subtracts the one-hot in place and scales the small
    matmul results instead of the big matrix. Same value and gradients as
    ``F.cross_entropy(F.linear(z, W, b), y)`` (the per-target loss is capped at −log(1e-30) ≈ 69
    where the target's probability underflows in float32)."""

    @staticmethod
    def forward(ctx, z, W, b, y):
        logits = torch.addmm(b.to(z.dtype), z, W.t())
        p = torch.softmax(logits.float(), dim=1)
        del logits
        loss = -torch.log(p.gather(1, y[:, None]).clamp_min(1e-30)).mean()
        ctx.save_for_backward(z, W, y, p)
        return loss

    @staticmethod
    def backward(ctx, g):
        z, W, y, p = ctx.saved_tensors
        p.scatter_add_(1, y[:, None], torch.full((len(y), 1), -1.0, device=p.device))  # p - onehot
        scale = g / len(y)
        gb = p.sum(0) * scale if ctx.needs_input_grad[2] else None
        pc = p.to(z.dtype)
        gz = (pc @ W) * scale.to(z.dtype) if ctx.needs_input_grad[0] else None
        gW = (pc.t() @ z) * scale.to(z.dtype) if ctx.needs_input_grad[1] else None
        return gz, gW, (gb.to(W.dtype) if gb is not None else None), None


class TiedHead(nn.Module):
    """Dense(in → emb_dim, activation) → ``@ item_table[:n_items].T`` → + bias.

    The item table is *passed in* at call time, so the only output weights are the shared
    embeddings (no separate output matrix exists).

    The bias (``item_bias=True``, the default) is one learnable value per item, zero-initialised,
    as the spec and the reference's docstring describe. Deviation note: the reference's
    ``BiasLayer`` creates its weight with shape ``input_shape[2:]``, meant for (batch, N, items)
    inputs, but every model feeds it 2-D (targets, items) logits, so what it actually learns is
    one scalar added to every logit, which the softmax cancels. ``item_bias=False`` reproduces
    that (no per-item bias)."""

    def __init__(self, in_dim: int, emb_dim: int, n_items: int, act: str, item_bias: bool = True,
                 project: bool = True):
        super().__init__()
        if not project and in_dim != emb_dim:
            raise ValueError(f"a head without projection needs in_dim == emb_dim, got {in_dim} and {emb_dim}")
        # project=False: the original SASRec's prediction layer, a plain dot product of the
        # last hidden state with the item table (no Dense, no activation)
        self.dense = nn.Linear(in_dim, emb_dim) if project else nn.Identity()
        self.act = activation(act) if project else nn.Identity()
        if item_bias:
            self.bias = nn.Parameter(torch.zeros(n_items))
        else:  # constant zeros: the reference's scalar bias cancels in the softmax
            self.register_buffer("bias", torch.zeros(n_items), persistent=False)
        self.n_items = n_items

    def forward(self, h: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        z = self.act(self.dense(h))
        return F.linear(z, table[: self.n_items], self.bias)

    def loss(self, h: torch.Tensor, table: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the logits of ``h`` against ``y`` (see SoftmaxCrossEntropy)."""
        z = self.act(self.dense(h))
        w = table[: self.n_items]
        if torch.is_autocast_enabled(z.device.type):  # the custom function runs outside autocast
            w = w.to(z.dtype)
        with torch.autocast(z.device.type, enabled=False):
            return SoftmaxCrossEntropy.apply(z, w, self.bias, y)


class SelfAttention(nn.Module):
    """Multi-head self-attention with ``h`` heads of size emb_dim // h on PyTorch's fused
    ``scaled_dot_product_attention``; ``allowed`` (B, 1, L, L) bool, True = may attend."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        if heads < 1 or d // heads < 1:
            raise ValueError(f"emb_dim {d} and heads {heads}: need 1 <= heads <= emb_dim")
        self.h, self.dk = heads, d // heads
        self.qkv = nn.Linear(d, 3 * heads * self.dk)
        self.out = nn.Linear(heads * self.dk, d)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.h, self.dk).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(b, n, self.h * self.dk))


class FeedForward(nn.Sequential):
    def __init__(self, d: int, inner: int, act: str, dropout: float):
        super().__init__(nn.Linear(d, inner), activation(act), nn.Dropout(dropout), nn.Linear(inner, d))


class SequentialModule(nn.Module):
    """Base of the three networks: item table (+ padding row, + BERT mask row) and tied head.
    Subclasses implement ``encode(x) -> (B, L, out_dim)``."""

    def __init__(self, n_items: int, emb_dim: int, out_dim: int, act: str, extra_tokens: int = 1,
                 item_bias: bool = True, project_head: bool = True):
        super().__init__()
        self.n_items = n_items
        self.pad = n_items
        self.item_emb = nn.Embedding(n_items + extra_tokens, emb_dim)
        self.head = TiedHead(out_dim, emb_dim, n_items, act, item_bias, project=project_head)

    def encode(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h, self.item_emb.weight)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Full-softmax cross-entropy at the target positions only (y ≠ −100)."""
        h = self.encode(x)
        sel = y != T.IGNORE
        return self.head.loss(h[sel], self.item_emb.weight, y[sel])

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Scores over the catalogue from the last position of each row."""
        return self.logits(self.encode(x)[:, -1])


def attention_mask(x: torch.Tensor, pad: int, causal: bool) -> torch.Tensor:
    """(B, 1, L, L) bool: keys that are real items (and, if causal, not in the future); every
    position may attend to itself so fully padded rows never produce NaN."""
    n = x.shape[1]
    real = (x != pad)[:, None, None, :]
    eye = torch.eye(n, dtype=torch.bool, device=x.device)
    allowed = real | eye
    if causal:
        allowed = allowed & torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
    return allowed


# ------------------------------------------------------------------------------ wrapper
class SequentialRecommender(Recommender):
    """fit/predict for a :class:`SequentialModule`; subclasses set ``name``, ``config_class``
    and implement ``build_module``, ``training_data`` and ``prediction_inputs``.

    Args:
        device: "auto" (cuda when available, else cpu), "cpu", "cuda", "cuda:1", ...
        checkpoint_dir: folder of best-weights checkpoints keyed by config + train data +
            validation + init embeddings + seed; ``None`` disables caching, "auto" uses
            ``.cache/neural`` in the project.
        num_threads: torch CPU threads (None: leave as is).
        progress: tqdm bars with per-epoch loss and validation NDCG@20.
        validation: evaluation cases for early stopping instead of the paper's inner split
            (e.g. the leave-one-out validation cases); the whole train split is then trained on.
        init_item_embeddings: (n, emb_dim) matrix whose rows initialise the item table
            (LLM2Sequential); row r belongs to item id ``init_item_ids[r]`` (default: row = id).
        **config: fields of the model's config dataclass.
    """

    name = "Sequential"
    config_class = SequentialConfig

    def __init__(self, *, device: str = "auto", checkpoint_dir: str | Path | None = None,
                 num_threads: int | None = None, progress: bool = True,
                 validation: Prompts | None = None,
                 init_item_embeddings: np.ndarray | None = None,
                 init_item_ids: np.ndarray | None = None, **config):
        names = {f.name for f in fields(self.config_class)}
        unknown = set(config) - names
        if unknown:
            raise TypeError(f"{self.name}: unknown config fields {sorted(unknown)}; known: {sorted(names)}")
        self.config = self.config_class(**config)
        self._validate_config()
        self.device = resolve_device(device)
        self.checkpoint_dir = (DEFAULT_CHECKPOINT_DIR if checkpoint_dir == "auto" else
                               Path(checkpoint_dir) if checkpoint_dir is not None else None)
        self.num_threads = num_threads
        self.progress = progress
        self.validation = validation
        self.init_item_embeddings = init_item_embeddings
        self.init_item_ids = init_item_ids
        self.history_: list[dict] | None = None

    # -- hooks for subclasses
    def build_module(self, n_items: int) -> SequentialModule:  # pragma: no cover - abstract
        raise NotImplementedError

    def training_data(self, train_seqs: np.ndarray):
        """``epoch_data(rng) -> (inputs, targets)`` from the (n, max_len + 1) left-padded train
        sessions (one extra column so that shifted targets fit)."""
        raise NotImplementedError  # pragma: no cover

    def prediction_inputs(self, window: np.ndarray) -> np.ndarray:
        """Model input from the (n, max_len) left-padded prompt windows (default: as is)."""
        return window

    def _validate_config(self) -> None:
        c = self.config
        if c.max_len < 1:
            raise ValueError(f"max_len must be >= 1, not {c.max_len}")
        if c.emb_dim < 1 or c.batch_size < 1 or c.epochs < 0:
            raise ValueError(f"{self.name}: emb_dim, batch_size must be >= 1 and epochs >= 0")
        if not 0.0 <= c.drop_rate < 1.0:
            raise ValueError(f"drop_rate must be in [0, 1), not {c.drop_rate}")
        if c.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', not {c.precision!r}")

    # -- data helpers
    def _windows(self, p: Prompts, width: int) -> np.ndarray:
        """Left-padded (n, width) index windows of prompts; unknown items dropped."""
        idx = self.index_.to_index(p.items)
        keep = idx >= 0
        case = np.repeat(np.arange(len(p)), p.lengths)
        lens = np.bincount(case[keep], minlength=len(p))
        indptr = np.r_[0, np.cumsum(lens)].astype(np.int64)
        return T.left_pad(indptr, idx[keep], width, self.pad_)

    def _fingerprint(self, train: pd.DataFrame, val: Prompts | None) -> str:
        h = hashlib.sha256()
        h.update(self.name.encode())
        h.update(json.dumps(asdict(self.config), sort_keys=True, default=str).encode())
        h.update(pd.util.hash_pandas_object(train[["session_id", "item_id"]], index=False).to_numpy().tobytes())
        if val is not None:
            for a in (val.indptr, val.items, val.targets):
                h.update(np.ascontiguousarray(a).tobytes())
        if self.init_item_embeddings is not None:
            h.update(np.ascontiguousarray(self.init_item_embeddings, dtype=np.float32).tobytes())
            if self.init_item_ids is not None:
                h.update(np.ascontiguousarray(self.init_item_ids, dtype=np.int64).tobytes())
        return h.hexdigest()[:16]

    def _init_embeddings(self, module: SequentialModule) -> None:
        m = np.asarray(self.init_item_embeddings, dtype=np.float32)
        if m.ndim != 2 or m.shape[1] != module.item_emb.embedding_dim:
            raise ValueError(f"init_item_embeddings must be (n, {module.item_emb.embedding_dim}), "
                             f"got {m.shape}")
        ids = (np.arange(len(m)) if self.init_item_ids is None
               else np.asarray(self.init_item_ids, dtype=np.int64))
        if len(ids) != len(m):
            raise ValueError(f"init_item_ids has {len(ids)} ids for {len(m)} rows")
        order = np.argsort(ids, kind="stable")
        pos = np.searchsorted(ids[order], self.index_.ids)
        pos = np.minimum(pos, len(ids) - 1)
        found = ids[order][pos] == self.index_.ids
        if not found.all():
            missing = self.index_.ids[~found][:5]
            raise ValueError(f"init_item_embeddings lack {int((~found).sum())} train items, e.g. {missing.tolist()}")
        with torch.no_grad():  # vocabulary rows only; padding/mask rows keep their random init
            module.item_emb.weight[: len(self.index_)] = torch.from_numpy(m[order[pos]])

    # -- fit / predict
    def fit(self, train: pd.DataFrame, items: pd.DataFrame | None = None) -> "SequentialRecommender":
        c = self.config
        missing = {"session_id", "item_id"} - set(train.columns)
        if missing:
            raise ValueError(f"train needs columns session_id, item_id; missing {sorted(missing)}")
        if len(train) == 0:
            raise ValueError("train has no interactions")
        if self.num_threads:
            torch.set_num_threads(int(self.num_threads))
        torch.manual_seed(c.seed)
        np.random.seed(c.seed % 2**32)
        self.index_ = ItemIndex(train["item_id"].to_numpy())
        self.n_items_ = len(self.index_)
        self.pad_ = self.n_items_
        if self.validation is not None:
            fit_df, val = train, as_prompts(self.validation)
        else:
            fit_df, val = inner_validation_split(train, frac=c.val_frac, max_sessions=c.val_max_sessions,
                                                 seed=c.seed)
        module = self.build_module(self.n_items_)
        if self.init_item_embeddings is not None:
            self._init_embeddings(module)
        module.to(self.device)
        self.module_ = module

        ckpt_path = None
        if self.checkpoint_dir is not None:
            ckpt_path = Path(self.checkpoint_dir) / f"{self.name}__{self._fingerprint(train, val)}.pt"
            ck = T.load_checkpoint(ckpt_path)
            if ck is not None:
                module.load_state_dict(ck["state"])
                self.history_, self.best_epoch_ = ck["history"], ck["best_epoch"]
                self.loaded_from_checkpoint_ = str(ckpt_path)
                module.eval()
                return self
        self.loaded_from_checkpoint_ = None

        indptr, items = T.session_csr(fit_df, self.index_.to_index(fit_df["item_id"].to_numpy()))
        lens = np.diff(indptr)
        seqs = T.left_pad(indptr, items, c.max_len + 1, self.pad_)[lens >= 2]
        if len(seqs) == 0:
            raise ValueError("no train session has 2 or more items")
        epoch_data = self._epoch_data = self.training_data(seqs)
        vdata = None
        if val is not None and len(val):
            v_in = self.prediction_inputs(self._windows(val, c.max_len))
            vdata = (v_in, v_in, self.index_.to_index(val.targets))  # inputs, excluded window, targets
        settings = T.TrainSettings(epochs=c.epochs, batch_size=c.batch_size, learning_rate=c.learning_rate,
                                   weight_decay=c.weight_decay, clipnorm=c.clipnorm, patience=c.patience,
                                   bucket=c.bucket, precision=c.precision, time_budget_s=c.time_budget_s)
        history, best = T.fit_module(
            module, epoch_data,
            vdata,
            settings, pad=self.pad_, seed=c.seed, device=self.device, progress=self.progress,
            desc=self.name)
        self.history_, self.best_epoch_ = history, best
        module.eval()
        if ckpt_path is not None:
            T.save_checkpoint(ckpt_path, {"state": {k: v.cpu() for k, v in module.state_dict().items()},
                                          "history": history, "best_epoch": best,
                                          "config": asdict(c), "item_ids": self.index_.ids,
                                          "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
        return self

    @torch.no_grad()
    def predict(self, prompts, k: int = 20, return_scores: bool = False, batch_size: int = 1024):
        if not hasattr(self, "module_"):
            raise RuntimeError(f"{self.name}: call fit before predict")
        p = as_prompts(prompts)
        module = self.module_.eval()
        x_all = torch.as_tensor(self.prediction_inputs(self._windows(p, self.config.max_len)),
                                device=self.device)
        kk = min(k, self.n_items_)
        out_i, out_s = [], []
        for a in range(0, len(p), batch_size):
            x, = T.trim(x_all[a:a + batch_size], self.pad_)
            with T.autocast(self.device, self.config.precision):
                s = module.score(x).float()
            s = T.mask_window(s, x, self.pad_)
            val, idx = torch.topk(s, kk, dim=1)
            idx = torch.where(torch.isfinite(val), idx, torch.full_like(idx, -1))
            out_i.append(idx.cpu().numpy())
            out_s.append(torch.where(torch.isfinite(val), val, torch.full_like(val, math.nan)).cpu().numpy())
        idx = np.concatenate(out_i) if out_i else np.zeros((0, kk), np.int64)
        sc = np.concatenate(out_s) if out_s else np.zeros((0, kk), np.float32)
        if kk < k:
            idx = np.pad(idx, ((0, 0), (0, k - kk)), constant_values=-1)
            sc = np.pad(sc, ((0, 0), (0, k - kk)), constant_values=np.nan)
        recs = self.index_.to_ids(idx).astype(np.int64)
        return (recs, sc.astype(np.float32)) if return_scores else recs

    def item_embeddings(self) -> np.ndarray:
        """The learned (n_train_items, emb_dim) item table, rows in ``self.index_.ids`` order."""
        return self.module_.item_emb.weight[: self.n_items_].detach().cpu().numpy()
