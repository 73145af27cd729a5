"""MostPopular: the k most frequent train items, the same list for every session.

Paper §6.5, reference ``main/popularity/session_popular.py``. Popularity = interaction counts
in the train split; ties are broken by the smaller item id (the toolkit's one tie rule,
:func:`~rec_utils.models.base.topk_from_scores`: higher score first, then the smaller item
index = smaller id), so the list is deterministic.

Faithful by default: prompt items are **not** excluded (as the reference does, which gave
the paper's NDCG@10 0.0045 on Beauty); ``exclude_prompt_items=True`` removes them.

Built like every model, ``MostPopular(**config)`` with the fields of
:class:`MostPopularConfig`; ``seed`` is accepted and ignored (nothing is random), so
``build_model(name, **{**cfg, "seed": s})`` works for every model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .base import ItemIndex, Recommender, as_prompts, chunks, mask_prompt_items, topk_from_scores


@dataclass
class MostPopularConfig:
    """Hyper-parameters of MostPopular (defaults: the reference's behaviour)."""

    exclude_prompt_items: bool = False  # False = the reference's behaviour (see module doc)
    seed: int = 0  # no-op: MostPopular is deterministic; accepted so every model takes a seed


class MostPopular(Recommender):
    """The k most frequent train items; ``predict`` scores are the train interaction counts."""

    name = "MostPopular"
    config_class = MostPopularConfig

    def __init__(self, **config):
        self.config = self.config_class(**config)

    def fit(self, train: pd.DataFrame, items: pd.DataFrame | None = None) -> "MostPopular":
        counts = train["item_id"].value_counts()
        self.index_ = ItemIndex(counts.index.to_numpy())
        c = np.zeros(len(self.index_), dtype=np.float64)
        c[self.index_.to_index(counts.index.to_numpy())] = counts.to_numpy()
        self.counts_ = c  # per item index; equal counts: topk_from_scores puts the smaller id first
        return self

    def predict(self, prompts, k: int = 20, return_scores: bool = False):
        p = as_prompts(prompts)
        if not self.config.exclude_prompt_items:  # one list for everybody
            idx, _ = topk_from_scores(self.counts_[None, :], k)
            idx = np.repeat(idx, len(p), axis=0)
        else:
            parts = []
            for a, b in chunks(len(p), 2048):
                scores = np.broadcast_to(self.counts_, (b - a, len(self.counts_))).copy()
                mask_prompt_items(scores, p.subset(np.arange(a, b)), self.index_)
                parts.append(topk_from_scores(scores, k)[0])
            idx = np.concatenate(parts) if parts else np.zeros((0, k), np.int64)
        recs = self.index_.to_ids(idx)
        if return_scores:
            return recs, np.where(idx >= 0, self.counts_[np.maximum(idx, 0)], np.nan).astype(np.float32)
        return recs
