"""Train and evaluate models seed by seed without Jupyter, storing runs exactly where notebook
02_sequential looks for them (same notebook name, config, variant and split fingerprint).

For machines without papermill (the lent GPU box): run this there, bring the run files back,
then execute the notebook (or `make study PLAN=paper`) here — it loads the stored runs instead
of retraining and writes the summary rows and figures.

    python scripts/run_seeds.py --models SASRec GRU4Rec --seeds 0 1 2 --out results/beauty
    python scripts/run_seeds.py --protocol loo --preset beauty-loo --models SASRec --seeds 0 1 2
    python scripts/run_seeds.py ... --archive $OUT/runs.tgz   # tar the runs folder after every run

The configuration logic mirrors the parameters cell of notebooks/02_sequential.ipynb with an
empty CONFIG (the faithful presets); an override would change the variant label there.
"""
from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

from rec_utils import results
from rec_utils.data import load_dataset
from rec_utils.evaluation import run_seeds
from rec_utils.models import build_model, preset_config
from rec_utils.split import make_split
from rec_utils.utils import resolve_device


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--protocol", default="temporal")
    ap.add_argument("--preset", default="beauty")
    ap.add_argument("--models", nargs="+", default=["GRU4Rec", "SASRec", "BERT4Rec"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--notebook", default="02_sequential")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=None, help="results folder (default results/<dataset>)")
    ap.add_argument("--archive", default=None, help="tar.gz of the runs folder, rewritten after each run")
    args = ap.parse_args()

    out = Path(args.out) if args.out else results.results_dir(args.dataset)
    device = resolve_device(args.device)
    split = make_split(load_dataset(args.dataset), args.protocol)
    validation = split.validation if args.protocol == "loo" else None
    print(f"{split.describe()}\ndevice {device}", flush=True)
    for model in args.models:
        cfg = preset_config(model, args.preset)
        for seed in args.seeds:
            t0 = time.time()
            run = run_seeds(
                lambda s, model=model, cfg=cfg: build_model(
                    model, **{**cfg, "seed": s}, device=device, checkpoint_dir=None, progress=False,
                    validation=validation),
                split, model_name=model, config=cfg, notebook=args.notebook, out_dir=out, seeds=[seed],
                device=device)[0]
            m = run["metrics"]
            print(f"{model} seed {seed}: NDCG@10 {m['ndcg@10']:.4f} NDCG@20 {m['ndcg@20']:.4f} "
                  f"HR@20 {m['hit_rate@20']:.4f} ({time.time() - t0:.0f} s)", flush=True)
            if args.archive:
                tmp = f"{args.archive}.tmp"
                subprocess.run(["tar", "czf", tmp, "-C", str(out), f"runs/{args.notebook}"], check=True)
                Path(tmp).replace(args.archive)


if __name__ == "__main__":
    main()
