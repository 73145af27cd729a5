"""Decoding: batched sampling and catalogue-constrained beam search (beyond the paper).

* :func:`sample`: ``n`` sampled answers per prompt (temperature, top_p; temperature 0 = greedy,
  one answer), prompts in batches (left padding), stopped at the end-of-turn token.
* :func:`constrained_beam`: beam search whose every step may only extend a prefix of a
  tokenised catalogue name (:class:`NameTrie`, through transformers' ``prefix_allowed_tokens_fn``),
  so every finished beam is a real catalogue name followed by the end token, and the beams'
  order (their log-probabilities) is the ranking. ``num_beams`` beams, all returned.

Both return decoded text (special tokens dropped) and time themselves (``last_timing``) for the
throughput benchmark: generated items per second.
"""
from __future__ import annotations

import time

import numpy as np
from tqdm.auto import tqdm

last_timing: dict = {}


class NameTrie:
    """Prefix trie over token sequences of names (each ended by ``end_id``).

    ``allowed(prefix)`` lists the tokens that continue a name after the generated ``prefix``
    (token ids after the prompt); after a complete name only ``end_id``, then ``pad_id``.
    """

    def __init__(self, token_seqs: list[list[int]], end_id: int, pad_id: int):
        self.root: dict = {}
        self.end_id, self.pad_id = int(end_id), int(pad_id)
        for seq in token_seqs:
            node = self.root
            for t in list(seq) + [self.end_id]:
                node = node.setdefault(int(t), {})
        self.size = len(token_seqs)

    def allowed(self, prefix) -> list[int]:
        node = self.root
        for t in prefix:
            t = int(t)
            if t not in node:
                return [self.pad_id]  # finished (end token) or padding after it
            node = node[t]
        return list(node) or [self.pad_id]

    @classmethod
    def from_names(cls, tok, names: list[str], end_id: int, prefix: str = "", suffix: str = "") -> "NameTrie":
        """Names tokenised as the fine-tuning answers are (``prefix + name + suffix``, alone)."""
        ids = tok([prefix + n + suffix for n in names], add_special_tokens=False)["input_ids"]
        return cls(ids, end_id, tok.pad_token_id)


def _batches(n: int, size: int):
    return [(a, min(n, a + size)) for a in range(0, n, size)]


def _encode(tok, texts, device):
    enc = tok(list(texts), return_tensors="pt", padding=True, add_special_tokens=False)
    return {k: v.to(device) for k, v in enc.items()}


def sample(model, tok, prompts: list[str], *, n: int = 20, temperature: float = 0.25, top_p: float = 1.0,
           max_new_tokens: int = 48, batch_size: int = 4, seed: int = 0, eos_ids=None,
           progress: bool = True) -> list[list[str]]:
    """``n`` answers per prompt text (already chat-formatted); ``temperature`` 0 = greedy (1 answer)."""
    import torch

    dev = next(model.parameters()).device
    greedy = temperature <= 0
    out, t0, n_gen = [], time.perf_counter(), 0
    model.eval()
    for a, b in tqdm(_batches(len(prompts), batch_size), desc=f"sampling x{1 if greedy else n}", disable=not progress):
        enc = _encode(tok, prompts[a:b], dev)
        torch.manual_seed(seed + a)
        kw = dict(do_sample=False) if greedy else dict(do_sample=True, temperature=float(temperature),
                                                      top_p=float(top_p), num_return_sequences=int(n), top_k=0)
        with torch.no_grad():
            g = model.generate(**enc, max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id,
                               eos_token_id=eos_ids or tok.eos_token_id, **kw)
        new = g[:, enc["input_ids"].shape[1]:]
        n_gen += int((new != tok.pad_token_id).sum())
        texts = tok.batch_decode(new, skip_special_tokens=True)
        per = 1 if greedy else n
        out += [texts[i * per:(i + 1) * per] for i in range(b - a)]
    dt = time.perf_counter() - t0
    last_timing.update(decoder="sample", prompts=len(prompts), answers=sum(map(len, out)), seconds=dt,
                       new_tokens=n_gen)
    return out


def constrained_beam(model, tok, prompts: list[str], trie: NameTrie, *, num_beams: int = 20,
                     max_new_tokens: int = 48, batch_size: int = 1, progress: bool = True
                     ) -> tuple[list[list[str]], list[list[float]]]:
    """Beam search restricted to catalogue names; returns per prompt the ``num_beams`` names
    (best first) and their sequence scores (length-normalised log-probabilities)."""
    import torch

    dev = next(model.parameters()).device
    names, scores, t0 = [], [], time.perf_counter()
    model.eval()
    for a, b in tqdm(_batches(len(prompts), batch_size), desc=f"constrained beam x{num_beams}", disable=not progress):
        enc = _encode(tok, prompts[a:b], dev)
        plen = enc["input_ids"].shape[1]

        def allowed(batch_id, ids):
            return trie.allowed(ids[plen:].tolist())

        with torch.no_grad():
            g = model.generate(**enc, max_new_tokens=max_new_tokens, num_beams=num_beams,
                               num_return_sequences=num_beams, do_sample=False, early_stopping=True,
                               prefix_allowed_tokens_fn=allowed, pad_token_id=tok.pad_token_id,
                               eos_token_id=trie.end_id, output_scores=True, return_dict_in_generate=True)
        texts = tok.batch_decode(g.sequences[:, plen:], skip_special_tokens=True)
        sc = g.sequences_scores.tolist() if getattr(g, "sequences_scores", None) is not None else [0.0] * len(texts)
        for i in range(b - a):
            names.append([t.strip() for t in texts[i * num_beams:(i + 1) * num_beams]])
            scores.append(sc[i * num_beams:(i + 1) * num_beams])
    dt = time.perf_counter() - t0
    last_timing.update(decoder="beam", prompts=len(prompts), answers=sum(map(len, names)), seconds=dt)
    return names, scores
