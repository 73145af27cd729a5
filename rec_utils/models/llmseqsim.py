"""LLMSeqSim: recommend the catalogue items whose text embedding is closest to the session's
(paper §6.1, reference ``main/llm_based/similarity_model/llm_seq_sim.py``).

1. Item vectors: the embeddings of every item of the catalogue, optionally reduced and
   L2-normalised — ``config.embedding`` (:class:`rec_utils.text.EmbeddingSpec`, §5.1/§5.2).
   As in the paper the reducer is fitted on the **whole catalogue** (every item with an
   embedding, including items seen only in the test split) — no interaction data is used, so
   no target leaks, but the item set is the full catalogue's.
2. Session vector from the prompt's item vectors: ``last`` (the last prompt item) or ``mean``
   (Σ wᵢ eᵢ / Σ wᵢ with a position decay of §6.1: constant_linear, scaling_linear,
   scaling_quadratic, scaling_cubic, log, harmonic, squared_harmonic; uniform when none).
   Repeated prompt items count once per occurrence, as in the reference (``dedup_prompt``
   changes that).
3. Score every catalogue item by ``cosine``, ``dot`` or ``euclidean`` similarity
   (1 / (1 + ‖x − y‖)); prompt items are excluded; exact top-k by a batched matrix product
   (torch; CUDA when present). ``predict(..., return_scores=True)`` returns the similarities
   (the hybrids of §6.6 need them).

Items without text have an all-zero raw vector (reference); with cosine their similarity is 0.
After PCA they are no longer zero (the reference behaves the same).

Deviations: prompt items unknown to the catalogue are dropped (the reference raises a
KeyError); equal similarities are ranked by the smaller item id (``base.TIE_RULE``; the
reference's argpartition order among ties is arbitrary, and so was ours before ``tie_break``:
Beauty has items with identical titles, hence identical vectors).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..decay import decay_weights
from ..text import EmbeddingSpec, ItemEmbeddings, fold_flat_keys
from ..utils import resolve_device
from .base import ItemIndex, Recommender, UsesItemVectors, as_prompts, chunks, topk_tensor

AGGREGATIONS = ("last", "mean")
SIMILARITIES = ("cosine", "dot", "euclidean")
LLMSEQSIM_DECAYS = (None, "constant_linear", "scaling_linear", "scaling_quadratic", "scaling_cubic",
                    "log", "harmonic", "squared_harmonic")


@dataclass
class LLMSeqSimConfig:
    """Hyper-parameters of LLMSeqSim (defaults: the reference's constructor defaults, local
    MiniLM instead of ada). The embedding fields live in ``embedding``; the constructor of
    :class:`LLMSeqSim` also takes them flat (``provider``, ``embedding_model``,
    ``embedding_path``, ``text_clean``, ``reduction``, ``reduced_dim``, ``whiten``,
    ``normalize``, ``lda_labels``: see :data:`rec_utils.text.FLAT_KEYS`)."""

    # item texts → vectors → reduced vectors; the reducer is fitted on the whole catalogue (§6.1)
    embedding: EmbeddingSpec = field(default_factory=EmbeddingSpec)
    aggregation: str = "last"  # session vector: "last" item or decayed "mean"
    decay: str | None = None  # position decay of "mean" (None = uniform); see LLMSEQSIM_DECAYS
    similarity: str = "cosine"  # cosine | dot | euclidean (= 1 / (1 + distance))
    dedup_prompt: bool = False  # count a repeated prompt item once (reference: every occurrence)
    filter_prompt_items: bool = True  # never recommend an item of the prompt
    batch_size: int = 1024  # prompts per matrix product
    seed: int = 0  # random projection / autoencoder / k-means seed
    tie_break: str = "id"  # equal similarities: the smaller item id first (base.TIE_RULE; the only rule)

    def __post_init__(self):
        self.embedding = EmbeddingSpec.coerce(self.embedding)
        if self.tie_break != "id":
            raise ValueError(f"tie_break must be 'id' (the smaller item id first), got {self.tie_break!r}")


class LLMSeqSim(UsesItemVectors, Recommender):
    """Embedding-similarity recommender. ``LLMSeqSim(embeddings=emb, **config)`` uses given
    (raw, unreduced) item embeddings, in any row order; without them ``fit`` embeds the
    ``items`` texts with ``config.embedding`` (cached on disk, so repeated fits cost ~0 s).

    Args:
        embeddings: raw item vectors (:class:`~rec_utils.text.ItemEmbeddings`) or None.
        device: where the embedding model, an autoencoder reduction and the matrix products
            run ("auto" = CUDA when present). A runtime choice, not a hyper-parameter: it is
            not part of ``config`` / ``get_config()``; a ``device`` key of an old stored config
            lands here.
        **config: :class:`LLMSeqSimConfig` fields, with the embedding fields flat or as
            ``embedding=EmbeddingSpec(...)`` / ``{...}``. ``TypeError`` names unknown keys,
            ``ValueError`` a field given both ways.
    """

    name = "LLMSeqSim"
    rerun_if_missing = ("tie_break",)  # lists stored before the tie rule ordered ties arbitrarily

    def __init__(self, embeddings: ItemEmbeddings | None = None, *, device: str = "auto", **config):
        self.config = LLMSeqSimConfig(**fold_flat_keys(config, LLMSeqSimConfig, self.name))
        c = self.config
        if c.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {c.aggregation!r}")
        if c.similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, got {c.similarity!r}")
        decay_weights(c.decay, np.ones(1), np.ones(1))  # validates the name
        if c.aggregation == "last" and c.decay not in (None, "none"):
            raise ValueError("a decay only applies to aggregation='mean'")
        self.embeddings = embeddings
        self.device = device

    # ------------------------------------------------------------------ fit


    def fit(self, train: pd.DataFrame | None = None, items: pd.DataFrame | None = None) -> "LLMSeqSim":
        c = self.config
        if self.embeddings is None:
            self.embeddings = c.embedding.embed(items, device=self.device)
        vecs = c.embedding.item_vectors(items, embeddings=self.embeddings, device=self.device, seed=c.seed)
        self.index_ = ItemIndex(vecs.item_ids)
        self.vectors_ = np.ascontiguousarray(vecs.vectors, dtype=np.float32)
        self.device_ = resolve_device(self.device)
        import torch  # heavy: loaded only where tensors are used

        E = torch.as_tensor(self.vectors_, device=self.device_)
        self.sq_norm_ = (E * E).sum(1)
        if c.similarity == "cosine":
            E = E / E.norm(dim=1, keepdim=True).clamp_min(1e-12)
        self.E_ = E
        return self

    # ------------------------------------------------------------------ predict

    def _session_vectors(self, p):
        """(n, dim) session vectors of the prompts ``p`` and a mask of prompts with a known item."""
        c = self.config
        n = len(p)
        case = np.repeat(np.arange(n), p.lengths)
        col = self.index_.to_index(p.items)
        keep = col >= 0
        case, col = case[keep], col[keep]
        if c.dedup_prompt and len(case):
            key = case.astype(np.int64) * (len(self.index_) + 1) + col
            _, first = np.unique(key, return_index=True)
            first = np.sort(first)
            case, col = case[first], col[first]
        length = np.bincount(case, minlength=n)
        has = length > 0
        if c.aggregation == "last":
            last = np.zeros(n, dtype=np.int64)
            last[case] = col  # ordered: the last write per case is its last item
            V = self.vectors_[last]
        else:
            starts = np.concatenate([[0], np.cumsum(length)[:-1]])
            pos = np.arange(len(case)) - starts[case] + 1
            i_from_end = length[case] - pos + 1
            w = decay_weights(c.decay, i_from_end, length[case])
            wsum = np.bincount(case, weights=w, minlength=n)
            w = w / np.maximum(wsum[case], 1e-300)
            W = sp.csr_matrix((w, (case, col)), shape=(n, len(self.index_)))
            V = np.asarray(W @ self.vectors_, dtype=np.float32)
        V[~has] = 0.0
        return V.astype(np.float32), has

    def score(self, prompts) -> np.ndarray:
        """Full (n, n_items) similarity matrix (prompt items −inf when filtered); for analysis."""
        p = as_prompts(prompts)
        return np.concatenate([self._scores_chunk(p.subset(np.arange(a, b))).cpu().numpy()
                               for a, b in chunks(len(p), self.config.batch_size)])

    def _scores_chunk(self, p):
        import torch  # heavy: loaded only where tensors are used

        c = self.config
        V, has = self._session_vectors(p)
        S = torch.as_tensor(V, device=self.device_)
        if c.similarity == "cosine":
            S = S / S.norm(dim=1, keepdim=True).clamp_min(1e-12)
            scores = S @ self.E_.T
        elif c.similarity == "dot":
            scores = S @ self.E_.T
        else:
            d2 = (S * S).sum(1, keepdim=True) + self.sq_norm_[None, :] - 2.0 * (S @ self.E_.T)
            scores = 1.0 / (1.0 + d2.clamp_min(0).sqrt())
        if c.filter_prompt_items:
            case = np.repeat(np.arange(len(p)), p.lengths)
            col = self.index_.to_index(p.items)
            k = col >= 0
            scores[torch.as_tensor(case[k], device=self.device_),
                   torch.as_tensor(col[k], device=self.device_)] = -torch.inf
        scores[torch.as_tensor(~has, device=self.device_)] = -torch.inf
        return scores

    def predict(self, prompts, k: int = 20, return_scores: bool = False):
        p = as_prompts(prompts)
        out_idx, out_val = [], []
        for a, b in chunks(len(p), self.config.batch_size):
            scores = self._scores_chunk(p.subset(np.arange(a, b)))
            idx, val = topk_tensor(scores, k)  # equal similarities: the smaller item id first
            out_idx.append(idx.cpu().numpy())
            out_val.append(val.cpu().numpy())
        if out_idx:
            idx, val = np.concatenate(out_idx), np.concatenate(out_val)
        else:
            idx, val = np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
        recs = self.index_.to_ids(idx)
        return (recs, val) if return_scores else recs
