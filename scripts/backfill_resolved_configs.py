"""Add ``resolved_config`` to stored runs recorded before it existed (one-off migration).

Runs are keyed by the config they were *given* (preset + overrides); since the key does not see
the code's defaults, ``run_seeds`` also stores the resolved config (every field, defaults
included) and refuses to reuse a stored run whose resolved config differs from the current one.
This script fills that field in for older runs by rebuilding the model from its given config
with today's defaults, which is right as long as no default has changed meaning since the run
was made (true for every run committed here: fields added since default to the old behaviour).

    python scripts/backfill_resolved_configs.py [--notebooks 02_sequential] [--dry-run]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from rec_utils.evaluation import resolved_config
from rec_utils.models import build_model
from rec_utils.results import RESULTS_ROOT, load_run
from rec_utils.utils import atomic_write_text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(RESULTS_ROOT))
    ap.add_argument("--notebooks", nargs="+", default=["02_sequential"],
                    help="notebooks whose models are built as build_model(model, **config, seed=seed)")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    done = skipped = 0
    for nb in args.notebooks:
        for path in sorted(Path(args.root).glob(f"*/runs/{nb}/*.json")):
            run = load_run(path)
            if run is None or "resolved_config" in run:
                skipped += 1
                continue
            given = {k: v for k, v in run["config"].items() if not k.startswith("_")}
            model = build_model(run["model"], **{**given, "seed": run["seed"]})
            run["resolved_config"] = resolved_config(model)
            if not args.dry_run:
                atomic_write_text(path, json.dumps(run, indent=1, sort_keys=True))
            done += 1
    print(f"resolved_config added to {done} runs ({skipped} already had it)"
          + (" [dry run]" if args.dry_run else ""))


if __name__ == "__main__":
    main()
