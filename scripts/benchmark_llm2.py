"""What the LLM2Sequential step adds to a model's fit on Beauty (temporal split), with the item
embeddings already in the embedding cache (notebook 03 fills it): no training is timed.

For each LLM2 model (the like-for-like ``beauty`` preset by default) and each seed it fits the
base model and the LLM2 model with ``epochs=0`` (split, vocabulary, module, training rows,
validation windows — everything a fit does before its first epoch) and reports the difference,
plus the LLM2 step alone as the model measures it (``fit_info_["llm2"]["init_s"]``: embedding
lookup in the cache, reduction to emb_dim, alignment, permutation/scaling). Each fit builds a
fresh model, as ``run_seeds`` does, so every fit reads the cache again; the first LLM2 fit of
the process also pays the one-off sklearn import (``cold``); one unrecorded base fit warms the
process up first. Writes
``results/benchmarks/llm2.csv`` (replaces rows of the same model, preset, init, seed and
device). Usage::

    REC_UTILS_EMBEDDING_CACHE=... python scripts/benchmark_llm2.py --seeds 0 1 --threads 2
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd
import torch

from rec_utils.data import load_dataset
from rec_utils.models import LLM2_BASES, build_model, preset_config
from rec_utils.split import make_split
from rec_utils.utils import PROJECT_ROOT, atomic_write_text, device_description, git_commit


def timed_fit(name: str, config: dict, split, items, device: str):
    t0 = time.perf_counter()
    m = build_model(name, **config, epochs=0, progress=False, device=device).fit(split.train, items=items)
    return m, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=list(LLM2_BASES))
    ap.add_argument("--preset", default="beauty")
    ap.add_argument("--init", default="llm", choices=["llm", "permuted"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(PROJECT_ROOT / "results" / "benchmarks" / "llm2.csv"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    dataset = load_dataset("beauty")
    split = make_split(dataset, "temporal")
    rows, cold = [], True
    first = LLM2_BASES[args.models[0]]  # warm-up (not recorded): the first fit of a process pays one-off costs
    timed_fit(first, preset_config(first, args.preset), split, None, args.device)
    for name in args.models:
        base = LLM2_BASES[name]
        for seed in args.seeds:
            _, base_s = timed_fit(base, {**preset_config(base, args.preset), "seed": seed}, split, None, args.device)
            cfg = {**preset_config(name, args.preset), "init": args.init, "seed": seed}
            m, llm2_s = timed_fit(name, cfg, split, dataset.items, args.device)
            info = m.fit_info_["llm2"]
            row = {"model": name, "preset": args.preset, "init": args.init, "seed": seed, "cold": cold,
                   "emb_dim": m.config.emb_dim, "reduction": m.config.embedding.reduction,
                   "embedding_model": m.config.embedding.model, "n_train_items": info["n_vectors"],
                   "base_fit_epochs0_s": round(base_s, 3), "llm2_fit_epochs0_s": round(llm2_s, 3),
                   "overhead_s": round(llm2_s - base_s, 3), "llm2_step_s": info["init_s"],
                   "device": device_description(args.device), "threads": args.threads,
                   "load_avg_1m": round(os.getloadavg()[0], 2), "git_commit": git_commit(),
                   "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
            cold = False
            print(row, flush=True)
            rows.append(row)
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = pd.DataFrame(rows)
    if path.is_file():
        old = pd.read_csv(path)
        key = ["model", "preset", "init", "seed", "device"]
        old = old[~old[key].astype(str).apply(tuple, axis=1).isin(set(new[key].astype(str).apply(tuple, axis=1)))]
        new = pd.concat([old, new], ignore_index=True)
    atomic_write_text(path, new.to_csv(index=False))
    print(f"wrote {path}: LLM2 step {new['llm2_step_s'].min():.2f}-{new['llm2_step_s'].max():.2f} s, "
          f"fit overhead {new['overhead_s'].min():.2f}-{new['overhead_s'].max():.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
