"""Sequence batching of the sequential neural models, in one place (paper §6.4).

Sessions become left-padded index matrices: the last ``max_len`` items of each session,
right-aligned, padded on the left with the padding index (``n_items``). Left padding keeps the
most recent item in the last column for every row, so a batch can be trimmed to its longest
real sequence (:func:`trim`) without changing any score (padding keys are masked out of the
attention; GRU4Rec packs its rows).

Epochs are shuffled mini-batches of row indices, optionally length-bucketed so that rows of
similar length share a batch (:func:`bucketed_batches`). Targets are item indices, or
:data:`IGNORE` (−100) at positions that carry no loss.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ...split import Prompts

IGNORE = -100  # target value of positions that carry no loss (F.cross_entropy's ignore_index)


def session_csr(train: pd.DataFrame, item_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sessions of an ordered interaction frame as CSR ``(indptr, items)``; ``item_index`` are
    the interactions' contiguous item indices (same order as ``train``).

    Raises ValueError when a session's interactions are not contiguous in ``train``."""
    sid = train["session_id"].to_numpy()
    if len(sid) == 0:
        return np.zeros(1, np.int64), np.zeros(0, np.int64)
    new = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
    if len(np.unique(sid[new])) != len(new):
        raise ValueError("train interactions must be grouped by session (use order_interactions)")
    indptr = np.r_[new, len(sid)].astype(np.int64)
    return indptr, np.asarray(item_index, dtype=np.int64)


def left_pad(indptr: np.ndarray, items: np.ndarray, max_len: int, pad: int) -> np.ndarray:
    """(n, max_len) matrix of the last ``max_len`` items of each CSR row, right-aligned and
    left-padded with ``pad`` (vectorised)."""
    lens_all = np.diff(indptr)
    lens = np.minimum(lens_all, max_len)
    n = len(lens)
    out = np.full((n, max_len), pad, dtype=np.int64)
    if n == 0 or lens.sum() == 0:
        return out
    rows = np.repeat(np.arange(n), lens)
    offs = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
    src = np.repeat(indptr[1:] - lens, lens) + offs
    out[rows, max_len - np.repeat(lens, lens) + offs] = items[src]
    return out


def train_sequences(train: pd.DataFrame, item_index: np.ndarray, width: int, pad: int) -> np.ndarray:
    """(n, width) left-padded last ``width`` items of every train session with 2 or more items
    (sessions in ``train`` order); ``item_index`` as in :func:`session_csr`.

    Raises ValueError when no session has 2 or more items."""
    indptr, items = session_csr(train, item_index)
    seqs = left_pad(indptr, items, width, pad)[np.diff(indptr) >= 2]
    if len(seqs) == 0:
        raise ValueError("no train session has 2 or more items")
    return seqs


def prompt_windows(p: Prompts, item_index: np.ndarray, width: int, pad: int) -> np.ndarray:
    """(len(p), width) left-padded index windows of the prompts' last ``width`` known items.

    ``item_index`` are the contiguous indices of ``p.items`` (−1 = not in the catalogue; such
    items are dropped before the window is cut, as the model has no embedding for them)."""
    idx = np.asarray(item_index, dtype=np.int64)
    keep = idx >= 0
    case = np.repeat(np.arange(len(p)), p.lengths)
    lens = np.bincount(case[keep], minlength=len(p))
    indptr = np.r_[0, np.cumsum(lens)].astype(np.int64)
    return left_pad(indptr, idx[keep], width, pad)


def next_item_targets(seqs: np.ndarray, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs = seqs[:, :-1], targets = seqs[:, 1:] where both input and target are real
    (:data:`IGNORE` elsewhere); the training rows of SASRec and GRU4Rec."""
    x, y = seqs[:, :-1], seqs[:, 1:]
    return x, np.where((x != pad) & (y != pad), y, IGNORE)


def bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
                     bucket: bool = True, pool: int = 50) -> list[np.ndarray]:
    """Shuffled mini-batches of row indices. With ``bucket`` the shuffled rows are sorted by
    length inside pools of ``pool`` batches (so a batch holds similar lengths and can be trimmed)
    and the batch order is shuffled again; every row still appears exactly once per epoch."""
    n = len(lengths)
    perm = rng.permutation(n)
    if bucket:
        size = batch_size * pool
        parts = [perm[a:a + size] for a in range(0, n, size)]
        perm = np.concatenate([p[np.argsort(lengths[p], kind="stable")] for p in parts]) if parts else perm
    batches = [perm[a:a + batch_size] for a in range(0, n, batch_size)]
    if bucket:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def trim(x: torch.Tensor, pad: int, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Drop the leading columns that are padding in every row of the (B, L) left-padded ``x``
    (the same columns of each (B, L) tensor in ``others``); a batch of only padding keeps its
    last column."""
    real = (x != pad).any(0)
    first = int(real.float().argmax()) if bool(real.any()) else x.shape[1] - 1
    return (x[:, first:], *(o[:, first:] for o in others))
