"""Session-kNN at scale: SKNN / V-SKNN over an item → recent-sessions index (VMIS-kNN).

Kersbergen, Sprangers & Schelter, *Serenade — Low-Latency Session-Based Recommendation in
e-Commerce at Scale*, SIGMOD 2022 (VMIS-kNN): per item only the ``m`` most recent train
sessions that contain it are kept (``index_cap``); a prompt's candidate neighbours are the union
of its items' lists, and the ``sample_size`` most recent of them are the sample. The cost per
prompt is bounded by (prompt length × m) candidate pairs plus (k × neighbour length) item
scores, whatever the size of the train data, where the faithful model (:mod:`.sknn`) visits every
session sharing an item (popular items: a share of all sessions) and scores a dense row over the
whole catalogue.

Everything else is the paper's model (§6.5, :class:`~rec_utils.models.sknn.SKNN`): the same
prompt preparation, decay, similarities, idf weighting, the k nearest with equal similarities
to the earlier train session, item scores Σ sim [× idf], prompt items excluded, and the toolkit's
tie rule on item scores (:data:`~rec_utils.models.base.TIE_RULE`), computed with the same
sparse products in the same order, so where the cap does not bind the lists and scores are
**identical** (tests/test_sknn_index.py):

* ``sampling="recent"`` and ``index_cap >= sample_size``: exact. A session among the
  ``sample_size`` most recent candidates has fewer than ``sample_size`` more recent sessions
  sharing any of its prompt items, so it is in the capped list of every prompt item it contains,
  and its similarity is complete (the VMIS-kNN argument).
* ``sampling="random"``: exact when ``index_cap`` >= the largest item document frequency (no
  list is cut) and ``sample_size`` >= the number of candidates (no draw); otherwise the sample is
  uniform over the capped candidates (another draw than the faithful model's, and from a set
  biased towards recent sessions).

Deviations (where the cap binds): the candidates are the capped lists' union, and a candidate's
similarity counts only the prompt items in whose capped list it is (as VMIS-kNN does). Not
supported: S-SKNN's sequential weighting and SF-SKNN's filter (a clear error), embeddings.

Shapes: as :class:`~rec_utils.models.base.Recommender`; memory ``O(interactions)`` for the
session matrix plus ``O(items × m)`` for the index.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .sknn import SKNN, _segment_topk


def _row_positions(indptr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row id and position within its row of every stored entry of a CSR matrix."""
    counts = np.diff(indptr)
    rows = np.repeat(np.arange(len(counts)), counts)
    return rows, np.arange(indptr[-1]) - indptr[:-1][rows]


def sparse_topk(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n: int, k: int):
    """Top-k per row of sparse scores by the toolkit's tie rule (higher score first, then the
    smaller column), ``(idx, val)`` as :func:`~rec_utils.models.base.topk_from_scores`: (n, k)
    int64 columns padded with −1 and float32 scores padded with NaN. Entries with a
    non-finite score are dropped; absent entries never appear."""
    keep = np.isfinite(vals)
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    order = np.lexsort((cols, -vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    first = np.searchsorted(rows, np.arange(n))
    rank = np.arange(len(rows)) - first[rows]
    take = rank < k
    idx = np.full((n, k), -1, np.int64)
    val = np.full((n, k), np.nan, np.float32)
    idx[rows[take], rank[take]] = cols[take]
    val[rows[take], rank[take]] = vals[take]
    return idx, val


class IndexedSKNN(SKNN):
    """SKNN / V-SKNN over the capped item → recent-sessions index; ``index_cap`` (m) is required.

    Build it like the faithful model with one more field:
    ``build_model("V-SKNN", **preset, index_cap=500)`` or ``IndexedSKNN(decay="harmonic", index_cap=500)``.
    Its runs are labelled ``index_cap=<m>`` (the setting's overrides), never mixed with the faithful ones.
    """

    indexed = True

    def __init__(self, **config):
        super().__init__(**config)
        c = self.config
        if c.index_cap is None or int(c.index_cap) < 1:
            raise ValueError(f"IndexedSKNN needs index_cap >= 1 (sessions kept per item), got {c.index_cap!r}")
        if c.sequential_weighting or c.sequential_filter:
            raise ValueError("index_cap supports SKNN and V-SKNN only: sequential_weighting (S-SKNN) and "
                             "sequential_filter (SF-SKNN) need the faithful model (index_cap=None)")

    def fit(self, train: pd.DataFrame, items: pd.DataFrame | None = None) -> "IndexedSKNN":
        self._fit_sessions(train)
        n_sessions = self.T_.shape[0]
        # sessions renumbered newest first: rank 0 = the most recent (ties: the later session index,
        # i.e. exactly the faithful model's recency order reversed)
        self.by_rank_ = np.argsort(-self.recency_, kind="stable")  # rank -> session
        rank_of = np.empty(n_sessions, np.int64)
        rank_of[self.by_rank_] = np.arange(n_sessions)
        coo = self.T_.tocoo()
        J = sp.csr_matrix((np.ones(coo.nnz, np.float32), (coo.col, rank_of[coo.row])),
                          shape=(self.T_.shape[1], n_sessions))  # items × sessions by rank, sorted
        _, pos = _row_positions(J.indptr)
        keep = pos < int(self.config.index_cap)  # the m most recent sessions of each item
        counts = np.diff(J.indptr)
        indptr = np.concatenate([[0], np.cumsum(np.minimum(counts, int(self.config.index_cap)))])
        self.J_ = sp.csr_matrix((J.data[keep], J.indices[keep], indptr), shape=J.shape)
        self.max_df_ = int(counts.max(initial=0))
        return self

    def _predict_chunk(self, p, k: int, rng: np.random.Generator):
        c = self.config
        n, n_items = len(p), len(self.index_)
        case, col, pos, w, length = self._prepare_prompts(p)
        P_w = sp.csr_matrix((w.astype(np.float32), (case, col)), shape=(n, n_items))
        D = P_w @ self.J_  # overlap with the capped candidates; columns = recency rank
        D.sort_indices()  # per row: newest candidate first
        rows, rank = _row_positions(D.indptr)
        if c.sampling == "recent":
            sampled = rank < c.sample_size
        else:
            sampled = _segment_topk(rows, rng.random(len(rows)), c.sample_size)
        rows = rows[sampled]
        sess = self.by_rank_[D.indices[sampled]]
        dot = D.data[sampled].astype(np.float64)
        sim = self._pair_similarity(rows, sess, dot, P_w, case, col, w, length)
        nn = _segment_topk(rows, sim, c.k, tie=sess)  # equal similarities: the earlier session
        rows, sess, sim = rows[nn], sess[nn], sim[nn]
        W = sp.csr_matrix((sim, (rows, sess)), shape=(n, self.T_.shape[0]))
        S = W @ self.T_  # sparse item scores: only the neighbours' items
        s_rows, _ = _row_positions(S.indptr)
        s_cols, vals = S.indices.astype(np.int64), S.data.astype(np.float64)
        keep = vals > 0
        if c.filter_prompt_items:
            keep &= ~np.isin(s_rows * (n_items + 1) + s_cols, case.astype(np.int64) * (n_items + 1) + col)
        s_rows, s_cols, vals = s_rows[keep], s_cols[keep], vals[keep]
        if c.idf_weighting:
            vals = vals * self.idf_[s_cols]
        return sparse_topk(s_rows, s_cols, vals, n, k)
