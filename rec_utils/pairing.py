"""Whether two sets of stored runs may be compared as a pair (issue 22): the rules
:func:`rec_utils.significance.compare_runs` applies to every row and
:mod:`rec_utils.llm2_comparison` to its arms.

:func:`pairing_problems` lists every reason why the runs of side A and side B do not pair (an
empty list: they pair):

* the same split (fingerprint), dataset, protocol, tie order and samples;
* the same **device** string for every run of both sides, and on a CPU the same recorded torch
  **thread count** of the torch-trained runs when both sides have such runs (CPU-trained numbers
  differ across thread counts; a run without the record cannot be checked and is refused; a
  deterministic side such as MostPopular does not depend on it);
* the same **code**: every run of both sides has the same code fingerprint
  (:func:`rec_utils.provenance.run_code_fingerprint`: the hash of the training path's files,
  recorded with the run or derived from a clean ``git_commit``). So runs of different commits pair
  when those commits hold the same training code, and a ``-dirty`` or ``unknown`` commit without a
  recorded fingerprint pairs with nothing (its code is not known). A stored run recomputed under
  later code with the same lists (``scripts/verify_stored_runs.py``) also holds for that code
  (:func:`rec_utils.provenance.run_code_fingerprints`): the sides pair when one fingerprint holds
  for every run;
* for two **LLMSeqPrompt** sides (two configurations of it) also the same LLM code
  (:func:`rec_utils.provenance.run_llm_code_fingerprint`: ``rec_utils/llm``, prompts to output
  mapping, from each run's clean commit; a dirty or unknown commit pairs with nothing); against
  another model it is part of one side's model, not checked (so seeds of one side against a
  baseline are not checked for the same LLM code either);
* the same **precision** used (where recorded);
* with ``check_settings`` (two arms of one model): resolved configs that differ only in the
  fields under test (:data:`TESTED_FIELDS`: the init, the embedding, and the issue-23 variants'
  item table and training objective) and — when both sides were selected by searches of the
  **same budget** (equal ``selected_by``) — in the searched hyper-parameters; the stopping rule,
  ``max_len`` and ``precision`` (:data:`FIXED_FIELDS`) never;
* no **failed run** (:func:`failed_run`): a neural run whose best validation epoch is its first
  and that stopped by early stopping is a collapsed control, not a baseline.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from .provenance import run_code_fingerprint, run_code_fingerprints, run_llm_code_fingerprint

#: Config fields that are what the comparison tests (may differ between arms).
TESTED_FIELDS = frozenset({"init", "permutation_seed", "embedding", "provider", "embedding_model", "reduction",
                           "reduced_dim", "lda_labels", "normalize", "whiten", "text_clean", "path",
                           "init_scale", "reduce_on", "pad_dims",
                           # the issue-23 variants (notebook 12): frozen-text tables and training objectives
                           "item_table", "offset_radius", "offset_bound", "loss", "n_negatives", "negatives",
                           "logq", "gbce_t", "negative_sharing"})
#: Fields that are never tuned and must be equal (stopping rule, input length, precision).
FIXED_FIELDS = ("epochs", "patience", "val_frac", "val_max_sessions", "time_budget_s", "max_len", "precision")
#: Setting fields that must be equal (what the runs were evaluated on).
SPLIT_FIELDS = ("dataset", "protocol", "tie_order", "tie_seed", "test_sample", "test_sample_seed", "train_sample",
                "train_sample_seed")


class PairingRefused(ValueError):
    """Two arms that do not pair (device, code, threads, settings or a failed run differ); the
    message lists every reason."""


def run_name(record: dict) -> str:
    """A run's model with its arm, as the reasons name it: ``LLM2SASRec (init=random)`` for an
    LLM2 arm (its ``init``: ``random`` is the base), the bare model name for any other run."""
    init = (record.get("resolved_config") or record.get("config") or {}).get("init")
    return f"{record.get('model')} (init={init})" if init else str(record.get("model"))


def failed_run(record: dict) -> str | None:
    """Why a neural run is a failed run (None when it is not): it stopped by early stopping with
    its best validation epoch the first one (the model never improved on its first epoch: a
    collapsed control, e.g. the 1-copy BERT4Rec base at MostPopular level)."""
    info = record.get("fit_info") or {}
    if info.get("stopped_by") == "early_stopping" and info.get("best_epoch") == 1:
        return (f"{run_name(record)} seed {record.get('seed')} stopped at its first epoch "
                f"(best epoch 1 of {info.get('epochs_run')}): a failed run, not a baseline")
    return None


def _values(runs, get) -> list:
    return sorted({json.dumps(get(r), sort_keys=True, default=str) for r in runs})


def _commits_by(runs, fingerprints) -> dict:
    """Each run's fingerprint (None: unknown) → the set of those runs' commits."""
    out = {}
    for r, fp in zip(runs, fingerprints):
        out.setdefault(fp, set()).add(str(r.get("git_commit")))
    return out


def _listed(by_fingerprint: dict) -> str:
    return "; ".join(f"{k} (commit {', '.join(sorted(v))})" for k, v in sorted(by_fingerprint.items()))


def pairing_problems(runs_a: Sequence[dict], runs_b: Sequence[dict], *, tuned_fields: Iterable[str] = (),
                     check_failed: bool = True, check_settings: bool = True) -> list[str]:
    """Every reason why the runs of arm A and arm B do not pair (empty list: they pair). See the
    module docstring for the rules; ``tuned_fields``: the hyper-parameters both arms' searches
    chose (may differ when both arms have the same ``selected_by``). ``check_settings=False``
    skips the training-settings rule (a comparison of two different models, e.g. a hybrid and its
    component: only split, device, threads, code and failed runs are checked)."""
    runs_a, runs_b = list(runs_a), list(runs_b)
    if not runs_a or not runs_b:
        return ["an arm has no run"]
    both = runs_a + runs_b
    problems = []
    for f in ("split_fingerprint",):
        vals = _values(both, lambda r: r.get(f))
        if len(vals) > 1:
            problems.append(f"different {f}: {', '.join(vals)}")
    for f in SPLIT_FIELDS:
        vals = _values(both, lambda r: (r.get("setting") or {}).get(f))
        if len(vals) > 1:
            problems.append(f"different {f}: {', '.join(vals)}")
    devices = _values(both, lambda r: r.get("device"))
    if len(devices) > 1:
        problems.append("different devices: " + " vs ".join(d.strip('"') for d in devices))
    neural_a, neural_b = [r for r in runs_a if r.get("history")], [r for r in runs_b if r.get("history")]
    if neural_a and neural_b and all(str(r.get("device", "")).startswith("cpu") for r in neural_a + neural_b):
        # only when both sides are torch-trained: a deterministic side (MostPopular) does not depend on threads
        threads = _values(neural_a + neural_b, lambda r: r.get("cpu_threads"))
        if "null" in threads:
            problems.append("CPU thread count not recorded for some runs (numbers depend on it; cannot verify)")
        elif len(threads) > 1:
            problems.append(f"different CPU thread counts: {', '.join(threads)}")
    fps = _commits_by(both, [run_code_fingerprint(r) for r in both])
    if None in fps:
        problems.append(f"code unknown for runs of commit(s) {', '.join(sorted(fps[None]))} (dirty or unknown, "
                        "no recorded code fingerprint)")
    # no training code that every run holds for (its own or one it was verified under)
    elif not frozenset.intersection(*(run_code_fingerprints(r) for r in both)):
        problems.append("different training code: " + _listed(fps))
    llm_a = [r for r in runs_a if r.get("model") == "LLMSeqPrompt"]
    llm_b = [r for r in runs_b if r.get("model") == "LLMSeqPrompt"]
    if llm_a and llm_b:  # two LLMSeqPrompt configurations: their LLM code must be the same too
        lfps = _commits_by(llm_a + llm_b, [run_llm_code_fingerprint(r) for r in llm_a + llm_b])
        if None in lfps:
            problems.append(f"LLM code unknown for runs of commit(s) {', '.join(sorted(lfps.pop(None)))}")
        if len(lfps) > 1:
            problems.append("different LLM code: " + _listed(lfps))
    used = [u for u in _values(both, lambda r: (r.get("fit_info") or {}).get("precision_used")) if u != "null"]
    if len(used) > 1:
        problems.append(f"different precision used: {', '.join(used)}")
    if check_settings:
        problems += _settings_problems(both, tuned_fields)
    if check_failed:
        problems += [p for r in both if (p := failed_run(r))]
    return problems


def _searched_fields(runs) -> set[str]:
    """The §7 hyper-parameters of the runs' base models (what an equal-budget search chooses)."""
    from .models.llm2 import LLM2_BASES
    from .models.presets import PAPER_TUNED

    return {f for r in runs for f in PAPER_TUNED.get(LLM2_BASES.get(r.get("model"), r.get("model")), ())}


def _settings_problems(both: list[dict], tuned_fields) -> list[str]:
    problems = []
    sel = _values(both, lambda r: (r.get("setting") or {}).get("selected_by"))
    exempt = set(TESTED_FIELDS)
    if len(sel) == 1 and sel[0] != "null":
        exempt |= set(tuned_fields or _searched_fields(both))
    elif len(sel) > 1:
        problems.append("arms selected differently (tuning budgets differ): " + " vs ".join(sel))
    exempt -= set(FIXED_FIELDS)
    configs = [r.get("resolved_config") or r.get("config") or {} for r in both]
    keys = set().union(*configs) - {"seed"}
    for k in sorted(keys):
        vals = {json.dumps(c.get(k), sort_keys=True, default=str) for c in configs}
        if len(vals) > 1 and k not in exempt:
            problems.append(f"training setting {k} differs: {', '.join(sorted(vals))}")
    return problems


def check_pair(runs_a, runs_b, **kwargs) -> None:
    """Raise :class:`PairingRefused` listing :func:`pairing_problems` when there are any."""
    problems = pairing_problems(runs_a, runs_b, **kwargs)
    if problems:
        a, b = runs_a[0] if runs_a else {}, runs_b[0] if runs_b else {}
        raise PairingRefused(f"{a.get('model')} ({a.get('variant') or 'standard'}) vs {b.get('model')} "
                             f"({b.get('variant') or 'standard'}) do not pair: " + "; ".join(problems))


__all__ = ["FIXED_FIELDS", "PairingRefused", "SPLIT_FIELDS", "TESTED_FIELDS", "check_pair", "failed_run",
           "pairing_problems"]
