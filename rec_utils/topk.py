"""The one ranking rule of the toolkit, :data:`TIE_RULE`: higher score first, then the smaller
item index (= the smaller item id, since every model indexes its items by sorted id), exactly,
also at the k-th place. :func:`topk_from_scores` (numpy) and its torch twin :func:`topk_tensor`
implement it, so the same scores give the same lists on every machine. Every recommender
(:mod:`rec_utils.models`) and the LLM output mapping (:mod:`rec_utils.llm`) rank through them.
"""
from __future__ import annotations

import numpy as np

#: How every top-k list orders equal scores (see the module docstring).
TIE_RULE = "higher score first; equal scores: the smaller item index (= smaller item id) first"


def topk_from_scores(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k column indices and scores per row of a dense score matrix, ties broken exactly.

    Order (:data:`TIE_RULE`): higher score first, then the smaller column index; since a
    model's item indices are its sorted item ids (:class:`ItemIndex`), equal scores go to the
    smaller item id. The rule also decides which members of a tie group that straddles the
    k-th place get in, so the result is a function of the scores alone, the same on every
    machine and numpy version (``argpartition``'s order among ties is arbitrary: rows where it
    cut a tie group are re-selected exactly, vectorised). Ties are exact equality of the scores
    as given (float64 for the SKNN family): returned float32 values can look equal where the
    float64 ones differ.

    Args:
        scores: (n, m) float scores (any real dtype); non-finite entries (−inf, NaN, +inf)
            never appear in the result.
        k: list length (>= 0); when m < k or a row has fewer than k finite scores the rest
            is padding.

    Returns:
        ``(idx, val)``: (n, k) int64 column indices (−1 padding) and (n, k) float32 scores
        (NaN padding).
    """
    s = np.asarray(scores)
    if s.ndim != 2:
        raise ValueError(f"scores must be a 2-d (rows x items) array, got shape {s.shape}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    n, m = s.shape
    kk = min(k, m)
    if kk == 0 or n == 0:
        return np.full((n, k), -1, np.int64), np.full((n, k), np.nan, np.float32)
    if not np.issubdtype(s.dtype, np.floating):
        s = s.astype(np.float64)
    if not np.isfinite(s).all():
        s = np.where(np.isfinite(s), s, -np.inf)
    part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]  # the kk largest, ties cut arbitrarily
    part_scores = np.take_along_axis(s, part, axis=1)
    kth = part_scores.min(axis=1)  # the kk-th largest score of each row
    # a tie group at the k-th value was cut if the row holds more of it than the selection
    cut = (s == kth[:, None]).sum(axis=1) > (part_scores == kth[:, None]).sum(axis=1)
    rows = np.flatnonzero(cut & np.isfinite(kth))
    if len(rows):
        sub, t = s[rows], kth[rows, None]
        tie = sub == t
        need = kk - (sub > t).sum(axis=1)  # places left for the tie group
        take = (sub > t) | (tie & (np.cumsum(tie, axis=1) <= need[:, None]))
        part[rows] = np.nonzero(take)[1].reshape(len(rows), kk)  # kk per row, smaller index first
    part = np.sort(part, axis=1)  # index order, so a stable sort on score keeps smaller first
    part_scores = np.take_along_axis(s, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    val = np.take_along_axis(part_scores, order, axis=1)
    bad = ~np.isfinite(val)
    idx = np.where(bad, -1, idx)
    val = np.where(bad, np.nan, val).astype(np.float32)
    if kk < k:
        idx = np.pad(idx, ((0, 0), (0, k - kk)), constant_values=-1)
        val = np.pad(val, ((0, 0), (0, k - kk)), constant_values=np.nan)
    return idx.astype(np.int64), val


def topk_tensor(scores, k: int):
    """The torch twin of :func:`topk_from_scores`: same rule (:data:`TIE_RULE`), same padding,
    on the scores' device (CPU or GPU), so LLMSeqSim and the neural models rank exactly as the
    numpy models do. ``torch.topk``'s order among ties is unspecified, so ties are resolved
    the same way: the k-th value's tie group is re-selected by index where it was cut, and
    the final order is a stable sort on score over index-sorted candidates.

    Args:
        scores: (n, m) float tensor; non-finite entries (−inf, NaN, +inf) never appear.
        k: list length (>= 0).

    Returns:
        ``(idx, val)``: (n, k) int64 tensor of column indices (−1 padding) and (n, k) float32
        tensor of scores (NaN padding), both on ``scores.device``.
    """
    import torch  # only here: the numpy callers (SKNN, MostPopular, LLM mapping) never load torch

    if scores.dim() != 2:
        raise ValueError(f"scores must be a 2-d (rows x items) tensor, got shape {tuple(scores.shape)}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    n, m = scores.shape
    dev = scores.device
    kk = min(k, m)
    if kk == 0 or n == 0:
        return (torch.full((n, k), -1, dtype=torch.int64, device=dev),
                torch.full((n, k), float("nan"), dtype=torch.float32, device=dev))
    s = scores if scores.is_floating_point() else scores.double()
    s = torch.where(torch.isfinite(s), s, torch.full_like(s, float("-inf")))
    part_scores, part = torch.topk(s, kk, dim=1)  # ties cut in an unspecified order
    kth = part_scores.min(dim=1).values
    cut = (s == kth[:, None]).sum(dim=1) > (part_scores == kth[:, None]).sum(dim=1)
    rows = torch.nonzero(cut & torch.isfinite(kth)).flatten()
    if len(rows):
        sub, t = s[rows], kth[rows, None]
        tie = sub == t
        need = kk - (sub > t).sum(dim=1)
        take = (sub > t) | (tie & (torch.cumsum(tie.long(), dim=1) <= need[:, None]))
        part[rows] = torch.nonzero(take)[:, 1].reshape(len(rows), kk)  # row-major: index order
    part = torch.sort(part, dim=1).values
    part_scores = torch.gather(s, 1, part)
    val, order = torch.sort(part_scores, dim=1, descending=True, stable=True)
    idx = torch.gather(part, 1, order)
    bad = ~torch.isfinite(val)
    idx = torch.where(bad, torch.full_like(idx, -1), idx)
    val = torch.where(bad, torch.full_like(val, float("nan")), val).float()
    if kk < k:
        idx = torch.nn.functional.pad(idx, (0, k - kk), value=-1)
        val = torch.nn.functional.pad(val, (0, k - kk), value=float("nan"))
    return idx, val
