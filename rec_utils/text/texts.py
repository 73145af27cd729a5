"""Item text in, one canonical form out: a Series item_id → text, sorted by id."""
from __future__ import annotations

import hashlib
import warnings
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


class TextTruncationWarning(UserWarning):
    """Some item texts are longer than the embedding model reads: their ends are cut off."""


def count_too_long(texts, max_pieces: int, tokenizer=None) -> tuple[int, bool]:
    """How many texts have more than ``max_pieces`` word pieces, special tokens included (the
    model's ``max_seq_length``: 256 for all-MiniLM-L6-v2, which drops the rest).

    With ``tokenizer`` (a callable text list → list of piece counts, e.g. from
    :func:`rec_utils.text.local.piece_counter`) the count is exact. Without one it is a cheap,
    documented bound: a text with more than ``max_pieces - 2`` whitespace-separated words is
    certainly too long (every word gives at least one piece, plus [CLS] and [SEP]), so the
    count is a lower bound. Either way only texts with more than ``max_pieces - 2`` non-space
    characters are looked at (a piece covers at least one character, so shorter ones fit).

    Returns:
        (count, exact): ``exact`` is False for the bound.
    """
    s = pd.Series(np.asarray(texts, dtype=object), dtype=object).fillna("").astype(str)
    room = max_pieces - 2
    chars = s.str.len() - s.str.count(r"\s")
    candidates = s[chars > room].tolist()
    if not candidates:
        return 0, tokenizer is not None
    if tokenizer is None:
        words = pd.Series(candidates).str.split().str.len()
        return int((words > room).sum()), False
    return int((np.asarray(tokenizer(candidates)) > max_pieces).sum()), True


def warn_too_long(texts, max_pieces: int, tokenizer=None, model: str = "the model") -> int:
    """:func:`count_too_long` and, when any, one :class:`TextTruncationWarning` with the count,
    the limit and the longest text's start. Returns the count."""
    n, exact = count_too_long(texts, max_pieces, tokenizer)
    if n:
        s = pd.Series(np.asarray(texts, dtype=object), dtype=object).fillna("").astype(str)
        longest = s.iloc[int(s.str.len().to_numpy().argmax())]
        how = "" if exact else "at least (a word-count bound; no tokenizer) "
        warnings.warn(
            f"{how}{n} of {len(s)} item texts are longer than {model} reads ({max_pieces} word pieces): "
            f"their ends are cut off before embedding; the longest starts {longest[:80]!r} "
            f"({len(longest)} characters). Shorten the texts (e.g. title only) if that matters",
            TextTruncationWarning, stacklevel=3,
        )
    return n
