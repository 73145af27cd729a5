"""``embed_items``: item texts → :class:`ItemEmbeddings`, dispatched to a provider of
:data:`PROVIDERS` and cached."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..utils import resolve_device
from . import local, openai_backend
from .cache import EmbeddingCache, Encoder, default_cache_dir, embed_with_cache, model_key
from .files import read_provider_file
from .texts import as_text_series
from .vectors import EmbeddingError, ItemEmbeddings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Provider:
    """An embedding provider: its default model and either an ``encoder`` (texts → vectors
    through the content-keyed cache; :class:`~rec_utils.text.cache.Encoder`) or a ``reader``
    (precomputed vectors, no model, no cache). ``encoder(model, cache_root=..., device=...,
    **options)`` takes the options of :func:`embed_items` it knows (``**_`` for the others);
    ``reader(ids, missing, path=..., wall_start=...)`` returns the :class:`ItemEmbeddings`."""

    default_model: str
    encoder: Callable[..., Encoder] | None = None
    reader: Callable[..., ItemEmbeddings] | None = None


#: Every embedding provider by name. A new one: a module beside ``local.py`` with an
#: ``encoder`` (or ``reader``) function, plus one line here.
PROVIDERS: dict[str, Provider] = {
    "sentence-transformers": Provider(local.DEFAULT_MODEL, encoder=local.encoder),
    "openai": Provider(openai_backend.DEFAULT_MODEL, encoder=openai_backend.encoder),
    "file": Provider("file", reader=read_provider_file),
}
DEFAULT_PROVIDER = "sentence-transformers"
DEFAULT_MODELS = {name: p.default_model for name, p in PROVIDERS.items()}


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
    """Embed every item's text (or read precomputed vectors); paper §5.1.

    Args:
        items: item_id → text: a ``Dataset`` (its default text builder), a Series indexed by
            item id, a mapping, or a DataFrame with ``item_id`` and ``text``. For ``file`` the
            ids say which items must be present (the texts are only used for ``missing_text``).
        provider: ``sentence-transformers`` | ``openai`` | ``file``.
        model: model name (default per provider: all-MiniLM-L6-v2, text-embedding-3-small) or,
            for sentence-transformers, a local folder.
        path: the vector file of provider ``file``.
        cache_dir: cache root (default ``$REC_UTILS_EMBEDDING_CACHE`` or ``.cache/embeddings``).
        use_cache: read and write the cache.
        batch_size: texts per forward pass (64) / per API request (1,000, as the reference).
        normalize: L2-normalise sentence-transformers outputs (all-MiniLM-L6-v2 ends with a
            Normalize layer anyway; OpenAI vectors come unit-norm).
        device: ``auto`` → CUDA when present.
        api_key, base_url: OpenAI credentials / endpoint (default ``OPENAI_API_KEY`` /
            ``OPENAI_BASE_URL``); ``dimensions`` the optional shortened output of v3 models.
        max_retries, retry_base_s, retry_max_s, timeout: OpenAI retry policy and request
            timeout (s), see :mod:`rec_utils.text.openai_backend`.

    Returns:
        :class:`ItemEmbeddings` of every item (sorted ids, (n, dim) float32); items without
        text get a zero row and ``missing_text`` (a warning logs how many). ``info`` has
        n_items, n_missing_text, n_cached, n_embedded (distinct texts sent to the model),
        wall_s, model_key and, for OpenAI, requests / retries / prompt_tokens / ledger.

    Raises:
        EmbeddingError: unknown provider, a model that is not available offline, a missing
            API key (only when something must be sent), a bad vector file, NaN/inf output.
    """
    if provider not in PROVIDERS:
        raise EmbeddingError(f"unknown provider {provider!r}; choose one of {tuple(PROVIDERS)}")
    chosen = PROVIDERS[provider]
    model = model or chosen.default_model
    t0 = time.perf_counter()
    texts = as_text_series(items)
    ids, text_arr = texts.index.to_numpy(dtype=np.int64), texts.to_numpy()
    missing = text_arr == ""
    if missing.any():
        log.warning("%d of %d items have no text: they get a zero vector (flagged in missing_text)",
                    int(missing.sum()), len(ids))
    if chosen.reader is not None:
        return chosen.reader(ids, missing, path=path, wall_start=t0)

    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    dev = resolve_device(device)
    enc = chosen.encoder(model, cache_root=cache_root, device=dev, batch_size=batch_size, normalize=normalize,
                         api_key=api_key, base_url=base_url, dimensions=dimensions, max_retries=max_retries,
                         retry_base_s=retry_base_s, retry_max_s=retry_max_s, timeout=timeout,
                         show_progress=show_progress)
    key = model_key(enc.cache_label, enc.identity)
    cache = EmbeddingCache(cache_root, provider, key) if use_cache else None
    info: dict = {"device": dev, "model_key": key, **enc.check_texts(text_arr[~missing])}
    try:
        vectors, counts = embed_with_cache(text_arr, enc.encode, cache, f"{provider}/{model}")
    finally:
        info.update(enc.report(cache))
    info = {**counts, **info, "wall_s": round(time.perf_counter() - t0, 3)}
    if counts["n_embedded"]:
        info["texts_per_s"] = round(counts["n_embedded"] / max(info["wall_s"], 1e-9), 1)
    return ItemEmbeddings(ids, vectors, missing, provider, model, texts, info)
