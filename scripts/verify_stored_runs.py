"""Recompute stored runs under today's training code and, where the recomputed top-20 lists are
identical, record that the stored run also holds for today's code; then re-pair the comparisons
that were refused for training code alone::

    .venv/bin/python scripts/verify_stored_runs.py --dataset beauty --models MostPopular V-SKNN LLMSeqSim \\
        --split-fingerprint 9ad09f8056b5 --repair --n-boot 2000

Why: a paired comparison needs one training code for every run of both sides
(:mod:`rec_utils.pairing`), and a notebook reuses a stored run of the same setting whatever code
stored it, so a new model's run against a baseline stored by older code is refused. Recomputing
the baseline settles it: same lists, same run. Nothing stored is replaced: a verified run gains
today's fingerprint in ``verified_code_fingerprints`` (:func:`rec_utils.provenance.run_code_fingerprints`),
a run whose lists differ is only reported. Runs with a training history (neural models) are
skipped unless ``--neural`` (their recomputation costs a training).

``--repair``: every row of ``significance_refused.csv`` whose only reason is different training code
and that involves a verified run is recomputed (:func:`rec_utils.significance.compare_runs`, its
family kept, ``--n-boot`` resamples); it moves to significance.csv if it now pairs.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from recompute_significance import pair_rows, split_of  # noqa: E402

from rec_utils.data import load_dataset  # noqa: E402
from rec_utils.evaluation import run_seeds  # noqa: E402
from rec_utils.models import build_model  # noqa: E402
from rec_utils.provenance import code_fingerprint, run_code_fingerprints  # noqa: E402
from rec_utils.results import load_runs, results_dir, run_path, save_run  # noqa: E402
from rec_utils.setting import Setting  # noqa: E402
from rec_utils.significance import read_significance, record_significance  # noqa: E402
from rec_utils.utils import resolve_device  # noqa: E402


def verify(run: dict, dataset, out: Path, cache: dict) -> bool | None:
    """Recompute ``run`` in a scratch folder; True: same lists (the record is updated), False:
    different lists, None: the run already holds for today's code (stored or verified under it)."""
    today = code_fingerprint()
    if today in run_code_fingerprints(run):
        return None
    setting = Setting.from_dict(run["setting"])
    split = split_of(dataset, run["setting"], cache)
    if split.fingerprint != run["split_fingerprint"]:
        raise ValueError(f"{run['model']} seed {run['seed']}: rebuilt split {split.fingerprint} is not the run's "
                         f"{run['split_fingerprint']}")
    stored_path = run_path(out, setting, run["split_fingerprint"], run["seed"])
    with tempfile.TemporaryDirectory() as tmp:
        new = run_seeds(lambda seed: build_model(run["model"], **run["config"]), split, setting, out_dir=Path(tmp),
                        seeds=[int(run["seed"])], notebook=str(run.get("notebook") or "verify"), items=dataset.items,
                        device=resolve_device(str(run.get("device", "cpu")).split(":")[0]))[0]
        new_recs = np.load(run_path(Path(tmp), setting, run["split_fingerprint"], run["seed"]).with_suffix(".npz"))["recs"]
    old_recs = np.load(stored_path.with_suffix(".npz"))["recs"]
    if not (np.array_equal(old_recs, new_recs) and new["metrics"] == run["metrics"]):
        return False
    rec = json.loads(stored_path.read_text())
    rec["verified_code_fingerprints"] = sorted(set(rec.get("verified_code_fingerprints") or ()) | {today})
    save_run(rec, out)  # the record only: its lists stay as stored
    return True


def repair(out: Path, dataset, verified_ids: set[str], n_boot: int, cache: dict) -> int:
    """Recompute the refused rows (training code the only reason) that involve a verified setting."""
    refused = read_significance(out, "significance_refused.csv")
    if not len(refused):
        return 0
    code_only = refused["pairing"].fillna("").str.fullmatch(r"different training code: [^|]*")
    todo = refused[code_only & (refused["setting_id_a"].isin(verified_ids) | refused["setting_id_b"].isin(verified_ids))]
    rows = []
    for _, p in todo.drop_duplicates(["setting_id_a", "setting_id_b", "split_fingerprint", "family"]).iterrows():
        metrics = tuple(todo[(todo["setting_id_a"] == p["setting_id_a"]) & (todo["setting_id_b"] == p["setting_id_b"])
                             & (todo["split_fingerprint"] == p["split_fingerprint"])]["metric"])
        rows += pair_rows(out, dataset, p, metrics, n_boot=n_boot, cache=cache, family=p["family"]) or []
    if rows:
        record_significance(rows, out)
    return sum(1 for r in rows if not r["pairing"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--out", default=None, help="results folder (default: results/<dataset>)")
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--split-fingerprint", default=None, help="only runs on this split (test sample)")
    ap.add_argument("--neural", action="store_true", help="also recompute runs with a training history")
    ap.add_argument("--repair", action="store_true", help="re-pair refused comparisons of verified runs")
    ap.add_argument("--n-boot", type=int, default=10_000, help="bootstrap resamples of re-paired comparisons")
    args = ap.parse_args(argv)
    out = results_dir(args.dataset, args.out)
    dataset = load_dataset(args.dataset)
    cache, verified_ids, differ = {}, set(), []
    runs = [r for r in load_runs(out) if r.get("model") in args.models
            and (args.split_fingerprint is None or r.get("split_fingerprint") == args.split_fingerprint)
            and (args.neural or not r.get("history"))]
    for r in runs:
        ok = verify(r, dataset, out, cache)
        name = f"{r['model']} {r.get('variant') or ''} seed {r['seed']} ({r['split_fingerprint']})"
        print(f"{name}: " + {None: "already verified", True: "same lists: verified", False: "DIFFERENT lists"}[ok],
              flush=True)
        if ok is False:
            differ.append(name)
        else:
            verified_ids.add(r["setting_id"])
    if args.repair:
        print(f"re-paired {repair(out, dataset, verified_ids, args.n_boot, cache)} comparison row(s)")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
