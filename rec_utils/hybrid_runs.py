"""Hybrid runs of §6.6 from stored component runs: components per split (test and the 3
validation folds) through the normal runner, the hybrid grid on the folds, the winner on test.

::

    comps = [Component("lss-dr", "LLMSeqSim", preset="beauty-local", k=100), Component("llm2sas", "LLM2SASRec", seeds=(0, 1, 2))]
    lists = {c.name: component_lists(c, fold, out_dir=OUT, items=items, seed=0) for c in comps}   # per split
    table = grid_search(make_hybrid(name, fold_lists), configs, folds, out_csv=...)                # rec_utils.tuning
    runs = run_seeds(make_hybrid(name, test_lists_by_seed, ...), split, setting, ...)             # the winner on test

* :func:`component_lists` runs a component through :func:`rec_utils.evaluation.run_seeds` (a
  stored run of the same setting, split and seed is loaded, else it is trained and stored) and
  reads its top-k lists from the run's ``.npz``. A hybrid that needs more than the stored 20
  items (LLMSeqSim&Popularity's top-100) gets them from a **side file** next to the run,
  ``<run stem>.top<k>.npz`` (item ids and session ids, and the hash of the run's resolved
  config and inputs): the run itself is never rewritten, and a side file whose hash does not
  match the run is recomputed. Deviation: where today's rebuild of the component ranks near-ties
  differently from its stored run (text models' item vectors re-embedded on another CPU differ in
  their last float bits), the long lists keep the stored run's top-20 and take the rest from the
  rebuild (:func:`keep_stored_prefix`, with a warning), so the hybrid combines what the
  component's reported run ranked.
* :func:`hybrid_configs` expands the paper's grid (each hybrid's ``GRID``,
  :class:`~rec_utils.models.hybrids.Hybrid`) over the component choices (its ``component_pairs``); every config names its components with their config hashes, so a
  changed component makes other grid cells and another test setting.
* :func:`popularity_bands` explains LLMSeqSim&Sequential: per band of the last prompt item's
  popularity, how many sessions and each component's (and the hybrid's) NDCG@20 / HR@20.
"""
from __future__ import annotations

import io
import itertools
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .evaluation import _changed_fields, resolved_config, run_seeds
from .models import HYBRIDS, build_model, model_family, preset_config
from .models.hybrids import ComponentLists, popularity_of, popularity_threshold, session_popularity
from .results import record, run_path
from .setting import Setting
from .significance import compare_settings, per_session
from .utils import atomic_write_bytes, short_hash


@dataclass
class Component:
    """A component model of a hybrid: ``name`` (how hybrid configs refer to it), the model, its
    configuration (``preset`` and ``config`` on top, or a searched ``config`` with
    ``selected_by``), the seeds it has on test (the folds use the first) and the list length
    ``k`` the hybrids need (20, or 100 for LLMSeqSim&Popularity)."""

    name: str
    model: str
    preset: str | None = "beauty"
    config: dict = field(default_factory=dict)
    selected_by: str | None = None
    seeds: tuple = (0,)
    k: int = 20

    def setting(self, split) -> Setting:
        if self.selected_by:
            return Setting.of(self.model, split, config=dict(self.config), selected_by=self.selected_by)
        config = {**preset_config(self.model, self.preset), **self.config}
        return Setting.of(self.model, split, preset=self.preset, overrides=dict(self.config), config=config)

    @property
    def config_id(self) -> str:
        """Hash of what the component computes apart from the split (model, preset, config)."""
        return short_hash(self.model, self.preset or "", self.selected_by or "", sorted(self.config.items()))

    def seed_for(self, hybrid_seed: int) -> int:
        """The component seed paired with a hybrid seed: the same seed where the component has
        it, else its first (deterministic components have one)."""
        return int(hybrid_seed) if int(hybrid_seed) in self.seeds else int(self.seeds[0])


def runtime_args(model: str, *, device: str = "cpu", num_threads: int | None = None,
                 checkpoint_dir=None, progress: bool = False) -> dict:
    """The runtime (non-config) arguments a model takes: device etc. for neural and text models."""
    family = model_family(model)
    if family == "neural":
        return {"device": device, "num_threads": num_threads, "checkpoint_dir": checkpoint_dir, "progress": progress}
    if family == "embedding":
        return {"device": device}
    return {}


def component_lists(comp: Component, split, *, out_dir: str | Path, items: pd.DataFrame | None, seed: int = 0,
                    reuse_from: str | Path | None = None, notebook: str = "07_hybrids", device: str = "cpu",
                    **runtime) -> ComponentLists:
    """The component's top-``comp.k`` lists on ``split`` for ``seed`` (see the module docstring):
    its run is loaded or made by ``run_seeds`` (stored under ``out_dir``); lists longer than the
    run's come from (or go to) the run's side file. The hybrid's own input fingerprint is the
    hash of the lists it combined, so its run stays keyed by what it used."""
    setting = comp.setting(split)
    rt = runtime_args(comp.model, device=device, **runtime)
    make = lambda s: build_model(comp.model, **{**setting.config, "seed": s}, **rt)
    path = run_path(Path(out_dir), setting, split.fingerprint, seed)
    run = run_seeds(make, split, setting, out_dir=out_dir, seeds=[seed], items=items, notebook=notebook,
                    device=device, reuse_from=reuse_from)[0]
    with np.load(path.with_suffix(".npz")) as z:
        sid, recs = z["session_ids"], z["recs"]
        scores = z["scores"] if "scores" in z else None
    if comp.k <= recs.shape[1]:
        return ComponentLists(sid, recs[:, :comp.k], None if scores is None else scores[:, :comp.k],
                              source=str(path))
    side = path.with_name(f"{path.stem}.top{comp.k}.npz")
    key = short_hash(run.get("resolved_config"), run.get("inputs"), run["setting_id"], split.fingerprint, comp.k)
    # the run's top-20 scores, NaN beyond (a NaN ends the confidence prefix, which the cut to 20 ends anyway)
    long_scores = None if scores is None else np.pad(scores, ((0, 0), (0, comp.k - scores.shape[1])),
                                                     constant_values=np.nan)
    if side.is_file():
        with np.load(side) as z:
            if str(z["key"]) == key and np.array_equal(z["session_ids"], sid):
                return ComponentLists(z["session_ids"], z["recs"], long_scores, source=str(side))
    model = make(seed)
    model.fit(split.train, items=items)
    long = model.predict(split.test, k=comp.k)
    if _changed_fields(run.get("resolved_config"), resolved_config(model)):  # fields added later: ignored
        raise RuntimeError(f"{side}: the model rebuilt for the top-{comp.k} lists differs from its run {path}")
    if long.shape != (recs.shape[0], comp.k):
        raise RuntimeError(f"{side}: the rebuilt model returned lists of shape {long.shape}, expected "
                           f"({recs.shape[0]}, {comp.k})")
    differs = ~np.all(long[:, :recs.shape[1]] == recs, axis=1)
    if differs.any():  # today's item vectors differ in their last float bits from the run's (another CPU)
        long = keep_stored_prefix(recs, long)
        warnings.warn(f"{side}: the rebuilt model's top-{recs.shape[1]} differs from the stored run in "
                      f"{int(differs.sum())} of {len(differs)} sessions (float noise of re-embedded item "
                      f"vectors reorders near-ties); the lists keep the stored top-{recs.shape[1]} and take "
                      f"positions {recs.shape[1] + 1}-{comp.k} from the rebuild", stacklevel=2)
    buf = io.BytesIO()
    dtype = np.int16 if long.max(initial=0) < 2**15 else np.int32
    if not np.array_equal(np.asarray(split.test.session_ids, np.int64), sid):
        raise RuntimeError(f"{path}: stored lists are not in the split's session order")
    np.savez_compressed(buf, recs=long.astype(dtype), session_ids=np.asarray(split.test.session_ids, np.int64),
                        key=np.array(key))
    atomic_write_bytes(side, buf.getvalue())
    return ComponentLists(split.test.session_ids, long, long_scores, source=str(side))


def keep_stored_prefix(stored: np.ndarray, rebuilt: np.ndarray) -> np.ndarray:
    """Lists of ``rebuilt``'s length (sessions × k item ids, -1 padding) that start with
    ``stored`` (sessions × m, m <= k: the stored run's top-m, exactly) and go on with ``rebuilt``'s
    items in its order, skipping those already in the prefix. Where a rebuild's top-m matches the
    stored run's, this is the rebuild itself."""
    out = np.full_like(rebuilt, -1)
    m = stored.shape[1]
    out[:, :m] = stored
    for i in range(len(rebuilt)):  # once per stored run and k (cached in the side file): sessions, not items
        seen = set(stored[i][stored[i] >= 0].tolist())
        tail = [x for x in rebuilt[i].tolist() if x >= 0 and x not in seen][:rebuilt.shape[1] - m]
        out[i, m:m + len(tail)] = tail
    return out


def hybrid_configs(hybrid: str, components: dict[str, Component], *, llmseqsim: Sequence[str],
                   sequential: Sequence[str] = (), methods: Sequence[str] | None = None,
                   grid: dict | None = None, popularity_source: str = "train") -> list[dict]:
    """The hybrid's search space: its paper grid (the class's ``GRID``; ``grid``
    {(hybrid, method): {field: values}} replaces a method's) for every component choice of the
    class's ``component_pairs`` — EmbeddingEnsemble: every ordered pair of distinct ``llmseqsim``
    variants; LLMSeqSim&Sequential: every (LLMSeqSim, sequential) pair; LLMSeqSim&Popularity:
    every ``llmseqsim`` variant."""
    if hybrid not in HYBRIDS:
        raise ValueError(f"unknown hybrid {hybrid!r}; known: {sorted(HYBRIDS)}")
    missing = [n for n in [*llmseqsim, *sequential] if n not in components]
    if missing:
        raise ValueError(f"hybrid components {missing} are not defined; defined: {sorted(components)}")
    cls = HYBRIDS[hybrid]
    grid = {**cls.GRID, **{m: space for (h, m), space in (grid or {}).items() if h == hybrid}}
    pairs = cls.component_pairs(llmseqsim, sequential)
    out = []
    for method in methods or list(grid):
        space = grid.get(method)
        if space is None:
            raise ValueError(f"no grid for {hybrid} method {method!r}")
        keys = list(space)
        for m1, m2 in pairs:
            used = {n: {"model": components[n].model, "config_id": components[n].config_id} for n in (m1, m2) if n}
            for values in itertools.product(*(space[k] for k in keys)):
                cfg = {"method": method, "model_1": m1, "model_2": m2, **dict(zip(keys, values)), "components": used}
                if "quantile" in cfg:
                    cfg["popularity_source"] = popularity_source
                out.append(cfg)
    return out


def make_hybrid(hybrid: str, lists, *, dataset_interactions=None, item_vectors: dict | None = None):
    """``make(config)`` for the grid (``lists``: name → ComponentLists) or ``make(seed)`` style
    via :func:`functools.partial`; ``item_vectors``: LLMSeqSim component name → raw ItemEmbeddings
    (the diversity re-ranker uses model 1's)."""
    def make(config: dict):
        vecs = (item_vectors or {}).get(config.get("model_1"))
        return HYBRIDS[hybrid](lists, dataset_interactions=dataset_interactions, item_vectors=vecs, **config)
    return make


def run_hybrid(hybrid: str, config: dict, split, test_lists: dict, *, out_dir: str | Path, seeds: Sequence[int],
               notebook: str = "07_hybrids", overrides: dict | None = None, dataset_interactions=None,
               item_vectors: dict | None = None) -> tuple[Setting, list[dict]]:
    """Run a hybrid configuration (``config`` with ``overrides`` on top, labelled by them) on the
    test ``split`` for every seed over ``test_lists`` (seed → component name → ComponentLists),
    store its runs and summary row under ``out_dir``; returns its setting and runs.
    ``dataset_interactions`` are used only when the config counts popularity over the dataset."""
    config = {**config, **(overrides or {})}
    setting = Setting.of(hybrid, split, config=config, overrides=overrides, selected_by="validation grid")
    inter = dataset_interactions if config.get("popularity_source") == "dataset" else None
    make = lambda seed: make_hybrid(hybrid, test_lists[seed], dataset_interactions=inter,
                                    item_vectors=item_vectors)({**config, "seed": seed})
    runs = run_seeds(make, split, setting, out_dir=out_dir, seeds=seeds, notebook=notebook, device="cpu")
    record(runs, Path(out_dir))
    return setting, runs


def run_winners(winners: dict, tables: dict, split, test_lists: dict, components: dict[str, Component], *,
                out_dir: str | Path, seeds: Sequence[int], notebook: str = "07_hybrids", dataset_interactions=None,
                item_vectors: dict | None = None, n_boot: int = 10_000, faithful_popularity: bool = True,
                sequential: Sequence[str] = (), per_sequential: bool = True) -> tuple[dict, dict, list[dict]]:
    """Notebook 07's test step: each hybrid's validation winner (``winners``: hybrid → config,
    ``tables``: hybrid → its ranked grid table) run on test (:func:`run_hybrid`) and compared
    with each of its components (paired CI and Wilcoxon test, ``n_boot`` resamples), plus the
    labelled extra rows:

    * ``faithful_popularity``: a winner that uses popularity is run again with the reference's
      popularity over all sessions (``popularity_source="dataset"``, key ``"<hybrid> (dataset popularity)"``);
    * ``per_sequential``: a winner whose second component is one of ``sequential`` is run again
      with the best grid configuration of each other sequential component (key
      ``"<hybrid> (with <component>)"``, labelled by what differs from the winner), and compared
      with its components.

    Returns ``(settings, runs, significance rows)``, the first two keyed as above."""
    settings, runs, sig = {}, {}, []
    common = dict(out_dir=out_dir, seeds=seeds, notebook=notebook, dataset_interactions=dataset_interactions,
                  item_vectors=item_vectors)

    def compare(setting, config):
        for name in (config["model_1"], config.get("model_2", "")):
            if name:
                sig.extend(compare_settings(setting, components[name].setting(split), split, out_dir=out_dir,
                                            n_boot=n_boot))

    for hybrid, cfg in winners.items():
        settings[hybrid], runs[hybrid] = run_hybrid(hybrid, cfg, split, test_lists, **common)
        if faithful_popularity and "popularity" in cfg["method"]:
            key = f"{hybrid} (dataset popularity)"
            settings[key], runs[key] = run_hybrid(hybrid, cfg, split, test_lists,
                                                  overrides={"popularity_source": "dataset"}, **common)
        compare(settings[hybrid], cfg)
        if per_sequential and cfg.get("model_2") in sequential:
            table = tables[hybrid]
            for seq in [n for n in sequential if n != cfg["model_2"]]:
                best = json.loads(table[table["model_2"] == seq].iloc[0]["config"])  # ranked: the first is the best
                over = {k: v for k, v in best.items() if k not in ("components", "seed") and cfg.get(k) != v}
                key = f"{hybrid} (with {seq})"
                settings[key], runs[key] = run_hybrid(hybrid, best, split, test_lists, overrides=over, **common)
                compare(settings[key], best)
    return settings, runs, sig


def popularity_bands(split, lists: dict[str, ComponentLists], popularity: pd.Series,
                     quantiles: Sequence[float] = (0.25, 0.5, 0.75), metrics=("ndcg@20", "hit_rate@20")) -> pd.DataFrame:
    """Per band of the popularity of each test prompt's last item (bands cut at the item
    popularity ``quantiles``, the hybrid's thresholds): sessions, share of sessions and the
    mean per-session metric of every given list set (a component or the hybrid) in that band.
    Which band each model wins says where LLMSeqSim&Sequential's switch gains or loses."""
    p = split.test
    last = p.items[p.indptr[1:] - 1]
    pop = np.nan_to_num(popularity_of(popularity, last), nan=0.0)
    cuts = [popularity_threshold(popularity, q) for q in quantiles]
    edges = [-np.inf, *cuts, np.inf]
    names = [f"< q{int(quantiles[0] * 100)}"] + [f"q{int(a * 100)}–q{int(b * 100)}" for a, b in
                                                  zip(quantiles[:-1], quantiles[1:])] + [f"≥ q{int(quantiles[-1] * 100)}"]
    band = np.searchsorted(np.asarray(cuts), pop, side="right")  # ≥ threshold goes up (the switch's rule)
    rows = []
    values = {}
    for name, cl in lists.items():
        recs = cl.recs[cl.rows(p.session_ids, name)]
        values[name] = {m: per_session(recs[:, :20], p.targets, m) for m in metrics}
    for b, label in enumerate(names):
        mask = band == b
        row = {"band (last item popularity)": label, "from": edges[b], "to": edges[b + 1],
               "sessions": int(mask.sum()), "share": float(mask.mean())}
        for name in lists:
            for m in metrics:
                row[f"{name} {m}"] = float(values[name][m][mask].mean()) if mask.any() else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = ["Component", "component_lists", "hybrid_configs", "make_hybrid", "popularity_bands", "run_hybrid",
           "run_winners", "runtime_args", "session_popularity"]
