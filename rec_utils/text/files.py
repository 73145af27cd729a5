"""Precomputed item vectors from a file: the authors' ``product_embeddings_*.csv.gz`` or an
``.npz``, validated so that a bad file fails with its name and the offending items."""
from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from .vectors import EmbeddingError, ItemEmbeddings

#: What a corrupt or truncated file raises while being read (gzip: BadGzipFile is an OSError,
#: a truncated stream EOFError; npz: BadZipFile; pandas: ParserError / UnicodeDecodeError).
_READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, ValueError, pd.errors.ParserError, UnicodeDecodeError)


def _parse_json_column(path: Path, col: pd.Series, ids: np.ndarray) -> list[np.ndarray]:
    """The ``embedding`` column (JSON lists) as flat float32 rows; the first bad line is named."""
    rows = []
    for i, s in enumerate(col.to_numpy()):
        try:
            v = json.loads(s) if isinstance(s, str) else s
            rows.append(np.asarray(v, dtype=np.float32).ravel())
        except (TypeError, ValueError):  # json.JSONDecodeError is a ValueError
            raise EmbeddingError(f"{path}: line {i + 2} (item {ids[i]}): embedding is not a JSON list of numbers") from None
    return rows


def _read_csv(path: Path, dim: int | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        df = pd.read_csv(path)
    except _READ_ERRORS as e:
        raise EmbeddingError(f"{path}: cannot read the file ({type(e).__name__}: {e}); is it a complete "
                             f"{'gzip-compressed ' if path.suffix == '.gz' else ''}CSV?") from None
    id_col = "ItemId" if "ItemId" in df.columns else "item_id" if "item_id" in df.columns else None
    if id_col is None or "embedding" not in df.columns:
        raise EmbeddingError(f"{path}: needs columns ItemId (or item_id) and embedding; found {list(df.columns)}")
    ids = pd.to_numeric(df[id_col], errors="coerce")
    if ids.isna().any():
        line = int(np.flatnonzero(ids.isna().to_numpy())[0]) + 2
        raise EmbeddingError(f"{path}: non-integer {id_col} at line {line}")
    ids = ids.to_numpy().astype(np.int64)
    rows = _parse_json_column(path, df["embedding"], ids)
    lens = np.array([len(r) for r in rows], dtype=np.int64)
    if len(rows) and (lens != lens[0]).any():
        bad = np.flatnonzero(lens != np.bincount(lens).argmax())
        raise EmbeddingError(
            f"{path}: rows have different dimensions {sorted(set(lens.tolist()))}; e.g. item(s) "
            f"{ids[bad[:5]].tolist()} have {lens[bad[:5]].tolist()}"
        )
    vecs = np.stack(rows) if rows else np.zeros((0, dim or 0), np.float32)
    return ids, vecs


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path) as z:
            if "item_ids" not in z or "vectors" not in z:
                raise EmbeddingError(f"{path}: an .npz needs arrays 'item_ids' and 'vectors', found {list(z)}")
            ids, vecs = z["item_ids"].astype(np.int64), z["vectors"].astype(np.float32)
    except _READ_ERRORS as e:
        raise EmbeddingError(f"{path}: cannot read the file ({type(e).__name__}: {e}); is it a complete .npz?") from None
    if vecs.ndim != 2 or len(vecs) != len(ids):
        raise EmbeddingError(f"{path}: vectors shape {vecs.shape} does not match {len(ids)} ids")
    return ids, vecs


def read_embedding_file(path: str | Path, item_ids=None, dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read precomputed vectors: CSV (``.csv`` / ``.csv.gz``) with ``ItemId`` (or ``item_id``)
    and ``embedding`` (JSON list) columns, or ``.npz`` with ``item_ids`` and ``vectors``.

    Returns (ids sorted ascending (n,) int64, vectors (n, dim) float32), restricted to
    ``item_ids`` when given. Raises :class:`EmbeddingError` with the file name on: a missing,
    corrupt, non-gzip or truncated file; missing columns / arrays; a catalogue id of
    ``item_ids`` without a vector; rows of different dimensions (or ≠ ``dim``); NaN/inf rows;
    duplicate ids — naming the items.
    """
    path = Path(path)
    if not path.is_file():
        raise EmbeddingError(f"embedding file {path} does not exist")
    ids, vecs = _read_npz(path) if path.suffix == ".npz" else _read_csv(path, dim)
    if dim is not None and vecs.shape[1] != dim:
        raise EmbeddingError(f"{path}: vectors have dimension {vecs.shape[1]}, expected {dim}")
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise EmbeddingError(f"{path}: duplicate item ids, e.g. {uniq[counts > 1][:5].tolist()}")
    bad = ~np.isfinite(vecs).all(axis=1)
    if bad.any():
        raise EmbeddingError(
            f"{path}: {int(bad.sum())} row(s) contain NaN or inf, e.g. item(s) {ids[bad][:5].tolist()}"
        )
    order = np.argsort(ids)
    ids, vecs = ids[order], vecs[order]
    if item_ids is not None:
        need = np.unique(np.asarray(item_ids, dtype=np.int64))
        missing = need[~np.isin(need, ids)]
        if len(missing):
            raise EmbeddingError(
                f"{path}: {len(missing)} item(s) of the catalogue have no vector, e.g. {missing[:10].tolist()}"
            )
        keep = np.isin(ids, need)
        ids, vecs = ids[keep], vecs[keep]
    return ids, vecs


def read_provider_file(ids: np.ndarray, missing: np.ndarray, *, path: str | Path | None, wall_start: float,
                       **_) -> ItemEmbeddings:
    """The ``file`` provider (:data:`rec_utils.text.embed.PROVIDERS`): the precomputed vectors of
    ``ids`` from ``path`` (:func:`read_embedding_file`); items without text or with an all-zero
    vector are flagged ``missing_text``. Nothing is embedded or cached."""
    if path is None:
        raise EmbeddingError("provider 'file' needs path=... (a product_embeddings_*.csv.gz or .npz)")
    fids, vecs = read_embedding_file(path, item_ids=ids)
    zero = ~np.any(vecs != 0, axis=1)
    return ItemEmbeddings(fids, vecs, missing | zero, "file", str(path), None,
                          {"n_items": len(ids), "n_missing_text": int(missing.sum()), "n_embedded": 0,
                           "n_cached": 0, "wall_s": round(time.perf_counter() - wall_start, 3), "path": str(path)})
