"""One-time migration of stored results to structured run identity and content fingerprints.

Before: ``runs/<notebook>/<model>__<protocol>__<config_id>__seed<seed>.json``, keyed by the given
config (with the row label smuggled in as ``config["_variant"]``) and checked against a split
fingerprint that hashed only the train *session ids* (so changed train rows went unnoticed).
After: ``runs/<model>/<protocol>__<setting_id>__<fingerprint>__seed<seed>.json`` with the run's
:class:`~rec_utils.setting.Setting` stored as a dict and the new content fingerprint
(:attr:`rec_utils.split.Split.fingerprint`).

For every stored run the script rebuilds its split from the data in ``data/``, recomputes the
**old** fingerprint and refuses to migrate a run whose data changed since (old fingerprint
differs); derives the setting (model, config, preset, overrides, ties, ...) from the record,
checks that the label derived from it equals the stored row label, and moves the run's JSON and
NPZ to the new key (nothing is retrained, nothing is deleted: every file is moved). Then every
``*fingerprint*`` column of the CSV files under ``results/<dataset>/`` and the fold fingerprints
of grid CSVs are mapped old → new, and summary.csv rows get their ``setting_id``/``setting``.

    python scripts/migrate_run_keys.py --dry-run     # report what would change, write nothing
    python scripts/migrate_run_keys.py               # migrate

``--backfill-inputs`` (second step, after the reuse check learnt the content of the item vectors
and the evaluation's ``k``/``skip_empty``): stored runs of the text-based models (LLMSeqSim,
SKNNEmb, LLM2*) get ``inputs`` = the fingerprint of the item vectors their config gives *today*
and ``evaluation`` = the defaults they were made with (k 20, skip_empty False; a run without
the field is read as made with the defaults). Valid
only because every such committed run was made in the session that added the check, from the
same data and model files (the LLMSeqSim/SKNNEmb runs were recomputed then under the tie rule,
the LLM2 runs were new); a run whose data or model files differ must be rerun instead.

``--rekey-item-source`` (third step, when text-model runs came to be keyed by the *source* of
their item vectors, :attr:`rec_utils.text.ItemEmbeddings.source_fingerprint`, instead of the
vectors' float bits, which change with the CPU's thread count): stored text-model runs with an
``item_vectors`` input get ``item_source`` = the source fingerprint their config gives today
(``item_vectors`` stays as the record of the matrix they read); and the two grid files of notebook
04 named by the old vector hash are renamed to the source-keyed names the default plan's 04 entry
computes (the only ones of their pattern; the grid's cells are keyed by config and fold and do not
change). Valid because every such run was made with the pinned local MiniLM package and the titles
of ``data/<dataset>/items.csv``, unchanged since the first commit (``git log -- data/*/items.csv``);
runs from other providers or models not installed here are reported and left as they are (they
rerun).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from rec_utils.data import load_dataset
from rec_utils.results import RESULTS_ROOT, SUMMARY_COLUMNS, TEXT_COLUMNS, run_path
from rec_utils.setting import Setting
from rec_utils.split import make_split, temporal_folds
from rec_utils.utils import atomic_write_bytes, atomic_write_text, canonical_json

NOT_LABEL_KEYS = {"tie_order", "tie_seed", "preset", "train_sessions", "test_sessions"}
SEARCHED_MODELS = {"LLMSeqSim", "SKNNEmb"}  # notebook 04: the row without a label is the search winner
RUNTIME_KEYS = {"device"}  # left the configs (a runtime setting)


def v1_fingerprint(split) -> str:
    """The fingerprint the stored runs were made with (hashed the train session ids only)."""
    h = hashlib.sha256()
    h.update(f"{split.protocol}|{split.info.get('dataset')}|{split.info.get('tie_order')}|"
             f"{split.info.get('tie_seed')}".encode())
    for arr in (np.unique(split.train["session_id"].to_numpy()), split.test.session_ids, split.test.indptr,
                split.test.items, split.test.targets):
        h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
    return h.hexdigest()[:12]


class Splits:
    """Splits rebuilt from the data, with their old and new fingerprints (memoised)."""

    def __init__(self):
        self._data, self._splits = {}, {}
        self.fp_map: dict[str, str] = {}

    def get(self, dataset: str, protocol: str, tie_order: str, tie_seed):
        key = (dataset, protocol, tie_order, tie_seed)
        if key not in self._splits:
            if dataset not in self._data:
                self._data[dataset] = load_dataset(dataset)
            s = make_split(self._data[dataset], protocol, tie_order=tie_order, tie_seed=tie_seed or 0)
            self._splits[key] = s
            self.fp_map[v1_fingerprint(s)] = s.fingerprint
            if protocol == "temporal":
                for f in temporal_folds(s, 3):
                    self.fp_map[v1_fingerprint(f)] = f.fingerprint
        return self._splits[key]


def label_keys(variant: str) -> list[str]:
    return [p.split("=", 1)[0] for p in variant.split(",") if "=" in p]


def derive_setting(rec: dict, split) -> Setting:
    """The setting of a stored run, from its notebook's conventions at the time it was made."""
    model, variant, protocol = rec["model"], rec.get("variant") or "", rec["protocol"]
    config = {k: v for k, v in rec["config"].items() if k != "_variant" and k not in RUNTIME_KEYS}
    keys = label_keys(variant)
    preset = next((p.split("=", 1)[1] for p in variant.split(",") if p.startswith("preset=")), None)
    label_fields = []
    if variant.startswith("tie_order=") and (split.info["tie_order"], split.info["tie_seed"]) == ("shuffle", 0):
        label_fields.append("ties")  # a tie-order spread run at the default tie order
    selected_by = None
    if model in SEARCHED_MODELS:
        if preset is not None:
            label_fields.append("preset")
        else:
            selected_by = "validation grid"
    elif preset is None:
        preset = "beauty-loo" if protocol == "loo" and rec["notebook"] == "02_sequential" else "beauty"
    overrides = {k: config[k] for k in keys if k not in NOT_LABEL_KEYS and k in config}
    return Setting.of(model, split, preset=preset, overrides=overrides, config=config, selected_by=selected_by,
                      label_fields=label_fields)


def migrate(root: Path, dry_run: bool) -> int:
    splits = Splits()
    moves, problems, stats = [], [], Counter()
    for path in sorted(root.glob("*/runs/*/*.json")):
        rec = json.loads(path.read_text())
        if "setting" in rec:
            stats["already migrated"] += 1
            continue
        info = rec["split_info"]
        if any(k in info for k in ("test_sample", "train_sample", "sample_train_sessions")) or \
                rec["n_test_sessions"] != len(splits.get(rec["dataset"], rec["protocol"], info["tie_order"],
                                                         info.get("tie_seed")).test):
            problems.append(f"{path}: a sampled run; not migrated automatically")
            continue
        split = splits.get(rec["dataset"], rec["protocol"], info["tie_order"], info.get("tie_seed"))
        old_fp = v1_fingerprint(split)
        if rec["split_fingerprint"] != old_fp:
            problems.append(f"{path}: stored fingerprint {rec['split_fingerprint']} != recomputed {old_fp}: "
                            "the data changed since this run; it is left where it is")
            continue
        setting = derive_setting(rec, split)
        if setting.label != (rec.get("variant") or ""):
            problems.append(f"{path}: derived label {setting.label!r} != stored {rec.get('variant')!r}")
            continue
        new = {**rec, "setting": setting.to_dict(), "setting_id": setting.id, "config": setting.config,
               "split_fingerprint": split.fingerprint, "split_fingerprint_v1": old_fp, "variant": setting.label}
        target = run_path(root / rec["dataset"], setting, split.fingerprint, rec["seed"])
        moves.append((path, target, new))
        stats["runs to migrate"] += 1
    moves, duplicates = dedupe(moves, problems)
    stats["identical copies dropped"] = len(duplicates)
    for p in problems:
        print("PROBLEM", p)
    print(dict(stats), f"{len(problems)} problem(s)")
    print("fingerprints old -> new:", json.dumps(splits.fp_map, indent=1))
    if dry_run:
        for src, dst, _ in moves[:5]:
            print(f"  {src.relative_to(root)} -> {dst.relative_to(root)}")
        return 1 if problems else 0
    if problems:
        print("nothing written: fix the problems first")
        return 1
    for src in duplicates:
        src.with_suffix(".npz").unlink(missing_ok=True)
        src.unlink()
    for src, dst, new in moves:
        atomic_write_text(dst, json.dumps(new, indent=1, sort_keys=True))
        npz = src.with_suffix(".npz")
        if npz.is_file():
            atomic_write_bytes(dst.with_suffix(".npz"), npz.read_bytes())
            npz.unlink()
        src.unlink()
    for d in sorted(root.glob("*/runs/*"), reverse=True):
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()
    migrate_tables(root, splits.fp_map, [new for _, _, new in moves])
    return 0


def dedupe(moves: list, problems: list) -> tuple[list, list]:
    """Runs that map to one key are one computation stored twice (a tie-order spread run at the
    default ties next to the main run: the label is not part of the key any more). They are
    merged only when their metrics and top-k lists are identical (else a problem); the copy
    with the empty label is kept."""
    by_target: dict = {}
    for m in moves:
        by_target.setdefault(m[1], []).append(m)
    kept, dropped = [], []
    for target, group in by_target.items():
        group = sorted(group, key=lambda m: (m[2]["variant"] != "", m[0].name))
        first = group[0]
        for other in group[1:]:
            same = other[2]["metrics"] == first[2]["metrics"]
            a, b = first[0].with_suffix(".npz"), other[0].with_suffix(".npz")
            if same and a.is_file() and b.is_file():
                with np.load(a) as za, np.load(b) as zb:
                    same = np.array_equal(za["recs"], zb["recs"])
            if same:
                dropped.append(other[0])
                print(f"identical copy of {first[0].name}: {other[0].name} (label {other[2]['variant']!r})")
            else:
                problems.append(f"{other[0]} and {first[0]} map to {target} but differ")
        kept.append(first)
    return kept, dropped


def migrate_tables(root: Path, fp_map: dict, runs: list[dict]) -> None:
    """Map every fingerprint column of the result CSVs old -> new; give summary rows their setting."""
    by_row = {(r["notebook"], r["model"], r.get("variant") or "", r["protocol"], r["split_fingerprint_v1"]): r
              for r in runs}
    for r in runs:  # rows of merged identical copies: same setting, labelled as the row was
        if r["model"] in SEARCHED_MODELS or r["notebook"] == "01_baselines":
            spread = (r["notebook"], r["model"], "tie_order=shuffle,tie_seed=0", r["protocol"], r["split_fingerprint_v1"])
            by_row.setdefault(spread, r)
    for csv in sorted(root.glob("*/**/*.csv")):
        df = pd.read_csv(csv, dtype=TEXT_COLUMNS | {"fold_fingerprint": str, "fingerprint": str})
        cols = [c for c in df.columns if "fingerprint" in c]
        if not cols:
            continue
        if csv.name == "summary.csv":
            df["variant"] = df["variant"].fillna("")
            keys = list(zip(df["notebook"], df["model"], df["variant"], df["protocol"], df["split_fingerprint"]))
            missing = [k for k in keys if k not in by_row]
            if missing:
                raise SystemExit(f"{csv}: rows without a migrated run: {missing[:3]}")
            df["setting_id"] = [by_row[k]["setting_id"] for k in keys]
            df["setting"] = [canonical_json(by_row[k]["setting"]) for k in keys]
            df["config"] = [json.dumps(by_row[k]["config"], sort_keys=True, default=str) for k in keys]
            df = df.drop(columns=["config_id"], errors="ignore")
            df = df.reindex(columns=list(SUMMARY_COLUMNS) + [c for c in df.columns if c not in SUMMARY_COLUMNS])
        for c in cols:
            df[c] = df[c].map(lambda v: fp_map.get(v, v) if isinstance(v, str) else v)
        new_name = csv.name
        for old, new in fp_map.items():
            new_name = new_name.replace(old, new)
        atomic_write_text(csv.with_name(new_name), df.to_csv(index=False, float_format="%.6g" if csv.name == "summary.csv" else None))
        if new_name != csv.name:
            csv.unlink()
        print("migrated", csv.relative_to(root), "->", new_name)


def backfill_inputs(root: Path, dry_run: bool) -> int:
    """See the module docstring (``--backfill-inputs``)."""
    from rec_utils.models import build_model

    datasets, stats = {}, Counter()
    for path in sorted(root.glob("*/runs/*/*.json")):
        rec = json.loads(path.read_text())
        text_model = rec["model"] in ("LLMSeqSim", "SKNNEmb") or rec["model"].startswith("LLM2")
        if "inputs" in rec or not text_model:
            stats["complete or not a text model (a missing evaluation means the defaults)"] += 1
            continue
        if rec["dataset"] not in datasets:
            datasets[rec["dataset"]] = load_dataset(rec["dataset"])
        rec["inputs"] = build_model(rec["model"], **rec["config"]).input_fingerprint(datasets[rec["dataset"]].items)
        rec.setdefault("evaluation", {"k": 20, "skip_empty": False})
        stats["text-model runs given their item-vector fingerprint"] += 1
        if not dry_run:
            atomic_write_text(path, json.dumps(rec, indent=1, sort_keys=True))
    print(dict(stats))
    return 0


def rekey_item_source(root: Path, dry_run: bool) -> int:
    """See the module docstring (``--rekey-item-source``)."""
    import warnings

    from rec_utils.models import build_model

    datasets, stats = {}, Counter()
    for path in sorted(root.glob("*/runs/*/*.json")):
        rec = json.loads(path.read_text())
        inputs = rec.get("inputs") or {}
        if "item_vectors" not in inputs or "item_source" in inputs:
            stats["not a text-model run, or already keyed by source"] += 1
            continue
        if rec["dataset"] not in datasets:
            datasets[rec["dataset"]] = load_dataset(rec["dataset"])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fp = build_model(rec["model"], **rec["config"]).input_fingerprint(datasets[rec["dataset"]].items)
        except Exception as e:  # a provider or model not available here: the run reruns when asked for
            print(f"{path}: left as it is ({type(e).__name__}: {e})")
            stats["left (source not available here)"] += 1
            continue
        rec["inputs"] = {**inputs, **fp}
        stats["text-model runs keyed by the source of their vectors"] += 1
        if not dry_run:
            atomic_write_text(path, json.dumps(rec, indent=1, sort_keys=True))
    stats["04 grid files renamed"] += _rename_04_grids(root / "beauty", dry_run)
    print(dict(stats))
    return 0


def _rename_04_grids(out: Path, dry_run: bool) -> int:
    """The LLMSeqSim / SKNNEmb grid files of the default plan's 04 entry, renamed from the old
    vector hash to the source key (the notebook's own formulas, its default parameters)."""
    from rec_utils.text import EmbeddingSpec
    from rec_utils.utils import short_hash

    provider, model, cleans = "sentence-transformers", "sentence-transformers/all-MiniLM-L6-v2", ["reference", "unescape"]
    items = load_dataset("beauty").items
    embs = {c: EmbeddingSpec(provider=provider, model=model, text_clean=c).embed(items, device="cpu") for c in cleans}
    renamed = 0
    for stem, key_of in (("04_llmseqsim", lambda: short_hash(provider, model, *[embs[c].source_fingerprint for c in cleans])),
                         ("04_sknnemb", None)):
        files = sorted((out / "grid").glob(f"{stem}_all-MiniLM-L6-v2_*_*.csv"))
        if len(files) != 1:
            print(f"{stem}: {len(files)} grid files, none renamed")
            continue
        (old,) = files
        _, folds_key = old.stem.rsplit("_", 1)
        if key_of is None:  # SKNNEmb's file is keyed by the LLMSeqSim winner's cleaning (its summary row)
            s = pd.read_csv(out / "summary.csv", dtype=str, keep_default_na=False)
            (cfg,) = s.loc[(s["notebook"] == "04_llmseqsim") & (s["model"] == "LLMSeqSim") & (s["variant"] == "")
                           & (s["aggregate"] == "mean"), "config"]
            key = embs[json.loads(cfg).get("text_clean", "reference")].source_fingerprint
        else:
            key = key_of()
        new = old.with_name(f"{stem}_all-MiniLM-L6-v2_{key}_{folds_key}.csv")
        if new != old:
            print(f"{old.name} -> {new.name}")
            renamed += 1
            if not dry_run:
                old.rename(new)
    return renamed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="report only, write nothing")
    ap.add_argument("--backfill-inputs", action="store_true", help="the second step (module docstring)")
    ap.add_argument("--root", default=str(RESULTS_ROOT), help="results root (default results/)")
    ap.add_argument("--rekey-item-source", action="store_true", help="the third step (module docstring)")
    args = ap.parse_args(argv)
    if args.rekey_item_source:
        return rekey_item_source(Path(args.root), args.dry_run)
    if args.backfill_inputs:
        return backfill_inputs(Path(args.root), args.dry_run)
    return migrate(Path(args.root), args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
