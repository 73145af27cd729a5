"""Shared machinery of the sequential neural models (paper §6.4): the config base, the module
base (item table + tied head) and the ``Recommender`` wrapper that fits and predicts with the
trainer of :mod:`.trainer`.

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
* ``init_item_embeddings`` initialises the item table from a matrix (LLM2Sequential hook);
* ``fit_info_["validation"]`` (:func:`validation_record`): the best epoch's validation NDCG@10/20
  beside MostPopular's on the same validation cases, so a configuration that does not transfer to
  a dataset is flagged from validation scores, never from the test split.

Beyond the paper (issue 23, defaults = the paper): the training objective ``loss`` may be a
sampled softmax with logQ correction or gSASRec's gBCE (:mod:`.objectives`), and a model may
replace its ``item_emb`` by a :class:`.layers.FrozenItemTable` (LLM2's frozen-text variants);
everything reads the table through :meth:`SequentialModule.item_table`.

Runtime settings that do not change results (device, threads, checkpoint folder, progress
bars, the ``on_epoch`` callback) are constructor arguments, not config fields, so they do not
enter the run's config id.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ...metrics import ndcg_at_k
from ...split import Prompts, inner_validation_split
from ...utils import PROJECT_ROOT, resolve_device, short_hash
from ..base import ItemIndex, Recommender, as_prompts, topk_tensor
from ..popular import MostPopular
from . import trainer as T
from .batching import IGNORE, prompt_windows, train_sequences, trim
from .layers import TiedHead
from .objectives import SampledObjective, check_objective

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
    precision: str = "fp32"  # str: "fp32" or "bf16" (autocast; faster on CPUs with avx512_bf16); bf16 is used only where the device runs it natively, else fp32 with a warning (fit_info_ records what was used)
    time_budget_s: float | None = None  # float|None: stop after this many training seconds, for time-to-quality curves only: a wall-clock budget makes results machine-dependent (plans stop by epochs)
    seed: int = 0  # int: seeds weights, dropout, batch order, masking and the inner split
    # Training objective (issue 23, :mod:`.objectives`). "ce" = the paper's full-softmax cross-entropy
    # over the whole catalogue (faithful default); "sampled_softmax" (negatives + logQ correction) and
    # "gbce" (gSASRec) are what the strongest published SASRec numbers train with, and cost
    # O(k) instead of O(n) per target in the loss
    loss: str = "ce"  # str: "ce" | "sampled_softmax" | "gbce"
    n_negatives: int = 256  # int: k uniform negatives per batch (shared by its targets); >= #items: the whole catalogue
    negatives: str = "uniform"  # str: sampled softmax's negatives: "uniform" | "in_batch" (the batch's targets) | "mixed" (both)
    logq: bool = True  # bool: sampled softmax: subtract log q (expected draws) from each logit; without it in-batch negatives over-penalise popular items
    gbce_t: float = 0.75  # float: gBCE calibration t in [0, 1] (0 = plain BCE; gSASRec's recommended 0.75)
    negative_sharing: str = "batch"  # str: uniform negatives drawn once per "batch" (shared, one matmul) or per "target" (gSASRec; more gradient signal per step, a k×d gather per target)


#: Config fields added after checkpoints were first keyed by the whole config (issue 23): each is
#: left out of the checkpoint key while at this value, so the stored checkpoints of the default
#: path keep their keys (the default path computes exactly what it computed before them).
KEY_OMITTED_AT = {"loss": "ce", "n_negatives": 256, "negatives": "uniform", "logq": True, "gbce_t": 0.75,
                  "negative_sharing": "batch",
                  "item_table": "trainable", "offset_radius": 0.1, "offset_bound": "tanh"}


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

    #: None: the paper's full softmax (``TiedHead.loss``); else a sampled objective
    #: (:class:`.objectives.SampledObjective`, set by ``fit`` from the config's ``loss``).
    objective = None

    def encode(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def item_table(self) -> torch.Tensor:
        """The (rows, emb_dim) item table the model embeds inputs with and scores against: the
        embedding's weight, or the effective table of a :class:`.layers.FrozenItemTable`."""
        emb = self.item_emb
        return emb.weight if isinstance(emb, nn.Embedding) else emb.table()

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """(..., out_dim) hidden states → (..., n_items) catalogue logits of the tied head."""
        return self.head(h, self.item_table())

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training loss at the target positions only (y ≠ −100): full-softmax cross-entropy
        (paper), or the sampled ``objective`` when one is set."""
        h = self.encode(x)
        sel = y != IGNORE
        if self.objective is None:
            return self.head.loss(h[sel], self.item_table(), y[sel])
        z = self.head.project(h[sel])  # under the caller's autocast, like the full-softmax path
        with torch.autocast(z.device.type, enabled=False):
            return self.objective(z.float(), self.item_table().float(), self.head.bias.float(), y[sel])

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Scores over the catalogue from the last position of each row."""
        return self.logits(self.encode(x)[:, -1])


def validation_record(fit_train: pd.DataFrame, val: Prompts | None, history: list[dict],
                      best_epoch: int) -> dict | None:
    """The validation scores of a fitted neural model beside MostPopular's on the same cases.

    ``fit_train`` is what the model trained on (train minus the inner-validation sessions, or the
    whole train split under leave-one-out), ``val`` the early-stopping cases, ``history`` the
    trainer's epoch rows and ``best_epoch`` the restored epoch (1-based). MostPopular (the
    faithful one of §6.5: counts of ``fit_train``, prompt items not excluded) is fitted on the
    same interactions and scored with :func:`rec_utils.metrics.ndcg_at_k` on the same cases, which
    agrees with the trainer's NDCG (:func:`.trainer.ndcg_of_scores`). Costs one count and a
    (cases, 20) top list.

    Returns ``{"cases", "best_epoch", "ndcg@10", "ndcg@20", "most_popular_ndcg@10",
    "most_popular_ndcg@20"}`` (mean NDCG over the cases), or None without validation cases
    or without a validation score at the best epoch."""
    if val is None or not len(val):
        return None
    best = next((h for h in history if h.get("epoch") == best_epoch and "val_ndcg@20" in h), None)
    if best is None:
        return None
    recs = MostPopular().fit(fit_train).predict(val, k=20)
    targets = np.asarray(val.targets, np.int64)
    return {"cases": int(len(val)), "best_epoch": int(best_epoch),
            "ndcg@10": float(best["val_ndcg@10"]), "ndcg@20": float(best["val_ndcg@20"]),
            "most_popular_ndcg@10": float(ndcg_at_k(recs, targets, 10).mean()),
            "most_popular_ndcg@20": float(ndcg_at_k(recs, targets, 20).mean())}


class SequentialRecommender(Recommender):
    """fit/predict for a :class:`SequentialModule`; subclasses set ``name``, ``config_class``
    and implement ``build_module``, ``training_data`` and ``prediction_inputs``.

    Args:
        device: "auto" (cuda when available, else cpu), "cpu", "cuda", "cuda:1", ...
        checkpoint_dir: folder of best-weights checkpoints keyed by content (name, config,
            precision used, train interactions, validation cases, aligned init table; the seed
            is in the config); ``None`` disables caching, "auto" uses ``.cache/neural`` in the
            project. Neither read nor written while ``on_epoch`` is set (see there).
        num_threads: torch CPU threads (None: leave as is).
        progress: tqdm bars with per-epoch loss and validation NDCG@20.
        validation: evaluation cases for early stopping instead of the paper's inner split
            (e.g. the leave-one-out validation cases); the whole train split is then trained on.
        init_item_embeddings: (n, emb_dim) matrix whose rows initialise the item table
            (LLM2Sequential); row r belongs to item id ``init_item_ids[r]`` (default: row = id;
            ids must be unique; rows of items outside the train split are ignored).
        on_epoch: ``on_epoch(row, module) -> bool | None``, called after every epoch (after
            validation) with the epoch's history row (dict) and the module; True stops training
            after that epoch (``stopped_by`` "callback"); what it raises (e.g.
            ``optuna.TrialPruned``) propagates out of ``fit``. For Optuna pruning and
            freeze/unfreeze schedules (every parameter is in the optimiser). Since it may change
            what is trained and is no part of the checkpoint key, the checkpoint cache is
            bypassed while it is set.
        **config: fields of the model's config dataclass.

    After ``fit``: ``module_``, ``index_`` (item id ↔ index), ``n_items_``, ``pad_``,
    ``history_`` (one dict per epoch), ``best_epoch_``, ``loaded_from_checkpoint_`` and
    ``fit_info_``: ``{"precision_requested", "precision_used", "bf16_native", "best_epoch",
    "epochs_run", "stopped_by" ("early_stopping" | "epochs" | "time_budget" | "callback"),
    "loaded_from_checkpoint" (path or None), "validation" (:func:`validation_record`)}``.
    """

    name = "Sequential"
    config_class = SequentialConfig

    def __init__(self, *, device: str = "auto", checkpoint_dir: str | Path | None = None,
                 num_threads: int | None = None, progress: bool = True,
                 validation: Prompts | None = None,
                 init_item_embeddings: np.ndarray | None = None,
                 init_item_ids: np.ndarray | None = None,
                 on_epoch: T.EpochCallback | None = None, **config):
        names = {f.name for f in fields(self.config_class)}
        unknown = set(config) - names
        if unknown:
            raise TypeError(f"{self.name}: unknown config fields {sorted(unknown)}; known: {sorted(names)}")
        if on_epoch is not None and not callable(on_epoch):
            raise TypeError(f"{self.name}: on_epoch must be callable(row, module) or None, not {type(on_epoch).__name__}")
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
        self.on_epoch = on_epoch
        self.history_: list[dict] | None = None
        self.fit_info_: dict | None = None

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
        if c.precision not in T.PRECISIONS:
            raise ValueError(f"precision must be 'fp32' or 'bf16', not {c.precision!r}")
        check_objective(c.loss, c.n_negatives, c.negatives, c.gbce_t, c.negative_sharing)

    # -- data helpers
    def _windows(self, p: Prompts) -> np.ndarray:
        """Model inputs of prompts: their left-padded (n, max_len) index windows."""
        return self.prediction_inputs(
            prompt_windows(p, self.index_.to_index(p.items), self.config.max_len, self.pad_))

    def _aligned_init_table(self, emb_dim: int) -> np.ndarray | None:
        """The (n_items_, emb_dim) float32 rows of ``init_item_embeddings`` in item-table order
        (row i = item ``index_.ids[i]``), or None without an init table."""
        if self.init_item_embeddings is None:
            return None
        m = np.asarray(self.init_item_embeddings, dtype=np.float32)
        if m.ndim != 2 or m.shape[1] != emb_dim:
            raise ValueError(f"init_item_embeddings must be (n, {emb_dim}), got {m.shape}")
        ids = (np.arange(len(m)) if self.init_item_ids is None
               else np.asarray(self.init_item_ids, dtype=np.int64))
        if len(ids) != len(m):
            raise ValueError(f"init_item_ids has {len(ids)} ids for {len(m)} rows")
        order = np.argsort(ids, kind="stable")
        dup = ids[order][1:][ids[order][1:] == ids[order][:-1]]
        if len(dup):
            raise ValueError(f"init_item_ids must be unique; {len(np.unique(dup))} ids repeat, "
                             f"e.g. {np.unique(dup)[:5].tolist()}")
        pos = np.searchsorted(ids[order], self.index_.ids)
        pos = np.minimum(pos, len(ids) - 1)
        found = ids[order][pos] == self.index_.ids
        if not found.all():
            missing = self.index_.ids[~found][:5]
            raise ValueError(f"init_item_embeddings lack {int((~found).sum())} train items, e.g. {missing.tolist()}")
        return m[order[pos]]

    def _checkpoint_key(self, train: pd.DataFrame, val: Prompts | None, init_table: np.ndarray | None,
                        precision_used: str) -> str:
        """Content key of the best weights: name, full config (seed included), the precision
        actually used, train (session_id, item_id) rows in order, validation cases and the
        aligned init table (so the init rows' order does not matter, their values do)."""
        rows = pd.util.hash_pandas_object(train[["session_id", "item_id"]], index=False).to_numpy()
        cases = (None,) if val is None else tuple(np.asarray(a, np.int64) for a in (val.indptr, val.items, val.targets))
        config = {k: v for k, v in asdict(self.config).items() if not (k in KEY_OMITTED_AT and v == KEY_OMITTED_AT[k])}
        return short_hash(self.name, config, precision_used, rows, *cases, init_table)

    def epoch_data(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One epoch of training rows as ``fit`` trains on them, drawn with ``rng``: (inputs,
        targets) int64 arrays of shape (rows, L); targets are item indices, −100 where no loss
        is taken. Raises RuntimeError before ``fit``."""
        if not hasattr(self, "_epoch_data"):
            raise RuntimeError(f"{self.name}: call fit before epoch_data")
        return self._epoch_data(rng)

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
        init_table = self._aligned_init_table(module.item_emb.embedding_dim)
        if init_table is not None:
            with torch.no_grad():  # vocabulary rows only; padding/mask rows keep their random init
                module.item_emb.weight[: self.n_items_] = torch.from_numpy(init_table)
        module.to(self.device)
        self.module_ = module
        precision = T.resolve_precision(c.precision, self.device)
        seqs = train_sequences(fit_df, self.index_.to_index(fit_df["item_id"].to_numpy()), c.max_len + 1,
                               self.pad_)
        self._epoch_data = self.training_data(seqs)
        if c.loss != "ce":
            module.objective = SampledObjective(
                c.loss, self.n_items_, c.n_negatives, c.negatives, c.logq, c.gbce_t, seed=c.seed, device=self.device,
                negative_sharing=c.negative_sharing,
                popularity=np.bincount(self.index_.to_index(fit_df["item_id"].to_numpy()), minlength=self.n_items_))
        info = {"precision_requested": c.precision, "precision_used": precision,
                "bf16_native": T.native_bf16(self.device)}

        ckpt_path = None
        if self.checkpoint_dir is not None and self.on_epoch is None:
            key = self._checkpoint_key(train, val, init_table, precision)
            ckpt_path = Path(self.checkpoint_dir) / f"{self.name}__{key}.pt"
            ck = T.load_checkpoint(ckpt_path)
            if ck is not None:
                module.load_state_dict(ck["state"])
                self.history_, self.best_epoch_ = ck["history"], ck["best_epoch"]
                self.loaded_from_checkpoint_ = str(ckpt_path)
                self.fit_info_ = {**info, "best_epoch": ck["best_epoch"], "epochs_run": len(ck["history"]),
                                  "stopped_by": ck.get("stopped_by"), "loaded_from_checkpoint": str(ckpt_path),
                                  "validation": validation_record(fit_df, val, ck["history"], ck["best_epoch"])}
                module.eval()
                return self
        self.loaded_from_checkpoint_ = None

        vdata = None
        if val is not None and len(val):
            v_in = self._windows(val)
            vdata = (v_in, v_in, self.index_.to_index(val.targets))  # inputs, excluded window, targets
        result = T.fit_module(module, self._epoch_data, vdata, T.TrainSettings.from_config(c, precision=precision),
                              pad=self.pad_, seed=c.seed, device=self.device, progress=self.progress,
                              desc=self.name, on_epoch=self.on_epoch)
        self.history_, self.best_epoch_ = result.history, result.best_epoch
        self.fit_info_ = {**info, "best_epoch": result.best_epoch, "epochs_run": len(result.history),
                          "stopped_by": result.stopped_by, "loaded_from_checkpoint": None,
                          "validation": validation_record(fit_df, val, result.history, result.best_epoch)}
        module.eval()
        if ckpt_path is not None:
            T.save_checkpoint(ckpt_path, {"state": {k: v.cpu() for k, v in module.state_dict().items()},
                                          "history": result.history, "best_epoch": result.best_epoch,
                                          "stopped_by": result.stopped_by,
                                          "config": asdict(c), "item_ids": self.index_.ids,
                                          "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
        return self

    @torch.no_grad()
    def predict(self, prompts, k: int = 20, return_scores: bool = False, batch_size: int = 1024):
        if not hasattr(self, "module_"):
            raise RuntimeError(f"{self.name}: call fit before predict")
        p = as_prompts(prompts)
        module = self.module_.eval()
        precision = self.fit_info_["precision_used"]
        x_all = torch.as_tensor(self._windows(p), device=self.device)
        out_i, out_s = [], []
        for a in range(0, len(p), batch_size):
            x, = trim(x_all[a:a + batch_size], self.pad_)
            with T.autocast(self.device, precision):
                s = module.score(x).float()
            s = T.mask_window(s, x)
            idx, val = topk_tensor(s, k)  # equal scores: the smaller item index first (base.TIE_RULE)
            out_i.append(idx.cpu().numpy())
            out_s.append(val.cpu().numpy())
        idx = np.concatenate(out_i) if out_i else np.zeros((0, k), np.int64)
        sc = np.concatenate(out_s) if out_s else np.zeros((0, k), np.float32)
        recs = self.index_.to_ids(idx).astype(np.int64)
        return (recs, sc.astype(np.float32)) if return_scores else recs

    def item_embeddings(self) -> np.ndarray:
        """The learned (n_train_items, emb_dim) item table, rows in ``self.index_.ids`` order."""
        return self.module_.item_table()[: self.n_items_].detach().cpu().numpy()
