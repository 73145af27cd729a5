"""Decoding: n sampled answers per prompt, and catalogue-constrained beam search (beyond the paper).

:func:`sample` and :func:`constrained_beam` decode **several prompts together** (``batch_size``,
default 8 on a CPU): one left-padded prefill of the batch's prompts (only the last position's
logits), then one forward pass per step over every live row of every prompt (its samples or
beams), the rows sharing one key/value cache (``DynamicCache.reorder_cache`` keeps, repeats and
reorders rows); a finished sample and a prompt whose search has stopped leave the batch.
Prompts are grouped by length, so padding is small; positions come from the attention mask.
On a CPU the forward passes of a 30-layer model on a handful of rows are dominated by per-op
overhead and by reading the weights once per step, so batching prompts multiplies the rows a
pass does for about the same time. The steps are the textbook ones, on the model's logits:

* :func:`sample`: temperature, then nucleus (``top_p``) filtering, then a draw per sequence
  (a ``torch.Generator`` seeded per prompt, drawing over that prompt's live rows only: the same
  draws as one prompt at a time); ``temperature`` 0 = greedy (one answer). A sequence ends at
  the end-of-turn token or after ``max_new_tokens``.
* :func:`constrained_beam`: beam search whose every token must extend a prefix of a tokenised
  catalogue name (:class:`NameTrie`, the same restriction as transformers'
  ``prefix_allowed_tokens_fn``): each step keeps the ``num_beams`` best (beam, allowed token)
  pairs by log-probability (ties: the smaller token id, then the earlier beam); a pair whose
  token is the end token is a finished name. Names are ranked by log P(name | prompt) (no
  length normalisation: the model's probability of the item). Since log-probabilities only
  decrease, search stops as soon as ``num_beams`` names are finished and no live beam scores
  higher than the worst of them, so the result is exactly the beam search's, and every name
  is a real catalogue name. ``scores="catalogue"`` renormalises each step over the allowed
  tokens and computes only their rows of the LM head (an option: another ranking).

Why our own loop and not ``model.generate``: transformers' beam search and sampling expand
the prompt ``num_beams`` / ``n`` times **before** the prefill (20 prefills of a ~150-token prompt
for ~15 answer tokens: most of the work), length-normalise finished beams by default, and stop
beams by a heuristic; ``prefix_allowed_tokens_fn`` is called per row in Python. Our loop
prefills each prompt once and shares it. Static caches (``cache_implementation="static"``) pay
off with ``torch.compile`` on a GPU; on the CPU they only add padding to the cache, so the
dynamic cache is used. Measured throughput, reference loops against these:
``scripts/benchmark_llmseqprompt.py --measure`` → ``results/benchmarks/llmseqprompt.csv``.

:func:`sample_sequential` and :func:`constrained_beam_sequential` are the one-prompt-at-a-time
loops of decoding revision 2, kept as the reference of the equivalence tests and the "before"
path of the benchmark.

``last_timing`` records prompts, answers, new tokens and seconds of the last call (throughput).

Profile (torch.profiler, issue 24; SmolLM2-135M fp32, 2 threads, a shared box at load ~4-5, one
batch of 2 GenItem prompts x 20 beams, 126 steps, 1,287 beam tokens): ``aten::mm`` 66 % of the
CPU time (the 30 layers' linear maps on ~10-40 rows a step: each step reads all 540 MB of fp32
weights, so it is memory-bound, not Python-bound), ``index_select`` 14 % (``reorder_cache`` of
the key/value cache every step), ``cat`` 9 % (the dynamic cache's append), attention 5 %,
log-softmax over the vocabulary 1.6 %; Python and transformers' per-op overhead are small. The
long tail is the search itself: names of up to 261 tokens keep beams alive for ~100 steps.
:func:`for_decoding` (``precision="bf16"``, an option) halves the bytes; measured on 4 prompts
(batch 4, 20 beams) at load 3.4-4.0: fp32 0.28 then 0.65 items/s, bf16 0.68 items/s (about the
same as warm fp32: CPU bf16 matrix products of a few rows convert the weights' layout on every
call, which eats the halved reads), so it stays off by default.
"""
from __future__ import annotations

import time

from tqdm.auto import tqdm

last_timing: dict = {}

# Part of every local LLMSeqPrompt run's identity (``LLMSeqPrompt.input_fingerprint``): a change
# of the decoding loops that changes their output for the same seed gets a new value, so stored
# runs of the old loops are not taken for runs of the new one. 2: finished samples leave the batch
# (changes the generator's draws). 3: several prompts share one padded batch: the same search and
# the same draws, but the float sums of a padded batch differ from one prompt's in the last bits
# (measured: beam log-probabilities within 2e-6 on the tiny test model), which can flip a
# near-tie or a draw on a boundary, so no decoder's stored runs of revision 2 stand for revision 3.
DECODING_REVISION = 3


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
        self._completions: dict = {}

    def completion(self, node) -> list[int] | None:
        """The rest of the one name below ``node`` (its tokens without the end token) when the
        prefix that leads to ``node`` names a single catalogue item, else None (several names
        continue it, or ``node`` is the end of a name: ``{}``). Memoised per node."""
        key = id(node)
        if key not in self._completions:
            rest, cur, found = [], node, None
            while len(cur) == 1:  # one way on: the prefix still names one item
                (t, child), = cur.items()
                if t == self.end_id:
                    found = rest
                    break
                rest.append(t)
                cur = child
            self._completions[key] = found
        return self._completions[key]

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


def sample_sequential(model, tok, prompts: list[str], *, n: int = 20, temperature: float = 0.25, top_p: float = 1.0,
           max_new_tokens: int = 48, seed: int = 0, eos_id: int | None = None, progress: bool = True,
           batch_size: int | None = None) -> list[list[str]]:
    """The reference sampler (decoding revision 2): one prompt at a time, otherwise as :func:`sample`
    (the same draws given the same logits). Kept for the equivalence tests and as the "before"
    path of ``scripts/benchmark_llmseqprompt.py``; ``batch_size`` is unused."""
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


def _beam_select(ordered, finished: list, prefixes: list, num_beams: int, end_id: int, complete=None) -> list:
    """One step of beam search over candidates ``(score, beam row, token)`` in rank order (best
    first, ties already broken): a candidate ending a name enters ``finished`` (a best-first list
    of ``(score, prefix)``, kept at ``num_beams``) when it beats its worst; the first
    ``num_beams`` others are the live beams returned. Stops at the ``num_beams``-th live one:
    lower candidates cannot enter (the standard beam step). ``complete(r, t)``: the rest of the
    name when beam ``r`` + token ``t`` already names one item (``stop="unique"``), else None."""
    live = []
    for s, r, t in ordered:
        name = prefixes[r] if t == end_id else None
        if name is None and complete is not None:
            rest = complete(r, t)
            name = None if rest is None else prefixes[r] + [t] + rest
        if name is not None:
            if len(finished) < num_beams or s > finished[-1][0]:
                finished.append((s, name))
                finished.sort(key=lambda f: -f[0])
                del finished[num_beams:]
        elif len(live) < num_beams:
            live.append((s, r, t))
        if len(live) >= num_beams:
            break
    return live


def constrained_beam_sequential(model, tok, prompts: list[str], trie: NameTrie, *, num_beams: int = 20,
                                max_new_tokens: int | None = None, progress: bool = True
                                ) -> tuple[list[list[str]], list[list[float]]]:
    """The reference constrained beam search (decoding revision 2): one prompt at a time, the
    full prompt's logits, a Python list of candidates; the same search as :func:`constrained_beam`.
    Kept for the equivalence tests and as the "before" path of the benchmark."""
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
                live = _beam_select(cand, finished, [b[0] for b in beams], num_beams, trie.end_id)
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


# ---------------------------------------------------------------- batched decoding (revision 3)


class _Prefix:
    """The tokens every prompt of a call starts with (chat template and system message: ~60
    tokens of a ~110-150-token GenItem prompt), run through the model **once**; every batch
    starts from a copy of their key/value cache. Empty when the prompts share nothing (at least
    one token of each prompt is left to the batch: its logits are the first step's)."""

    def __init__(self, model, ids: list[list[int]]):
        import torch  # heavy: loaded only where tensors are used
        from transformers import DynamicCache  # heavy: loaded only by LLM runs

        n = min(len(q) for q in ids) - 1
        first = ids[0]
        for q in ids[1:]:
            n = next((j for j in range(n) if q[j] != first[j]), n)
        self.n, self.cache = max(n, 0), None
        if self.n > 0:
            dev = next(model.parameters()).device
            self.cache = DynamicCache()
            with torch.no_grad():
                model(input_ids=torch.tensor([first[:self.n]], device=dev), cache=self.cache, use_cache=True,
                      logits_to_keep=1)

    def cache_for(self, rows: int):
        import copy

        import torch  # heavy: loaded only where tensors are used
        from transformers import DynamicCache  # heavy: loaded only by LLM runs

        if self.cache is None:
            return DynamicCache()
        c = copy.deepcopy(self.cache)
        c.reorder_cache(torch.zeros(rows, dtype=torch.long))
        return c


class _Batch:
    """A padded decoding batch of several prompts: one shared key/value cache whose rows are
    the live sequences (samples or beams) of every prompt, the 2-D attention mask (left padding
    masked) and each row's next position id. ``select(idx)`` keeps / repeats / reorders rows
    (``DynamicCache.reorder_cache``), ``step(tokens)`` appends one token per row. With a
    :class:`_Prefix`, the cache starts as its copy and only the rest of each prompt is run
    (the padding then sits between the shared prefix and each prompt's rest, masked)."""

    def __init__(self, model, ids: list[list[int]], hidden: bool = False, prefix: "_Prefix | None" = None):
        import torch  # heavy: loaded only where tensors are used
        from transformers import DynamicCache  # heavy: loaded only by LLM runs

        self.model, self.hidden = model, hidden
        self.dev = next(model.parameters()).device
        p = prefix.n if prefix is not None else 0
        rest = [q[p:] for q in ids]
        n, width = len(rest), max(len(q) for q in rest)
        x = torch.zeros((n, width), dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for i, q in enumerate(rest):
            x[i, width - len(q):] = torch.tensor(q, dtype=torch.long)
            mask[i, width - len(q):] = 1
        pos = (p + mask.cumsum(-1) - 1).clamp(min=0)
        self.cache = prefix.cache_for(n) if prefix is not None else DynamicCache()
        self.mask = torch.cat([torch.ones((n, p), dtype=torch.long), mask], dim=1).to(self.dev)
        self.pos = torch.tensor([len(q) for q in ids], dtype=torch.long, device=self.dev)
        self.out = self._forward(x.to(self.dev), pos.to(self.dev))

    def _forward(self, x, pos):
        kw = dict(input_ids=x, attention_mask=self.mask, position_ids=pos, cache=self.cache, use_cache=True)
        if self.hidden:  # the last hidden state; the caller applies (rows of) the LM head
            return self.model.get_decoder()(**kw).last_hidden_state[:, -1, :]
        return self.model(**kw, logits_to_keep=1).logits[:, -1, :].float()

    def select(self, idx) -> None:
        idx = idx.to(self.dev)
        self.cache.reorder_cache(idx)
        self.mask, self.pos = self.mask.index_select(0, idx), self.pos.index_select(0, idx)

    def step(self, tokens):
        import torch  # heavy: loaded only where tensors are used

        self.mask = torch.cat([self.mask, self.mask.new_ones((self.mask.shape[0], 1))], dim=1)
        self.out = self._forward(tokens.to(self.dev)[:, None], self.pos[:, None])
        self.pos = self.pos + 1
        return self.out


def _chunks(tok, prompts: list[str], batch_size: int):
    """Prompt token ids and chunks of prompt indices of similar length (sorted by length, so a
    padded batch wastes little); results are returned in the prompts' order."""
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in prompts]
    order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), i))
    b = max(1, int(batch_size))
    return ids, [order[i:i + b] for i in range(0, len(order), b)]


def _start(model, tok, prompts: list[str], batch_size: int, share_prefix: bool, desc: str, progress: bool):
    """What every batched decoder starts with: the prompts' token ids and their batches
    (:func:`_chunks`), the model in eval mode, the shared prefix's cache (when ``share_prefix``)
    and a progress bar over the prompts."""
    ids, chunks = _chunks(tok, prompts, batch_size)
    model.eval()
    prefix = _Prefix(model, ids) if share_prefix and ids else None
    return ids, chunks, prefix, tqdm(total=len(prompts), desc=desc, disable=not progress)


def sample(model, tok, prompts: list[str], *, n: int = 20, temperature: float = 0.25, top_p: float = 1.0,
           max_new_tokens: int = 48, seed: int = 0, eos_id: int | None = None, progress: bool = True,
           batch_size: int = 8, share_prefix: bool = True) -> list[list[str]]:
    """``n`` answers per prompt text (already chat-formatted); ``temperature`` 0 = greedy (1 answer).

    ``batch_size`` prompts are decoded together (module docstring): one left-padded prefill, the
    cache rows repeated ``n`` times per prompt, one forward pass per step for every live row of
    the batch; a finished row leaves it. Each prompt ``i`` draws from its own
    ``torch.Generator(seed * 1_000_003 + i)`` over its own live rows, as the one-prompt-at-a-time
    :func:`sample_sequential` does, so the answers are the same up to the float noise of a padded
    batch (a draw that falls within ~1e-7 of a probability boundary can differ). ``share_prefix``:
    the tokens all prompts start with are run once (:class:`_Prefix`).

    Returns: per prompt, its answers (``n``; 1 when greedy), decoded without special tokens.
    """
    import torch  # heavy: loaded only where tensors are used

    eos = tok.eos_token_id if eos_id is None else eos_id
    greedy = temperature <= 0
    per = 1 if greedy else int(n)
    out: list = [None] * len(prompts)
    ids, chunks, prefix, bar = _start(model, tok, prompts, batch_size, share_prefix,
                                      f"sampling x{per} (batches of {batch_size})", progress)
    t0, n_gen = time.perf_counter(), 0
    with torch.no_grad():
        for chunk in chunks:
            gens = {i: torch.Generator().manual_seed(seed * 1_000_003 + i) for i in chunk}
            b = _Batch(model, [ids[i] for i in chunk], prefix=prefix)
            logits = b.out
            rows = torch.arange(len(chunk)).repeat_interleave(per)
            if per > 1:
                b.select(rows)
                logits = logits.index_select(0, rows.to(logits.device))
            owner = [chunk[int(r)] for r in rows]  # prompt of each live row
            slot = [j % per for j in range(len(owner))]  # its answer index
            seqs = {i: [[] for _ in range(per)] for i in chunk}
            for _ in range(max_new_tokens):
                if greedy:
                    nxt = logits.argmax(-1).cpu()
                else:
                    probs = _nucleus(logits, temperature, top_p).cpu()
                    nxt = torch.empty(len(owner), dtype=torch.long)
                    start = 0
                    while start < len(owner):  # rows of one prompt are contiguous
                        end = start
                        while end < len(owner) and owner[end] == owner[start]:
                            end += 1
                        nxt[start:end] = torch.multinomial(probs[start:end], 1, generator=gens[owner[start]])[:, 0]
                        start = end
                ended = nxt == eos
                for o, s, t in zip(owner, slot, nxt.tolist()):
                    if t != eos:
                        seqs[o][s].append(t)
                if bool(ended.all()):
                    break
                if bool(ended.any()):
                    keep = torch.nonzero(~ended)[:, 0]
                    kl = keep.tolist()
                    owner, slot, nxt = [owner[j] for j in kl], [slot[j] for j in kl], nxt[keep]
                    b.select(keep)
                logits = b.step(nxt)
            for i in chunk:
                n_gen += sum(map(len, seqs[i]))
                out[i] = tok.batch_decode(seqs[i], skip_special_tokens=True)
            bar.update(len(chunk))
    bar.close()
    dt = time.perf_counter() - t0
    last_timing.update(decoder="greedy" if greedy else "sample", prompts=len(prompts), answers=len(prompts) * per,
                       seconds=dt, new_tokens=n_gen, batch_size=batch_size)
    return out


BEAM_SCORES = ("full", "catalogue")
BEAM_STOPS = ("end", "unique")
PRECISIONS = ("fp32", "bf16", "int8")


def for_decoding(model, precision: str = "fp32"):
    """The model the decoders run, in ``precision``: ``"fp32"`` (reference) leaves it as it is;
    ``"bf16"`` casts its weights (in place) to bfloat16, so every matrix product and the key/value
    cache are bf16, while the decoders take the logits to fp32 before the (log-)softmax and add
    beam scores in float64 (only the forward pass is bf16). Use bf16 only where the device runs it
    natively (CPUs with avx512_bf16 / amx_bf16, recent GPUs): elsewhere it is emulated and slow.

    ``"int8"`` (CPU only): dynamic quantisation of every linear map (PyTorch's
    ``quantize_dynamic``, per-output-channel int8 weights, activations quantised per call; in
    place): a quarter of fp32's weight bytes, int8 matrix products (VNNI). Deviations: the
    activations' scale is taken over the whole batch, so a row's logits depend slightly on its
    batch-mates (same prompts, batch size and seed: the same output; another batch size: not
    bit-identical); ``torch.ao.quantization`` is deprecated in favour of torchao, which is not a
    dependency here (its deprecation warning is silenced).

    Runs decoded in bf16 or int8 are another numerics and are keyed apart
    (``LLMSeqPrompt.input_fingerprint``). Raises ValueError for another ``precision``, or int8 on
    a model that is not on the CPU."""
    import torch  # heavy: loaded only where tensors are used

    if precision not in PRECISIONS:
        raise ValueError(f"for_decoding: precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "int8":
        import warnings

        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        if next(model.parameters()).device.type != "cpu":
            raise ValueError("for_decoding: precision='int8' (dynamic quantisation) runs on the CPU only")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8,
                                    inplace=True)
    return model.to(torch.bfloat16) if precision == "bf16" else model


def _head_weight(model):
    """The LM head's weight matrix (vocabulary × hidden), dequantised for an int8 model."""
    w = model.get_output_embeddings().weight
    w = w() if callable(w) else w
    return w.dequantize() if w.is_quantized else w


def constrained_beam(model, tok, prompts: list[str], trie: NameTrie, *, num_beams: int = 20,
                     max_new_tokens: int | None = None, progress: bool = True, batch_size: int = 8,
                     scores: str = "full", share_prefix: bool = True, stop: str = "end"
                     ) -> tuple[list[list[str]], list[list[float]]]:
    """Beam search restricted to catalogue names (module docstring), ``batch_size`` prompts at a time.

    Per prompt up to ``num_beams`` distinct names, best first, and their scores. The search of
    each prompt is :func:`constrained_beam_sequential`'s (same candidates, same order and tie
    rule: higher score, then smaller token id, then earlier beam; same stopping rule); only the
    forward passes are shared: the beams of every prompt of the batch are rows of one padded
    batch and one key/value cache, and a prompt whose search has stopped leaves it.

    Args:
        scores: ``"full"`` (default): log P(name | prompt) under the model, the softmax over the
            whole vocabulary (every row of the LM head is needed for its normaliser);
            ``"catalogue"``: each step's distribution renormalised over the tokens the trie allows
            after the beam's prefix, so only those rows of the LM head are computed (the union
            over the batch's beams); a locally normalised score, it ranks names differently.
        max_new_tokens: None: the trie's depth (the longest name and its end token).
        share_prefix: run the tokens all prompts start with once (:class:`_Prefix`).
        stop: ``"end"`` (default): a beam finishes with the end token of its name, scored over the
            whole name; ``"unique"``: a beam finishes as soon as its prefix names one catalogue
            item (:meth:`NameTrie.completion`), scored log P(that prefix | prompt): the rest of
            the name is forced by the trie, and not decoded. Another ranking (the forced
            tokens' log-probabilities, at most 0, are left out) and far fewer steps: on Beauty's
            12,067 SmolLM2-tokenised train names (mean 23 tokens with the end token, longest
            273) a name is unique after 6.1 tokens on average (median 5, 90th percentile 11), so
            73 % of the name tokens the default search scores are never decoded (and the long
            names' tail of ~100 steps is gone). The prefix-is-the-item rule of generative
            retrieval with variable-length identifiers.

    Returns: ``(names, scores)``, two lists of ``len(prompts)`` lists.
    """
    import numpy as np
    import torch  # heavy: loaded only where tensors are used

    if scores not in BEAM_SCORES:
        raise ValueError(f"constrained_beam: scores must be one of {BEAM_SCORES}, got {scores!r}")
    if stop not in BEAM_STOPS:
        raise ValueError(f"constrained_beam: stop must be one of {BEAM_STOPS}, got {stop!r}")
    restrict = scores == "catalogue"
    limit = max_new_tokens or trie.depth
    names: list = [None] * len(prompts)
    best: list = [None] * len(prompts)
    head = _head_weight(model) if restrict else None
    ids, chunks, prefix, bar = _start(model, tok, prompts, batch_size, share_prefix,
                                      f"constrained beam x{num_beams} (batches of {batch_size})", progress)
    t0, n_gen = time.perf_counter(), 0
    with torch.no_grad():
        for chunk in chunks:
            b = _Batch(model, [ids[i] for i in chunk], hidden=restrict, prefix=prefix)
            beams = {i: [([], 0.0, trie.root)] for i in chunk}  # per prompt: (tokens, score, trie node)
            finished: dict = {i: [] for i in chunk}
            active = list(chunk)  # prompts with rows in the batch, in row order
            out = b.out
            for _ in range(limit):
                cand, row0 = [], 0  # per active prompt: its first row, beam of each candidate, token
                for i in active:
                    a_list = [np.fromiter(node, dtype=np.int64, count=len(node)) for _, _, node in beams[i]]
                    cand.append((row0, np.repeat(np.arange(len(a_list)), [len(a) for a in a_list]),
                                 np.concatenate(a_list)))
                    row0 += len(a_list)
                all_r = torch.from_numpy(np.concatenate([r0 + r for r0, r, _ in cand])).to(out.device)
                all_t = np.concatenate([t for _, _, t in cand])
                if restrict:  # logits of the allowed tokens only: the union over the batch's rows
                    union, inv = np.unique(all_t, return_inverse=True)
                    lg = (out @ head[torch.from_numpy(union).to(head.device)].T).float()
                    inv = torch.from_numpy(inv.reshape(-1)).to(out.device)
                    allowed_mask = torch.full(lg.shape, float("-inf"), device=lg.device)
                    allowed_mask[all_r, inv] = 0.0
                    lp_all = torch.log_softmax(lg + allowed_mask, dim=-1)[all_r, inv]
                else:  # gathered on the device: only the candidates' log-probabilities leave it
                    lp_all = torch.log_softmax(out, dim=-1)[all_r, torch.from_numpy(all_t).to(out.device)]
                lp_all = lp_all.cpu().numpy()
                rows, toks, still, flat0 = [], [], [], 0
                for i, (row0, r_arr, t_arr) in zip(active, cand):
                    bs = beams[i]
                    lp = lp_all[flat0:flat0 + len(t_arr)]
                    flat0 += len(t_arr)
                    s_arr = np.array([s for _, s, _ in bs], dtype=np.float64)[r_arr] + lp.astype(np.float64)
                    fin = finished[i]
                    order = np.lexsort((r_arr, t_arr, -s_arr))  # ties: the smaller token id, then beam
                    complete = (lambda r, t, bs=bs: trie.completion(bs[r][2][t])) if stop == "unique" else None
                    live = _beam_select(((float(s_arr[c]), int(r_arr[c]), int(t_arr[c])) for c in order), fin,
                                        [b[0] for b in bs], num_beams, trie.end_id, complete)
                    if not live or (len(fin) >= num_beams and live[0][0] <= fin[-1][0]):
                        beams[i] = []  # this prompt's search has stopped: its rows leave the batch
                    else:
                        beams[i] = [(bs[r][0] + [t], s, bs[r][2][t]) for s, r, t in live]
                        rows += [row0 + r for _, r, _ in live]
                        toks += [t for _, _, t in live]
                        still.append(i)
                active = still
                if not active:
                    break
                n_gen += len(rows)
                b.select(torch.tensor(rows, dtype=torch.long))
                out = b.step(torch.tensor(toks, dtype=torch.long))
            for i in chunk:
                names[i] = [tok.decode(tk, skip_special_tokens=True).strip() for _, tk in finished[i]]
                best[i] = [s for s, _ in finished[i]]
            bar.update(len(chunk))
    bar.close()
    dt = time.perf_counter() - t0
    last_timing.update(decoder="beam", prompts=len(prompts), answers=sum(map(len, names)), seconds=dt,
                       new_tokens=n_gen, batch_size=batch_size, scores=scores, stop=stop)
    return names, best
