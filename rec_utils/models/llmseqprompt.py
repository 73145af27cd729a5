"""LLMSeqPrompt: a fine-tuned generative LLM names the next item(s) (paper §6.2, §12 items 7, 9).

``LLMSeqPrompt(**config).fit(split.train, items).predict(split.test, k=20)`` like every
:class:`~rec_utils.models.base.Recommender`, so :func:`rec_utils.evaluation.run_seeds` stores,
keys and resumes its runs. ``fit`` builds the training cases of ``variant`` from the train split
(:mod:`rec_utils.llm.cases`), fine-tunes the base model (:mod:`rec_utils.llm.finetune`, cached by data + config hash) or
an OpenAI model (:mod:`rec_utils.llm.openai_ft`); ``predict`` decodes (:mod:`rec_utils.llm.generate`) and maps the text to
catalogue items (:mod:`rec_utils.llm.mapping`). After ``predict``, ``fit_info_`` holds the fine-tuning
summary, the output shares (unique / duplicate / hallucinated / parse failures / valid names)
and the generation throughput; ``history_`` the loss curves.

Decoders: ``sample`` (the paper: n samples with temperature / top_p, count-and-replace),
``greedy``, and ``beam`` (catalogue-constrained beam search, GenItem and RecSys'23 only: every
beam is a catalogue name, so nothing is hallucinated and the beam order is the ranking).

Deviations: the local SmolLM2-135M-Instruct (or any transformers folder) stands in for OpenAI
ada / gpt-3.5 / PaLM 2; names are matched and embedded with the local MiniLM (``embedding``),
not ada; the recommendable catalogue is the named items seen in train (``catalogue="train"``;
the test targets are always among them); see also :mod:`rec_utils.llm.mapping`.
"""
from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import item_texts
from ..llm import cases as C
from ..llm import generate as G
from ..llm import openai_ft as O
from ..llm.finetune import TrainConfig, check_lora_layers, finetune
from ..llm.generate import DECODING_REVISION, NameTrie
from ..llm.local import base_model_id, load_tokenizer
from ..llm.mapping import Catalogue, OutputStats, map_fuzzy, map_list, map_samples
from ..text import EmbeddingSpec, ItemEmbeddings, embed_items
from ..utils import PROJECT_ROOT, resolve_device, short_hash
from .base import Recommender, as_prompts
from .llmseqsim import LLMSeqSim

DECODERS = ("sample", "greedy", "beam")
BACKENDS = ("local", "openai")


@dataclass
class LLMSeqPromptConfig:
    """Hyper-parameters of LLMSeqPrompt (defaults: the paper's where it has one)."""

    variant: str = "genitem"  # genitem | genlist | classify | rank | recsys23 (cases.VARIANTS)
    backend: str = "local"  # local (SmolLM2, default) | openai (opt-in, OPENAI_API_KEY)
    model: str = "smollm2"  # local: smollm2 | gemma3-270m (the bigger Gemma 3 base model, `make gemma`) | tiny-random (tests) | a folder; openai: the base model
    n_train_cases: int = 0  # training cases used (first of the shuffled order; 0 = all)
    n_val_cases: int = 0  # validation cases for the eval loss (0 = all of the 20 %)
    case_seed: int = 42  # shuffle of the cases (reference 42)
    val_share: float = 0.2  # validation share (reference 20 %)
    max_case_tokens: int = 4096  # longer cases are skipped (reference 4,096 tiktoken tokens; not for classify)
    max_prompt_items: int = 0  # > 0: only the last this many prompt items are shown (CPU runs; 0 = all, the paper)
    epochs: float = 1.0
    lr: float | None = None  # None: 5e-5 full, 2e-4 LoRA
    batch_size: int = 8
    eval_steps: int = 10
    patience: int = 3
    lora: bool = False
    lora_layers: int = 0  # LoRA on the top this many decoder layers only (0: all; the CPU plans use 10 of SmolLM2's 30: ~3x faster fine-tuning; finetune.TrainConfig)
    max_steps: int = -1  # > 0: a step bound (CI)
    batching: str = "grouped"  # fine-tuning batches: padded (reference) | grouped (by length) | packed (finetune.py)
    loss_head: str = "answer"  # LM head in the loss: all positions (reference) | answer positions only
    decoder: str = "sample"  # sample | greedy | beam
    temperature: float = 0.25  # paper's Beauty optimum (RecSys'23 and GPT)
    top_p: float = 1.0
    n_samples: int = 20  # samples per prompt (paper: 20)
    num_beams: int = 20  # beams of the constrained decoder (= list length)
    max_new_tokens: int | None = None  # None: 48 for one name, 24 per list entry; beam: the longest name
    gen_batch_size: int = 0  # prompts decoded together (one padded batch and key/value cache); 0: 8 on a CPU, 64 on a GPU
    beam_scores: str = "full"  # beam: full (log P(name | prompt)) | catalogue (renormalised over the trie's tokens)
    beam_stop: str = "end"  # beam: end (a name is decoded to its end token) | unique (a beam stops once its prefix names one item: ~4x fewer steps; generate.constrained_beam)
    precision: str = "fp32"  # local fine-tuning and decoding: fp32 | bf16 (where the device runs it natively, else fp32 with a warning) | int8 (CPU decoding only: fine-tuned in fp32, decoded dynamically quantised)
    list_length: int = 20  # names per list (genlist / classify / rank), candidates of rank
    n_clusters: int = 200  # classify: k-means classes (paper 200)
    fuzzy_fallback: str = "next"  # classify / rank duplicates: next best (sound) | last (reference)
    catalogue: str = "train"  # recommendable items: named items seen in train | all named items
    text_clean: str = "reference"  # item names = data.item_texts(clean=...)
    embedding: EmbeddingSpec = field(default_factory=EmbeddingSpec)  # name embeddings (NN mapping, classes)
    candidates: dict = field(default_factory=lambda: {"aggregation": "mean", "decay": "harmonic",
                                                      "reduction": "pca", "reduced_dim": 512,
                                                      "similarity": "cosine"})  # LLMSeqSim of genlist / rank (§6.2.2)
    max_cost_usd: float = 50.0  # openai: the cost guard
    base_url: str | None = None  # openai: a compatible server
    seed: int = 0

    def __post_init__(self):
        self.embedding = EmbeddingSpec.coerce(self.embedding)
        checks = {"variant": (self.variant, C.VARIANTS), "backend": (self.backend, BACKENDS),
                  "decoder": (self.decoder, DECODERS), "fuzzy_fallback": (self.fuzzy_fallback, ("next", "last")),
                  "catalogue": (self.catalogue, ("train", "all")), "batching": (self.batching, ("padded", "grouped", "packed")),
                  "loss_head": (self.loss_head, ("all", "answer")), "beam_scores": (self.beam_scores, ("full", "catalogue")),
                  "beam_stop": (self.beam_stop, ("end", "unique")),
                  "precision": (self.precision, ("fp32", "bf16", "int8"))}
        for name, (v, ok) in checks.items():
            if v not in ok:
                raise ValueError(f"LLMSeqPrompt: {name} must be one of {ok}, got {v!r}")
        if self.decoder == "beam" and self.variant not in ("genitem", "recsys23"):
            raise ValueError(f"decoder='beam' (catalogue-constrained) applies to genitem and recsys23, "
                             f"not variant={self.variant!r}")
        check_lora_layers(self.lora_layers, self.lora, where="LLMSeqPrompt")
        if self.decoder == "beam" and self.backend != "local":
            raise ValueError("decoder='beam' needs backend='local' (the logits are not exposed by the API)")


#: The config fields a notebook-06 run records in its setting (training and decoding choices; the
#: other fields keep their defaults and stay out of the setting, so stored runs keep their ids).
RUN_FIELDS = ("variant", "backend", "model", "n_train_cases", "n_val_cases", "epochs", "lora", "lr", "batch_size",
              "eval_steps", "patience", "max_steps", "list_length", "n_clusters", "max_case_tokens",
              "max_prompt_items", "seed", "max_cost_usd", "decoder", "temperature", "top_p", "n_samples", "num_beams")


def run_config(config: dict) -> dict:
    """The :data:`RUN_FIELDS` of ``config`` (a preset's fields with notebook 06's ``CONFIG`` on
    top), the config defaults filling the rest, plus every other field ``config`` sets to a value
    other than its default (``precision``, ``beam_stop``, ``gen_batch_size``, ...: recorded in the
    run's setting, never dropped; a run at the defaults keeps its id). Raises ``TypeError`` naming
    a field :class:`LLMSeqPromptConfig` does not have."""
    unknown = set(config) - set(LLMSeqPromptConfig.__dataclass_fields__)
    if unknown:
        raise TypeError(f"LLMSeqPrompt: unknown config field(s) {sorted(unknown)}; "
                        f"known: {sorted(LLMSeqPromptConfig.__dataclass_fields__)}")
    defaults = LLMSeqPromptConfig()
    extra = {f: v for f, v in config.items() if f not in RUN_FIELDS and v != getattr(defaults, f)}
    return {**{f: config.get(f, getattr(defaults, f)) for f in RUN_FIELDS}, **extra}


class LLMSeqPrompt(Recommender):
    """See the module docstring. Runtime arguments (not part of the config): ``embeddings``
    (raw item vectors), ``embed`` (texts → unit vectors, default: the embedding spec's model),
    ``device`` ("auto"), ``num_threads``, ``progress`` (tqdm bars), ``cache_dir`` (LLM cache),
    ``api_key``."""

    name = "LLMSeqPrompt"

    def __init__(self, embeddings: ItemEmbeddings | None = None, *, embed=None, device: str = "auto",
                 num_threads: int | None = None, progress: bool = True, cache_dir: str | Path | None = None,
                 api_key: str | None = None, **config):
        self.config = LLMSeqPromptConfig(**config)
        self.embeddings, self.embed, self.device = embeddings, embed, device
        self.num_threads, self.progress, self.cache_dir, self.api_key = num_threads, progress, cache_dir, api_key

    # ------------------------------------------------------------------ inputs

    def _names(self, items) -> pd.Series:
        if items is None:
            raise ValueError("LLMSeqPrompt needs the item names: fit(train, items=dataset.items)")
        return item_texts(items, clean=self.config.text_clean)

    def input_fingerprint(self, items=None) -> dict:
        names = self._names(items)
        fp = {"item_names": short_hash(names.index.to_numpy(), "\x00".join(names.astype(str)))}
        if self.config.backend == "local":
            fp["base_model"] = base_model_id(self.config.model)
            fp["decoding"] = DECODING_REVISION  # every decoder (revision 3: prompts batched)
            if (self.config.batching, self.config.loss_head) != ("padded", "all"):
                # fields added with a change of results: a stored run without them was trained the
                # reference way, and must not stand for a run of the faster paths (float noise over
                # hundreds of steps is another model); the reference values keep the old key
                fp["training"] = f"batching={self.config.batching},loss_head={self.config.loss_head}"
            if self._precision() != "fp32":  # another numerics (fine-tuning and decoding): keyed apart
                fp["precision"] = self._precision()
            if self.config.decoder == "beam" and self.config.beam_stop != "end":  # another search
                fp["beam_stop"] = self.config.beam_stop
        return fp

    def _precision(self) -> str:
        """The precision used: ``config.precision`` where the device runs it natively, else fp32
        (with a warning; ``models.neural.trainer.resolve_precision``). int8 (decoding only:
        ``generate.for_decoding``; fine-tuning stays fp32) runs on a CPU only."""
        if self.config.precision == "fp32":
            return "fp32"
        if self.config.precision == "int8":
            if resolve_device(self.device) == "cpu":
                return "int8"
            warnings.warn("LLMSeqPrompt: precision='int8' (dynamic quantisation) runs on a CPU only; "
                          "decoding in fp32 instead", RuntimeWarning, stacklevel=2)
            return "fp32"
        from .neural.trainer import resolve_precision  # heavy (torch): only when bf16 is asked for

        return resolve_precision(self.config.precision, resolve_device(self.device))

    def _embedder(self):
        if self.embed is not None:
            return self.embed
        spec = self.config.embedding

        def embed(texts):
            e = embed_items(pd.Series(list(texts), index=np.arange(len(texts))), spec.provider, spec.model,
                            path=spec.path, device=self.device, show_progress=False)
            return e.vectors
        return embed

    # ------------------------------------------------------------------ fit

    def fit(self, train: pd.DataFrame, items=None) -> "LLMSeqPrompt":
        c = self.config
        t0 = time.perf_counter()
        names = self._names(items)
        self.names_ = names.astype(str).map(lambda s: " ".join(s.split()))
        pop = train["item_id"].value_counts()
        self.pop_ = pop
        if self.embeddings is None:
            self.embeddings = c.embedding.embed(items, device=self.device)
        emb = self.embeddings
        ids = np.unique(train["item_id"].to_numpy()) if c.catalogue == "train" else emb.item_ids
        ids = ids[np.isin(ids, emb.item_ids)]
        self.catalogue_ = Catalogue(ids, self.names_, pop, emb.lookup(ids), self._embedder())
        cs = C.train_cases(train, self.names_, seed=c.case_seed, val_share=c.val_share)
        cs = cs.take(c.n_train_cases, c.n_val_cases)
        if c.variant in ("genlist", "rank"):
            self.cand_model_ = LLMSeqSim(embeddings=emb, device=self.device, provider=c.embedding.provider,
                                         embedding_model=c.embedding.model, text_clean=c.text_clean,
                                         **c.candidates).fit(train, items)
        if c.variant == "classify":
            has = ~emb.missing_text if getattr(emb, "missing_text", None) is not None else np.ones(len(emb), bool)
            self.centroids_, self.reps_ = C.cluster_classes(emb.vectors[has], emb.item_ids[has], pop, self.names_,
                                                            c.n_clusters, seed=0)
        answers = self._answers(cs)
        examples = [self._example(cs.prompts[i], answers[i], i) for i in range(len(cs))]
        self.fit_info_ = {"cases": cs.info, "variant": c.variant}
        if c.backend == "local":
            self._fit_local(examples, cs)
        else:
            self._fit_openai(examples, cs)
        self.fit_info_["fit_s"] = round(time.perf_counter() - t0, 3)
        return self

    def _answers(self, cs: C.Cases) -> list:
        c = self.config
        if c.variant in ("genitem", "recsys23"):
            return [self.names_[int(t)] for t in cs.targets]
        if c.variant in ("genlist", "rank"):
            cand = self.cand_model_.predict(cs.prompts, k=c.list_length)
            self.case_candidates_ = cand
            lists = [C.force_first(cand[i], int(cs.targets[i])) for i in range(len(cs))]
            return [[self.names_[int(j)] for j in L] for L in lists]
        near = C.closest_classes(self.embeddings.lookup(cs.targets), self.centroids_, min(c.list_length,
                                                                                          len(self.reps_)))
        return [[self.names_[int(self.reps_[j])] for j in row] for row in near]

    def _available(self, i: int, candidates=None) -> list[str] | None:
        c = self.config
        if c.variant == "classify":
            return [self.names_[int(r)] for r in self.reps_]
        if c.variant == "rank":
            cand = [int(x) for x in candidates if x >= 0]
            order = np.random.default_rng(c.seed * 1_000_003 + i).permutation(len(cand))  # shown shuffled (§6.2.2)
            return [self.names_[cand[j]] for j in order]
        return None

    def _prompt_names(self, prompt) -> list[str]:
        names = [n for n in (self.names_.get(int(i), "") for i in prompt) if n]
        m = self.config.max_prompt_items
        return names[-m:] if m else names

    def _messages(self, prompt, i, candidates=None, answer=None):
        c = self.config
        return C.messages(c.variant, self._prompt_names(prompt), answer=answer,
                          available=self._available(i, candidates), list_length=c.list_length)

    def _example(self, prompt, answer, i) -> dict:
        """One case as the API's JSONL row (``messages``; recsys23: ``prompt``/``completion``)."""
        c = self.config
        if c.variant == "recsys23":
            return {"prompt": C.recsys23_prompt(self._prompt_names(prompt)), "completion": C.answer_text(c.variant, answer)}
        cand = self.case_candidates_[i] if c.variant == "rank" else None
        return {"messages": self._messages(prompt, i, cand, answer)}

    def _local_text(self, ex: dict) -> tuple[str, str]:
        tok = self.tok_
        if "prompt" in ex:
            return ex["prompt"], ex["completion"] + tok.eos_token
        p = tok.apply_chat_template(ex["messages"][:2], tokenize=False, add_generation_prompt=True)
        return p, ex["messages"][2]["content"] + tok.eos_token

    def _fit_local(self, examples, cs: C.Cases) -> None:
        c = self.config
        self.tok_ = load_tokenizer(c.model, self.cache_dir)
        texts = [self._local_text(e) for e in examples]
        lens = [len(self.tok_(p + q, add_special_tokens=False)["input_ids"]) for p, q in texts]
        ok = [(n <= c.max_case_tokens) or c.variant == "classify" for n in lens]
        tr = [t for t, o, v in zip(texts, ok, cs.is_val) if o and not v]
        va = [t for t, o, v in zip(texts, ok, cs.is_val) if o and v]
        self.fit_info_["cases"].update(dropped_long=int(len(ok) - sum(ok)), train_examples=len(tr),
                                       val_examples=len(va), mean_example_tokens=float(np.mean(lens)) if lens else 0)
        tc = TrainConfig(epochs=c.epochs, lr=c.lr, batch_size=c.batch_size, eval_steps=c.eval_steps,
                         patience=c.patience, lora=c.lora, lora_layers=c.lora_layers, seed=c.seed, max_steps=c.max_steps, batching=c.batching,
                         loss_head=c.loss_head, precision="bf16" if self._precision() == "bf16" else "fp32")
        self.lm_, info = finetune(c.model, self.tok_, tr, va, tc, base_id=base_model_id(c.model),
                                  cache=self.cache_dir, progress=self.progress, num_threads=self.num_threads)
        self.lm_ = G.for_decoding(self.lm_.to(resolve_device(self.device)), self._precision())
        self.history_ = info.pop("history")
        self.fit_info_["finetune"] = info
        if c.decoder == "beam":
            t0 = time.perf_counter()
            pre, suf = (" ", C.RECSYS23_END) if c.variant == "recsys23" else ("", "")
            uniq = sorted(set(self.catalogue_.names))
            self.trie_ = NameTrie.from_names(self.tok_, uniq, self.tok_.eos_token_id, prefix=pre, suffix=suf)
            self.fit_info_["trie"] = {"names": len(uniq), "build_s": round(time.perf_counter() - t0, 3)}

    def _fit_openai(self, examples, cs: C.Cases) -> None:
        c = self.config
        folder = Path(self.cache_dir or PROJECT_ROOT / ".cache" / "llm") / "openai" / short_hash(examples, c.model)
        tr = O.write_jsonl([e for e, v in zip(examples, cs.is_val) if not v], folder / "train.jsonl")
        va = O.write_jsonl([e for e, v in zip(examples, cs.is_val) if v], folder / "validation.jsonl")
        cost = O.estimate_cost(tr["tokens"], c.epochs)
        self.fit_info_["openai"] = {"train": tr, "validation": va, "estimated_cost_usd": cost}
        O.cost_guard(cost, c.max_cost_usd)
        job = O.fine_tune(Path(tr["path"]), Path(va["path"]) if va["examples"] else None, model=c.model,
                          epochs=c.epochs, api_key=self.api_key, base_url=c.base_url, poll_s=0.05 if c.base_url
                          and "127.0.0.1" in c.base_url else 10.0)
        self.fit_info_["openai"].update(job)
        self.ft_model_ = job["fine_tuned_model"]

    # ------------------------------------------------------------------ predict

    def _new_tokens(self) -> int:
        c = self.config
        if c.max_new_tokens:
            return int(c.max_new_tokens)
        return 48 if c.variant in ("genitem", "recsys23") else 24 * c.list_length + 16

    def predict(self, prompts, k: int = 20, return_scores: bool = False):
        c = self.config
        p = as_prompts(prompts)
        plist = [p[i] for i in range(len(p))]
        cand = self.cand_model_.predict(p, k=c.list_length) if c.variant == "rank" else None
        msgs = [{"prompt": C.recsys23_prompt(self._prompt_names(plist[i]))} if c.variant == "recsys23"
                else {"messages": self._messages(plist[i], i, None if cand is None else cand[i])}
                for i in range(len(plist))]
        t0 = time.perf_counter()
        outputs, n_ans = self._generate(msgs)
        gen_s = time.perf_counter() - t0
        stats, rows = OutputStats(), []
        for i, out in enumerate(outputs):
            if c.variant in ("genitem", "recsys23"):
                got, st = map_samples(out, self.catalogue_, plist[i], k, variant=c.variant,
                                      names_given=c.decoder == "beam")
            elif c.variant == "genlist":
                got, st = map_list(out[0] if out else "", self.catalogue_, plist[i], k)
            else:
                avail = self.reps_ if c.variant == "classify" else cand[i]
                got, st = map_fuzzy(out[0] if out else "", avail, self.catalogue_, plist[i], k, variant=c.variant,
                                    fallback=c.fuzzy_fallback, append_rest=c.variant == "rank")
            stats.add(st)
            rows.append(got)
        recs = np.full((len(p), k), -1, np.int64)
        for i, r in enumerate(rows):
            recs[i, :len(r)] = r[:k]
        scores = np.where(recs >= 0, (k - np.arange(k))[None, :].astype(np.float32), np.nan).astype(np.float32)
        n_items = int((recs >= 0).sum())
        info = getattr(self, "fit_info_", {})
        info["output"] = stats.shares()
        info["generation"] = {"decoder": c.decoder, "prompts": len(p), "answers": n_ans, "seconds": round(gen_s, 3),
                              "items_per_s": n_items / gen_s if gen_s > 0 else None,
                              "answers_per_s": n_ans / gen_s if gen_s > 0 else None}
        info["load_avg_1m"] = round(os.getloadavg()[0], 2)  # throughput on a shared machine: its load
        self.fit_info_ = info
        return (recs, scores) if return_scores else recs

    def _generate(self, msgs) -> tuple[list[list[str]], int]:
        c = self.config
        n = c.n_samples if c.variant in ("genitem", "recsys23") and c.decoder == "sample" else 1
        if c.backend == "openai":
            if c.variant == "recsys23":
                raise ValueError("backend='openai' runs the chat variants; recsys23 used legacy completions")
            outs = O.chat_samples(self.ft_model_, [m["messages"] for m in msgs], n=n,
                                  temperature=c.temperature if c.decoder == "sample" else 0.0, top_p=c.top_p,
                                  max_tokens=self._new_tokens(), api_key=self.api_key, base_url=c.base_url)
            return outs, sum(map(len, outs))
        bs = c.gen_batch_size or (64 if next(self.lm_.parameters()).device.type == "cuda" else 8)
        texts = [m["prompt"] if "prompt" in m else
                 self.tok_.apply_chat_template(m["messages"], tokenize=False, add_generation_prompt=True) for m in msgs]
        if c.decoder == "beam":
            names, _ = G.constrained_beam(self.lm_, self.tok_, texts, self.trie_, num_beams=c.num_beams,
                                          max_new_tokens=c.max_new_tokens, progress=self.progress,
                                          batch_size=bs, scores=c.beam_scores, stop=c.beam_stop)
            return names, sum(map(len, names))  # RecSys'23: the trie's names end with its marker already
        outs = G.sample(self.lm_, self.tok_, texts, n=n, temperature=c.temperature if c.decoder == "sample" else 0.0,
                        top_p=c.top_p, max_new_tokens=self._new_tokens(), batch_size=bs, seed=c.seed,
                        progress=self.progress)
        return outs, sum(map(len, outs))
