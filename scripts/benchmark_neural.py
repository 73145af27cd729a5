"""Training and prediction speed of the sequential neural models on Beauty (temporal split).

For each model (RecSys'23 Beauty configs by default) and each training variant it times
``--steps`` optimiser steps on real batches and extrapolates to seconds per epoch, then times
prediction for all test sessions (4,469 on Beauty). Variants:

* ``naive``  - shuffled batches at full max_len width, logits + ``F.cross_entropy``, fp32;
* ``final``  - length-bucketed batches trimmed to their longest real sequence, the fused
  softmax cross-entropy of the tied head, fp32;
* ``final-bf16`` - as ``final`` with bf16 autocast where the device runs bf16 natively (else
  fp32 with a warning; the ``precision`` column says which was timed).

Writes ``results/benchmarks/neural_<device>.csv`` (appends/replaces rows of the same model,
variant and device). Usage::

    python scripts/benchmark_neural.py --models SASRec GRU4Rec BERT4Rec --steps 30 --threads 2
    python scripts/benchmark_neural.py --device cuda --steps 200
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from rec_utils.data import load_dataset
from rec_utils.models import build_model, preset_config
from rec_utils.models.neural import batching as B
from rec_utils.models.neural import trainer as T
from rec_utils.split import make_split
from rec_utils.utils import PROJECT_ROOT, device_description, resolve_device


def time_steps(m, variant: str, steps: int, device: str) -> dict:
    c = m.config
    module = m.module_
    module.train()
    precision = m.fit_info_["precision_used"]  # bf16 only where the device runs it natively
    naive = variant == "naive"
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    x, y = m.epoch_data(rng)
    data_s = time.perf_counter() - t0
    lengths = (x != m.pad_).sum(1)
    batches = B.bucketed_batches(lengths, c.batch_size, rng, bucket=not naive)
    n_batches = len(batches)
    xa, ya = torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)
    opt = T.make_optimizer(module, c.learning_rate, c.weight_decay)
    params = list(module.parameters())
    times, positions = [], []
    for i, idx in enumerate(batches[: steps + 2]):
        ib = torch.as_tensor(idx, device=device)
        xb, yb = xa[ib], ya[ib]
        if not naive:
            xb, yb = B.trim(xb, m.pad_, yb)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        with T.autocast(device, precision):
            if naive:  # plain PyTorch: logits of every target, then F.cross_entropy
                h = module.encode(xb)
                sel = yb != B.IGNORE
                loss = F.cross_entropy(module.logits(h[sel]).float(), yb[sel])
            else:
                loss = module.loss(xb, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        T.clip_per_tensor(params, c.clipnorm)
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= 2:  # warm-up
            times.append(time.perf_counter() - t)
            positions.append(xb.shape[1])
    # extrapolate by the share of sequences timed (the timed batches are a random sample)
    per_step = float(np.mean(times))
    epoch_s = per_step * n_batches + data_s
    return {"steps_timed": len(times), "s_per_step": round(per_step, 4), "mean_width": float(np.mean(positions)),
            "precision": precision, "n_batches": n_batches, "n_sequences": len(x), "epoch_s_est": round(epoch_s, 1),
            "train_seq_per_s": round(len(x) / epoch_s, 1), "epoch_data_s": round(data_s, 3)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["GRU4Rec", "SASRec", "BERT4Rec"])
    ap.add_argument("--variants", nargs="+", default=["naive", "final", "final-bf16"])
    ap.add_argument("--preset", default="beauty")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=str(PROJECT_ROOT / "results" / "benchmarks"))
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    if device == "cpu":
        torch.set_num_threads(args.threads)
    split = make_split(load_dataset("beauty"), "temporal")
    rows = []
    for name in args.models:
        for variant in args.variants:
            cfg = {**preset_config(name, args.preset), "epochs": 0}
            if variant.endswith("bf16"):
                cfg["precision"] = "bf16"
            m = build_model(name, device=device, progress=False, **cfg).fit(split.train)
            torch.manual_seed(0)
            r = time_steps(m, variant, args.steps, device)
            t = time.perf_counter()
            m.predict(split.test, k=20)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            r["predict_s"] = round(time.perf_counter() - t, 2)
            row = {"model": name, "variant": variant, "preset": args.preset, "device": device_description(device),
                   "threads": torch.get_num_threads() if device == "cpu" else None,
                   "n_test_sessions": len(split.test), **r,
                   "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
            print(row, flush=True)
            rows.append(row)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"neural_{'gpu' if device.startswith('cuda') else 'cpu'}.csv"
    new = pd.DataFrame(rows)
    if path.is_file():
        old = pd.read_csv(path)
        key = ["model", "variant", "preset"]
        old = old[~old[key].apply(tuple, axis=1).isin(set(new[key].apply(tuple, axis=1)))]
        new = pd.concat([old, new], ignore_index=True)
    new.to_csv(path, index=False)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
