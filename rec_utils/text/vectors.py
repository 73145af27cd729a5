"""The value type every text-based model consumes: item vectors aligned by item id."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..utils import short_hash


class EmbeddingError(RuntimeError):
    """Bad embedding input or an unusable provider; the message says what and how to fix it."""


@dataclass
class ItemEmbeddings:
    """Vectors of a catalogue: row i belongs to ``item_ids[i]``.

    The constructor puts the rows in ascending id order (``vectors``, ``missing_text`` and
    ``texts`` alike), whatever order they are given in, because :meth:`positions` and every
    consumer (LLMSeqSim, SKNNEmb, the reductions, the neural init) index rows by binary search
    on the ids. It raises :class:`EmbeddingError` on duplicate ids (naming them), on a
    ``vectors`` that is not 2-D, and on ``missing_text`` / ``texts`` that do not match the ids.
    """

    item_ids: np.ndarray  # (n,) int64, sorted ascending by the constructor
    vectors: np.ndarray  # (n, dim) float32, row i = item_ids[i]
    missing_text: np.ndarray | None = None  # (n,) bool: no text → zero vector (the reference's "Unknown item"); None = all False
    provider: str = "given"  # sentence-transformers | openai | file | a label for hand-made vectors
    model: str = "given"  # the provider's model (or the file path)
    texts: pd.Series | None = None  # item_id → the text that was embedded (None for "file")
    info: dict = field(default_factory=dict)  # n_embedded, n_cached, n_missing_text, wall_s, tokens, cost_usd ...

    def __post_init__(self):
        ids = np.asarray(self.item_ids)
        if ids.ndim != 1:
            raise EmbeddingError(f"item_ids must be 1-D, got shape {ids.shape}")
        if not (ids.dtype.kind in "iu" or (ids.dtype.kind == "f" and np.array_equal(ids, np.round(ids)))):
            raise EmbeddingError(f"item_ids must be integers, got dtype {ids.dtype}")
        ids = ids.astype(np.int64)
        vecs = np.asarray(self.vectors, dtype=np.float32)
        if vecs.ndim != 2:
            raise EmbeddingError(f"vectors must be a 2-D (items × dim) matrix, got shape {vecs.shape}")
        if len(vecs) != len(ids):
            raise EmbeddingError(f"{len(vecs)} vector rows for {len(ids)} item ids")
        missing = (np.zeros(len(ids), bool) if self.missing_text is None
                   else np.asarray(self.missing_text, dtype=bool))
        if missing.shape != ids.shape:
            raise EmbeddingError(f"missing_text has shape {missing.shape} for {len(ids)} item ids")
        if len(ids) > 1 and (ids[1:] < ids[:-1]).any():
            order = np.argsort(ids, kind="stable")
            ids, vecs, missing = ids[order], vecs[order], missing[order]
        dup = ids[1:][ids[1:] == ids[:-1]]
        if len(dup):
            dup = np.unique(dup)
            raise EmbeddingError(f"{len(dup)} duplicate item id(s) in the embeddings, e.g. {dup[:10].tolist()}")
        texts = self.texts
        if texts is not None:
            if not texts.index.is_monotonic_increasing:
                texts = texts.sort_index()
            if len(texts) != len(ids) or not np.array_equal(texts.index.to_numpy(), ids):
                raise EmbeddingError(f"texts ({len(texts)} entries) must be indexed by exactly the {len(ids)} item ids")
        self.item_ids, self.vectors, self.missing_text, self.texts = ids, vecs, missing, texts

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.item_ids)

    def positions(self, item_ids) -> np.ndarray:
        """Row of every id (int64, same shape); −1 for ids without a vector."""
        ids = np.asarray(item_ids, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.item_ids, ids), max(len(self.item_ids) - 1, 0))
        ok = (len(self.item_ids) > 0) & (self.item_ids[pos] == ids)
        return np.where(ok, pos, -1)

    def lookup(self, item_ids) -> np.ndarray:
        """(len(item_ids), dim) vectors of ``item_ids`` in that order; :class:`EmbeddingError`
        naming the ids without a vector."""
        pos = self.positions(item_ids)
        if (pos < 0).any():
            bad = np.asarray(item_ids)[pos < 0]
            raise EmbeddingError(
                f"{len(bad)} item id(s) have no embedding ({self.provider}/{self.model}), "
                f"e.g. {bad[:5].tolist()}"
            )
        return self.vectors[pos]

    def subset(self, item_ids) -> "ItemEmbeddings":
        """The embeddings of the distinct ``item_ids`` (raises like :meth:`lookup`)."""
        ids = np.unique(np.asarray(item_ids, dtype=np.int64))
        pos = self.positions(ids)
        if (pos < 0).any():
            self.lookup(ids)  # raises with the message
        return self.replace_vectors(self.vectors[pos], ids=ids)

    def replace_vectors(self, vectors: np.ndarray, *, ids=None, **info) -> "ItemEmbeddings":
        """The same items (or the sorted subset ``ids``) with other vectors (e.g. reduced ones);
        provider, model, texts and missing_text follow, ``info`` is updated with ``info``."""
        pos = slice(None) if ids is None else self.positions(ids)
        ids = self.item_ids if ids is None else np.asarray(ids, dtype=np.int64)
        return ItemEmbeddings(ids, vectors, self.missing_text[pos], self.provider, self.model,
                              None if self.texts is None else self.texts.iloc[pos], {**self.info, **info})

    @property
    def fingerprint(self) -> str:
        """Short hash of ids and vectors (identifies the matrix, e.g. in run notes)."""
        return short_hash(self.item_ids, self.vectors)

    @property
    def source_fingerprint(self) -> str:
        """Short hash of what *made* the vectors: for embedded texts the provider, the model key
        (a local model's file contents; an OpenAI model, dimensions and host) and the ids with
        their texts; for vectors read from a file or given as a matrix (no model key or no
        texts), the vectors themselves (:attr:`fingerprint`).

        This, not :attr:`fingerprint`, keys the stored runs of text models: a model's output
        bits depend on the CPU and its thread count (float summation order; seen here: the same
        MiniLM files and titles embedded with 1 and with 2 threads give matrices of other
        hashes, and LLMSeqSim top-20 lists equal for 99.98 % of the test sessions), so a hash of
        the bits would retrain every text model on a fresh clone or another machine although
        nothing it depends on changed."""
        key = self.info.get("model_key")
        if key is None or self.texts is None:
            return self.fingerprint
        return short_hash("embedded", self.provider, key, self.item_ids,
                          self.texts.astype(str).to_numpy().astype("U"), self.missing_text)

    def to_frame(self) -> pd.DataFrame:
        """The authors' layout: ItemId, embedding (list), plus missing_text."""
        return pd.DataFrame({"ItemId": self.item_ids, "embedding": list(self.vectors),
                             "missing_text": self.missing_text})
