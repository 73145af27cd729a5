"""Optional OpenAI backend of LLMSeqPrompt (paper §6.2.2 "GPT"): the same cases as chat
fine-tuning JSONL, a token count and cost estimate with a **cost guard**, upload, job creation,
polling with backoff, and chat completions for inference; the official ``openai`` client with a
configurable ``base_url`` (any compatible server; tests use ``tests/openai_stub.py``).

Tokens: ``tiktoken``'s ``cl100k_base`` count plus the chat overheads (3 per message + 3) when
tiktoken is installed; otherwise an estimate of one token per 4 characters (recorded as such).
Cost = tokens × epochs × ``usd_per_1k_tokens`` (the reference's $0.008); :func:`cost_guard`
refuses an estimate above ``max_cost_usd`` (the reference's $50) unless the bound is raised.
Nothing here runs unless ``backend="openai"`` is chosen: the study is offline by default.
"""
from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

from ..text.openai_backend import _retryable
from ..utils import atomic_write_text
from .local import LLMError

USD_PER_1K_TRAIN_TOKENS = 0.008  # reference: gpt-3.5-turbo fine-tuning price
DEFAULT_MAX_COST_USD = 50.0  # reference: the GPT script's guard
DEFAULT_FT_MODEL = "gpt-3.5-turbo-1106"


class CostGuardError(LLMError):
    """The estimated fine-tuning cost exceeds the bound."""


def client(api_key: str | None = None, base_url: str | None = None, timeout: float = 60.0):
    """The official client; no key → :class:`LLMError` naming ``OPENAI_API_KEY``."""
    import openai  # optional: only when the OpenAI backend is chosen

    key = api_key or os.environ.get("OPENAI_API_KEY")
    if not key:
        raise LLMError("backend 'openai' needs an API key: set the OPENAI_API_KEY environment variable (or pass "
                       "api_key=...); base_url=... (or OPENAI_BASE_URL) points it at a compatible server. "
                       "Offline, use backend='local' (the default).")
    return openai.OpenAI(api_key=key, base_url=base_url or os.environ.get("OPENAI_BASE_URL"), max_retries=0,
                         timeout=timeout)


def count_tokens(example: dict) -> tuple[int, str]:
    """Tokens of one JSONL example (``messages`` or ``prompt``/``completion``) and the method."""
    texts = ([m["content"] for m in example["messages"]] if "messages" in example
             else [example["prompt"], example["completion"]])
    overhead = 3 * len(texts) + 3 if "messages" in example else 0
    try:
        import tiktoken  # optional: only for OpenAI cost estimates

        enc = tiktoken.get_encoding("cl100k_base")
        return sum(len(enc.encode(t)) for t in texts) + overhead, "tiktoken cl100k_base"
    except ImportError:
        return sum((len(t) + 3) // 4 for t in texts) + overhead, "estimate: 4 characters per token"


def write_jsonl(examples: list[dict], path: Path) -> dict:
    """Write one example a line (atomically); returns ``{"examples", "tokens", "token_count"}``."""
    path = Path(path)
    atomic_write_text(path, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples))
    counts = [count_tokens(e) for e in examples]
    return {"path": str(path), "examples": len(examples), "tokens": sum(c for c, _ in counts),
            "token_count": counts[0][1] if counts else ""}


def estimate_cost(tokens: int, epochs: float, usd_per_1k: float = USD_PER_1K_TRAIN_TOKENS) -> float:
    return tokens * max(float(epochs), 1.0) / 1000.0 * usd_per_1k


def cost_guard(cost_usd: float, max_cost_usd: float = DEFAULT_MAX_COST_USD) -> None:
    """Raise :class:`CostGuardError` when ``cost_usd`` exceeds ``max_cost_usd``."""
    if cost_usd > max_cost_usd:
        raise CostGuardError(f"estimated fine-tuning cost ${cost_usd:.2f} exceeds max_cost_usd=${max_cost_usd:.2f}; "
                             "raise max_cost_usd to run it")


def _call(fn, *, max_retries: int = 6, base_s: float = 1.0, max_s: float = 60.0):
    """``fn()`` retried on rate limits / timeouts / 5xx with exponential backoff (× jitter)."""
    for attempt in range(max_retries + 1):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - classified by _retryable
            ok, after = _retryable(e)
            if not ok or attempt >= max_retries:
                raise LLMError(f"OpenAI request failed after {attempt + 1} attempt(s): {type(e).__name__}: {e}") from e
            time.sleep(after if after is not None else min(max_s, base_s * 2 ** attempt) * (0.5 + random.random()))


def fine_tune(train_path: Path, val_path: Path | None, *, model: str = DEFAULT_FT_MODEL, epochs: float | None = None,
              api_key=None, base_url=None, poll_s: float = 10.0, poll_max_s: float = 300.0, timeout_s: float = 86400,
              log=print) -> dict:
    """Upload the files, create the job, poll it (interval doubling from ``poll_s`` to
    ``poll_max_s``) until it ends; returns ``{"job_id", "fine_tuned_model", "status", "polls"}``.

    Raises:
        LLMError: the job failed or was cancelled, or ``timeout_s`` passed.
    """
    c = client(api_key, base_url)
    tr = _call(lambda: c.files.create(file=open(train_path, "rb"), purpose="fine-tune"))
    va = _call(lambda: c.files.create(file=open(val_path, "rb"), purpose="fine-tune")) if val_path else None
    kw = {"training_file": tr.id, "model": model}
    if va is not None:
        kw["validation_file"] = va.id
    if epochs:
        kw["hyperparameters"] = {"n_epochs": int(epochs)}
    job = _call(lambda: c.fine_tuning.jobs.create(**kw))
    t0, wait, polls = time.monotonic(), poll_s, 0
    while job.status not in ("succeeded", "failed", "cancelled"):
        if time.monotonic() - t0 > timeout_s:
            raise LLMError(f"fine-tuning job {job.id} still {job.status} after {timeout_s} s")
        time.sleep(wait)
        wait = min(poll_max_s, wait * 2)
        job = _call(lambda: c.fine_tuning.jobs.retrieve(job.id))
        polls += 1
        log(f"fine-tuning job {job.id}: {job.status}")
    if job.status != "succeeded":
        raise LLMError(f"fine-tuning job {job.id} {job.status}: {getattr(job, 'error', None)}")
    return {"job_id": job.id, "fine_tuned_model": job.fine_tuned_model, "status": job.status, "polls": polls,
            "training_file": tr.id, "validation_file": getattr(va, "id", None)}


def chat_samples(model: str, message_lists: list[list[dict]], *, n: int = 20, temperature: float = 0.25,
                 top_p: float = 1.0, max_tokens: int = 50, api_key=None, base_url=None) -> list[list[str]]:
    """``n`` chat completions per prompt (empty text where the server gave no content)."""
    c = client(api_key, base_url)
    out = []
    for msgs in message_lists:
        r = _call(lambda: c.chat.completions.create(model=model, messages=msgs, n=n, temperature=temperature,
                                                    top_p=top_p, max_tokens=max_tokens))
        out.append([(ch.message.content or "") for ch in sorted(r.choices, key=lambda ch: ch.index)])
    return out
