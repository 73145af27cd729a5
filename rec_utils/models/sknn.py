"""Session-based kNN: SKNN, V-SKNN, S-SKNN, SF-SKNN (Ludewig & Jannach 2018), as in the paper.

Paper §6.5, reference ``main/sknn/sknn.py`` (``SessionBasedCF``). For a prompt:

1. drop repeated items (keep the first occurrence) and items unknown to training
   (``last_n_items`` is applied before that);
2. candidate neighbours = train sessions sharing at least one item with the prompt;
3. sample ``sample_size`` of them: ``random`` (uniform without replacement) or ``recent``
   (the most recent sessions, session time = last timestamp);
4. similarity prompt ↔ neighbour: ``dot`` or ``cosine`` between the prompt vector (binary, or
   weighted by a position ``decay`` for V-SKNN) and the binary session vector;
5. keep the ``k`` most similar neighbours;
6. score(item) = Σ over those neighbours containing the item of sim [× S-SKNN's sequential
   weight of the neighbour] [× idf(item) when ``idf_weighting``]; prompt items are excluded;
   SF-SKNN keeps only items that directly followed the prompt's last item in some train session.

Implementation: all prompts of a chunk at once with sparse matrix products; sampling and
k-nearest selection are segmented top-k operations on the sparse rows (no per-session loop).
Random sampling draws one uniform key per candidate and keeps the ``sample_size`` largest, which
is the same distribution as ``rng.choice(replace=False)``.

Deviations: ``idf_weighting`` multiplies the item score by idf(item) = 1 + ln(N / df(item)) —
that is what the reference does (the paper's text says it weights the session similarity).
Ties between equal similarities at the k-th neighbour go to the more recent train session
(``neighbour_ties="recent"``, the order recent sampling uses; the reference's argpartition order
is arbitrary; before this field the order was scipy's sparse product's, no rule, so runs stored
without the field are rerun). Ties between equal item scores follow the toolkit's one rule
(:func:`~rec_utils.models.base.topk_from_scores`): higher score first, then the smaller item id,
also at the k-th place; the reference's argpartition order among equal scores is arbitrary, so
recomputations there (and here before this rule) gave identical scores but another order of
equal-score items in about half the Beauty sessions, which moved S-SKNN by −0.4 % and V-SKNN by
+0.7 % between machines. Lists change only where scores tie. The session-item matrix is binary (the reference sums repeated
(session, item) rows; Beauty has none).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm.auto import tqdm

from ..decay import decay_weights
from .base import ItemIndex, Recommender, as_prompts, chunks, session_item_matrix, topk_from_scores


@dataclass
class SKNNConfig:
    """Hyper-parameters of the SKNN family (defaults: the reference's constructor defaults)."""

    k: int = 100  # neighbours that vote; must be <= sample_size
    sample_size: int = 500  # candidate neighbours sampled before the similarity ranking
    sampling: str = "random"  # "random" (uniform) or "recent" (most recent sessions)
    similarity: str = "cosine"  # "cosine" or "dot" between prompt and neighbour vectors
    decay: str | None = None  # V-SKNN position decay: linear, log, harmonic, quadratic
    sequential_weighting: bool = False  # S-SKNN: weight neighbours by recency of shared item
    sequential_filter: bool = False  # SF-SKNN: only items that followed the last prompt item
    idf_weighting: bool = False  # multiply item scores by idf (reference behaviour)
    last_n_items: int | None = None  # use only the last n prompt items (None = all)
    filter_prompt_items: bool = True  # never recommend an item of the prompt
    seed: int = 0  # random sampling seed
    chunk_size: int = 1000  # prompts per batched step (memory vs speed)
    tie_break: str = "id"  # equal item scores: the smaller item id first (base.TIE_RULE; the only rule)
    neighbour_ties: str = "recent"  # equal similarities at the k-th neighbour: the more recent train session first
    #: None: the faithful model (every session sharing an item is a candidate). An int m: the
    #: VMIS-kNN index (Kersbergen et al. 2022) keeps only the m most recent sessions per item
    #: (:mod:`rec_utils.models.sknn_index`); equal to the faithful model where the cap does not bind.
    index_cap: int | None = None


#: Paper names → the settings that define each variant (§6.5).
VARIANTS = {
    "SKNN": {},
    "V-SKNN": {"decay": "harmonic"},
    "S-SKNN": {"sequential_weighting": True},
    "SF-SKNN": {"sequential_filter": True},
}


def _segment_topk(rows: np.ndarray, keys: np.ndarray, k: int, tie: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of the ``k`` entries with the largest key within each row id
    (``rows`` need not be sorted; equal keys: the smaller ``tie`` first, then the earlier entry)."""
    if len(rows) == 0:
        return np.zeros(0, dtype=bool)
    order = np.lexsort((np.arange(len(rows)), *(() if tie is None else (tie,)), -keys, rows))
    r_sorted = rows[order]
    first = np.flatnonzero(np.concatenate([[True], r_sorted[1:] != r_sorted[:-1]]))
    run_len = np.diff(np.concatenate([first, [len(rows)]]))
    rank = np.arange(len(rows)) - np.repeat(first, run_len)
    mask = np.zeros(len(rows), dtype=bool)
    mask[order[rank < k]] = True
    return mask


class SKNN(Recommender):
    """SKNN and its variants; ``name`` follows the variant (V-SKNN when a decay is set, ...).

    Subclasses (SKNNEmb) change the prompt ↔ neighbour similarity through
    :meth:`_pair_similarity`; ``config_class`` is the dataclass of their hyper-parameters.
    """

    config_class = SKNNConfig
    #: lists stored before the tie rules ordered equal item scores, and equal neighbours, otherwise
    rerun_if_missing = ("tie_break", "neighbour_ties")
    #: True when similarities can be ≤ 0 (embeddings): candidates then come from a binary
    #: neighbour matrix instead of "score > 0".
    signed_similarity = False
    #: True for the implementation over the capped item → recent-sessions index (``index_cap``).
    indexed = False

    def __init__(self, **config):
        self.config = self.config_class(**config)
        c = self.config
        if c.k < 1 or c.k > c.sample_size:
            raise ValueError(f"need 1 <= k <= sample_size, got k={c.k}, sample_size={c.sample_size}")
        if c.sampling not in ("random", "recent"):
            raise ValueError(f"sampling must be 'random' or 'recent', got {c.sampling!r}")
        if c.similarity not in ("cosine", "dot"):
            raise ValueError(f"similarity must be 'cosine' or 'dot', got {c.similarity!r}")
        if c.index_cap is not None and not self.indexed:
            raise ValueError("index_cap is the indexed implementation: build it with build_model(name, index_cap=...) "
                             "or IndexedSKNN.variant(name, index_cap=...)")
        if c.tie_break != "id":
            raise ValueError(f"tie_break must be 'id' (the smaller item id first), got {c.tie_break!r}")
        if c.neighbour_ties != "recent":
            raise ValueError(f"neighbour_ties must be 'recent' (the more recent train session first), got {c.neighbour_ties!r}")
        decay_weights(c.decay, np.ones(1), np.ones(1))  # validates the decay name
        self.name = (
            "V-SKNN" if c.decay else "SF-SKNN" if c.sequential_filter
            else "S-SKNN" if c.sequential_weighting else "SKNN"
        )

    @classmethod
    def variant(cls, name: str, **config) -> "SKNN":
        """Build a paper variant by name, e.g. ``SKNN.variant("V-SKNN", k=70)``
        (``IndexedSKNN.variant`` the same over the index; ``build_model`` picks by ``index_cap``)."""
        if name not in VARIANTS:
            raise ValueError(f"unknown SKNN variant {name!r}; choose from {list(VARIANTS)}")
        return cls(**{**VARIANTS[name], **config})

    # ------------------------------------------------------------------ fit

    def fit(self, train: pd.DataFrame, items: pd.DataFrame | None = None) -> "SKNN":
        self._fit_sessions(train)
        self.TT_ = self.T_.T.tocsr()  # items × sessions
        if self.config.sequential_filter:
            idx = self.index_.to_index(train["item_id"].to_numpy())
            s = train["session_id"].to_numpy()
            same = s[1:] == s[:-1]
            a, b = idx[:-1][same], idx[1:][same]
            n = len(self.index_)
            self.successors_ = sp.csr_matrix(
                (np.ones(len(a), np.float32), (a, b)), shape=(n, n)
            )
            self.successors_.sum_duplicates()
            self.successors_.data[:] = 1.0
        return self

    def _fit_sessions(self, train: pd.DataFrame) -> None:
        """The item index, the binary sessions × items matrix ``T_``, idf, session norms and
        the recency rank of every train session (later = larger; equal times: session order)."""
        self.index_ = ItemIndex(train["item_id"].to_numpy())
        self.T_, sess_ids = session_item_matrix(train, self.index_)  # sessions × items, binary
        n_sessions = self.T_.shape[0]
        df = np.asarray(self.T_.sum(axis=0)).ravel()
        self.idf_ = 1.0 + np.log(n_sessions / np.maximum(df, 1))
        self.session_norm_ = np.sqrt(np.asarray(self.T_.sum(axis=1)).ravel())
        times = train.groupby("session_id")["timestamp"].max().reindex(sess_ids).to_numpy()
        # recency key: rank of session time (later = larger), stable on session order
        self.recency_ = np.empty(n_sessions, dtype=np.float64)
        self.recency_[np.argsort(times, kind="stable")] = np.arange(n_sessions)

    # ------------------------------------------------------------------ predict

    def _prepare_prompts(self, p):
        """Per case: deduplicated known item indices, their 1-based positions and weights."""
        c = self.config
        if c.last_n_items is not None:
            p = p.truncate(c.last_n_items)
        case = np.repeat(np.arange(len(p)), p.lengths)
        col = self.index_.to_index(p.items)
        known = col >= 0
        case, col = case[known], col[known]
        # keep the first occurrence of each (case, item)
        key = case.astype(np.int64) * (len(self.index_) + 1) + col
        _, first = np.unique(key, return_index=True)
        keep = np.sort(first)
        case, col = case[keep], col[keep]
        length = np.bincount(case, minlength=len(p))
        starts = np.concatenate([[0], np.cumsum(length)[:-1]])
        pos = np.arange(len(case)) - starts[case] + 1  # 1-based position in the deduped prompt
        i_from_end = length[case] - pos + 1
        w = decay_weights(c.decay, i_from_end, length[case])
        return case, col, pos, w, length

    def predict(self, prompts, k: int = 20, return_scores: bool = False):
        p = as_prompts(prompts)
        rng = np.random.default_rng(self.config.seed)
        out_idx, out_val = [], []
        blocks = list(chunks(len(p), self.config.chunk_size))
        for a, b in tqdm(blocks, desc=f"{self.name} predict", unit="chunk", leave=False,
                         disable=len(blocks) < 5):
            idx, val = self._predict_chunk(p.subset(np.arange(a, b)), k, rng)
            out_idx.append(idx)
            out_val.append(val)
        if out_idx:
            recs = self.index_.to_ids(np.concatenate(out_idx))
            vals = np.concatenate(out_val)
        else:
            recs, vals = np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
        return (recs, vals) if return_scores else recs

    def _predict_chunk(self, p, k: int, rng: np.random.Generator):
        c = self.config
        n, n_items = len(p), len(self.index_)
        case, col, pos, w, length = self._prepare_prompts(p)
        P_w = sp.csr_matrix((w.astype(np.float32), (case, col)), shape=(n, n_items))

        # 2-4: candidates, sampling and similarities on the same sparsity pattern
        D = (P_w @ self.TT_).tocoo()  # weighted overlap with every train session sharing an item
        rows, sess, dot = D.row, D.col, D.data.astype(np.float64)
        if c.sampling == "random":
            sample_key = rng.random(len(rows))
        else:
            sample_key = self.recency_[sess]
        sampled = _segment_topk(rows, sample_key, c.sample_size)
        rows, sess, dot, sample_key = rows[sampled], sess[sampled], dot[sampled], sample_key[sampled]
        sim = self._pair_similarity(rows, sess, dot, P_w, case, col, w, length)
        # 5: k nearest (ties: the more recent train session first)
        nn = _segment_topk(rows, sim, c.k, tie=-self.recency_[sess])
        rows, sess, sim = rows[nn], sess[nn], sim[nn]
        weight = sim
        if c.sequential_weighting:
            weight = sim * self._sequential_weights(rows, sess, case, col, pos, length)
        W = sp.csr_matrix((weight, (rows, sess)), shape=(n, self.T_.shape[0]))
        # 6: item scores
        scores = np.asarray((W @ self.T_).todense(), dtype=np.float64)
        if self.signed_similarity:  # the neighbours' items, whatever the sign of their weights
            B = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, sess)), shape=W.shape)
            candidate = np.asarray((B @ self.T_).todense()) > 0
        else:
            candidate = scores > 0  # every weight is positive, so these are the neighbours' items
        if c.idf_weighting:
            scores *= self.idf_[None, :]
        if c.filter_prompt_items:
            candidate[case, col] = False
        if c.sequential_filter:
            last = np.full(n, -1)
            last[case] = col  # cases are ordered, so the last write per case is its last item
            has_last = last >= 0
            follow = np.zeros((n, n_items), dtype=bool)
            follow[has_last] = self.successors_[last[has_last]].toarray() > 0
            candidate &= follow
        scores[~candidate] = -np.inf
        return topk_from_scores(scores, k)

    def _pair_similarity(self, rows, sess, dot, P_w, case, col, w, length):
        """Similarity of prompt ``rows[j]`` and train session ``sess[j]`` for the sampled pairs;
        ``dot`` is their (decay-weighted) item overlap. SKNN: dot or cosine on item vectors."""
        if self.config.similarity == "cosine":
            p_norm = np.sqrt(np.asarray(P_w.multiply(P_w).sum(axis=1)).ravel())
            return dot / (p_norm[rows] * self.session_norm_[sess])
        return dot

    def _sequential_weights(self, rows, sess, case, col, pos, length):
        """S-SKNN: (1-based position in the prompt of the most recent shared item) / length."""
        starts = np.concatenate([[0], np.cumsum(length)[:-1]])
        L = length[rows]
        pair = np.repeat(np.arange(len(rows)), L)  # one entry per (neighbour pair, prompt item)
        at = np.repeat(starts[rows], L) + (np.arange(L.sum()) - np.repeat(np.cumsum(L) - L, L))
        item_at, pos_at = col[at], pos[at]
        present = np.asarray(self.T_[sess[pair], item_at]).ravel() > 0
        best = np.zeros(len(rows))
        np.maximum.at(best, pair[present], pos_at[present])
        return best / L
