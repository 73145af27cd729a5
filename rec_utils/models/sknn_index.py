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
to the more recent train session, item scores Σ sim [× idf], prompt items excluded, and the toolkit's
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

from .base import topk_from_scores
from .sknn import SKNN


def _row_positions(indptr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row id and position within its row of every stored entry of a CSR matrix."""
    counts = np.diff(indptr)
    rows = np.repeat(np.arange(len(counts)), counts)
    return rows, np.arange(indptr[-1]) - indptr[:-1][rows]


def _first_per_row(indptr: np.ndarray, take: np.ndarray) -> np.ndarray:
    """Indices (into a CSR matrix's data) of the first ``take[i]`` entries of every row i."""
    offset = np.concatenate([[0], np.cumsum(take)[:-1]])
    return np.arange(int(take.sum())) + np.repeat(indptr[:-1] - offset, take)


def _padded(rows: np.ndarray, vals: np.ndarray, n: int, fill: float) -> tuple[np.ndarray, np.ndarray]:
    """Entries grouped by (sorted) row as a dense (n, widest row) matrix, ``fill`` elsewhere, and
    each entry's position in its row (entries keep their order within a row)."""
    counts = np.bincount(rows, minlength=n)
    pos = np.arange(len(rows)) - np.repeat(np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    mat = np.full((n, int(counts.max(initial=0))), fill, dtype=np.float64)
    mat[rows, pos] = vals
    return mat, pos


def sparse_topk(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n: int, k: int):
    """Top-k per row of sparse scores by the toolkit's tie rule (higher score first, then the
    smaller column), ``(idx, val)`` as :func:`~rec_utils.models.base.topk_from_scores`: (n, k)
    int64 columns padded with −1 and float32 scores padded with NaN. ``rows`` must be sorted and
    ``cols`` ascending within a row (a CSR matrix with sorted indices); entries with a non-finite
    score never appear, nor do absent ones. Cost: one dense top-k over (n, widest row)."""
    mat, pos = _padded(rows, vals, n, -np.inf)
    col_at = np.full(mat.shape, -1, np.int64)
    col_at[rows, pos] = cols
    at, val = topk_from_scores(mat, k)  # ties: the smaller position = the smaller column
    idx = np.where(at >= 0, np.take_along_axis(col_at, np.maximum(at, 0), axis=1), -1) if at.size else at
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
        D.sort_indices()  # per row: the newest candidate first
        counts = np.diff(D.indptr)
        if c.sampling == "recent" or counts.max(initial=0) <= c.sample_size:
            sel = _first_per_row(D.indptr, np.minimum(counts, c.sample_size))
        else:  # uniform without replacement: the sample_size largest of one uniform key per candidate
            rows_all, pos_all = _row_positions(D.indptr)
            keys = np.full((n, int(counts.max())), -1.0)
            keys[rows_all, pos_all] = rng.random(len(rows_all))
            part = np.sort(np.argpartition(-keys, c.sample_size - 1, axis=1)[:, :c.sample_size], axis=1)
            ok = part < counts[:, None]
            sel = (D.indptr[:-1, None] + part)[ok]  # row by row, newest first
        rows = np.repeat(np.arange(n), np.diff(np.searchsorted(sel, D.indptr)))
        sess = self.by_rank_[D.indices[sel]]
        dot = D.data[sel].astype(np.float64)
        sim = self._pair_similarity(rows, sess, dot, P_w, case, col, w, length)
        # the k nearest per row; equal similarities: the more recent session (the earlier position)
        sim_mat, at = _padded(rows, sim, n, -np.inf)
        nn_at, _ = topk_from_scores(sim_mat, c.k)
        first = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))[:-1]])
        nn = (first[:, None] + nn_at)[nn_at >= 0]
        W = sp.csr_matrix((sim[nn], (rows[nn], sess[nn])), shape=(n, self.T_.shape[0]))
        S = W @ self.T_  # sparse item scores: only the neighbours' items
        S.sort_indices()
        s_rows, _ = _row_positions(S.indptr)
        s_cols, vals = S.indices.astype(np.int64), S.data.astype(np.float64)
        drop = vals <= 0
        if c.filter_prompt_items:
            prompt_keys = np.sort(case.astype(np.int64) * (n_items + 1) + col)
            keys = s_rows * (n_items + 1) + s_cols
            hit = np.minimum(np.searchsorted(prompt_keys, keys), max(len(prompt_keys) - 1, 0))
            drop |= (prompt_keys[hit] == keys) if len(prompt_keys) else False
        vals[drop] = -np.inf
        if c.idf_weighting:
            vals = vals * self.idf_[s_cols]
        return sparse_topk(s_rows, s_cols, vals, n, k)
