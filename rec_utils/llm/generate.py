"""Decoding: n sampled answers per prompt, and catalogue-constrained beam search (beyond the paper).

Both decode **one prompt at a time with its key/value cache computed once** and shared by the n
samples / beams (``DynamicCache.batch_repeat_interleave`` / ``reorder_cache``): transformers'
``generate`` would expand the prompt n-fold before its first forward pass, and with prompts of
~150-250 tokens and answers of ~15 that prefill is ~90 % of the work on a CPU. The steps are the
textbook ones, on the model's logits:

* :func:`sample`: temperature, then nucleus (``top_p``) filtering, then a draw per sequence
  (``torch.Generator`` seeded per prompt); ``temperature`` 0 = greedy (one answer). A sequence
  ends at the end-of-turn token or after ``max_new_tokens``, and leaves the batch (its rows of
  the cache are dropped), so the remaining steps run on the live sequences only.
* :func:`constrained_beam`: beam search whose every token must extend a prefix of a tokenised
  catalogue name (:class:`NameTrie`, the same restriction as transformers'
  ``prefix_allowed_tokens_fn``): each step keeps the ``num_beams`` best (beam, allowed token)
  pairs by log-probability; a pair whose token is the end token is a finished name. Names are
  ranked by their log-probability log P(name | prompt) (no length normalisation: the model's
  probability of the item). Since log-probabilities only decrease, search stops as soon as
  ``num_beams`` names are finished and no live beam scores higher than the worst of them, so
  the result is exactly the beam search's, and every name is a real catalogue name.

``last_timing`` records prompts, answers, new tokens and seconds of the last call (throughput).
"""
from __future__ import annotations

import time

from tqdm.auto import tqdm

last_timing: dict = {}

# Part of every local LLMSeqPrompt run's identity (``LLMSeqPrompt.input_fingerprint``): a change
# of the decoding loops that changes their output for the same seed (here: finished samples leave
# the batch, which changes the generator's draws) gets a new value, so stored runs of the old
# loops are not taken for runs of the new one.
DECODING_REVISION = 2


class NameTrie:
    """Prefix trie over token sequences of names (each ended by ``end_id``).

    ``allowed(prefix)`` lists the tokens that continue a name after ``prefix`` (token ids of the
    answer so far); ``[]`` when the prefix is not in the trie.
    """

    def __init__(self, token_seqs: list[list[int]], end_id: int, pad_id: int | None = None):
        self.root: dict = {}
        self.end_id = int(end_id)
        self.pad_id = int(pad_id if pad_id is not None else end_id)
        self.depth = max((len(q) for q in token_seqs), default=0) + 1  # longest name + end token
        for seq in token_seqs:
            node = self.root
            for t in list(seq) + [self.end_id]:
                node = node.setdefault(int(t), {})
        self.size = len(token_seqs)

    def node(self, prefix):
        node = self.root
        for t in prefix:
            node = node.get(int(t))
            if node is None:
                return None
        return node

    def allowed(self, prefix) -> list[int]:
        node = self.node(prefix)
        return list(node) if node else []

    @classmethod
    def from_names(cls, tok, names: list[str], end_id: int, prefix: str = "", suffix: str = "") -> "NameTrie":
        """Names tokenised as the fine-tuning answers are (``prefix + name + suffix``, alone)."""
        ids = tok([prefix + n + suffix for n in names], add_special_tokens=False)["input_ids"]
        return cls(ids, end_id, tok.pad_token_id)


def _prefill(model, tok, text: str):
    import torch  # heavy: loaded only where tensors are used
    from transformers import DynamicCache  # heavy: loaded only by LLM runs

    dev = next(model.parameters()).device
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]], device=dev)
    cache = DynamicCache()
    out = model(input_ids=ids, cache=cache, use_cache=True)  # the cache is filled in place
    return out.logits[:, -1, :].float(), cache


def _step(model, tokens, cache):
    out = model(input_ids=tokens[:, None], cache=cache, use_cache=True)
    return out.logits[:, -1, :].float(), cache


def _nucleus(logits, temperature: float, top_p: float):
    import torch  # heavy: loaded only where tensors are used

    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sp, si = torch.sort(probs, dim=-1, descending=True)
        keep = (sp.cumsum(-1) - sp) < top_p  # the smallest set whose mass reaches top_p (first always kept)
        sp = sp * keep
        probs = torch.zeros_like(probs).scatter(-1, si, sp)
    return probs / probs.sum(-1, keepdim=True)


def sample(model, tok, prompts: list[str], *, n: int = 20, temperature: float = 0.25, top_p: float = 1.0,
           max_new_tokens: int = 48, seed: int = 0, eos_id: int | None = None,
           progress: bool = True) -> list[list[str]]:
    """``n`` answers per prompt text (already chat-formatted), one prompt at a time;
    ``temperature`` 0 = greedy (1 answer)."""
    import torch  # heavy: loaded only where tensors are used

    eos = tok.eos_token_id if eos_id is None else eos_id
    greedy = temperature <= 0
    per = 1 if greedy else int(n)
    out, t0, n_gen = [], time.perf_counter(), 0
    model.eval()
    with torch.no_grad():
        for i, text in enumerate(tqdm(prompts, desc=f"sampling x{per}", disable=not progress)):
            g = torch.Generator().manual_seed(seed * 1_000_003 + i)
            logits, cache = _prefill(model, tok, text)
            if per > 1:
                cache.batch_repeat_interleave(per)
                logits = logits.repeat(per, 1)
            seqs = [[] for _ in range(per)]
            alive = torch.arange(per)  # rows still decoding; finished rows leave the batch (and the cache)
            for _ in range(max_new_tokens):
                if greedy:
                    nxt = logits.argmax(-1).cpu()
                else:
                    nxt = torch.multinomial(_nucleus(logits, temperature, top_p).cpu(), 1, generator=g)[:, 0]
                ended = nxt == eos
                for j, t in zip(alive.tolist(), nxt.tolist()):
                    if t != eos:
                        seqs[j].append(t)
                if bool(ended.all()):
                    break
                if bool(ended.any()):
                    keep = torch.nonzero(~ended)[:, 0]
                    alive, nxt, logits = alive[keep], nxt[keep], logits[keep]
                    cache.batch_select_indices(keep.to(logits.device))
                logits, cache = _step(model, nxt.to(logits.device), cache)
            n_gen += sum(map(len, seqs))
            out.append(tok.batch_decode(seqs, skip_special_tokens=True))
    dt = time.perf_counter() - t0
    last_timing.update(decoder="greedy" if greedy else "sample", prompts=len(prompts), answers=len(prompts) * per,
                       seconds=dt, new_tokens=n_gen)
    return out


def constrained_beam(model, tok, prompts: list[str], trie: NameTrie, *, num_beams: int = 20,
                     max_new_tokens: int | None = None, progress: bool = True
                     ) -> tuple[list[list[str]], list[list[float]]]:
    """Beam search restricted to catalogue names (module docstring); per prompt up to
    ``num_beams`` distinct names, best first, and their log-probabilities. ``max_new_tokens``
    None: the trie's depth (the longest name and its end token), so no name is cut."""
    import torch  # heavy: loaded only where tensors are used

    limit = max_new_tokens or trie.depth
    names, scores, t0, n_gen = [], [], time.perf_counter(), 0
    model.eval()
    with torch.no_grad():
        for text in tqdm(prompts, desc=f"constrained beam x{num_beams}", disable=not progress):
            logits, cache = _prefill(model, tok, text)
            beams = [([], 0.0, trie.root)]  # (tokens, log-prob, trie node)
            finished: list[tuple[float, list[int]]] = []
            for _ in range(limit):
                logp = torch.log_softmax(logits, dim=-1).cpu()
                cand = []
                for r, (toks, s, node) in enumerate(beams):
                    allowed = list(node)
                    if not allowed:
                        continue
                    lp = logp[r, allowed].tolist()
                    cand += [(s + v, r, t) for v, t in zip(lp, allowed)]
                cand.sort(key=lambda c: (-c[0], c[2], c[1]))  # ties: the smaller token id, then beam
                live = []
                for s, r, t in cand:
                    if t == trie.end_id:
                        if len(finished) < num_beams or s > finished[-1][0]:
                            finished.append((s, beams[r][0]))
                            finished.sort(key=lambda f: -f[0])
                            del finished[num_beams:]
                    elif len(live) < num_beams:
                        live.append((s, r, t))
                    if len(live) >= num_beams:  # lower candidates cannot enter (the standard beam step)
                        break
                if not live or (len(finished) >= num_beams and live[0][0] <= finished[-1][0]):
                    break
                idx = torch.tensor([r for _, r, _ in live], device=logits.device)
                cache.reorder_cache(idx)
                beams = [(beams[r][0] + [t], s, beams[r][2][t]) for s, r, t in live]
                n_gen += len(live)
                logits, cache = _step(model, torch.tensor([t for _, _, t in live], device=logits.device), cache)
            names.append([tok.decode(tk, skip_special_tokens=True).strip() for _, tk in finished])
            scores.append([s for s, _ in finished])
    dt = time.perf_counter() - t0
    last_timing.update(decoder="beam", prompts=len(prompts), answers=sum(map(len, names)), seconds=dt, new_tokens=n_gen)
    return names, scores
