"""The one interface every recommender follows, and the small vectorised helpers they share.

A model is fitted on train interactions and predicts top-k lists for prompts::

    model = SomeModel(**config).fit(split.train, items=dataset.items)
    recs = model.predict(split.test, k=20)                 # (n, 20) item ids, -1 padded
    recs, scores = model.predict(split.test, k=20, return_scores=True)

Item ids go in and come out as the dataset's own ids; each model maps them to a contiguous
index internally (:class:`ItemIndex`, sorted ids).

Every top-k list ranks by one documented rule, :data:`~rec_utils.topk.TIE_RULE`: higher score
first, then the smaller item index (= the smaller item id), exactly, also at the k-th place:
:func:`topk_from_scores` (numpy) and its torch twin :func:`topk_tensor` (:mod:`rec_utils.topk`,
re-exported here) implement it, so the same scores give the same lists on every machine.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..split import Prompts
from ..topk import TIE_RULE, topk_from_scores, topk_tensor  # noqa: F401 (the models' one ranking rule)


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
