"""Looking at a catalogue's embeddings: summary statistics and nearest neighbours."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .vectors import ItemEmbeddings


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def embedding_stats(emb: ItemEmbeddings, sample: int | None = 5000, seed: int = 0) -> dict:
    """Summary numbers: norms and pairwise cosine distance (1 − cosine, over a seeded sample of
    ``sample`` items with text; None = all), as in the reference's exploring_embeddings
    notebook (ada on Beauty: mean 0.211). Memory O(sample²)."""
    v = emb.vectors[~emb.missing_text]
    if sample and len(v) > sample:
        v = v[np.random.default_rng(seed).choice(len(v), sample, replace=False)]
    norms = np.linalg.norm(v, axis=1)
    u = v / np.maximum(norms[:, None], 1e-12)
    d = 1.0 - (u @ u.T)[np.triu_indices(len(u), 1)]
    return {"items": len(emb), "dim": emb.dim, "missing_text": int(emb.missing_text.sum()),
            "norm_mean": float(norms.mean()), "norm_min": float(norms.min()), "norm_max": float(norms.max()),
            "cosine_distance_mean": float(d.mean()), "cosine_distance_min": float(d.min()),
            "cosine_distance_max": float(d.max()), "pairs": int(len(d))}


def nearest_neighbours(emb: ItemEmbeddings, item_ids, k: int = 5) -> pd.DataFrame:
    """The k most cosine-similar items of each given item (itself excluded), for eyeballing:
    one row per (item, rank) with item_id, text, rank (1..k), neighbour_id, neighbour_text,
    cosine. Ids without a vector raise :class:`EmbeddingError`."""
    q_ids = np.asarray(item_ids, dtype=np.int64).ravel()
    pos = emb.positions(q_ids)
    if (pos < 0).any():
        emb.lookup(q_ids)  # raises, naming the ids
    u = _unit(emb.vectors)
    sims = u[pos] @ u.T
    sims[np.arange(len(q_ids)), pos] = -np.inf
    top = np.argsort(-sims, axis=1)[:, :k]
    kk = top.shape[1]
    nb = emb.item_ids[top].ravel()
    texts = emb.texts
    item = np.repeat(q_ids, kk)
    return pd.DataFrame({
        "item_id": item, "text": None if texts is None else texts.reindex(item).to_numpy(),
        "rank": np.tile(np.arange(1, kk + 1), len(q_ids)), "neighbour_id": nb,
        "neighbour_text": None if texts is None else texts.reindex(nb).to_numpy(),
        "cosine": np.take_along_axis(sims, top, axis=1).ravel().astype(float),
    })
