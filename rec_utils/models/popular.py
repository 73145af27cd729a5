"""MostPopular: the k most frequent train items, the same list for every session.

Paper §6.5, reference ``main/popularity/session_popular.py``. Popularity = interaction counts
in the train split; ties are broken by the smaller item id (deterministic).

Faithful by default: prompt items are **not** excluded (as the reference does, which gave
the paper's NDCG@10 0.0045 on Beauty); ``exclude_prompt_items=True`` removes them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .base import ItemIndex, Recommender, as_prompts, chunks, mask_prompt_items, topk_from_scores


@dataclass
class MostPopularConfig:
    exclude_prompt_items: bool = False  # False = the reference's behaviour (see module doc)


class MostPopular(Recommender):
    name = "MostPopular"

    def __init__(self, exclude_prompt_items: bool = False):
        self.config = MostPopularConfig(exclude_prompt_items=exclude_prompt_items)

    def fit(self, train: pd.DataFrame, items: pd.DataFrame | None = None) -> "MostPopular":
        counts = train["item_id"].value_counts()
        self.index_ = ItemIndex(counts.index.to_numpy())
        c = np.zeros(len(self.index_), dtype=np.float64)
        c[self.index_.to_index(counts.index.to_numpy())] = counts.to_numpy()
        # tie-break: among equal counts the smaller id ranks first (ids are sorted in the index)
        self.scores_ = (c - np.arange(len(c)) / (len(c) + 1.0)).astype(np.float64)
        self.counts_ = c
        return self

    def predict(self, prompts, k: int = 20, return_scores: bool = False):
        p = as_prompts(prompts)
        if not self.config.exclude_prompt_items:  # one list for everybody
            idx, _ = topk_from_scores(self.scores_[None, :], k)
            idx = np.repeat(idx, len(p), axis=0)
        else:
            parts = []
            for a, b in chunks(len(p), 2048):
                scores = np.broadcast_to(self.scores_, (b - a, len(self.scores_))).copy()
                mask_prompt_items(scores, p.subset(np.arange(a, b)), self.index_)
                parts.append(topk_from_scores(scores, k)[0])
            idx = np.concatenate(parts) if parts else np.zeros((0, k), np.int64)
        recs = self.index_.to_ids(idx)
        if return_scores:
            return recs, np.where(idx >= 0, self.counts_[np.maximum(idx, 0)], np.nan).astype(np.float32)
        return recs
