"""Add the validation check to stored neural runs made before it was recorded, and to their
summary rows, without training anything.

    python scripts/backfill_validation.py results/ml-latest-small [results/beauty ...] [--dry-run]
    python scripts/backfill_validation.py results/myshop --data /path/to/myshop   # a folder dataset

A neural run stores its epoch history (the validation NDCG@20 of every epoch, the best epoch
restored) but, before the check existed, not MostPopular's score on the same validation cases.
Those cases are a deterministic function of the run: the split (rebuilt from the run's setting
and checked against its split fingerprint), the inner-validation share, cap and seed of its
resolved config (``rec_utils.split.inner_validation_split``; under leave-one-out the split's
validation cases). The script rebuilds them, writes ``fit_info["validation"]`` with the same
function a new run uses (:func:`rec_utils.models.neural.base.validation_record`) into the run
JSON (atomic; nothing else in the record changes), and fills the summary rows' validation
columns of the settings it touched (their other columns, ``created`` included, stay as they
were, so which row is the latest does not change).

Skipped with a reason: runs on splits ``make_split`` does not build (the hybrids' temporal
folds), runs whose rebuilt split has another fingerprint (the data changed since), runs trained
on the whole train split with other validation cases than the protocol's.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rec_utils import results  # noqa: E402
from rec_utils.data import load_dataset  # noqa: E402
from rec_utils.models.neural.base import validation_record  # noqa: E402
from rec_utils.setting import Setting  # noqa: E402
from rec_utils.split import PROTOCOLS, inner_validation_split, make_split  # noqa: E402
from rec_utils.utils import atomic_write_text  # noqa: E402


def split_of(setting: Setting, cache: dict):
    """The split a run of ``setting`` was evaluated on (cached per data and sampling); the data
    is ``cache["data_path"]`` when given (a dataset folder outside data/), else data/<name>."""
    key = (setting.dataset, setting.protocol, setting.tie_order, setting.tie_seed, setting.test_sample,
           setting.test_sample_seed, setting.train_sample, setting.train_sample_seed)
    if key not in cache:
        if ("data", setting.dataset) not in cache:
            cache[("data", setting.dataset)] = load_dataset(cache.get("data_path") or setting.dataset)
        ds = cache[("data", setting.dataset)]
        cache[key] = (make_split(ds, setting.protocol, tie_order=setting.tie_order, tie_seed=0 if setting.tie_seed is None else setting.tie_seed)
                      .sample_test(setting.test_sample, setting.test_sample_seed)
                      .sample_train(setting.train_sample, setting.train_sample_seed))
    return cache[key]


def backfill_run(path: Path, cache: dict, dry_run: bool) -> str:
    """Backfill one run JSON; returns what happened (``"added"`` or why it was skipped)."""
    run = json.loads(path.read_text())
    history, info = run.get("history"), run.get("fit_info")
    if not isinstance(history, list) or not history or "val_ndcg@20" not in history[0] or not isinstance(info, dict):
        return "no validation history"
    if results.run_validation(run) is not None:
        return "already has the check"
    setting = Setting.from_dict(run["setting"])
    if setting.protocol not in PROTOCOLS:
        return f"protocol {setting.protocol} not rebuilt here"
    split = split_of(setting, cache)
    if split.fingerprint != run["split_fingerprint"]:
        return f"split fingerprint {split.fingerprint} != the run's {run['split_fingerprint']}"
    rc = run["resolved_config"]
    if setting.protocol == "loo":
        fit_train, val = split.train, split.validation
    else:
        fit_train, val = inner_validation_split(split.train, frac=rc["val_frac"], max_sessions=rc["val_max_sessions"],
                                                seed=rc["seed"])
    check = validation_record(fit_train, val, history, info["best_epoch"])
    if check is None:
        return "no score at the best epoch"
    if not dry_run:
        run["fit_info"] = {**info, "validation": check}
        atomic_write_text(path, json.dumps(run, indent=1, sort_keys=True, default=results._json_default))
    return "added"


def refresh_summary(out_dir: Path, touched: set[tuple[str, str]], dry_run: bool) -> int:
    """Fill the validation columns of every summary row (each aggregate) of the touched
    (setting id, split) pairs, from the stored runs of the seeds of its mean row."""
    summary = results.read_summary(out_dir)
    rows = []
    for (sid, fp), group in summary.groupby(["setting_id", "split_fingerprint"], sort=False):
        if (sid, fp) not in touched:
            continue
        means = group[group["aggregate"] == "mean"]
        seeds = {int(s) for s in str(means["seeds"].iloc[0]).split()} if len(means) else None
        runs = [x for x in results.find_runs(out_dir, setting=sid, split_fingerprint=fp)
                if seeds is None or int(x["seed"]) in seeds]
        check = results.validation_columns(runs)
        rows += [{**{k: (None if v != v else v) for k, v in r.items()}, **check} for _, r in group.iterrows()]
    if rows and not dry_run:
        results.update_summary(rows, out_dir)
    return len(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+", type=Path, help="results/<dataset> folders")
    ap.add_argument("--data", default=None, help="the dataset folder, for a dataset outside data/")
    ap.add_argument("--dry-run", action="store_true", help="say what would change, write nothing")
    a = ap.parse_args(argv)
    for out_dir in a.folders:
        cache, touched, counts = {"data_path": a.data}, set(), {}
        for path in sorted(out_dir.glob("runs/*/*.json")):
            what = backfill_run(path, cache, a.dry_run)
            counts[what] = counts.get(what, 0) + 1
            if what != "no validation history":
                print(f"{path.relative_to(out_dir)}: {what}")
            if what in ("added", "already has the check"):
                run = json.loads(path.read_text())
                touched.add((run["setting_id"], run["split_fingerprint"]))
        n = refresh_summary(out_dir, touched, a.dry_run)
        print(f"{out_dir}: {counts}; {n} summary row(s) given their validation columns"
              + (" (dry run: nothing written)" if a.dry_run else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
