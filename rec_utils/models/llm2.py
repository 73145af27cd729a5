"""LLM2Sequential (paper §6.3): GRU4Rec, SASRec and BERT4Rec whose item table starts from
reduced LLM embeddings — ``LLM2GRU4Rec``, ``LLM2SASRec``, ``LLM2BERT4Rec``.

Each is its base model (:mod:`rec_utils.models.neural`, the same module, trainer and
prediction; no second copy) plus one step before training::

    item texts → embeddings (config.embedding: local MiniLM by default, mpnet, a file, OpenAI;
    cached on disk) → reduced to emb_dim (PCA by default; random projection, autoencoder, LDA
    with item classes or k-means pseudo-classes, variance selection) → rows of the train items
    → [permuted across items] → [rescaled] → the base model's ``init_item_embeddings`` hook

::

    m = LLM2SASRec(**preset_config("LLM2SASRec", "beauty"), seed=0).fit(split.train, items=dataset.items)
    m = build_model("LLM2GRU4Rec", init="permuted", reduction="random", embedding_model="...")
    m = LLM2BERT4Rec(embeddings=emb, emb_dim=64)      # precomputed raw vectors: nothing is embedded

Configuration (``LLM2<Base>Config``) = every field of the base model's config + these
(:class:`LLM2Fields`), all of them part of the run key (:class:`~rec_utils.setting.Setting`)
and of the checkpoint key (the aligned init table is too):

* ``embedding`` — an :class:`~rec_utils.text.EmbeddingSpec`; the constructor also takes its
  fields flat (``provider``, ``embedding_model``, ``reduction``, ...,
  :data:`rec_utils.text.FLAT_KEYS`). What is not given takes the LLM2 defaults, not the spec's:
  ``reduction="pca"`` (the RecSys'23 LLM2BERT4Rec and most extended optima, §6.3),
  ``reduced_dim = emb_dim`` (another value is an error: the reduction's target size *is* the
  model's ``emb_dim``, §5.2) and ``normalize=False`` (the reference's LLM2Sequential path uses the
  raw reducer output, :mod:`rec_utils.text.reduction`) wherever the spec leaves them to the model
  (None); a dict and an ``EmbeddingSpec`` with the same fields are the same spec
  (:meth:`~rec_utils.text.EmbeddingSpec.coerce`). ``reduction="none"``: the raw vectors.
* ``reduce_on`` — ``"catalogue"`` (default, the reference and §5.2: the reducer is fitted on
  every item with a vector, test-only items included; text only, no interactions) or
  ``"train"`` (fitted on the train items only, like SKNNEmb). Either way the table gets the rows
  of the train items (the model's vocabulary).
* ``init`` — ``"llm"`` (each item's own reduced vector), ``"permuted"`` (§8.1: the *same*
  reduced vectors shuffled across the train items by a seeded permutation: row i gets the
  vector of item ``perm[i]``, so the table has exactly the same set of rows, i.e. the same
  statistics, without the semantics) or ``"random"`` (no LLM vectors: exactly the base model,
  a check that the wrapper adds nothing else). ``permutation_seed`` seeds the permutation;
  None (default) = the model's ``seed``, so a 3-seed run also averages over 3 permutations.
* ``init_scale`` — ``"as_reduced"`` (default; **what the reference does**: the raw reducer output
  is written into the table, whatever its scale — PCA of unit-norm MiniLM vectors to 64 dims
  has entries of RMS ≈ 0.09, about 3× the base init) or ``"base_std"`` (one scalar for the
  whole matrix so that the RMS of its entries equals the base init's std,
  :data:`BASE_INIT_STD` = 0.05/√3 of Keras' uniform(±0.05); directions and relative norms
  — the semantics — are kept, only the overall scale changes).
* ``freeze`` — keep the item table fixed during training (``requires_grad=False``: no gradient,
  no AdamW update, no weight decay). The head stays **tied**: the same frozen table is the
  output matrix, so freezing fixes the input *and* the output item embeddings; what still learns
  is the encoder, the head's Dense projection and the per-item bias (with ``item_bias=False``,
  e.g. the ``beauty-loo`` SASRec, no per-item parameter learns at all). The whole table freezes,
  padding row and BERT4Rec's mask-token row included (one tensor): BERT4Rec's mask token keeps
  its random init. ``freeze_epochs=k`` freezes it for the first k epochs only, then fine-tunes
  it (an ``on_epoch`` schedule, chained before the caller's callback; as with any callback the
  checkpoint cache is bypassed).
* ``item_table`` (issue 23) — ``"trainable"`` (default, the paper: the table is fine-tuned end to
  end) or a frozen text table with a small trainable part
  (:class:`~rec_utils.models.neural.layers.FrozenItemTable`, input and tied output alike):
  ``"adapter"`` / ``"adapter_mlp"`` — a linear / residual-MLP projection of the frozen vectors,
  identity at init (LLM2Rec style); ``"offset"`` — the frozen vector plus a trainable per-item
  offset whose norm stays below ``offset_radius`` × the RMS norm of the item rows (``offset_bound``
  ``"tanh"`` or ``"clip"``; Let It Go? Not Quite, RecSys'25). Not combinable with ``freeze`` /
  ``freeze_epochs``.
* Further issue-23 options live elsewhere: ``whiten`` (whitening before the reduction) and
  ``reduction="variance"`` (LLMInit's variance-based dimension selection) in the embedding spec
  (:mod:`rec_utils.text.reduction`), ``embedding_model="sentence-transformers/all-mpnet-base-v2"``
  (the larger local embedder, ``make embedders``; a clear error when it is not installed), and the
  training objective ``loss`` (sampled softmax with logQ, gBCE) of every neural model
  (:mod:`rec_utils.models.neural.objectives`). :data:`LLM2_VARIANTS` names them for the ablation.
* ``pad_dims`` — when the reduced vectors have fewer dimensions than ``emb_dim`` (the embedder
  is smaller, e.g. MiniLM's 384 < 448 of the extended optima, or LDA's #classes − 1): False
  (default) builds the model with the smaller size (the reference's rule for LDA); True keeps
  ``emb_dim`` and fills only the first columns, the others keep the base model's random init
  (same architecture as the base model: the like-for-like presets use it). More dimensions than
  ``emb_dim`` (only without a reduction) are an error.

The vocabulary rows are overwritten; padding (and BERT4Rec's mask) rows keep the base model's
random init, as in the reference. The seed is set by the base ``fit`` after the vectors are
made, so every other weight starts exactly as the base model's with the same config and seed:
LLM2 vs base vs permuted with the same seeds differ only in the init table.

After ``fit``: everything of the base model, and ``fit_info_["llm2"]``: init, vector_dim,
emb_dim_used, scale_factor, reduce_on, n_vectors, n_missing_text, provider, model,
vectors_fingerprint, permutation_seed (permuted only), init_s (seconds of the LLM2 step: embedding
lookup, reduction, permutation, scaling).

Deviations (from the paper / reference):
    * The default embedder is local all-MiniLM-L6-v2 (384-d) instead of OpenAI ada-002
      (1,536-d) or PaLM gecko (768-d), which are not reachable offline; presets keep the paper's
      reduction but not its embedder (set ``provider``/``embedding_model`` to change it). Sizes
      above the embedder's are clipped (or padded, ``pad_dims``).
    * LDA on Beauty uses k-means pseudo-classes (``lda_labels="kmeans"``): the authors' item
      classes are in their unavailable embedding files.
    * Random projection, autoencoder and k-means are seeded with the model's seed (the
      reference's random projection is unseeded).
    * The permutation is over the train items (the rows of the table), not the whole catalogue,
      so that the permuted table holds exactly the same vectors as the true one.
    * ``init_scale="base_std"``, ``freeze``, ``freeze_epochs``, ``pad_dims``,
      ``reduce_on="train"``, ``item_table`` and the issue-23 options are beyond the paper
      (defaults = the reference).
"""
from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from ..text import EmbeddingSpec, ItemEmbeddings, merge_flat_keys
from .base import UsesItemVectors
from .neural import BERT4Rec, BERT4RecConfig, GRU4Rec, GRU4RecConfig, SASRec, SASRecConfig
from .neural.bert4rec import BERT4RecModule
from .neural.gru4rec import GRU4RecModule
from .neural.layers import ITEM_TABLES, OFFSET_BOUNDS, FrozenItemTable
from .neural.sasrec import SASRecModule

INITS = ("llm", "permuted", "random")
INIT_SCALES = ("as_reduced", "base_std")
REDUCE_ON = ("catalogue", "train")
DEFAULT_REDUCTION = "pca"
#: Std of the base models' item-table init: Keras' uniform(−0.05, 0.05) (``layers.glorot_``).
BASE_INIT_STD = 0.05 / math.sqrt(3.0)
#: Runtime arguments of the base models (not config fields, not in the run key).
RUNTIME_ARGS = ("device", "checkpoint_dir", "num_threads", "progress", "validation", "on_epoch")


#: The embedding fields an LLM2 model decides where the spec leaves them to the model (None):
#: PCA (to emb_dim) and the raw reducer output (the reference's LLM2Sequential path).
LLM2_EMBEDDING_DEFAULTS = {"reduction": DEFAULT_REDUCTION, "normalize": False}


def llm2_embedding(value, emb_dim: int) -> EmbeddingSpec:
    """The embedding spec of an LLM2 model of size ``emb_dim`` from None, a dict of spec fields
    or an :class:`EmbeddingSpec` — one form: :meth:`EmbeddingSpec.coerce` with
    :data:`LLM2_EMBEDDING_DEFAULTS` for the fields left to the model (None), and
    ``reduced_dim = emb_dim`` when the vectors are reduced and no size is given.
    Raises ValueError when a reduction's ``reduced_dim`` is not ``emb_dim``."""
    spec = EmbeddingSpec.coerce(value, **LLM2_EMBEDDING_DEFAULTS, reduced_dim=int(emb_dim))
    if spec.reduces and spec.reduced_dim != emb_dim:
        raise ValueError(f"the reduction's size is the model's emb_dim ({emb_dim}), got reduced_dim="
                         f"{spec.reduced_dim}; set emb_dim instead (or leave reduced_dim out)")
    return spec


@dataclass
class LLM2Fields:
    """The fields LLM2Sequential adds to its base model's config (module docstring)."""

    # item texts → vectors → reduced to emb_dim; None / a dict: the LLM2 defaults (PCA to emb_dim, raw output)
    embedding: EmbeddingSpec | None = None
    init: str = "llm"  # str: "llm" | "permuted" (§8.1: the vectors shuffled across items) | "random" (= base)
    permutation_seed: int | None = None  # int|None: seed of the "permuted" shuffle; None = the model's seed
    init_scale: str = "as_reduced"  # str: "as_reduced" (raw reducer output, reference) | "base_std" (RMS = base init std)
    freeze: bool = False  # bool: item table (= the tied output matrix) fixed during training
    freeze_epochs: int = 0  # int: frozen for the first k epochs, then fine-tuned (0 = not scheduled)
    reduce_on: str = "catalogue"  # str: reducer fitted on the "catalogue" (reference) or the "train" items
    pad_dims: bool = False  # bool: vectors shorter than emb_dim: False = smaller model (reference), True = rest random
    # issue 23: keep the text vectors frozen and learn only a small part (FrozenItemTable); the
    # paper fine-tunes the whole table, which lets rare items drift away from their text
    item_table: str = "trainable"  # str: "trainable" (paper) | "adapter" | "adapter_mlp" (frozen + identity-init projection, LLM2Rec) | "offset" (frozen + bounded offset, Let It Go)
    offset_radius: float = 0.1  # float: item_table="offset": bound on each offset's norm, as a share of the frozen item rows' RMS norm
    offset_bound: str = "tanh"  # str: item_table="offset": "tanh" (smooth rescaling, < radius) | "clip" (projection onto the ball)

    def __post_init__(self):
        self.embedding = llm2_embedding(self.embedding, self.emb_dim)
        for name, allowed in (("init", INITS), ("init_scale", INIT_SCALES), ("reduce_on", REDUCE_ON)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {getattr(self, name)!r}")
        if self.freeze_epochs < 0:
            raise ValueError(f"freeze_epochs must be >= 0, not {self.freeze_epochs}")
        if self.freeze and self.freeze_epochs:
            raise ValueError("freeze=True freezes the table for the whole training; freeze_epochs schedules "
                             "it for the first epochs: give one of them")
        if self.item_table not in ITEM_TABLES:
            raise ValueError(f"item_table must be one of {ITEM_TABLES}, not {self.item_table!r}")
        if self.offset_bound not in OFFSET_BOUNDS:
            raise ValueError(f"offset_bound must be one of {OFFSET_BOUNDS}, not {self.offset_bound!r}")
        if not self.offset_radius > 0:
            raise ValueError(f"offset_radius must be > 0, not {self.offset_radius}")
        if self.item_table != "trainable" and (self.freeze or self.freeze_epochs):
            raise ValueError(f"item_table={self.item_table!r} already keeps the text vectors frozen (and trains "
                             "its adapter/offset); freeze / freeze_epochs are for the trainable table")


@dataclass
class LLM2GRU4RecConfig(LLM2Fields, GRU4RecConfig):
    """GRU4Rec's fields (:class:`GRU4RecConfig`) + :class:`LLM2Fields`."""


@dataclass
class LLM2SASRecConfig(LLM2Fields, SASRecConfig):
    """SASRec's fields (:class:`SASRecConfig`) + :class:`LLM2Fields`."""


@dataclass
class LLM2BERT4RecConfig(LLM2Fields, BERT4RecConfig):
    """BERT4Rec's fields (:class:`BERT4RecConfig`) + :class:`LLM2Fields`."""


class LLM2Sequential(UsesItemVectors):
    """The LLM2Sequential step on top of a sequential model; mixed in before the base class
    (``class LLM2SASRec(LLM2Sequential, SASRec)``). See the module docstring.

    Args:
        embeddings: raw (unreduced) item vectors (:class:`~rec_utils.text.ItemEmbeddings`, any
            row order) or None: ``fit`` embeds the ``items`` texts with ``config.embedding``
            (cached on disk). Runtime, like LLMSeqSim's: not part of the config.
        device, checkpoint_dir, num_threads, progress, validation, on_epoch: as the base model
            (:class:`~rec_utils.models.neural.base.SequentialRecommender`); ``device`` also
            runs the embedding model and an autoencoder reduction.
        **config: the base model's config fields and :class:`LLM2Fields`, the embedding
            fields flat or as ``embedding=``. ``init_item_embeddings`` / ``init_item_ids`` are
            not accepted (the table comes from the embedding; use the base model for a
            hand-made one).
    """

    base: type = None  # the base model class (SASRec, ...)
    module_class: type = None  # its network (SASRecModule, ...)

    def __init__(self, embeddings: ItemEmbeddings | None = None, **kwargs):
        for key in ("init_item_embeddings", "init_item_ids"):
            if kwargs.pop(key, None) is not None:
                raise TypeError(f"{self.name}: the init table comes from config.embedding, {key} is not an "
                                f"argument; use {self.base.name} for a hand-made table")
        runtime = {k: kwargs.pop(k) for k in RUNTIME_ARGS if k in kwargs}
        super().__init__(**runtime, **merge_flat_keys(kwargs, self.name))
        self.embeddings = embeddings
        self._vectors = self._vector_ids = None
        self.emb_dim_used_ = self.config.emb_dim

    # ------------------------------------------------------------------ the LLM2 step
    def init_vectors(self, train_item_ids, items=None) -> ItemEmbeddings:
        """The reduced vectors of the train items (rows sorted by item id), before permutation
        and scaling: ``config.embedding`` on ``self.embeddings`` (embedded from ``items`` when
        None), the reducer fitted per ``reduce_on``, seeded with the model's seed."""
        c = self.config
        spec = c.embedding
        if self.embeddings is None:
            self.embeddings = spec.embed(items, device=self.device)
        ids = np.unique(np.asarray(train_item_ids, dtype=np.int64))
        if c.reduce_on == "train":
            return spec.item_vectors(items, fit_on=ids, embeddings=self.embeddings, device=self.device, seed=c.seed)
        return spec.item_vectors(items, embeddings=self.embeddings, device=self.device, seed=c.seed).subset(ids)

    def _prepare(self, train: pd.DataFrame, items) -> dict:
        """Vectors of the train items for the table (permuted, scaled) and the model size."""
        c = self.config
        vecs = self.init_vectors(train["item_id"].to_numpy(), items)
        Z = np.asarray(vecs.vectors, dtype=np.float32)
        d = Z.shape[1]
        if d > c.emb_dim:
            raise ValueError(f"{self.name}: the vectors have {d} dimensions, more than emb_dim={c.emb_dim}; "
                             "reduce them (reduction=...) or raise emb_dim")
        if d < c.emb_dim:
            warnings.warn(f"{self.name}: the reduced vectors have {d} < emb_dim={c.emb_dim} dimensions "
                          f"({vecs.provider}/{vecs.model}, {c.embedding.reduction}); "
                          + ("the remaining columns keep the random init (pad_dims)" if c.pad_dims else
                             f"the model is built with emb_dim {d} (set pad_dims=True to keep {c.emb_dim})"),
                          RuntimeWarning, stacklevel=3)
        extra = {}
        if c.init == "permuted":
            seed = c.seed if c.permutation_seed is None else c.permutation_seed
            Z = Z[np.random.default_rng(seed).permutation(len(Z))]
            extra["permutation_seed"] = seed
        scale = 1.0
        if c.init_scale == "base_std":
            rms = float(np.sqrt(np.mean(np.square(Z, dtype=np.float64))))
            scale = BASE_INIT_STD / rms if rms > 0 else 1.0
            Z = (Z * scale).astype(np.float32)
        self._vectors, self._vector_ids = Z, vecs.item_ids
        self.emb_dim_used_ = c.emb_dim if c.pad_dims else d
        missing = vecs.missing_text
        return {"vector_dim": d, "scale_factor": scale, "n_vectors": len(Z), "provider": vecs.provider,
                "model": vecs.model, "n_missing_text": int(missing.sum()) if missing is not None else 0,
                "vectors_fingerprint": vecs.fingerprint, **extra}

    def _base_config(self):
        """The base model's config (its fields of ``self.config``) at the size actually built."""
        c = self.config
        base = self.base.config_class(**{f.name: getattr(c, f.name) for f in fields(self.base.config_class)})
        base.emb_dim = self.emb_dim_used_
        return base

    def build_module(self, n_items: int):
        module = self.module_class(n_items, self._base_config())
        if self._vectors is not None:
            if not np.array_equal(self._vector_ids, self.index_.ids):
                raise RuntimeError(f"{self.name}: init vectors are not aligned with the train items")
            table = module.item_emb.weight.detach()[:n_items].cpu().numpy().copy()
            table[:, : self._vectors.shape[1]] = self._vectors  # pad_dims: the other columns stay random
            self.init_item_embeddings, self.init_item_ids = table, self._vector_ids
        if self.config.freeze or self.config.freeze_epochs:
            module.item_emb.weight.requires_grad_(False)
        if self.config.item_table != "trainable":
            self._frozen_table(module, n_items)
        return module

    def _frozen_table(self, module, n_items: int) -> None:
        """Replace the module's item table by a :class:`FrozenItemTable` over its current rows (the
        init rows written in; padding/mask rows at their random init). The offset's radius is
        ``offset_radius`` × the RMS norm of the item rows; recorded as ``self.offset_radius_abs_``."""
        import torch

        c = self.config
        base = module.item_emb.weight.detach().clone()
        if self.init_item_embeddings is not None:
            base[:n_items] = torch.from_numpy(self._aligned_init_table(base.shape[1]))
        rms = float(base[:n_items].double().square().sum(1).mean().sqrt())
        self.offset_radius_abs_ = c.offset_radius * rms if c.item_table == "offset" else None
        module.item_emb = FrozenItemTable(base, n_items, c.item_table, radius=self.offset_radius_abs_ or 0.0,
                                          bound=c.offset_bound)

    def _unfreeze_after(self, k: int, then):
        def on_epoch(row, module):
            if row["epoch"] == k:
                module.item_emb.weight.requires_grad_(True)
            return then(row, module) if then is not None else None

        return on_epoch


    def fit(self, train: pd.DataFrame, items: pd.DataFrame | None = None):
        c = self.config
        t0 = time.perf_counter()
        self._vectors = self._vector_ids = self.init_item_embeddings = self.init_item_ids = None
        self.emb_dim_used_ = c.emb_dim
        info = {"init": c.init, "reduce_on": c.reduce_on, "init_scale": c.init_scale}
        if c.init != "random":
            if "item_id" not in train.columns:
                raise ValueError("train needs columns session_id, item_id; missing ['item_id']")
            info.update(self._prepare(train, items))
        info["init_s"] = round(time.perf_counter() - t0, 3)
        callback = self.on_epoch
        if c.freeze_epochs:
            self.on_epoch = self._unfreeze_after(c.freeze_epochs, callback)
        try:
            super().fit(train, items)
        finally:
            self.on_epoch = callback
        self.fit_info_["llm2"] = {**info, "emb_dim_used": self.emb_dim_used_}
        if c.item_table != "trainable":
            self.fit_info_["llm2"].update(item_table=c.item_table, offset_radius_abs=self.offset_radius_abs_)
        return self


class LLM2GRU4Rec(LLM2Sequential, GRU4Rec):
    """GRU4Rec with its item table initialised from reduced LLM embeddings (module docstring)."""

    name = "LLM2GRU4Rec"
    config_class = LLM2GRU4RecConfig
    base = GRU4Rec
    module_class = GRU4RecModule


class LLM2SASRec(LLM2Sequential, SASRec):
    """SASRec with its item table initialised from reduced LLM embeddings (module docstring)."""

    name = "LLM2SASRec"
    config_class = LLM2SASRecConfig
    base = SASRec
    module_class = SASRecModule


class LLM2BERT4Rec(LLM2Sequential, BERT4Rec):
    """BERT4Rec with its item table initialised from reduced LLM embeddings (module docstring)."""

    name = "LLM2BERT4Rec"
    config_class = LLM2BERT4RecConfig
    base = BERT4Rec
    module_class = BERT4RecModule


#: LLM2 model name → its base model's name.
LLM2_BASES = {m.name: m.base.name for m in (LLM2GRU4Rec, LLM2SASRec, LLM2BERT4Rec)}


#: all-mpnet-base-v2, the larger local embedder (768-d, ``make embedders``).
MPNET = "sentence-transformers/all-mpnet-base-v2"

#: The issue-23 variants of the LLM2 recipe: name → (init, config overrides on top of the arm's
#: like-for-like config). ``init="random"`` rows are the base model with another objective (so an
#: objective's gain with text init can be told from its gain without). Used by notebook 12.
LLM2_VARIANTS = {
    "llm": ("llm", {}),  # the paper's recipe: PCA to emb_dim, trainable table, full softmax
    "whiten": ("llm", {"whiten": True, "init_scale": "base_std"}),  # PCA-whitened (unit-variance comps, rescaled to the base init's RMS)
    "variance": ("llm", {"reduction": "variance"}),  # LLMInit: the emb_dim highest-variance text dims, no rotation
    "adapter": ("llm", {"item_table": "adapter"}),  # frozen text vectors + linear adapter (LLM2Rec style)
    "adapter_mlp": ("llm", {"item_table": "adapter_mlp"}),  # frozen text vectors + residual MLP adapter
    "offset": ("llm", {"item_table": "offset"}),  # frozen text vectors + bounded offset (Let It Go)
    "mpnet": ("llm", {"embedding_model": MPNET}),  # the larger local embedder instead of MiniLM
    "base+ssm": ("random", {"loss": "sampled_softmax", "negatives": "mixed", "n_negatives": 256}),
    "llm+ssm": ("llm", {"loss": "sampled_softmax", "negatives": "mixed", "n_negatives": 256}),
    # gBCE with gSASRec's per-target negatives: on Beauty LOO (2 epochs, one seed) shared draws of 256
    # reached validation NDCG@20 0.0014, per-target draws 0.012 (full softmax 0.020)
    "base+gbce": ("random", {"loss": "gbce", "n_negatives": 256, "gbce_t": 0.75, "negative_sharing": "target"}),
    "llm+gbce": ("llm", {"loss": "gbce", "n_negatives": 256, "gbce_t": 0.75, "negative_sharing": "target"}),
}


def like_for_like(base_config: Mapping, **llm2) -> dict:
    """The LLM2 config that differs from the base model's ``base_config`` only in the init:
    the same fields, PCA to its emb_dim (``reduction`` given explicitly), ``pad_dims=True`` so the
    architecture stays the base's even where the embedder is smaller than emb_dim, plus
    ``llm2`` (e.g. ``init="permuted"``)."""
    return {**base_config, "reduction": DEFAULT_REDUCTION, "pad_dims": True, **llm2}


__all__ = ["BASE_INIT_STD", "INITS", "INIT_SCALES", "LLM2BERT4Rec", "LLM2BERT4RecConfig", "LLM2Fields",
           "LLM2GRU4Rec", "LLM2GRU4RecConfig", "LLM2SASRec", "LLM2SASRecConfig", "LLM2Sequential", "LLM2_BASES",
           "LLM2_VARIANTS", "MPNET", "REDUCE_ON", "like_for_like", "llm2_embedding"]
