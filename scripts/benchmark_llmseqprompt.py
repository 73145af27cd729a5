"""LLMSeqPrompt throughput; writes results/benchmarks/llmseqprompt.csv.

Two sources of rows (column ``source``):

``--measure`` (``source=benchmark``): today's reference code paths and the new ones measured **in
the same run, interleaved** (reference, new, reference, new, ... on the same sessions and
cases), on ``--threads`` torch threads, the 1-minute load average read before and after each
measurement (``load_avg_1m`` is their mean): the box is shared, so only figures of one run and
similar load compare. What is measured, on Beauty with the real SmolLM2-135M-Instruct (or
``--model gemma3-270m``, Gemma 3 270M; column ``model``) and its base weights (the speed of a
decoder hardly depends on the fine-tuning):

* ``generation_items_per_s``, decoder ``beam`` (20 beams, catalogue trie of the train names) and
  ``sample`` (20 samples, T 0.25): recommended items (20 a session: the list length the stored
  runs fill) per second of decoding (prompt prefill included), GenItem prompts of a seeded sample of test sessions (last 5 items, as the plans).
  ``code_path`` reference: ``generate.*_sequential`` (decoding revision 2, one prompt at a time);
  new: ``generate.constrained_beam`` / ``sample`` (revision 3) with ``gen_batch_size`` prompts a batch.
* ``finetune_train_tokens_per_s``: tokens of the training examples (prompt + answer) per second
  of ``Trainer.train`` on ``--train-cases`` GenItem cases, one epoch of batch 8,
  without validation (no evaluation passes or checkpoint writes in either path). Reference:
  random padded batches, LM head at every position (``batching=padded, loss_head=all``); new:
  ``grouped`` / ``packed`` batches with the answer-only head, full fine-tuning and LoRA
  (``--lora-layers 0 10``: adapters on every layer, and on the top 10 only; column ``lora_layers``).
* ``--precisions fp32 bf16``: every new path also in bf16 (decoding: ``generate.for_decoding``,
  bf16 weights, fp32 log-probabilities; fine-tuning: ``TrainConfig(precision="bf16")``, the
  Trainer's bf16 autocast), interleaved with the others; column ``precision``. ``int8``:
  decoding only (dynamic quantisation, ``generate.for_decoding``).
* ``--beam-stops end unique``: the new constrained beam decoding every name to its end token
  (the reference's search) and stopping a beam once its prefix names one item (another ranking;
  ``generate.constrained_beam(stop=...)``); column ``beam_stop``, ``new_tokens`` the beam tokens
  decoded.

    .venv/bin/python scripts/benchmark_llmseqprompt.py --measure --threads 2

Without ``--measure`` (``source=stored run``): one row per stored LLMSeqPrompt run and figure
(what its own fine-tuning and decoding measured, ``fit_info``), from
``results/beauty/runs/LLMSeqPrompt/*.json`` (or ``--results``); rows of ``--measure`` runs are kept.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from rec_utils.utils import PROJECT_ROOT, atomic_write_text  # noqa: E402

OUT = PROJECT_ROOT / "results" / "benchmarks" / "llmseqprompt.csv"


def rows_of(run: dict) -> list[dict]:
    info = run.get("fit_info") or {}
    ft, gen = info.get("finetune") or {}, info.get("generation") or {}
    cfg = run.get("config") or {}
    base = {"source": "stored run", "variant": run.get("variant", ""), "model": cfg.get("model"),
            "llm_variant": cfg.get("variant"), "device": run.get("device"), "threads": ft.get("threads"),
            "load_avg_1m": info.get("load_avg_1m"), "run_git_commit": run.get("git_commit"),
            "n_test_sessions": run.get("n_test_sessions")}
    out = []
    if ft.get("train_tokens_per_s"):
        out.append({**base, "benchmark": "finetune_train_tokens_per_s", "decoder": "", "value": ft["train_tokens_per_s"],
                    "n": ft.get("train_tokens"), "seconds": ft.get("train_s"), "lora": ft.get("lora"),
                    "finetune_key": ft.get("key"),
                    "code_path": "new" if ft.get("loss_head") == "answer" else "reference"})
    if gen.get("items_per_s"):
        out.append({**base, "benchmark": "generation_items_per_s", "decoder": gen.get("decoder"),
                    "value": gen["items_per_s"], "n": gen.get("prompts"), "seconds": gen.get("seconds"),
                    "answers_per_s": gen.get("answers_per_s")})
    return out


def _write(df: pd.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, df.to_csv(index=False))


def from_runs(results: Path, out: Path) -> int:
    runs = sorted((results / "runs" / "LLMSeqPrompt").glob("*.json"))
    rows = [r for p in runs for r in rows_of(json.loads(p.read_text()))]
    if not rows:
        print(f"no LLMSeqPrompt runs under {results}")
        return 1
    df = pd.DataFrame(rows)
    # one fine-tuning serves several runs (decoders, temperatures): keep it once
    ft = df[df["benchmark"] == "finetune_train_tokens_per_s"].drop_duplicates("finetune_key")
    df = pd.concat([ft, df[df["benchmark"] != "finetune_train_tokens_per_s"]], ignore_index=True)
    if out.is_file():
        old = pd.read_csv(out)
        if "source" in old:
            df = pd.concat([old[old["source"] == "benchmark"], df], ignore_index=True)
    _write(df, out)
    print(df[["benchmark", "llm_variant", "decoder", "value", "n", "seconds", "threads"]].round(2).to_string(index=False))
    print(f"-> {out}")
    return 0


# ---------------------------------------------------------------- --measure


class Timer:
    """Wall seconds and the mean of the 1-minute load average before and after."""

    def __enter__(self):
        self.load0, self.t0 = os.getloadavg()[0], time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self.load = round((self.load0 + os.getloadavg()[0]) / 2, 2)


def measure(a) -> int:
    import numpy as np
    import torch

    from rec_utils.data import item_texts, load_dataset
    from rec_utils.llm import cases as C
    from rec_utils.llm import generate as G
    from rec_utils.llm.finetune import TrainConfig, finetune
    from rec_utils.llm.local import base_model_id, load_model, load_tokenizer, prepare_torch
    from rec_utils.split import make_split
    from rec_utils.utils import device_description, git_commit

    prepare_torch(a.threads)
    ds = load_dataset(a.dataset, require_items=True)
    split = make_split(ds, "temporal")
    sub = split.sample_test(a.sessions, seed=0)
    names = item_texts(ds).astype(str).map(lambda s: " ".join(s.split()))
    tok = load_tokenizer(a.model)

    def prompt(item_ids, answer=None):
        nm = [names[int(j)] for j in item_ids if names.get(int(j), "")][-a.max_prompt_items:]
        return tok.apply_chat_template(C.messages("genitem", nm), tokenize=False, add_generation_prompt=True)

    common = {"source": "benchmark", "model": a.model, "llm_variant": "genitem", "device": device_description("cpu"),
              "threads": torch.get_num_threads(), "run_git_commit": git_commit(),
              "measurement": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    rows = []

    def record(row):
        rows.append({**common, **row})
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
        df = pd.DataFrame(rows)
        if Path(a.out).is_file():  # written after every figure: an interrupted run keeps what it measured
            old = pd.read_csv(a.out)
            if "measurement" in old:
                old = old[old["measurement"] != common["measurement"]]
            if "source" not in old:
                old["source"] = "stored run"
            df = pd.concat([old, df], ignore_index=True)
        _write(df, Path(a.out))

    if not a.skip_decoding:
        lm = load_model(a.model, tok).eval()
        texts = [prompt(sub.test[i]) for i in range(len(sub.test))]
        cat = sorted(set(names[np.unique(split.train["item_id"])]) - {""})
        trie = G.NameTrie.from_names(tok, cat, tok.eos_token_id)
        label = f"test_sessions={len(texts)},max_prompt_items={a.max_prompt_items},base weights"
        models = {"fp32": lm}
        for prec in set(a.precisions) - {"fp32"}:
            models[prec] = G.for_decoding(load_model(a.model, tok).eval(), prec)
        paths = {"beam": [] if a.skip_reference_decoding else [("reference", "fp32", "end", lambda ps: G.constrained_beam_sequential(
                     lm, tok, ps, trie, num_beams=20, progress=False)[0])],
                 "sample": [] if a.skip_reference_decoding else [("reference", "fp32", "", lambda ps: G.sample_sequential(
                     lm, tok, ps, n=20, temperature=0.25, progress=False))]}
        for prec in a.precisions:
            m = models[prec]
            for stop in a.beam_stops:
                paths["beam"].append(("new", prec, stop, lambda ps, m=m, stop=stop: G.constrained_beam(
                    m, tok, ps, trie, num_beams=20, progress=False, batch_size=a.gen_batch_size, stop=stop)[0]))
            paths["sample"].append(("new", prec, "", lambda ps, m=m: G.sample(
                m, tok, ps, n=20, temperature=0.25, progress=False, batch_size=a.gen_batch_size)))
        chunks = np.array_split(np.arange(len(texts)), a.rounds)
        for dec in a.decoders:
            for chunk in chunks:  # interleaved: each chunk of sessions by both paths, one after the other
                for path, prec, stop, fn in paths[dec]:
                    ps = [texts[i] for i in chunk]
                    with Timer() as t:
                        out = fn(ps)
                    answers = sum(map(len, out))
                    record({"variant": label, "benchmark": "generation_items_per_s", "decoder": dec, "code_path": path,
                            "precision": prec, "beam_stop": stop,
                            "new_tokens": G.last_timing.get("new_tokens"),
                            "gen_batch_size": a.gen_batch_size if path == "new" else 1,
                            "value": len(ps) * 20 / t.seconds, "n": len(ps), "seconds": t.seconds,
                            "load_avg_1m": t.load, "n_test_sessions": len(ps), "answers_per_s": answers / t.seconds})
        del lm, models

    if not a.skip_finetune:
        cs = C.train_cases(split.train, names, seed=42).take(a.train_cases, 1)
        ex = [(prompt(cs.prompts[i]), names[int(cs.targets[i])] + tok.eos_token) for i in range(len(cs))
              if not cs.is_val[i]]
        bid = base_model_id(a.model)
        variants = [("reference", dict(batching="padded", loss_head="all", lora=False))]
        variants += [("new", dict(batching=b, loss_head="answer", lora=False, precision=p))
                     for p in a.precisions if p != "int8" for b in a.batchings]
        if a.lora:
            variants += [("new", dict(batching=a.batchings[0], loss_head="answer", lora=True, precision=p, lora_layers=k))
                         for p in a.precisions if p != "int8" for k in a.lora_layers]
        import tempfile

        for rnd in range(a.ft_rounds):
            for path, kw in variants:
                cfg = TrainConfig(epochs=1, batch_size=8, max_steps=a.train_steps or -1, seed=rnd, **kw)
                with tempfile.TemporaryDirectory() as tmp, Timer() as t:
                    _, info = finetune(a.model, tok, ex, [], cfg, base_id=bid, cache=Path(tmp), progress=False,
                                       num_threads=a.threads)
                record({"variant": f"train_cases={len(ex)},steps={info['steps']},batch_size=8,"
                                   f"max_prompt_items={a.max_prompt_items}",
                        "benchmark": "finetune_train_tokens_per_s", "decoder": "", "code_path": path,
                        "batching": kw["batching"], "loss_head": kw["loss_head"], "lora": kw["lora"],
                        "precision": kw.get("precision", "fp32"), "lora_layers": kw.get("lora_layers", 0),
                        "value": info["train_tokens_per_s"], "n": info["train_tokens"], "seconds": info["train_s"],
                        "load_avg_1m": t.load, "finetune_key": info["key"]})
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default=str(PROJECT_ROOT / "results" / "beauty"))
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--measure", action="store_true", help="measure reference and new code paths, interleaved")
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--model", default="smollm2", help="local LLM: smollm2 | gemma3-270m (`make gemma`) (column model)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sessions", type=int, default=16, help="test sessions decoded by each path")
    ap.add_argument("--rounds", type=int, default=2, help="session chunks, each decoded by both paths in turn")
    ap.add_argument("--decoders", nargs="+", default=["beam", "sample"])
    ap.add_argument("--gen-batch-size", type=int, default=8)
    ap.add_argument("--max-prompt-items", type=int, default=5)
    ap.add_argument("--train-cases", type=int, default=64)
    ap.add_argument("--train-steps", type=int, default=0, help="0: one epoch (every case seen once)")
    ap.add_argument("--ft-rounds", type=int, default=1)
    ap.add_argument("--batchings", nargs="+", default=["grouped", "packed"])
    ap.add_argument("--lora", action="store_true", help="also measure LoRA (new path)")
    ap.add_argument("--lora-layers", nargs="+", type=int, default=[0],
                    help="LoRA on the top this many decoder layers (0: every layer; TrainConfig.lora_layers), each measured")
    ap.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "bf16", "int8"],
                    help="precisions of the new paths (bf16: only where the CPU runs it natively; int8: "
                         "decoding only, dynamic quantisation)")
    ap.add_argument("--beam-stops", nargs="+", default=["end"], choices=["end", "unique"],
                    help="constrained beam of the new paths: decode each name to its end, or stop a beam once "
                         "its prefix names one item (generate.constrained_beam(stop=...))")
    ap.add_argument("--skip-reference-decoding", action="store_true",
                    help="decode only the new paths (the revision-2 reference takes minutes a session under load)")
    ap.add_argument("--skip-decoding", action="store_true")
    ap.add_argument("--skip-finetune", action="store_true")
    a = ap.parse_args(argv)
    if a.measure:
        return measure(a)
    return from_runs(Path(a.results), Path(a.out))


if __name__ == "__main__":
    raise SystemExit(main())
