"""The paper's twelve metrics (§4), vectorised over all sessions at once.

Input everywhere: ``recs`` an (n, L) int array of recommended item ids, best first, padded with
``-1`` (or a list of arrays, see :func:`as_rec_matrix`), and ``targets`` (n,) the one
withheld item of each session.

Definitions (reference ``main/eval/metrics/*.py``): truncate each list to its first k,
**then** remove duplicates keeping the first occurrence (the list may get shorter than k);
ranks count from 1 in that de-duplicated list. With one target per session:

* HitRate@k = 1 if the target is in the list;
* NDCG@k = 1 / log2(rank + 1) (IDCG = 1);
* MRR@k = 1 / rank;
* Catalog coverage@k = |union of all lists| / n_items (n_items = distinct items of the whole
  dataset); one number, not a per-session mean;
* Serendipity@k: expected items E = the k most popular items of the whole dataset; per session
  |R ∩ ({target} \\ E)| / min(|{target} \\ E|, |R|), 0 when the denominator is 0;
* Novelty@k: per session mean over the list of −log2(count_i / Σ counts), counts over the whole
  dataset (items without a count add 0 but still count in the length).

Deviation: sessions without any prediction (an all −1 row) score **zero** by default; the
reference skips them (``skip_empty=True`` reproduces that). It matters for LLM outputs that fail
to parse.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

METRIC_NAMES = ("ndcg", "hit_rate", "mrr", "catalog_coverage", "serendipity", "novelty")
CUTOFFS = (10, 20)
#: The twelve result columns, in the order of the paper's tables.
METRIC_COLUMNS = tuple(f"{m}@{k}" for k in CUTOFFS for m in METRIC_NAMES)


def as_rec_matrix(recs: np.ndarray | Sequence[Sequence[int]], width: int | None = None) -> np.ndarray:
    """Lists of item ids (ragged allowed) → (n, width) int64 array padded with −1."""
    if isinstance(recs, np.ndarray) and recs.ndim == 2:
        out = recs.astype(np.int64, copy=False)
        return out if width is None else out[:, :width]
    lists = [np.asarray(r, dtype=np.int64).ravel() for r in recs]
    w = width if width is not None else max((len(r) for r in lists), default=0)
    out = np.full((len(lists), w), -1, dtype=np.int64)
    for i, r in enumerate(lists):
        r = r[:w]
        out[i, : len(r)] = r
    return out


def dedup_truncate(recs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truncate to the first k, mark the entries that count (not padding, not a repeat).

    Returns ``(lists, valid, rank)``: the truncated (n, k) lists, a boolean mask of entries
    that stay after de-duplication, and the 1-based rank of each entry in the de-duplicated
    list (meaningful where ``valid``).
    """
    r = np.asarray(recs, dtype=np.int64)[:, :k]
    if r.shape[1] == 0:
        empty = np.zeros(r.shape, dtype=bool)
        return r, empty, np.zeros(r.shape, dtype=np.int64)
    order = np.argsort(r, axis=1, kind="stable")  # equal ids: first occurrence first
    s = np.take_along_axis(r, order, axis=1)
    dup_sorted = np.zeros_like(s, dtype=bool)
    dup_sorted[:, 1:] = s[:, 1:] == s[:, :-1]
    dup = np.empty_like(dup_sorted)
    np.put_along_axis(dup, order, dup_sorted, axis=1)
    valid = (r >= 0) & ~dup
    rank = np.cumsum(valid, axis=1)
    return r, valid, rank


def _hits(recs: np.ndarray, targets: np.ndarray, k: int):
    r, valid, rank = dedup_truncate(recs, k)
    hit = valid & (r == np.asarray(targets, dtype=np.int64)[:, None])
    return r, valid, rank, hit


def hit_rate_at_k(recs: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """Per-session HitRate@k (0/1)."""
    return _hits(recs, targets, k)[3].any(axis=1).astype(float)


def ndcg_at_k(recs: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """Per-session NDCG@k with one relevant item (binary relevance)."""
    _, _, rank, hit = _hits(recs, targets, k)
    return np.where(hit, 1.0 / np.log2(np.maximum(rank, 1) + 1.0), 0.0).sum(axis=1)


def mrr_at_k(recs: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """Per-session reciprocal rank of the target within the first k (0 if absent)."""
    _, _, rank, hit = _hits(recs, targets, k)
    n_hit = hit.sum(axis=1)
    rr = np.where(hit, 1.0 / np.maximum(rank, 1), 0.0).sum(axis=1)
    return np.where(n_hit > 0, rr / np.maximum(n_hit, 1), 0.0)


def catalog_coverage_at_k(recs: np.ndarray, k: int, n_items: int) -> float:
    """Share of the catalogue that appears in at least one top-k list."""
    r, valid, _ = dedup_truncate(recs, k)
    return len(np.unique(r[valid])) / n_items


def _counts_of(items: np.ndarray, item_counts: pd.Series) -> np.ndarray:
    pos = item_counts.index.get_indexer(items.ravel())
    c = np.where(pos >= 0, item_counts.to_numpy()[np.maximum(pos, 0)], 0)
    return c.reshape(items.shape)


def most_popular_items(item_counts: pd.Series, k: int) -> np.ndarray:
    """The k most frequent items (ties broken by smaller item id, deterministic)."""
    order = np.lexsort((item_counts.index.to_numpy(), -item_counts.to_numpy()))
    return item_counts.index.to_numpy()[order[:k]]


def serendipity_at_k(
    recs: np.ndarray, targets: np.ndarray, k: int, item_counts: pd.Series
) -> np.ndarray:
    """Per-session serendipity: a hit on a target that is not among the k most popular items."""
    _, valid, _, hit = _hits(recs, targets, k)
    unexpected = ~np.isin(targets, most_popular_items(item_counts, k))
    n_r = valid.sum(axis=1)
    return np.where(unexpected & (n_r > 0), hit.any(axis=1).astype(float), 0.0)


def novelty_at_k(recs: np.ndarray, k: int, item_counts: pd.Series) -> np.ndarray:
    """Per-session mean self-information −log2(p_i) of the recommended items."""
    r, valid, _ = dedup_truncate(recs, k)
    counts = _counts_of(np.where(valid, r, -1), item_counts).astype(float)
    total = float(item_counts.sum())
    with np.errstate(divide="ignore"):
        info = np.where(valid & (counts > 0), -np.log2(counts / total), 0.0)
    n_r = valid.sum(axis=1)
    return np.where(n_r > 0, info.sum(axis=1) / np.maximum(n_r, 1), 0.0)


def evaluate(
    recs: np.ndarray | Sequence[Sequence[int]],
    targets: np.ndarray,
    item_counts: pd.Series,
    n_items: int,
    cutoffs: Sequence[int] = CUTOFFS,
    skip_empty: bool = False,
    per_session: bool = False,
):
    """All metrics at every cutoff.

    Args:
        recs: recommendation lists (n, L) padded with −1, or ragged lists.
        targets: (n,) the withheld item of each session.
        item_counts: interaction count per item over the whole dataset (index = item id).
        n_items: catalogue size for coverage (distinct items of the whole dataset).
        skip_empty: drop sessions with no prediction at all (the reference's behaviour)
            instead of scoring them zero.
        per_session: also return a DataFrame with the per-session accuracy metrics.

    Returns:
        dict ``{"ndcg@10": ..., ...}`` (plus ``n_sessions`` and ``n_empty``), and the
        per-session frame when ``per_session``.
    """
    targets = np.asarray(targets, dtype=np.int64)
    recs = as_rec_matrix(recs, width=max(cutoffs))
    if len(recs) != len(targets):
        raise ValueError(f"{len(recs)} recommendation lists for {len(targets)} targets")
    empty = ~(recs >= 0).any(axis=1)
    if skip_empty:
        recs, targets = recs[~empty], targets[~empty]
    out: dict[str, float] = {}
    frame = {}
    for k in cutoffs:
        per = {
            "ndcg": ndcg_at_k(recs, targets, k),
            "hit_rate": hit_rate_at_k(recs, targets, k),
            "mrr": mrr_at_k(recs, targets, k),
            "serendipity": serendipity_at_k(recs, targets, k, item_counts),
            "novelty": novelty_at_k(recs, k, item_counts),
        }
        for name in METRIC_NAMES:
            key = f"{name}@{k}"
            if name == "catalog_coverage":
                out[key] = catalog_coverage_at_k(recs, k, n_items)
            else:
                out[key] = float(per[name].mean()) if len(targets) else 0.0
                frame[key] = per[name]
    out["n_sessions"] = int(len(targets))
    out["n_empty"] = int(empty.sum())
    if per_session:
        return out, pd.DataFrame(frame)
    return out


__all__ = [
    "CUTOFFS",
    "METRIC_COLUMNS",
    "METRIC_NAMES",
    "as_rec_matrix",
    "catalog_coverage_at_k",
    "dedup_truncate",
    "evaluate",
    "hit_rate_at_k",
    "most_popular_items",
    "mrr_at_k",
    "ndcg_at_k",
    "novelty_at_k",
    "serendipity_at_k",
]
