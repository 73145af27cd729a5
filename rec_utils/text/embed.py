"""``embed_items``: item texts → :class:`ItemEmbeddings`, dispatched to a provider and cached."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from ..utils import resolve_device
from . import local, openai_backend
from .cache import EmbeddingCache, default_cache_dir, embed_with_cache, model_key
from .files import read_embedding_file
from .texts import as_text_series, warn_too_long
from .vectors import EmbeddingError, ItemEmbeddings

log = logging.getLogger(__name__)

PROVIDERS = ("sentence-transformers", "openai", "file")
DEFAULT_PROVIDER = "sentence-transformers"
DEFAULT_MODELS = {
    "sentence-transformers": "sentence-transformers/all-MiniLM-L6-v2",
    "openai": "text-embedding-3-small",
    "file": "file",
}


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
        raise EmbeddingError(f"unknown provider {provider!r}; choose one of {PROVIDERS}")
    model = model or DEFAULT_MODELS[provider]
    t0 = time.perf_counter()
    texts = as_text_series(items)
    ids, text_arr = texts.index.to_numpy(dtype=np.int64), texts.to_numpy()
    missing = text_arr == ""
    if missing.any():
        log.warning("%d of %d items have no text: they get a zero vector (flagged in missing_text)",
                    int(missing.sum()), len(ids))
    if provider == "file":
        if path is None:
            raise EmbeddingError("provider 'file' needs path=... (a product_embeddings_*.csv.gz or .npz)")
        fids, vecs = read_embedding_file(path, item_ids=ids)
        zero = ~np.any(vecs != 0, axis=1)
        return ItemEmbeddings(fids, vecs, missing | zero, "file", str(path), None,
                              {"n_items": len(ids), "n_missing_text": int(missing.sum()), "n_embedded": 0,
                               "n_cached": 0, "wall_s": round(time.perf_counter() - t0, 3), "path": str(path)})

    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    dev = resolve_device(device)
    usage = None
    if provider == "sentence-transformers":
        folder = local.resolve_local_model(model, cache_root)
        counter, max_len = local.piece_counter(folder)
        n_too_long = warn_too_long(text_arr[~missing], max_len, counter, model)
        identity = f"sentence-transformers|{local.model_content_hash(folder)}|normalize={normalize}"

        def encode(todo):
            return local.encode(todo, folder, device=dev, batch_size=batch_size or 64, normalize=normalize,
                                show_progress=show_progress)
    else:
        identity = openai_backend.openai_identity(model, dimensions, base_url)
        usage = openai_backend.OpenAIUsage()

        def encode(todo):
            return openai_backend.embed_openai(
                todo, model, batch_size=batch_size or 1000, api_key=api_key, base_url=base_url,
                dimensions=dimensions, max_retries=max_retries, retry_base_s=retry_base_s,
                retry_max_s=retry_max_s, timeout=timeout, show_progress=show_progress, usage=usage)
    # a local model's cache is named by content alone: the same files under another name or
    # path share it, changed files get a new one
    key = model_key("local" if provider == "sentence-transformers" else Path(model).name, identity)
    cache = EmbeddingCache(cache_root, provider, key) if use_cache else None
    info: dict = {"device": dev, "model_key": key}
    if provider == "sentence-transformers":
        info["n_too_long"] = n_too_long
    try:
        vectors, counts = embed_with_cache(text_arr, encode, cache, f"{provider}/{model}")
    finally:
        if usage is not None and usage.requests:
            if cache is not None:
                info["ledger"] = openai_backend.write_ledger(cache.dir, model, usage, base_url)
            info.update(requests=usage.requests, retries=usage.retries, prompt_tokens=usage.prompt_tokens)
    info = {**counts, **info, "wall_s": round(time.perf_counter() - t0, 3)}
    if counts["n_embedded"]:
        info["texts_per_s"] = round(counts["n_embedded"] / max(info["wall_s"], 1e-9), 1)
    return ItemEmbeddings(ids, vectors, missing, provider, model, texts, info)
