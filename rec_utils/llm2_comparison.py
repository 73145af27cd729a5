"""Does LLM initialisation help? The paired comparison of an LLM2 model with its base that cannot
be unfair by accident (paper §6.3, §9.2; issue 22).

One entry trains, for a model, protocol and dataset, the **base** (``init="random"``: the LLM2
model with its table left at the base's own random initialisation, which is exactly the base
model) and each **LLM init arm** (``"llm"``, ``"permuted"``) on the same split, in one process
(same device, thread count and code), each with its own configuration (a preset, or its own TPE
optimum of a search of the same size: :func:`tune_arm`) and the same stopping rule, seed by seed,
and stores the runs under the content-keyed run store (:mod:`rec_utils.results`), so an
interrupted batch resumes and a later session continues it::

    arms = {init: arm_setting("LLM2SASRec", init, split, num_threads=1) for init in ("random", "llm")}
    runs = run_arms(arms, split, out_dir=OUT, seeds=range(5), items=dataset.items)
    rows = compare_arms(arms, runs, split, out_dir=OUT)   # significance rows; unlike pairs marked
    record_significance(rows, OUT)                        # marked pairs go to significance_refused.csv

    doc = tune_arm("LLM2SASRec", "random", tag="t20", n_trials=20, n_startup=10)   # equal tuning, per arm
    arm = tuned_arm_setting("LLM2SASRec", "random", split, tag="t20", root=OUT, num_threads=1)

**What pairs**: :mod:`rec_utils.pairing` (device, thread count, training code — so runs of
several commits pair when those commits hold the same training code, and a dirty or unknown commit
without a recorded code fingerprint pairs with nothing —, precision, every training setting but
the init and, for arms tuned with the same budget, the searched hyper-parameters; no failed run).
A pair that does not pair is refused (``pairing="refuse"``: :class:`PairingRefused`) or marked
with its reasons (``"mark"``) and kept out of significance.csv; never silent.

The issue-23 variants (whitening, variance selection, frozen table + adapter / bounded offset,
mpnet, sampled objectives; :data:`rec_utils.models.llm2.LLM2_VARIANTS`) go through the same
machinery: :func:`variant_arms` (base + one arm per variant), :func:`run_arms`,
:func:`compare_variants` (each vs the base, ``llm+X`` vs ``base+X``; family ``llm2-variants``).

Deviations: the base arm is the LLM2 model with ``init="random"`` (tested weight for weight equal to
the base model), not the base model's own stored runs (those came partly from a GPU of unknown
commit). Every arm's search uses the base model's §7 space (the LLM arm's reduction is fixed to
PCA, so the searches have the same size); the paper also searched the reduction for LLM2 models.
Statistics: :func:`rec_utils.significance.compare_runs` (per-session paired differences, sign-flip
p-value, CI that agrees with it, bootstrap CI beside it, seed-level view, Holm within the table).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from .pairing import (FIXED_FIELDS, SPLIT_FIELDS, TESTED_FIELDS, PairingRefused, check_pair, failed_run,
                      pairing_problems)
from .setting import Setting

#: init of each arm; "random" is the base.
BASE_INIT = "random"
ARM_INITS = ("random", "llm", "permuted")
#: Holm family of the headline rows (LLM2 arm vs its base) and of the ablation rows (permuted).
FAIR_FAMILY = "llm2-fair"
ABLATION_FAMILY = "llm2-ablation"
#: Metrics of the headline comparison.
FAIR_METRICS = ("ndcg@10", "ndcg@20")


# ----------------------------------------------------------------------------------- settings
def arm_setting(model: str, init: str, split, *, preset: str | None = "beauty", config: Mapping | None = None,
                overrides: Mapping | None = None, num_threads: int | None = None,
                selected_by: str | None = None) -> Setting:
    """The setting of one arm of ``model`` (an LLM2 model) with ``init`` on ``split``.

    Args:
        init: ``"random"`` (the base), ``"llm"`` or ``"permuted"``.
        preset, overrides: the preset's config with ``overrides`` on top (``preset="beauty"``: the
            like-for-like configuration, the base model's optimum + PCA to its emb_dim).
        config: a full config instead (a tuned arm's, :func:`tune_arm`); ``selected_by`` names the
            search (equal for two arms tuned with the same budget).
        num_threads: torch CPU threads, part of the setting (so the pair's runs never reuse runs
            stored at another thread count, and the label says it); None: not set.

    Raises ValueError for an unknown init.
    """
    if init not in ARM_INITS:
        raise ValueError(f"init must be one of {ARM_INITS}, got {init!r}")
    over = dict(overrides or {})
    if init != "llm":
        over["init"] = init
    if num_threads is not None:
        over["num_threads"] = int(num_threads)
    if config is not None:
        full = {**dict(config), **over}
        full.pop("seed", None)
        return Setting.of(model, split, config=full, overrides=over, selected_by=selected_by)
    return Setting.of(model, split, preset=preset, overrides=over, selected_by=selected_by)


def make_model_factory(setting: Setting, *, device: str = "cpu", validation=None, checkpoint_dir=None,
                       progress: bool = False, **runtime):
    """``seed → unfitted model`` of ``setting`` (its ``num_threads`` travels in the config);
    ``runtime``: further runtime arguments (e.g. precomputed ``embeddings``)."""
    from .models import build_model

    def make(seed: int):
        return build_model(setting.model, **{**setting.config, "seed": int(seed)}, device=device,
                           checkpoint_dir=checkpoint_dir, progress=progress, validation=validation, **runtime)

    return make


def run_arms(arms: Mapping[str, Setting], split, *, out_dir: str | Path, seeds: Iterable[int], items=None,
             device: str = "cpu", validation=None, notebook: str = "05_llm2sequential",
             reuse_from: str | Path | None = None, checkpoint_dir=None, progress: bool = False,
             on_run=None, **runtime) -> dict[str, list[dict]]:
    """Train and evaluate every arm seed by seed (seed outer, arm inner: an interrupted batch
    leaves complete pairs), storing each run (:func:`rec_utils.evaluation.run_seeds`: a stored
    run of the same setting, split and seed is loaded, not retrained). ``on_run(arm, record)`` is
    called after each run; ``runtime``: passed to every model (e.g. ``embeddings``). Returns
    arm → run records sorted by seed."""
    from .evaluation import run_seeds

    out = {a: [] for a in arms}
    for seed in seeds:
        for arm, setting in arms.items():
            make = make_model_factory(setting, device=device, validation=validation,
                                      checkpoint_dir=checkpoint_dir, progress=progress, **runtime)
            run = run_seeds(make, split, setting, out_dir=out_dir, seeds=[int(seed)], items=items,
                            notebook=notebook, device=device, reuse_from=reuse_from)[0]
            out[arm].append(run)
            if on_run is not None:
                on_run(arm, run)
    return out


# ----------------------------------------------------------------------------------- equal tuning
def tuned_config_path(root: str | Path, model: str, init: str, tag: str) -> Path:
    """``<root>/configs/<model>__init-<init>__<tag>.json``: the stored, named optimum of one arm's search."""
    return Path(root) / "configs" / f"{model}__init-{init}__{tag}.json"


def budget_label(tag: str, n_trials: int) -> str:
    """``selected_by`` of an arm tuned by :func:`tune_arm`: the same for every arm of one budget."""
    return f"TPE {tag}: {int(n_trials)} trials on the validation folds"


#: What a search found: a resumed search with the same values has found nothing new.
_SEARCH_RESULT = ("study_name", "n_trials", "trial_number", "value", "config")


def tune_arm(model: str, init: str, *, tag: str, n_trials: int, n_startup: int, dataset: str = "beauty",
             preset: str = "beauty", fixed: Mapping | None = None, fold_sample_sessions: int = 0,
             fold_train_sessions: int = 0, seed: int = 0, device: str = "cpu", num_threads: int | None = 1,
             root: str | Path | None = None, space_model: str | None = None, progress: bool = False,
             tie_order: str = "shuffle", tie_seed: int = 0) -> dict:
    """The TPE search of one arm (paper §7, :func:`rec_utils.tuning.tune`: objective the mean
    validation NDCG@20 over the 3 temporal folds, pruning per fold), resumable (SQLite study under
    ``<root>/tuning/``), and its optimum stored under :func:`tuned_config_path`.

    Equal tuning: every arm of a comparison calls this with the same ``tag``, ``n_trials``,
    ``n_startup``, folds (samples), ``fixed`` fields and the same **space** — the base model's
    §7 space (``space_model``, default the base of ``model``: learning rate, weight decay,
    clipnorm, batch size, emb_dim, dropout and the model's own fields); the LLM arm's reduction is
    fixed by ``fixed``/the preset (PCA to emb_dim), so both searches have the same size. Trials
    start from the preset's like-for-like config + ``fixed`` + ``init`` (+ ``pad_dims``: emb_dim
    may exceed the embedder's size).

    Returns the stored document (``config``, ``value``, ``trial_number``, ``n_trials``,
    ``study_name``, ``selected_by``, ``wall_s`` of the search, ...). A call that resumes a
    finished search and finds nothing new returns the stored document unchanged (its commit and
    search time stay those of the search).
    """
    import time as _time

    from .models.llm2 import LLM2_BASES
    from .results import results_dir
    from .tuning.optuna_search import best_trial, n_finished, trials_table
    from .tuning.spaces import tpe_space
    from .tuning.worker import prepare_search, run_worker
    from .utils import atomic_write_text, git_commit

    if init not in ARM_INITS:
        raise ValueError(f"init must be one of {ARM_INITS}, got {init!r}")
    root = results_dir(dataset, root)
    fixed_all = {**dict(fixed or {}), "init": init, "pad_dims": True}
    search = prepare_search(dataset, model, preset=preset, fixed=fixed_all, fold_sample_sessions=fold_sample_sessions,
                            fold_train_sessions=fold_train_sessions, device=device, num_threads=num_threads,
                            tag=f"init-{init}__{tag}", tie_order=tie_order, tie_seed=tie_seed)
    space = tpe_space(space_model or LLM2_BASES.get(model, model))
    t0 = _time.perf_counter()
    study = run_worker(search, model, space=space, results_root=root, seed=seed, n_startup_trials=n_startup,
                       max_trials=n_trials, patience=None, progress=progress)
    wall = _time.perf_counter() - t0
    done = n_finished(study)
    best = best_trial(study)
    trials = trials_table(study)
    doc = {"model": model, "init": init, "tag": tag, "study_name": study.study_name, "n_trials": done,
           "budget_trials": int(n_trials), "n_startup": int(n_startup), "space": space_model or LLM2_BASES.get(model, model),
           "fold_sample_sessions": fold_sample_sessions, "fold_train_sessions": fold_train_sessions,
           "fixed": fixed_all, "trial_number": best.number, "value": best.value,
           "fold_values": best.user_attrs.get("fold_values"), "params": best.params,
           "config": best.user_attrs["config"], "selected_by": budget_label(tag, n_trials),
           "search_wall_s_this_call": round(wall, 1),
           "trial_wall_s_total": float(trials["duration_s"].fillna(0).sum()) if "duration_s" in trials else None,
           "git_commit": git_commit(), "written_utc": _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime())}
    path = tuned_config_path(root, model, init, tag)
    old = json.loads(path.read_text()) if path.is_file() else None
    same = json.loads(json.dumps({k: doc[k] for k in _SEARCH_RESULT}, sort_keys=True, default=str))
    if old and all(old.get(k) == v for k, v in same.items()):
        return old  # a resumed, already finished search: its record (commit, search time) stays as written
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n")
    (root / "tuning").mkdir(parents=True, exist_ok=True)
    trials.to_csv(root / "tuning" / f"{study.study_name}__trials.csv", index=False)
    return doc


def tuned_arm_setting(model: str, init: str, split, *, tag: str, root: str | Path, num_threads: int | None = None,
                      overrides: Mapping | None = None, search_only: Iterable[str] = ()) -> Setting:
    """The arm's setting from its stored optimum (:func:`tune_arm`): the tuned config,
    ``selected_by`` = the budget (so two arms pair only when tuned with the same budget).
    ``search_only``: fields that only budgeted the search's trials (e.g. ``epochs`` of a budgeted
    search): left out of the arm's config, so the pair trains with the model's own values (early
    stopping), never with the trials' budget.

    Raises FileNotFoundError when the arm has not been tuned with ``tag``; ValueError when its
    study holds fewer finished trials than the budget (an unfinished search is not an optimum)."""
    path = tuned_config_path(root, model, init, tag)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {model} init={init} has no TPE optimum tagged {tag!r}; run tune_arm first")
    doc = json.loads(path.read_text())
    if int(doc["n_trials"]) < int(doc["budget_trials"]):
        raise ValueError(f"{path}: the search holds {doc['n_trials']} of its {doc['budget_trials']} trials; resume it")
    config = {k: v for k, v in doc["config"].items() if k != "init" and k not in set(search_only)}
    return arm_setting(model, init, split, config=config, overrides=overrides, num_threads=num_threads,
                       selected_by=doc["selected_by"])


def arm_label(setting: Setting) -> str:
    """The row label of an arm: the setting's label, plus the search that chose its config."""
    tag = f"tuned: {setting.selected_by}" if setting.selected_by else ""
    return ",".join(x for x in (setting.label, tag) if x)


def compare_arms(arms: Mapping[str, Setting], runs: Mapping[str, list[dict]], split, *, out_dir: str | Path,
                 n_boot: int = 10_000, metrics=FAIR_METRICS, pairing: str = "mark") -> list[dict]:
    """significance.csv rows of every LLM arm against the base (family :data:`FAIR_FAMILY`) and of
    ``llm`` against ``permuted`` (:data:`ABLATION_FAMILY`), with the pairing rules of this module
    (``same_settings``); ``pairing="refuse"`` raises :class:`PairingRefused` on an unlike pair."""
    from .significance import compare_runs

    def side(arm):
        return [{**r, "variant": arm_label(arms[arm])} for r in runs[arm]]

    rows = []
    pairs = [(a, BASE_INIT, FAIR_FAMILY if a == "llm" else ABLATION_FAMILY) for a in arms if a != BASE_INIT]
    if "llm" in arms and "permuted" in arms:
        pairs.append(("llm", "permuted", ABLATION_FAMILY))
    for a, b, family in pairs:
        if BASE_INIT not in arms and b == BASE_INIT:
            continue
        rows += compare_runs(side(a), side(b), split, out_dir=out_dir, metrics=metrics, n_boot=n_boot,
                             pairing=pairing, same_settings=True, family=family)
    return rows


# ----------------------------------------------------------------------------------- issue-23 variants
#: Holm family of the variant rows (each variant vs the base; ``llm+<objective>`` vs ``base+<objective>``).
VARIANT_FAMILY = "llm2-variants"
#: Name of the base arm of a variant comparison.
VARIANT_BASE = "base"


def variant_arms(model: str, split, variants: Iterable[str], *, preset: str | None = "beauty",
                 overrides: Mapping | None = None, num_threads: int | None = None) -> dict[str, Setting]:
    """The base arm (``init="random"``, the paper's objective) and one arm per named variant of
    :data:`rec_utils.models.llm2.LLM2_VARIANTS` (its init and overrides on top of the preset's
    like-for-like config and ``overrides``), all with the same thread count: the arms of the
    issue-23 ablation (notebook 12). Raises ValueError naming an unknown variant."""
    from .models.llm2 import LLM2_VARIANTS

    variants = list(variants)
    unknown = [v for v in variants if v not in LLM2_VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; known: {sorted(LLM2_VARIANTS)}")
    over = dict(overrides or {})
    arms = {VARIANT_BASE: arm_setting(model, BASE_INIT, split, preset=preset, overrides=over, num_threads=num_threads)}
    for name in variants:
        init, extra = LLM2_VARIANTS[name]
        arms[name] = arm_setting(model, init, split, preset=preset, overrides={**over, **extra}, num_threads=num_threads)
    return arms


def variant_pairs(arms: Iterable[str]) -> list[tuple[str, str]]:
    """(A, B) pairs of a variant comparison: every variant against the base, and ``llm+X`` against
    ``base+X`` when both are arms (the text init's gain under objective X)."""
    arms = list(arms)
    pairs = [(a, VARIANT_BASE) for a in arms if a != VARIANT_BASE]
    pairs += [(a, "base+" + a[4:]) for a in arms if a.startswith("llm+") and "base+" + a[4:] in arms]
    return pairs


def compare_variants(arms: Mapping[str, Setting], runs: Mapping[str, list[dict]], split, *, out_dir: str | Path,
                     n_boot: int = 10_000, metrics=FAIR_METRICS, pairing: str = "mark") -> list[dict]:
    """significance.csv rows (family :data:`VARIANT_FAMILY`) of the pairs of :func:`variant_pairs`,
    with this module's pairing rules (``same_settings``: the arms may differ only in the tested
    fields, which include the variants' table and objective fields)."""
    from .significance import compare_runs

    def side(arm):
        return [{**r, "variant": arm_label(arms[arm])} for r in runs[arm]]

    rows = []
    for a, b in variant_pairs(arms):
        rows += compare_runs(side(a), side(b), split, out_dir=out_dir, metrics=metrics, n_boot=n_boot,
                             pairing=pairing, same_settings=True, family=VARIANT_FAMILY)
    return rows


def paper_gain(model: str, dataset: str = "beauty", metric: str = "ndcg@10") -> float:
    """The paper's relative gain of ``model`` (an LLM2 model) over its base on ``metric``: from the
    table that holds both (§9.2 for LLM2SASRec/LLM2GRU4Rec, §9.1 for LLM2BERT4Rec); NaN if none."""
    from .models.llm2 import LLM2_BASES
    from .paper import paper_results, paper_value

    for section in ("9.2", "9.1"):
        paper = paper_results(dataset, section=section)
        a, b = paper_value(paper, model, metric), paper_value(paper, LLM2_BASES.get(model, model), metric)
        if a == a and b == b and b:
            return (a - b) / b
    return float("nan")


__all__ = ["ABLATION_FAMILY", "FAIR_FAMILY", "FAIR_METRICS", "arm_label", "compare_arms", "paper_gain",
           "ARM_INITS", "BASE_INIT", "FIXED_FIELDS", "PairingRefused", "SPLIT_FIELDS", "TESTED_FIELDS", "arm_setting",
           "budget_label", "check_pair", "failed_run", "make_model_factory", "pairing_problems", "run_arms",
           "tune_arm", "tuned_arm_setting", "tuned_config_path", "VARIANT_BASE", "VARIANT_FAMILY", "compare_variants",
           "variant_arms", "variant_pairs"]
