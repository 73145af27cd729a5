"""SKNNEmb: session kNN whose prompt ↔ neighbour similarity compares session **embeddings**
(paper §6.5, reference ``main/sknn/sknn.py`` with ``use_item_embeddings=True``).

Everything else is SKNN (:mod:`rec_utils.models.sknn`): candidate neighbours share an item with
the (deduplicated, optionally ``last_n_items``-truncated) prompt, ``sample_size`` of them are
sampled (random / recent), the ``k`` most similar vote with their similarity (× idf, ×
sequential weight, sequential filter as configured).

* Item vectors: text embeddings of the **train items**, reduced and L2-normalised with a
  reducer fitted on the train items only (as the reference; LLMSeqSim fits on the catalogue):
  ``config.embedding`` (:class:`rec_utils.text.EmbeddingSpec`, §5.1/§5.2) with
  ``fit_on`` = the train items.
* Train session vector: ``training_aggregation`` (``mean`` with ``training_decay``, or
  ``last``) over the session's items in time order (repeats count, as in the reference).
* Prompt vector: ``prompt_aggregation`` over the deduplicated prompt with ``decay`` (the SKNN
  decays: linear, log, harmonic, quadratic).
* Similarity: ``dot`` or ``cosine`` between the two vectors. Similarities can be ≤ 0, so
  candidate items are those of the k neighbours whatever the sign.

The ``concat`` strategy of the reference (not in the paper's search space) is not implemented.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..decay import decay_weights
from ..text import EmbeddingSpec, ItemEmbeddings, fold_flat_keys
from .base import UsesItemVectors
from .sknn import SKNN, SKNNConfig


@dataclass
class SKNNEmbConfig(SKNNConfig):
    """SKNN's hyper-parameters (see :class:`SKNNConfig`) plus the embedding ones. The embedding
    fields live in ``embedding``; :class:`SKNNEmb` also takes them flat (see
    :data:`rec_utils.text.FLAT_KEYS`)."""

    # item texts → vectors → reduced vectors; the reducer is fitted on the train items (reference)
    embedding: EmbeddingSpec = field(default_factory=EmbeddingSpec)
    prompt_aggregation: str = "last"  # prompt vector: "mean" (with `decay`) or "last" (reference default)
    training_aggregation: str = "last"  # train-session vector: "mean" (with training_decay) or "last"
    training_decay: str | None = None  # decay of the train-session mean (SKNN decay names)

    def __post_init__(self):
        self.embedding = EmbeddingSpec.coerce(self.embedding)


class SKNNEmb(UsesItemVectors, SKNN):
    """SKNN with embedding session similarity. ``SKNNEmb(embeddings=emb, **config)``.

    Args:
        embeddings: raw item vectors (:class:`~rec_utils.text.ItemEmbeddings`, any row order)
            or None (``fit`` embeds the ``items`` texts with ``config.embedding``).
        device: where the embedding model and an autoencoder reduction run ("auto" = CUDA when
            present); a runtime choice, not in ``config`` / ``get_config()`` (a ``device`` key
            of an old stored config lands here).
        **config: :class:`SKNNEmbConfig` fields, embedding fields flat or as ``embedding=``.
    """

    config_class = SKNNEmbConfig
    signed_similarity = True

    def __init__(self, embeddings: ItemEmbeddings | None = None, *, device: str = "auto", **config):
        super().__init__(**fold_flat_keys(config, SKNNEmbConfig, "SKNNEmb"))
        c = self.config
        for name in ("prompt_aggregation", "training_aggregation"):
            if getattr(c, name) not in ("mean", "last"):
                raise ValueError(f"{name} must be 'mean' or 'last', got {getattr(c, name)!r}")
        decay_weights(c.training_decay, np.ones(1), np.ones(1))
        self.name = "SKNNEmb"
        self.embeddings = embeddings
        self.device = device


    def fit(self, train: pd.DataFrame, items: pd.DataFrame | None = None) -> "SKNNEmb":
        super().fit(train, items)
        c = self.config
        if self.embeddings is None:
            self.embeddings = c.embedding.embed(items, device=self.device)
        vecs = c.embedding.item_vectors(items, fit_on=self.index_.ids, embeddings=self.embeddings,
                                        device=self.device, seed=c.seed)
        self.item_vectors_ = np.ascontiguousarray(vecs.vectors, dtype=np.float32)
        # train-session vectors, rows in the order of SKNN's session-item matrix (sorted ids)
        sid = train["session_id"].to_numpy()
        _, row = np.unique(sid, return_inverse=True)
        col = self.index_.to_index(train["item_id"].to_numpy())
        n_s = self.T_.shape[0]
        length = np.bincount(row, minlength=n_s)
        # position from the end within each session (train is ordered by session, then time)
        order = np.argsort(row, kind="stable")
        pos = np.empty(len(row), np.int64)
        starts = np.concatenate([[0], np.cumsum(length)[:-1]])
        pos[order] = np.arange(len(row)) - starts[row[order]] + 1
        self.session_vectors_ = self._aggregate(row, col, pos, length, n_s, c.training_aggregation,
                                                c.training_decay)
        return self

    def _aggregate(self, row, col, pos, length, n_rows, how, decay):
        if how == "last":
            is_last = pos == length[row]
            last = np.zeros(n_rows, np.int64)
            last[row[is_last]] = col[is_last]
            V = self.item_vectors_[last].copy()
            V[length == 0] = 0
            return V
        i_from_end = length[row] - pos + 1
        w = decay_weights(decay, i_from_end, length[row])
        wsum = np.bincount(row, weights=w, minlength=n_rows)
        w = w / np.maximum(wsum[row], 1e-300)
        W = sp.csr_matrix((w, (row, col)), shape=(n_rows, len(self.index_)))
        return np.asarray(W @ self.item_vectors_, dtype=np.float32)

    def _pair_similarity(self, rows, sess, dot, P_w, case, col, w, length):
        c = self.config
        n = P_w.shape[0]
        # prompt vectors over the deduplicated prompt; case/col are in prompt order
        starts = np.concatenate([[0], np.cumsum(length)[:-1]])
        pos = np.arange(len(case)) - starts[case] + 1
        P = self._aggregate(case, col, pos, length, n, c.prompt_aggregation, c.decay)
        S = self.session_vectors_
        if c.similarity == "cosine":
            P = P / np.maximum(np.linalg.norm(P, axis=1, keepdims=True), 1e-12)
            S = S / np.maximum(np.linalg.norm(S, axis=1, keepdims=True), 1e-12)
        # only the sampled pairs: gather per pair in blocks to bound memory
        sim = np.empty(len(rows), np.float64)
        block = 200_000
        for a in range(0, len(rows), block):
            r, s = rows[a : a + block], sess[a : a + block]
            sim[a : a + block] = np.einsum("ij,ij->i", P[r], S[s])
        return sim
