"""Train and evaluate models seed by seed without Jupyter, storing runs under the same keys as
notebook 02_sequential (the run's Setting and the split fingerprint, :mod:`rec_utils.setting`).

For machines without papermill (the lent GPU box): run this there, bring the run files back,
then execute the notebook (or `make study PLAN=paper`) here — it loads the stored runs instead
of retraining and writes the summary rows and figures.

    python scripts/run_seeds.py --models SASRec GRU4Rec --seeds 0 1 2 --out results/beauty
    python scripts/run_seeds.py --protocol loo --preset beauty-loo --tie-order file --models SASRec
    python scripts/run_seeds.py --models GRU4Rec --config '{"GRU4Rec": {"pack_padding": false}}'
    python scripts/run_seeds.py --models LLM2BERT4Rec --seeds 0 1 2 --notebook 05_llm2sequential
    python scripts/run_seeds.py ... --archive $OUT/runs.tgz   # tar the runs folder after every run

The setting is built exactly as the notebook builds it (``Setting.of(model, split, preset=...,
overrides=CONFIG[model])``), so every option of the notebook that changes a result (preset,
overrides, tie order and seed, samples) is an option here too.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

from rec_utils import results
from rec_utils.data import load_dataset
from rec_utils.evaluation import run_seeds
from rec_utils.models import build_model
from rec_utils.setting import Setting
from rec_utils.split import make_split
from rec_utils.utils import resolve_device


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--protocol", default="temporal", choices=["temporal", "loo"])
    ap.add_argument("--preset", default="beauty")
    ap.add_argument("--models", nargs="+", default=["GRU4Rec", "SASRec", "BERT4Rec"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--config", default="{}", help='JSON {model: {field: value}} on top of the preset (as CONFIG in 02)')
    ap.add_argument("--tie-order", default="shuffle", choices=["shuffle", "file"])
    ap.add_argument("--tie-seed", type=int, default=0)
    ap.add_argument("--sample-sessions", type=int, default=0, help="test cases sampled (0: all)")
    ap.add_argument("--sample-train-sessions", type=int, default=0, help="train sessions sampled (0: all)")
    ap.add_argument("--notebook", default="02_sequential", help="provenance recorded with the runs")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=None, help="results folder (default results/<dataset>)")
    ap.add_argument("--archive", default=None, help="tar.gz of the runs folder, rewritten after each run")
    args = ap.parse_args(argv)

    overrides = json.loads(args.config)
    if not isinstance(overrides, dict):
        raise SystemExit(f"--config must be a JSON object {{model: {{field: value}}}}, got {args.config!r}")
    out = results.results_dir(args.dataset, args.out)
    device = resolve_device(args.device)
    dataset = load_dataset(args.dataset)
    split = (make_split(dataset, args.protocol, tie_order=args.tie_order, tie_seed=args.tie_seed)
             .sample_test(args.sample_sessions).sample_train(args.sample_train_sessions))
    validation = split.validation if args.protocol == "loo" else None
    print(f"{split.describe()}\ndevice {device}", flush=True)
    for model in args.models:
        setting = Setting.of(model, split, preset=args.preset, overrides=overrides.get(model, {}))
        for seed in args.seeds:
            t0 = time.time()
            run = run_seeds(
                lambda s, setting=setting: build_model(
                    setting.model, **{**setting.config, "seed": s}, device=device, checkpoint_dir=None,
                    progress=False, validation=validation),
                split, setting, out_dir=out, seeds=[seed], notebook=args.notebook, device=device,
                items=dataset.items)[0]  # item texts: LLM2 models embed them
            m = run["metrics"]
            print(f"{model} ({setting.label or 'faithful'}) seed {seed}: NDCG@10 {m['ndcg@10']:.4f} "
                  f"NDCG@20 {m['ndcg@20']:.4f} HR@20 {m['hit_rate@20']:.4f} ({time.time() - t0:.0f} s)", flush=True)
            if args.archive:
                tmp = f"{args.archive}.tmp"
                subprocess.run(["tar", "czf", tmp, "-C", str(out), "runs"], check=True)
                Path(tmp).replace(args.archive)


if __name__ == "__main__":
    main()
