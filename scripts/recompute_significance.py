"""Recompute every row of ``results/<dataset>/significance.csv`` from the stored top-20 lists with
the current statistics (:mod:`rec_utils.significance`: sign-flip p, its inverted CI, bootstrap CI,
Holm, seed-level view, device/commit/threads/code columns) and the pairing rules: a pair whose runs
differ in device, thread count or training code (or holds a failed run) leaves significance.csv for
``significance_refused.csv`` with its reasons. Two settings of one LLM2 model (init arms) must also
agree in every training setting but the init (``same_settings``). Runs are found by setting id;
the split is rebuilt from the runs' setting (protocol, ties, samples) and checked by fingerprint.

    python scripts/recompute_significance.py --dataset beauty [--n-boot 10000]
"""
from __future__ import annotations

import argparse
import time

import pandas as pd

from rec_utils.data import load_dataset
from rec_utils.results import find_runs, results_dir
from rec_utils.significance import (DEFAULT_METRICS, compare_runs, p_disagrees_with_ci, read_significance,
                                    record_significance)
from rec_utils.split import make_split


def split_of(dataset, setting: dict, cache: dict):
    key = tuple(setting.get(k) for k in ("protocol", "tie_order", "tie_seed", "test_sample", "test_sample_seed",
                                         "train_sample", "train_sample_seed"))
    if key not in cache:
        protocol, tie_order, tie_seed, n_test, s_test, n_train, s_train = key
        cache[key] = (make_split(dataset, protocol, tie_order=tie_order, tie_seed=0 if tie_seed is None else tie_seed)
                      .sample_test(n_test or 0, seed=s_test or 0).sample_train(n_train or 0, seed=s_train or 0))
    return cache[key]


def pair_rows(out, dataset, p, metrics, *, n_boot: int, cache: dict, same_settings: bool = False,
              family: str | None = None) -> list[dict] | None:
    """The comparison rows of one stored pair ``p`` (a significance row: setting ids, labels, split)
    recomputed from its stored runs; None when a side's runs are not stored."""
    ra = find_runs(out, setting=p["setting_id_a"], split_fingerprint=p["split_fingerprint"])
    rb = find_runs(out, setting=p["setting_id_b"], split_fingerprint=p["split_fingerprint"])
    if not ra or not rb:
        return None
    ra = [{**r, "variant": p["label_a"]} for r in ra]
    rb = [{**r, "variant": p["label_b"]} for r in rb]
    split = split_of(dataset, ra[0]["setting"], cache)
    return compare_runs(ra, rb, split, out_dir=out, metrics=metrics, n_boot=n_boot, pairing="mark",
                        same_settings=same_settings, **({"family": family} if family is not None else {}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--out", default=None)
    ap.add_argument("--n-boot", type=int, default=10_000)
    args = ap.parse_args(argv)
    out = results_dir(args.dataset, args.out)
    old = read_significance(out)
    pairs = old.drop_duplicates(["setting_id_a", "setting_id_b", "split_fingerprint"])
    dataset = load_dataset(args.dataset)
    cache, rows, failed = {}, [], []
    t0 = time.time()
    for _, p in pairs.iterrows():
        metrics = tuple(old[(old["setting_id_a"] == p["setting_id_a"]) & (old["setting_id_b"] == p["setting_id_b"])
                            & (old["split_fingerprint"] == p["split_fingerprint"])]["metric"]) or DEFAULT_METRICS
        same = p["model_a"] == p["model_b"] and p["model_a"].startswith("LLM2")
        try:
            got = pair_rows(out, dataset, p, metrics, n_boot=args.n_boot, cache=cache, same_settings=same)
        except ValueError as exc:
            failed.append((p["model_a"], p["label_a"], p["model_b"], p["label_b"], str(exc)[:200]))
            got = []
        if got is None:
            failed.append((p["model_a"], p["label_a"], p["model_b"], p["label_b"], "runs not stored"))
            continue
        rows += got
        print(f"{p['model_a']} ({p['label_a']}) vs {p['model_b']} ({p['label_b']}): done ({time.time() - t0:.0f} s)",
              flush=True)
    table = record_significance(rows, out)
    refused = read_significance(out, "significance_refused.csv")
    print(f"{len(table)} rows in significance.csv, {len(refused)} refused, {len(failed)} not recomputed")
    for f in failed:
        print("not recomputed:", *f)
    bad = p_disagrees_with_ci(table)
    print(f"rows whose p disagrees with the CI: {int(bad.sum())}")
    if len(table):
        mixed = table[(table["device_a"] != table["device_b"])]
        print(f"rows pairing different devices: {len(mixed)}")
    return 1 if bad.any() else 0


if __name__ == "__main__":
    raise SystemExit(main())
