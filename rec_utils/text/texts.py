"""Item text in, one canonical form out: a Series item_id → text, sorted by id."""
from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..data import Dataset, item_texts
from .vectors import EmbeddingError


def text_hash(text: str) -> str:
    """The cache key of a text: SHA-256 (64 hex digits) of its exact UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def text_hashes(texts) -> np.ndarray:
    """:func:`text_hash` of every text, as an (n,) ``S64`` array (the cache's key type)."""
    return np.array([text_hash(t) for t in texts], dtype="S64")


def as_text_series(items) -> pd.Series:
    """item_id → text from a Dataset (its default text builder), a Series (index = item ids), a
    mapping, or a DataFrame with ``item_id`` and ``text`` columns. Missing text becomes "",
    surrounding whitespace is stripped; the result is sorted by id. Raises
    :class:`EmbeddingError` on non-integer or duplicate ids."""
    if isinstance(items, Dataset):
        s = item_texts(items)
    elif isinstance(items, pd.Series):
        s = items
    elif isinstance(items, pd.DataFrame):
        if "item_id" not in items.columns or "text" not in items.columns:
            raise EmbeddingError(
                f"a DataFrame of items needs columns 'item_id' and 'text', found {list(items.columns)}; "
                "use rec_utils.data.item_texts(...) to build the text"
            )
        s = pd.Series(items["text"].to_numpy(), index=items["item_id"].to_numpy())
    elif isinstance(items, Mapping):
        s = pd.Series(dict(items))
    else:
        raise EmbeddingError(f"cannot read item texts from {type(items).__name__}")
    try:
        idx = np.asarray(s.index, dtype=np.int64)
    except (TypeError, ValueError):
        raise EmbeddingError("item ids (the index) must be integers") from None
    uniq, counts = np.unique(idx, return_counts=True)
    if (counts > 1).any():
        raise EmbeddingError(f"duplicate item ids in the item texts, e.g. {uniq[counts > 1][:10].tolist()}")
    vals = s.fillna("").astype(str).str.strip().to_numpy(dtype=object)
    return pd.Series(vals, index=idx, name="text").sort_index()
