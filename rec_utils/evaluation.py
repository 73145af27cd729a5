"""Run a model over seeds on a split, evaluate it with the twelve metrics, store every run.

The one entry point notebooks use::

    setting = Setting.of("V-SKNN", split, preset="beauty")
    runs = run_seeds(lambda seed: build_model("V-SKNN", **setting.config, seed=seed), split, setting,
                     out_dir=OUT, seeds=[0, 1, 2], notebook="01_baselines")
    results.record(runs, OUT)   # mean ± sd row (+ best-of-n-on-test row) in summary.csv

A run already on disk for the same setting, split fingerprint and seed is loaded instead of
recomputed (unless the code's defaults changed since: see :func:`run_seeds`), so an
interrupted batch resumes where it stopped. An ad-hoc run (results in a scratch folder) also
copies such runs from the study's folder (``reuse_from``) rather than training them again. A split without evaluation cases is an error that
says which step of the protocol dropped the sessions (:meth:`Split.require_cases`).
"""
from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .metrics import evaluate
from .models.base import Recommender
from .provenance import code_fingerprint
from .results import load_run, run_path, save_run
from .setting import Setting
from .split import Split
from .utils import atomic_write_bytes, device_description, git_commit, seed_everything


def evaluate_recs(recs: np.ndarray, split: Split, skip_empty: bool = False) -> dict:
    """The twelve metrics of top-k lists on the split's evaluation cases (an error when it has none)."""
    split.require_cases()
    return evaluate(recs, split.test.targets, split.item_counts, split.n_items, skip_empty=skip_empty,
                    catalog=split.catalog)


def fit_predict_evaluate(model: Recommender, split: Split, *, items: pd.DataFrame | None = None,
                         k: int = 20, skip_empty: bool = False) -> dict:
    """The one fit → predict → evaluate step (used by :func:`run_seeds`, the grid and the tuner).

    Returns ``{"metrics": {...12 metrics, n_sessions, n_empty}, "recs": (n, k) ids, "scores":
    (n, k) float32, "fit_s", "predict_s", "wall_s"}`` (seconds, rounded to ms).
    """
    t0 = time.perf_counter()
    model.fit(split.train, items=items)
    t_fit = time.perf_counter() - t0
    recs, scores = model.predict(split.test, k=k, return_scores=True)
    t_all = time.perf_counter() - t0
    return {"metrics": evaluate_recs(recs, split, skip_empty=skip_empty), "recs": recs, "scores": scores,
            "fit_s": round(t_fit, 3), "predict_s": round(t_all - t_fit, 3), "wall_s": round(t_all, 3)}


def run_seeds(
    make_model: Callable[[int], Recommender],
    split: Split,
    setting: Setting,
    *,
    out_dir: str | Path,
    seeds: Sequence[int] = (0,),
    notebook: str = "",
    items: pd.DataFrame | None = None,
    k: int = 20,
    resume: bool = True,
    skip_empty: bool = False,
    device: str = "cpu",
    reuse_from: str | Path | None = None,
) -> list[dict]:
    """Fit, predict and evaluate ``make_model(seed)`` for every seed; returns the run records.

    Args:
        make_model: builds an unfitted model for a seed (from ``setting.config``).
        setting: what the run is (:class:`~rec_utils.setting.Setting`); it must describe ``split``
            (protocol, dataset, tie order, samples), which is checked.
        notebook: the notebook (or script) that made the run, recorded as provenance only.
        items: item metadata passed to ``fit`` (models that use item text need it).
        device: where the model runs (recorded with the result).
        reuse_from: another results folder (an ad-hoc run's: the study's ``results/<dataset>``,
            see :func:`rec_utils.results.output_dirs`) whose stored run of the same setting, split
            fingerprint and seed is copied into ``out_dir`` instead of being recomputed, on the
            same conditions as a run of ``out_dir`` itself. It is only read, never written.

    Raises:
        EmptyEvaluationError: the split has no evaluation case (the message says why).
    """
    out_dir = Path(out_dir)
    if reuse_from is not None and Path(reuse_from).resolve() == out_dir.resolve():
        reuse_from = None  # the folder's own runs are resumed anyway
    split.require_cases()
    setting.matches(split)
    runs = []
    for seed in tqdm(list(seeds), desc=f"{setting.model} seeds", leave=False, disable=len(seeds) < 2):
        old = None
        if resume:
            old = _stored_run(make_model, setting, split.fingerprint, seed, out_dir=out_dir, reuse_from=reuse_from,
                              k=k, skip_empty=skip_empty, items=items)
        if old is not None:  # presented with this call's label (label_fields are not in the id)
            runs.append({**old, "variant": setting.label, "setting": setting.to_dict()})
            continue
        seed_everything(seed)
        model = make_model(seed)  # built again after seeding, as a fresh run builds it
        inputs = model.input_fingerprint(items)
        out = fit_predict_evaluate(model, split, items=items, k=k, skip_empty=skip_empty)
        record = _run_record(model, out, split, setting, seed, inputs=inputs, notebook=notebook, k=k,
                             skip_empty=skip_empty, device=device)
        save_run(record, out_dir, recs=out["recs"], scores=out["scores"], session_ids=split.test.session_ids)
        runs.append(record)
    return runs


def _stored_run(make_model, setting: Setting, fingerprint: str, seed: int, *, out_dir: Path,
                reuse_from: Path | None, **expect) -> dict | None:
    """The stored run of (setting, split, seed) that can stand for a new one (:func:`_reusable`):
    ``out_dir``'s own, else one of ``reuse_from`` (copied into ``out_dir``; ``reuse_from`` is
    only read); None when there is none."""
    path = run_path(out_dir, setting, fingerprint, seed)
    if path.is_file():
        return _reusable(path, make_model, seed, **expect)
    if reuse_from is None:
        return None
    source = run_path(reuse_from, setting, fingerprint, seed)
    if source.is_file() and (old := _reusable(source, make_model, seed, **expect)) is not None:
        _copy_run(source, path)
        return old
    return None


def _run_record(model: Recommender, out: dict, split: Split, setting: Setting, seed: int, *, inputs: dict,
                notebook: str, k: int, skip_empty: bool, device: str) -> dict:
    """The stored record of a fresh run: what it is (setting, split, seed, resolved config and
    inputs), its metrics and times (``out`` of :func:`fit_predict_evaluate`) and its provenance."""
    return {
        "dataset": split.info.get("dataset"),
        "notebook": notebook,
        "model": setting.model,
        "variant": setting.label,
        "protocol": split.protocol,
        "seed": int(seed),
        "setting": setting.to_dict(),
        "setting_id": setting.id,
        "config": setting.config,
        "resolved_config": resolved_config(model),
        "inputs": inputs,
        "evaluation": {"k": k, "skip_empty": skip_empty},
        "metrics": out["metrics"],
        "n_test_sessions": len(split.test),
        "split_fingerprint": split.fingerprint,
        "split_info": split.info,
        "git_commit": git_commit(),
        "code_fingerprint": code_fingerprint(),
        "fit_s": out["fit_s"],
        "predict_s": out["predict_s"],
        "wall_s": out["wall_s"],
        "device": device_description(device),
        "cpu_threads": cpu_threads(),
        "fit_info": getattr(model, "fit_info_", None),
        "history": getattr(model, "history_", None),
    }


def cpu_threads() -> int | None:
    """torch's intra-op CPU threads when torch is loaded (else None). Recorded in every run: a
    neural model trained on the CPU is bit-for-bit reproducible at the same thread count, and its
    floating-point sums (hence its numbers) differ at another one."""
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else None


def _reusable(path: Path, make_model: Callable[[int], Recommender], seed: int, *, k: int = 20,
              skip_empty: bool = False, items: pd.DataFrame | None = None) -> dict | None:
    """The stored run at ``path`` when it can stand for a new run of ``make_model(seed)``: the
    setting holds the *given* config; the resolved one (with the code's defaults) is stored
    too, so a changed default cannot reuse a stale run; the content of what the model reads
    besides train and config (:meth:`Recommender.input_fingerprint`: the item vectors of the
    text-based models) must be the same, and so must the evaluation (``k``, ``skip_empty``).
    Otherwise a warning says what differs, and it reruns."""
    old = load_run(path)
    if old is None:
        return None
    current = make_model(seed)
    changed = _changed_fields(old.get("resolved_config"), resolved_config(current),
                              getattr(current, "rerun_if_missing", ()))
    inputs = current.input_fingerprint(items)
    changed += [f"input {name}" for name, value in inputs.items() if (old.get("inputs") or {}).get(name) != value]
    evaluation = old.get("evaluation") or {"k": 20, "skip_empty": False}  # runs before the field: the defaults
    changed += [f"evaluation {name}" for name, value in (("k", k), ("skip_empty", skip_empty))
                if evaluation.get(name) != value]
    if changed:
        warnings.warn(f"{path}: stored run made with other values of {changed}; it is run again", stacklevel=3)
        return None
    return old


def _copy_run(source: Path, target: Path) -> None:
    """Copy a stored run (its JSON and, when there, its top-k NPZ) byte for byte."""
    npz = source.with_suffix(".npz")
    if npz.is_file():
        atomic_write_bytes(target.with_suffix(".npz"), npz.read_bytes())
    atomic_write_bytes(target, source.read_bytes())


def resolved_config(model: Recommender) -> dict:
    """Every config field of ``model``, defaults included, as stored with a run (JSON types)."""
    return json.loads(json.dumps(model.get_config(), sort_keys=True, default=str))


def _changed_fields(stored: dict | None, current: dict, rerun_if_missing=()) -> list[str]:
    """Fields whose stored resolved value differs from the current one. Fields known to both
    count; a field added later defaults to the old behaviour by convention and is ignored,
    except those of ``rerun_if_missing`` (added with a change of results, e.g. the tie rule).
    Runs stored before resolved configs were recorded have none and are accepted, unless the
    model has ``rerun_if_missing`` fields (those runs predate them too)."""
    if stored is None:
        return sorted(k for k in rerun_if_missing if k in current)
    changed = {k for k in set(stored) & set(current) if stored[k] != current[k]}
    changed |= {k for k in rerun_if_missing if k in current and k not in stored}
    return sorted(changed)


def runs_table(runs: list[dict]) -> pd.DataFrame:
    """One row per run with its seed, wall time and metrics (for display in notebooks)."""
    return pd.DataFrame(
        [{"model": r["model"], "variant": r.get("variant", ""), "seed": r["seed"],
          "wall_s": r["wall_s"], **{k: v for k, v in r["metrics"].items()}} for r in runs]
    )
