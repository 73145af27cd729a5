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
* Catalog coverage@k = |union of all lists ∩ catalogue| / n_items; one number, not a
  per-session mean. The catalogue is the paper's (§3, §4): the distinct items of the whole
  dataset's interactions (NUM_ITEMS = n_items = ``len(Dataset.catalog)``); items only listed
  in ``items.csv`` are not in it. Coverage never exceeds 1: ids outside the catalogue are
  ignored when ``catalog`` is given (and counted by :func:`evaluate`), and are an error
  otherwise when they make more distinct ids than ``n_items``;
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


def _recommended_ids(recs: np.ndarray, k: int) -> np.ndarray:
    """Sorted distinct item ids of all top-k lists (padding excluded)."""
    r, valid, _ = dedup_truncate(recs, k)
    return np.unique(r[valid])


def _as_catalog(catalog, n_items: int) -> np.ndarray:
    cat = np.unique(np.asarray(catalog, dtype=np.int64).ravel())
    if len(cat) != n_items:
        raise ValueError(f"n_items={n_items} but catalog has {len(cat)} distinct item ids; "
                         "pass n_items=len(catalog) (the dataset's NUM_ITEMS)")
    return cat


def catalog_coverage_at_k(
    recs: np.ndarray, k: int, n_items: int, catalog: np.ndarray | None = None
) -> float:
    """Share of the catalogue that appears in at least one top-k list, in [0, 1].

    Args:
        recs: (n, L) recommended item ids, −1 padded.
        k: cut-off (lists truncated, then de-duplicated).
        n_items: catalogue size, the paper's NUM_ITEMS (distinct items of the whole dataset's
            interactions, §4).
        catalog: the catalogue's item ids (e.g. ``Dataset.catalog``); recommended ids outside
            it are ignored. Its distinct ids must number ``n_items``.

    Raises:
        ValueError: ``n_items`` < 1; ``catalog`` has another size than ``n_items``; or, without
            ``catalog``, the lists hold more distinct ids than ``n_items`` (so some are not
            catalogue items: the coverage would exceed 1).
    """
    if n_items < 1:
        raise ValueError(f"catalog coverage@{k}: n_items must be >= 1, got {n_items}")
    ids = _recommended_ids(recs, k)
    if catalog is not None:
        return int(np.isin(ids, _as_catalog(catalog, n_items)).sum()) / n_items
    if len(ids) > n_items:
        raise ValueError(
            f"catalog coverage@{k}: the lists hold {len(ids)} distinct item ids but the catalogue "
            f"has n_items={n_items}, so some ids are not catalogue items (largest id {ids[-1]}); "
            "pass catalog= (the dataset's item ids) to ignore ids outside it"
        )
    return len(ids) / n_items


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
    catalog: np.ndarray | None = None,
):
    """All metrics at every cutoff.

    Args:
        recs: recommendation lists (n, L) padded with −1, or ragged lists.
        targets: (n,) the withheld item of each session.
        item_counts: interaction count per item over the whole dataset (index = item id).
        n_items: catalogue size for coverage (NUM_ITEMS: distinct items of the whole dataset's
            interactions).
        skip_empty: drop sessions with no prediction at all (the reference's behaviour)
            instead of scoring them zero.
        per_session: also return a DataFrame with the per-session accuracy metrics.
        catalog: the catalogue's item ids (``Dataset.catalog``), passed to
            :func:`catalog_coverage_at_k`: recommended ids outside it are ignored by coverage
            and counted in ``n_outside_catalog``.

    Returns:
        dict ``{"ndcg@10": ..., ...}`` (plus ``n_sessions``, ``n_empty`` and, with ``catalog``,
        ``n_outside_catalog`` = distinct recommended ids within the top ``max(cutoffs)`` that
        are not in the catalogue), and the per-session frame when ``per_session``.

    Raises:
        ValueError: no evaluation cases (zero targets, or none left after ``skip_empty``); as
            many lists as targets needed; and see :func:`catalog_coverage_at_k`.
    """
    targets = np.asarray(targets, dtype=np.int64)
    recs = as_rec_matrix(recs, width=max(cutoffs))
    if len(targets) == 0:
        raise ValueError(f"no evaluation cases: 0 targets (and {len(recs)} recommendation lists); "
                         "an empty evaluation has no metric values")
    if len(recs) != len(targets):
        raise ValueError(f"{len(recs)} recommendation lists for {len(targets)} targets")
    empty = ~(recs >= 0).any(axis=1)
    if skip_empty:
        recs, targets = recs[~empty], targets[~empty]
        if len(targets) == 0:
            raise ValueError(f"no evaluation cases left: all {int(empty.sum())} sessions have no "
                             "prediction and skip_empty=True drops them")
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
                out[key] = catalog_coverage_at_k(recs, k, n_items, catalog=catalog)
            else:
                out[key] = float(per[name].mean())
                frame[key] = per[name]
    out["n_sessions"] = int(len(targets))
    out["n_empty"] = int(empty.sum())
    if catalog is not None:
        ids = _recommended_ids(recs, max(cutoffs))
        out["n_outside_catalog"] = int((~np.isin(ids, _as_catalog(catalog, n_items))).sum())
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
