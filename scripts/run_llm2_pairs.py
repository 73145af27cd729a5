"""Train LLM2 init arms and their base (init=random) as pairs, seed by seed, without Jupyter
(:mod:`rec_utils.llm2_comparison`): same split, process, device, thread count and code for every
arm; runs stored under the content-keyed run store, so a rerun resumes where it stopped and
notebook 05 (``PAIRED = True``) then loads them instead of training.

    python scripts/run_llm2_pairs.py --models LLM2SASRec LLM2GRU4Rec --seeds 0 1 2 3 4 --threads 1
    python scripts/run_llm2_pairs.py --models LLM2BERT4Rec --config '{"LLM2BERT4Rec": {"n_random_copies": 1}}'
    python scripts/run_llm2_pairs.py --tuned TAG ...   # each arm's TPE optimum (configs/<model>__init-<init>__TAG.json)
    python scripts/run_llm2_pairs.py --device cuda --threads 0 --models LLM2BERT4Rec   # the GPU pair
    python scripts/run_llm2_pairs.py --compare-only ...   # pair what is stored -> significance.csv

Settings are built exactly as notebook 05 builds them in paired mode
(:func:`rec_utils.llm2_comparison.arm_setting`).
"""
from __future__ import annotations

import argparse
import json
import time

from rec_utils import results
from rec_utils.data import load_dataset
from rec_utils.llm2_comparison import arm_setting, compare_arms, run_arms, tuned_arm_setting
from rec_utils.significance import record_significance
from rec_utils.split import make_split
from rec_utils.utils import resolve_device


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--protocol", default="temporal", choices=["temporal", "loo"])
    ap.add_argument("--preset", default=None, help="default: beauty (temporal) / beauty-loo (loo)")
    ap.add_argument("--models", nargs="+", default=["LLM2SASRec", "LLM2GRU4Rec"])
    ap.add_argument("--inits", nargs="+", default=["random", "llm"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--config", default="{}", help='JSON {model: {field: value}} on top of the preset, all arms')
    ap.add_argument("--tuned", default=None, help="tag of the arms' TPE searches (tune_arm): use their optima")
    ap.add_argument("--tie-order", default="shuffle", choices=["shuffle", "file"])
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads, part of the setting (0: not set)")
    ap.add_argument("--sample-sessions", type=int, default=0)
    ap.add_argument("--sample-train-sessions", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None, help="results folder (default results/<dataset>)")
    ap.add_argument("--compare-only", action="store_true",
                    help="train nothing: pair the stored runs of the arms (seeds stored for every arm) and "
                         "record the rows in significance.csv / significance_refused.csv and each arm's "
                         "rows in summary.csv")
    ap.add_argument("--n-boot", type=int, default=10_000)
    args = ap.parse_args(argv)

    overrides = json.loads(args.config)
    out = results.results_dir(args.dataset, args.out)
    device = resolve_device(args.device)
    preset = args.preset or ("beauty-loo" if args.protocol == "loo" else "beauty")
    dataset = load_dataset(args.dataset, require_items=True)
    split = (make_split(dataset, args.protocol, tie_order=args.tie_order)
             .sample_test(args.sample_sessions).sample_train(args.sample_train_sessions))
    validation = split.validation if args.protocol == "loo" else None
    threads = args.threads or None
    print(f"{split.describe()}\ndevice {device}, threads {threads}", flush=True)
    for model in args.models:
        if args.tuned:
            arms = {i: tuned_arm_setting(model, i, split, tag=args.tuned, root=out, num_threads=threads,
                                         overrides=overrides.get(model, {})) for i in args.inits}
        else:
            arms = {i: arm_setting(model, i, split, preset=preset, overrides=overrides.get(model, {}),
                                   num_threads=threads) for i in args.inits}
        if args.compare_only:
            stored = {a: results.find_runs(out, setting=s, split_fingerprint=split.fingerprint) for a, s in arms.items()}
            seeds = set.intersection(*({int(r["seed"]) for r in rs} for rs in stored.values()))
            if not seeds:
                print(f"{model}: no seed stored for every arm ({ {a: len(r) for a, r in stored.items()} })")
                continue
            stored = {a: [r for r in rs if int(r["seed"]) in seeds] for a, rs in stored.items()}
            for rs in stored.values():  # each arm's summary rows (mean ± sd over its stored seeds)
                results.record(rs, out)
            rows = compare_arms(arms, stored, split, out_dir=out, n_boot=args.n_boot)
            record_significance(rows, out)
            for r in rows:
                print(f"{model} {r['label_a']} vs {r['label_b']} {r['metric']}: {r['mean_a']:.4f} vs {r['mean_b']:.4f}, "
                      f"diff {r['diff']:+.4f} [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] p {r['p_value']:.3g}, "
                      f"seeds {sorted(seeds)}; {r['pairing'] or 'pairs'}", flush=True)
            continue
        t0 = [time.time()]

        def report(arm, run, model=model, t0=t0):
            m = run["metrics"]
            print(f"{model} init={arm} seed {run['seed']}: NDCG@10 {m['ndcg@10']:.4f} NDCG@20 {m['ndcg@20']:.4f} "
                  f"(run {run['wall_s']:.0f} s, {time.time() - t0[0]:.0f} s incl. loading) "
                  f"commit {run['git_commit']}", flush=True)
            t0[0] = time.time()

        run_arms(arms, split, out_dir=out, seeds=args.seeds, items=dataset.items, device=device,
                 validation=validation, notebook="05_llm2sequential", on_run=report)


if __name__ == "__main__":
    main()
