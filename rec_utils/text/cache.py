"""The on-disk embedding cache: (text hash → vector) shards per (provider, model key).

``<cache_dir>/<provider>/<model-key>/shard-*.npz`` (model key ``local-<hash>`` for a local
model, ``<model name>-<hash>`` for OpenAI). The key of a vector is the SHA-256 of its
exact text (:func:`~rec_utils.text.texts.text_hash`), so a second run embeds nothing and a
changed title re-embeds only that item. The model key says *which* model made the vectors: for
a local sentence-transformers model a hash of the model folder's files (names and content,
:func:`~rec_utils.text.local.model_content_hash`), so a changed folder re-embeds and the same
files under another path do not; for OpenAI the model name, ``dimensions`` and the server.
Shards are written atomically; beyond 16 shards they are compacted into one (under a file
lock). ``cache_dir`` defaults to ``$REC_UTILS_EMBEDDING_CACHE`` or
``<project>/.cache/embeddings`` (gitignored).
"""
from __future__ import annotations

import io
import logging
import os
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..utils import PROJECT_ROOT, atomic_write_bytes, file_lock, safe_filename, short_hash
from .texts import text_hashes
from .vectors import EmbeddingError

log = logging.getLogger(__name__)

CACHE_ENV = "REC_UTILS_EMBEDDING_CACHE"
_MAX_SHARDS = 16  # compact the cache folder into one shard beyond this many


def default_cache_dir() -> Path:
    """``$REC_UTILS_EMBEDDING_CACHE`` or ``<project>/.cache/embeddings``."""
    return Path(os.environ.get(CACHE_ENV) or PROJECT_ROOT / ".cache" / "embeddings")


def model_key(label: str, identity: str) -> str:
    """Folder name of a model's cache: a readable label + short hash of what identifies the
    model (``identity``); the label must not depend on anything the identity leaves out."""
    return f"{safe_filename(label)}-{short_hash(identity)}"


class EmbeddingCache:
    """Text-hash → vector store of one (provider, model key) namespace on disk."""

    def __init__(self, root: Path, provider: str, model_key: str):
        self.dir = Path(root) / safe_filename(provider) / safe_filename(model_key)
        self._keys = np.zeros(0, dtype="S64")
        self._vecs: np.ndarray | None = None
        self._load()

    def _shards(self) -> list[Path]:
        return sorted(self.dir.glob("shard-*.npz")) if self.dir.is_dir() else []

    def _load(self) -> None:
        keys, vecs = [], []
        for p in self._shards():
            try:
                with np.load(p) as z:
                    keys.append(z["keys"])
                    vecs.append(z["vectors"].astype(np.float32, copy=False))
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:  # a broken shard: ignore it
                log.warning("ignoring unreadable cache shard %s (%s)", p, e)
        if keys:
            k, first = np.unique(np.concatenate(keys), return_index=True)
            self._keys, self._vecs = k, np.concatenate(vecs)[first]

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(found mask, vectors of the found ones in order)."""
        h = np.asarray(hashes, dtype="S64")
        if not len(self._keys):
            return np.zeros(len(h), bool), None
        pos = np.minimum(np.searchsorted(self._keys, h), len(self._keys) - 1)
        found = self._keys[pos] == h
        return found, self._vecs[pos[found]]

    def put(self, hashes: np.ndarray, vectors: np.ndarray) -> None:
        h = np.asarray(hashes, dtype="S64")
        if not len(h):
            return
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        if self._vecs is not None and v.shape[1] != self._vecs.shape[1]:
            raise EmbeddingError(f"cache {self.dir}: new vectors have dim {v.shape[1]}, cached {self._vecs.shape[1]}")
        self._write(self.dir / f"shard-{short_hash(h)}.npz", h, v)
        keys = np.concatenate([self._keys, h])
        vecs = v if self._vecs is None else np.concatenate([self._vecs, v])
        keys, first = np.unique(keys, return_index=True)
        self._keys, self._vecs = keys, vecs[first]
        shards = self._shards()
        if len(shards) > _MAX_SHARDS:
            with file_lock(self.dir / "compact"):
                self._write(self.dir / f"shard-all-{int(time.time() * 1e6)}.npz", self._keys, self._vecs)
                for p in shards:
                    p.unlink(missing_ok=True)

    @staticmethod
    def _write(path: Path, keys: np.ndarray, vecs: np.ndarray) -> None:
        buf = io.BytesIO()
        np.savez(buf, keys=keys, vectors=vecs)
        atomic_write_bytes(path, buf.getvalue())


@dataclass
class Encoder:
    """What a provider hands :func:`~rec_utils.text.embed_items`: ``encode`` (a list of texts →
    (n, dim) float32), the cache's name for the model (``cache_label``) and what identifies its
    vectors (``identity``: a local model by the hash of its files, an API model by name and
    options), and ``report(cache)``: the run's extra ``info`` fields (e.g. OpenAI's requests
    and token ledger), called once after encoding, also when it failed; ``check_texts(texts)``: the
    info fields of a look at every non-empty text before encoding (a local model warns about texts
    longer than it reads, ``n_too_long``)."""

    encode: Callable[[list[str]], np.ndarray]
    cache_label: str
    identity: str
    report: Callable[["EmbeddingCache | None"], dict] = lambda cache: {}
    check_texts: Callable[[np.ndarray], dict] = lambda texts: {}


def embed_with_cache(texts: np.ndarray, encode: Callable[[list[str]], np.ndarray],
                     cache: EmbeddingCache | None, label: str = "the model") -> tuple[np.ndarray, dict]:
    """(n, dim) float32 vectors of ``texts`` (object array; "" = no text → zero row), reading
    what ``cache`` has and calling ``encode`` once on the distinct texts it lacks (then storing
    them). Returns the vectors and counts ``n_missing_text``, ``n_cached``, ``n_embedded``
    (distinct texts sent to the model). Raises :class:`EmbeddingError` on NaN/inf output or
    when no item has text."""
    missing = texts == ""
    if missing.all():  # also when the cache holds vectors: never an all-zero matrix
        raise EmbeddingError(f"all {len(texts)} item texts are empty: nothing to embed (are the titles missing?)")
    hashes = text_hashes(texts)
    need = np.flatnonzero(~missing)
    found = np.zeros(len(texts), bool)
    cached_vecs = None
    if cache is not None and len(cache):
        f, cached_vecs = cache.get(hashes[need])
        found[need[f]] = True
    todo = np.flatnonzero(~missing & ~found)
    uniq_hash, first, inverse = np.unique(hashes[todo], return_index=True, return_inverse=True)
    todo_texts = texts[todo[first]].tolist()  # each distinct text once
    info = {"n_items": len(texts), "n_missing_text": int(missing.sum()), "n_cached": int(found.sum()),
            "n_embedded": len(todo_texts)}
    new = None
    if todo_texts:
        new = np.asarray(encode(todo_texts), dtype=np.float32)
        bad = ~np.isfinite(new).all(axis=1)
        if bad.any():
            raise EmbeddingError(f"{label} returned NaN/inf vectors for {int(bad.sum())} text(s)")
        if cache is not None:
            cache.put(uniq_hash, new)
    dim = new.shape[1] if new is not None else cached_vecs.shape[1]
    vectors = np.zeros((len(texts), dim), np.float32)
    if cached_vecs is not None and found.any():
        vectors[found] = cached_vecs
    if new is not None:
        vectors[todo] = new[inverse]
    return vectors, info
