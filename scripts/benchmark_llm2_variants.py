"""Seconds per training epoch of each issue-23 LLM2 variant and training objective against the base,
on Beauty (temporal split, the whole train split and catalogue), one CPU thread.

Each variant is set up with a real ``fit(epochs=0)`` and then runs the trainer's own epoch loop
for a fixed wall-clock slice of its first epoch (``--budget``, default 25 s); the slice's rows
over the epoch's rows (``epoch_fraction``) extrapolate it to a full epoch: ``epoch_s`` (wall) and
``epoch_cpu_s`` (process CPU seconds on 1 thread: the work done, much less sensitive to the load
of a shared machine than wall time). So the numbers are per-epoch costs measured on a fraction of
an epoch, not whole epochs; the first batches carry the warm-up (one unrecorded fit warms the
process first). Validation and the LLM2 step (embedding lookup, reduction; ``init_s``) are not in
them. The 1-minute load average is recorded before and after each variant.

A variant is flagged (``over_2x_base``) when its per-epoch CPU seconds exceed twice the base's
(``base``: the LLM2 model with ``init="random"``, i.e. the base model, full softmax) of the same
preset. Variants whose embedder is not installed (mpnet without ``make embedders``) get a row
with the error and no time. Writes ``results/benchmarks/llm2_variants.csv`` (replaces rows of the
same model, preset, variant, threads and device). Usage::

    REC_UTILS_EMBEDDING_CACHE=/path/.cache/embeddings nice python scripts/benchmark_llm2_variants.py \\
        --model LLM2SASRec --preset beauty --budget 25 --threads 1
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rec_utils.data import load_dataset
from rec_utils.models import build_model, preset_config
from rec_utils.models.llm2 import LLM2_VARIANTS
from rec_utils.models.neural import trainer as T
from rec_utils.split import make_split
from rec_utils.text import EmbeddingError
from rec_utils.utils import PROJECT_ROOT, atomic_write_text, device_description, git_commit

BASE = "base"


def fit_slice(model: str, config: dict, split, items, budget_s: float, device: str):
    """Set the model up with a real ``fit(epochs=0)`` (vocabulary, LLM2 step, module, objective,
    training rows), then run the trainer's own epoch loop (``trainer._train_epoch``: batching,
    loss, backward, clipnorm, AdamW) for ``budget_s`` training seconds. Returns the model, the
    epoch row and the process CPU seconds of the slice (1 thread: the work done, whatever the
    machine's load)."""
    m = build_model(model, **config, epochs=0, progress=False, device=device, checkpoint_dir=None)
    m.fit(split.train, items=items)
    c = m.config
    settings = T.TrainSettings.from_config(c, precision=m.fit_info_["precision_used"], time_budget_s=budget_s)
    opt = T.make_optimizer(m.module_, c.learning_rate, c.weight_decay)
    cpu0 = time.process_time()
    row, _ = T._train_epoch(m.module_, opt, m._epoch_data, np.random.default_rng(c.seed), settings, pad=m.pad_,
                            device=m.device, epoch=0, train_s=0.0, progress=False)
    return m, row, time.process_time() - cpu0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="LLM2SASRec")
    ap.add_argument("--preset", default="beauty")
    ap.add_argument("--variants", nargs="+", default=[BASE, *LLM2_VARIANTS])
    ap.add_argument("--budget", type=float, default=25.0, help="training seconds of each fit's epoch slice")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(PROJECT_ROOT / "results" / "benchmarks" / "llm2_variants.csv"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    dataset = load_dataset("beauty", require_items=True)
    split = make_split(dataset, "temporal")
    preset = preset_config(args.model, args.preset)
    fit_slice(args.model, {**preset, "init": "random"}, split, None, 3.0, args.device)  # warm-up, not recorded
    rows = []
    for name in args.variants:
        init, over = ("random", {}) if name == BASE else LLM2_VARIANTS[name]
        cfg = {**preset, **over, "init": init, "seed": 0}
        load0 = os.getloadavg()[0]
        row = {"model": args.model, "preset": args.preset, "variant": name, "init": init,
               "overrides": ";".join(f"{k}={v}" for k, v in sorted(over.items())),
               "device": device_description(args.device), "threads": torch.get_num_threads()}
        try:
            m, h, cpu = fit_slice(args.model, cfg, split, dataset.items if init != "random" else None, args.budget,
                                  args.device)
        except EmbeddingError as e:
            row.update(error=str(e).split("\n")[0])
            rows.append(row)
            print(row, flush=True)
            continue
        n_rows = len(m.epoch_data(np.random.default_rng(0))[0])
        frac = h["n_sequences"] / n_rows
        row.update({"n_train_items": m.n_items_, "epoch_rows": n_rows, "rows_timed": h["n_sequences"],
                    "epoch_fraction": round(frac, 3), "slice_s": h["epoch_s"], "slice_cpu_s": round(cpu, 2),
                    "seq_per_s": h["seq_per_s"], "epoch_s": round(n_rows / max(h["seq_per_s"], 1e-9), 1),
                    "epoch_cpu_s": round(cpu / max(frac, 1e-9), 1),
                    "init_s": (m.fit_info_.get("llm2") or {}).get("init_s"),
                    "emb_dim": m.config.emb_dim, "loss": m.config.loss, "batch_size": m.config.batch_size,
                    "load_avg_1m_before": round(load0, 2), "load_avg_1m_after": round(os.getloadavg()[0], 2),
                    "git_commit": git_commit(), "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
        print({k: row[k] for k in ("variant", "epoch_s", "epoch_cpu_s", "epoch_fraction", "load_avg_1m_before")},
              flush=True)
        rows.append(row)
    new = pd.DataFrame(rows)
    base = new[new["variant"] == BASE]
    if len(base):  # CPU seconds: the work, robust to the load of a shared machine; wall beside it
        new["x_base"] = (new["epoch_cpu_s"] / float(base["epoch_cpu_s"].iloc[0])).round(2)
        new["x_base_wall"] = (new["epoch_s"] / float(base["epoch_s"].iloc[0])).round(2)
        new["over_2x_base"] = new["x_base"].gt(2).where(new["x_base"].notna())  # empty where not measured
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        old = pd.read_csv(path)
        key = ["model", "preset", "variant", "threads", "device"]
        if set(key) <= set(old.columns) and set(key) <= set(new.columns):
            done = set(new[key].astype(str).apply(tuple, axis=1))
            old = old[~old[key].astype(str).apply(tuple, axis=1).isin(done)]
        new = pd.concat([old, new], ignore_index=True)
    atomic_write_text(path, new.to_csv(index=False))
    print(f"wrote {path}")
    show = [c for c in ("variant", "epoch_cpu_s", "x_base", "over_2x_base", "epoch_s", "x_base_wall", "epoch_fraction",
                        "load_avg_1m_before", "error")
            if c in new.columns]
    print(new[show].to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
