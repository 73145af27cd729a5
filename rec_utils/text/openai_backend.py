"""OpenAI (or any OpenAI-compatible server) embeddings: the official client, batches, retries
with exponential backoff, and a token / cost ledger.

Batches of ``batch_size`` texts (1,000 as in the reference); rate limits (429), timeouts,
connection errors and 5xx are retried ``max_retries`` times after ``retry_base_s · 2^attempt``
seconds (× a jitter in [0.5, 1.5), at most ``retry_max_s``) or the server's ``Retry-After``;
other errors fail at once. Every call that sent a request appends a row to ``ledger.csv`` in
the model's cache folder (texts, requests, retries, prompt tokens, USD cost from
:data:`OPENAI_PRICES_PER_1M`).
"""
from __future__ import annotations

import base64
import csv
import io
import logging
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from tqdm.auto import tqdm

from ..utils import atomic_write_text, file_lock
from .cache import Encoder
from .vectors import EmbeddingError

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "text-embedding-3-small"
#: USD per 1M input tokens (OpenAI price list, 2024); unknown models are recorded with cost NaN.
OPENAI_PRICES_PER_1M = {
    "text-embedding-ada-002": 0.10,
    "text-embedding-3-small": 0.02,
    "text-embedding-3-large": 0.13,
}


@dataclass
class OpenAIUsage:
    requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    texts: int = 0


def effective_base_url(base_url: str | None) -> str:
    return base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL


def openai_identity(model: str, dimensions: int | None, base_url: str | None) -> str:
    """What identifies OpenAI vectors in the cache: model name, ``dimensions`` and the server's
    host (a compatible server may serve other vectors under the same model name)."""
    host = urlparse(effective_base_url(base_url)).hostname
    return f"openai|{model}|dimensions={dimensions}|host={host}"


def _client(api_key: str | None, base_url: str | None, timeout: float):
    try:
        import openai  # optional: only when the OpenAI backend is chosen
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
    import openai  # optional: only when the OpenAI backend is chosen

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


def embed_openai(texts: list[str], model: str, *, batch_size: int, api_key: str | None,
                 base_url: str | None, dimensions: int | None, max_retries: int,
                 retry_base_s: float, retry_max_s: float, timeout: float,
                 show_progress: bool, usage: OpenAIUsage) -> np.ndarray:
    """(len(texts), dim) float32 vectors in text order; ``usage`` counts requests, retries and
    tokens (also when it raises :class:`EmbeddingError`)."""
    client = _client(api_key, base_url, timeout)
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


def write_ledger(folder: Path, model: str, usage: OpenAIUsage, base_url: str | None) -> dict:
    """Append one row (time, model, server, texts, requests, retries, prompt tokens, price,
    cost in USD) to ``folder/ledger.csv`` under a file lock; returns the row."""
    price = OPENAI_PRICES_PER_1M.get(model)
    cost = usage.prompt_tokens / 1e6 * price if price is not None else float("nan")
    row = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "model": model, "base_url": effective_base_url(base_url),
        "texts": usage.texts, "requests": usage.requests, "retries": usage.retries,
        "prompt_tokens": usage.prompt_tokens, "usd_per_1m_tokens": price, "cost_usd": cost,
    }
    path = Path(folder) / "ledger.csv"
    with file_lock(path):
        old = path.read_text() if path.is_file() else ""
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(row))
        if not old:
            w.writeheader()
        w.writerow(row)
        atomic_write_text(path, old + buf.getvalue())
    return row


def encoder(model: str, *, batch_size: int | None = None, api_key: str | None = None, base_url: str | None = None,
            dimensions: int | None = None, max_retries: int = 6, retry_base_s: float = 1.0, retry_max_s: float = 60.0,
            timeout: float = 60.0, show_progress: bool = True, **_) -> Encoder:
    """The ``openai`` provider (:data:`rec_utils.text.embed.PROVIDERS`): :func:`embed_openai` in
    batches of ``batch_size`` (default 1,000, as the reference); the cache is named by the model
    and keyed by :func:`openai_identity`; the report adds requests, retries, prompt tokens and
    the cost ledger written next to the cache."""
    usage = OpenAIUsage()

    def encode(todo):
        return embed_openai(todo, model, batch_size=batch_size or 1000, api_key=api_key, base_url=base_url,
                            dimensions=dimensions, max_retries=max_retries, retry_base_s=retry_base_s,
                            retry_max_s=retry_max_s, timeout=timeout, show_progress=show_progress, usage=usage)

    def report(cache) -> dict:
        if not usage.requests:
            return {}
        info = {"requests": usage.requests, "retries": usage.retries, "prompt_tokens": usage.prompt_tokens}
        if cache is not None:
            info["ledger"] = write_ledger(cache.dir, model, usage, base_url)
        return info

    return Encoder(encode, Path(model).name, openai_identity(model, dimensions, base_url), report)
