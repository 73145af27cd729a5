"""The one interface every recommender follows, and the small vectorised helpers they share.

A model is fitted on train interactions and predicts top-k lists for prompts::

    model = SomeModel(**config).fit(split.train, items=dataset.items)
    recs = model.predict(split.test, k=20)                 # (n, 20) item ids, -1 padded
    recs, scores = model.predict(split.test, k=20, return_scores=True)

Item ids go in and come out as the dataset's own ids; each model maps them to a contiguous
index internally (:class:`ItemIndex`, sorted ids).

Every top-k list ranks by one documented rule, :data:`TIE_RULE`: higher score first, then the
smaller item index (= the smaller item id), exactly, also at the k-th place:
:func:`topk_from_scores` (numpy) and its torch twin :func:`topk_tensor` implement it, so the
same scores give the same lists on every machine.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..split import Prompts


def as_prompts(prompts: Prompts | Sequence[Sequence[int]]) -> Prompts:
    """Accept a :class:`Prompts` or a list of item-id sequences."""
    if isinstance(prompts, Prompts):
        return prompts
    arrays = [np.asarray(p, dtype=np.int64).ravel() for p in prompts]
    lens = np.array([len(a) for a in arrays], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    items = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
    n = len(arrays)
    return Prompts(np.arange(n), indptr, items.astype(np.int64), np.full(n, -1, np.int64))


class ItemIndex:
    """Bijection between the dataset's item ids and 0..n-1 (sorted ids), vectorised."""

    def __init__(self, item_ids: np.ndarray):
        self.ids = np.unique(np.asarray(item_ids, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.ids)

    def to_index(self, item_ids: np.ndarray) -> np.ndarray:
        """Indices of ``item_ids``; −1 for ids not in the index."""
        item_ids = np.asarray(item_ids, dtype=np.int64)
        pos = np.searchsorted(self.ids, item_ids)
        pos = np.minimum(pos, len(self.ids) - 1)
        found = (len(self.ids) > 0) & (self.ids[pos] == item_ids)
        return np.where(found, pos, -1)

    def to_ids(self, index: np.ndarray) -> np.ndarray:
        """Item ids of indices; −1 stays −1."""
        index = np.asarray(index, dtype=np.int64)
        return np.where(index >= 0, self.ids[np.maximum(index, 0)], -1)


def session_item_matrix(
    train: pd.DataFrame, index: ItemIndex, binary: bool = True
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Sparse (sessions × items) matrix of the train interactions and the row's session ids."""
    sess_ids, rows = np.unique(train["session_id"].to_numpy(), return_inverse=True)
    cols = index.to_index(train["item_id"].to_numpy())
    m = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(sess_ids), len(index))
    )
    m.sum_duplicates()
    if binary:
        m.data[:] = 1.0
    return m, sess_ids


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
    import torch

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


def mask_prompt_items(scores: np.ndarray, p: Prompts, index: ItemIndex) -> None:
    """Set the scores of every prompt item to −inf in place (row i = case i of ``p``)."""
    cols = index.to_index(p.items)
    rows = np.repeat(np.arange(len(p)), p.lengths)
    keep = cols >= 0
    scores[rows[keep], cols[keep]] = -np.inf


def chunks(n: int, size: int):
    """``(start, stop)`` pairs covering range(n) in blocks of ``size``."""
    for start in range(0, n, size):
        yield start, min(n, start + size)


class Recommender(ABC):
    """Base class: ``fit(train, items=None)`` then ``predict(prompts, k, return_scores)``."""

    #: The model's name as in the paper's tables (``MostPopular``, ``V-SKNN``, ...).
    name: str = "Recommender"
    #: Config fields added together with a change of results (e.g. ``tie_break``: lists made
    #: before the tie rule ordered equal scores arbitrarily). A stored run whose resolved config
    #: lacks one of them is run again; any other new field defaults to the old behaviour.
    rerun_if_missing: tuple[str, ...] = ()

    @abstractmethod
    def fit(self, train: pd.DataFrame, items: pd.DataFrame | None = None) -> "Recommender":
        """Learn from train interactions (session_id, item_id, timestamp; ordered)."""

    @abstractmethod
    def predict(
        self, prompts: Prompts | Sequence[Sequence[int]], k: int = 20, return_scores: bool = False
    ):
        """Top-k item ids per prompt, an (n, k) int64 array padded with −1; with
        ``return_scores`` also the (n, k) float32 scores (NaN on padding)."""

    def input_fingerprint(self, items: pd.DataFrame | None = None) -> dict:
        """Content hashes of what the model reads besides the train split and its config
        (``{}`` for most models). Text-based models return the hash of the item vectors they
        will use (``{"item_source": ...}``: texts, embedding model and vector files all enter
        it), so a stored run is not reused after a title or a model folder changed."""
        return {}

    def get_config(self) -> dict:
        """The hyper-parameters that identify this model's results."""
        cfg = getattr(self, "config", None)
        if cfg is not None and is_dataclass(cfg):
            return asdict(cfg)
        return {}

    def __repr__(self) -> str:
        return f"{self.name}({self.get_config()})"


class UsesItemVectors:
    """Mixin of the models that read item text through an embedding spec (``self.config.embedding``,
    optional given ``self.embeddings``, ``self.device``): their input fingerprint is the source of
    the raw item vectors (:attr:`~rec_utils.text.ItemEmbeddings.source_fingerprint`: the model's
    files and the texts when they were embedded, the vectors when they came from a file), so
    texts, embedding model files and vector files all enter the reuse check of stored runs, and
    the float noise of embedding on another CPU does not."""

    def input_fingerprint(self, items: pd.DataFrame | None = None) -> dict:
        if self.embeddings is None:  # embedded through the text cache; fit reuses them
            self.embeddings = self.config.embedding.embed(items, device=self.device)
        return {"item_source": self.embeddings.source_fingerprint}
