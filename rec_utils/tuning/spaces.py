"""Search spaces: how the notebooks' short names become model configs, and the spaces searched.

The study's notebook parameters name settings compactly (``"mean:log"``, ``"pca:256"``); the
encoders below turn them into the keyword arguments of the models, once for every search, so
that every config of a search (and so its ``config_id`` in the grid CSV) is spelled the same:

================================  =============================================================
``agg_fields("mean:log")``        ``{"aggregation": "mean", "decay": "log"}`` (``"last"``: decay None)
``red_fields("pca", 256)``        ``{"reduction": "pca", "reduced_dim": 256}``; ``"none"`` →
                                  both None; ``"pca-whiten"`` → PCA with ``"whiten": True``;
                                  ``"lda"`` → ``"lda_labels": "kmeans"`` (k-means pseudo-classes)
``parse_red("pca:256")``          :func:`red_fields` of ``"name[:size]"``
``sized_reductions(R, S)``        no reduction, then every reduction of ``R`` but ``"none"`` at
                                  every size of ``S`` (reduction outer, size inner)
``sknnemb_fields(cfg)``           a SKNNEmb grid point (``agg``: prompt and train aggregation,
                                  ``red``: ``"name[:size]"``) → SKNNEmb keyword arguments
================================  =============================================================

Grids: :class:`LLMSeqSimSpace` (notebook 04's LLMSeqSim space; ``.full()`` lists every
config, ``GRID_MODE="full"``; the staged search over it is :func:`rec_utils.tuning.staged_search`)
and :func:`sknnemb_configs` (notebook 04, section 6), in the order they are evaluated.

Paper §7 TPE search spaces (Optuna tuner, :mod:`rec_utils.tuning.optuna_search`): declared at
the end of this module as data, :data:`TPE_SPACES` (model → :class:`TPESpace`: parameter →
``optuna.distributions`` range, plus how the sampled values become model fields), so the tuner,
the notebook and the README read the same ranges.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from optuna.distributions import (BaseDistribution, CategoricalDistribution, FloatDistribution,
                                  IntDistribution)

from .grid import expand_grid


def agg_fields(a: str) -> dict:
    """``"last"`` / ``"mean"`` / ``"mean:<decay>"`` → ``{"aggregation", "decay"}`` (decay None
    when not given)."""
    name, _, decay = a.partition(":")
    return {"aggregation": name, "decay": decay or None}


def red_fields(r: str, size: int | None) -> dict:
    """A reduction name (``"none"``, ``"pca"``, ``"pca-whiten"``, ``"random"``, ``"variance"``,
    ``"autoencoder"``, ``"lda"``) and a size (dims; ignored for ``"none"``) → the reduction fields
    of LLMSeqSim / SKNNEmb. Names are not validated here: the model rejects unknown ones."""
    if r == "none":
        return {"reduction": None, "reduced_dim": None}
    if r == "pca-whiten":
        return {"reduction": "pca", "reduced_dim": size, "whiten": True}
    return {"reduction": r, "reduced_dim": size, **({"lda_labels": "kmeans"} if r == "lda" else {})}


def parse_red(r: str) -> dict:
    """``"name[:size]"`` (``"none"``, ``"pca:256"``) → :func:`red_fields`."""
    name, _, size = r.partition(":")
    return red_fields(name, int(size) if size else None)


def sized_reductions(reductions: Sequence[str], sizes: Sequence[int]) -> list[dict]:
    """No reduction first, then every reduction but ``"none"`` at every size (notebook 04's
    ``reds_sized``; the full grid and stage 2 of the staged search)."""
    return [red_fields("none", None)] + [red_fields(r, s) for r in reductions if r != "none" for s in sizes]


@dataclass(frozen=True)
class LLMSeqSimSpace:
    """Notebook 04's LLMSeqSim search space, in the notebook's short names.

    Attributes:
        aggregations: ``"last"`` / ``"mean[:decay]"`` (AGGREGATIONS; :func:`agg_fields`).
        reductions: reduction names, ``"none"`` included or not (REDUCTIONS; :func:`red_fields`).
        sizes: reduced sizes in dims, for every reduction but ``"none"`` (SIZES).
        similarities: similarity measures (SIMILARITIES); the staged search uses the first
            in its stages 1-2.
        text_cleans: title cleanings (TEXT_CLEANS).
    """

    aggregations: Sequence[str]
    reductions: Sequence[str]
    sizes: Sequence[int]
    similarities: Sequence[str]
    text_cleans: Sequence[str]

    def full(self) -> list[dict]:
        """Every config: aggregation × sized reduction × similarity × title cleaning (the last
        varies fastest); keys as in :func:`agg_fields` / :func:`red_fields` plus ``similarity``
        and ``text_clean``."""
        return expand_grid({"agg": [agg_fields(a) for a in self.aggregations],
                            "red": sized_reductions(self.reductions, self.sizes),
                            "similarity": list(self.similarities), "text_clean": list(self.text_cleans)})


def sknnemb_fields(cfg: dict) -> dict:
    """A SKNNEmb grid point → SKNNEmb keyword arguments: ``agg`` becomes both
    ``prompt_aggregation`` and ``training_aggregation``, ``red`` (``"name[:size]"``) the
    reduction fields (:func:`parse_red`); other keys pass through."""
    out = {k: v for k, v in cfg.items() if k not in ("agg", "red")}
    out["prompt_aggregation"] = out["training_aggregation"] = cfg["agg"]
    out.update(parse_red(cfg["red"]))
    return out


def sknnemb_configs(grid: dict[str, Sequence]) -> list[dict]:
    """The SKNNEmb configs of notebook 04's ``SKNNEMB_GRID`` (keys ``k``, ``sample_size``, ...,
    ``agg``, ``red``): its product without the points with more neighbours than sampled
    sessions (``k > sample_size``), each through :func:`sknnemb_fields`."""
    return [sknnemb_fields(c) for c in expand_grid(grid, where=lambda c: c["k"] <= c["sample_size"])]


# ----------------------------------------------------------------------------- paper §7 (TPE)
@dataclass(frozen=True)
class OrNone:
    """A range or None (spec §7: "clipnorm 1–100 or None"): the tuner samples the boolean
    ``<name>_none`` first, then the range only when it is False (a conditional parameter)."""

    dist: BaseDistribution


@dataclass(frozen=True)
class TPESpace:
    """One model's TPE search space (paper §7 / §6.5 / §6.1 ranges).

    Attributes:
        params: parameter name → ``optuna.distributions`` range (or :class:`OrNone`); the names
            are the trial's parameter names (what Optuna stores and plots).
        decode: the sampled parameters → model config fields (default: as they are); e.g.
            LLMSeqSim's ``agg="mean:log"`` → ``aggregation``/``decay``.
        source: where the ranges come from (spec section), shown by the notebook.
    """

    params: Mapping[str, BaseDistribution | OrNone]
    decode: Callable[[dict], dict] | None = None
    source: str = ""
    notes: str = field(default="", compare=False)

    def to_config(self, sampled: dict) -> dict:
        """Model config fields of one trial's sampled parameters (``<name>_none`` folded)."""
        out = {}
        for name, dist in self.params.items():
            if isinstance(dist, OrNone):
                out[name] = None if sampled.get(f"{name}_none", False) else sampled.get(name)
            elif name in sampled:
                out[name] = sampled[name]
            d = dist.dist if isinstance(dist, OrNone) else dist
            if isinstance(d, FloatDistribution) and d.step is not None and out.get(name) is not None:
                out[name] = round(float(out[name]), 10)  # 0.6000000000000001 → 0.6
        return self.decode(out) if self.decode else out

    def describe(self) -> list[dict]:
        """One row per parameter: ``name``, ``range`` (readable), ``log``, ``step``."""
        rows = []
        for name, dist in self.params.items():
            none = isinstance(dist, OrNone)
            d = dist.dist if none else dist
            if isinstance(d, CategoricalDistribution):
                rng, log, step = "{" + ", ".join(map(str, d.choices)) + "}", False, None
            else:
                rng, log, step = f"{d.low}–{d.high}", d.log, d.step
            rows.append({"name": name, "range": rng + (" or None" if none else ""), "log": log, "step": step})
        return rows


def _int(low, high, step=1):
    return IntDistribution(low, high, step=step)


def _cat(*choices):
    return CategoricalDistribution(list(choices))


#: SKNN family (spec §6.5 [OM]): k 50–500, sample_size 500–2000, sampling, similarity, idf
#: weighting. Step 10: every published optimum is a multiple of 10. The variant's own switch
#: (V-SKNN's harmonic decay, S-SKNN's sequential weighting, ...) comes from the variant/preset.
_SKNN_PARAMS = {"k": _int(50, 500, 10), "sample_size": _int(500, 2000, 10),
                "sampling": _cat("random", "recent"), "similarity": _cat("dot", "cosine"),
                "idf_weighting": _cat(False, True)}


def _clipnorm_float(cfg: dict) -> dict:
    if cfg.get("clipnorm") is not None:
        cfg["clipnorm"] = float(cfg["clipnorm"])
    return cfg


#: Neural ranges (spec §7): steps read off the published optima (d, hidden: multiples of 16;
#: batch: of 32; dropout, mask_prob: of 0.05; clipnorm: integers).
_NEURAL_COMMON = {"learning_rate": FloatDistribution(1e-4, 1e-2, log=True),
                  "weight_decay": FloatDistribution(0.0, 0.1),
                  "clipnorm": OrNone(_int(1, 100)),
                  "batch_size": _int(32, 512, 32),
                  "emb_dim": _int(16, 512, 16),
                  "drop_rate": FloatDistribution(0.0, 0.9, step=0.05)}
_NEURAL = {
    "GRU4Rec": {**_NEURAL_COMMON, "hidden_dim": _int(16, 512, 16)},
    "SASRec": {**_NEURAL_COMMON, "num_layers": _int(1, 4), "num_heads": _int(1, 4)},
    "BERT4Rec": {**_NEURAL_COMMON, "num_layers": _int(1, 4), "num_heads": _int(1, 4),
                 "mask_prob": FloatDistribution(0.05, 0.9, step=0.05)},
}
_DECAYS = ("constant_linear", "scaling_linear", "scaling_quadratic", "log", "harmonic", "squared_harmonic")
_REDUCTIONS = ("none", "pca", "autoencoder", "lda", "random")


def _reduction_fields(cfg: dict, size_key: str = "reduced_dim") -> dict:
    """``reduction``/``reduced_dim`` as sampled → :func:`red_fields` (``"none"``: both None; LDA
    with k-means pseudo-classes)."""
    red = cfg.pop("reduction")
    cfg.update(red_fields(red, cfg.pop(size_key, None)))
    return cfg


def _llmseqsim_decode(cfg: dict) -> dict:
    return _reduction_fields({**agg_fields(cfg.pop("agg")), **cfg})


def _sknnemb_decode(cfg: dict) -> dict:
    for key in ("decay", "training_decay"):
        cfg[key] = None if cfg[key] == "none" else cfg[key]
    return _reduction_fields(cfg)


def _llm2_decode(cfg: dict) -> dict:
    cfg = _clipnorm_float(cfg)
    if cfg.get("reduction") == "lda":
        cfg["lda_labels"] = "kmeans"
    return cfg


TPE_SPACES: dict[str, TPESpace] = {
    **{name: TPESpace(_SKNN_PARAMS, source="spec §6.5 search space [OM]") for name in ("SKNN", "V-SKNN", "S-SKNN", "SF-SKNN")},
    "SKNNEmb": TPESpace({**_SKNN_PARAMS, "decay": _cat("none", "linear", "harmonic"),
                         "training_decay": _cat("none", "linear", "harmonic"),
                         "prompt_aggregation": _cat("mean", "last"), "training_aggregation": _cat("mean", "last"),
                         "sequential_weighting": _cat(False, True),
                         "reduction": _cat(*_REDUCTIONS), "reduced_dim": _cat(64, 128, 256, 512)},
                        decode=_sknnemb_decode,
                        source="spec §6.5 [OM] (the embedding source is the study's embedder, not searched)"),
    "LLMSeqSim": TPESpace({"agg": _cat("last", "mean", *(f"mean:{d}" for d in _DECAYS)),
                           "reduction": _cat(*_REDUCTIONS), "reduced_dim": _cat(64, 128, 256, 512),
                           "similarity": _cat("dot", "cosine", "euclidean")},
                          decode=_llmseqsim_decode,
                          source="spec §6.1 [OM] (source = the study's embedder; reduced_dim ignored without a reduction)"),
    **{name: TPESpace(params, decode=_clipnorm_float, source="spec §7 neural ranges") for name, params in _NEURAL.items()},
    **{f"LLM2{base}": TPESpace({**params, "reduction": _cat("pca", "autoencoder", "lda", "random")},
                               decode=_llm2_decode, source="spec §7 neural ranges + red_method (LLM2*)")
       for base, params in _NEURAL.items()},
}


#: Opt-in training-objective dimensions (issue 23, :mod:`rec_utils.models.neural.objectives`): the
#: spaces ``"<model>+objective"`` (pass as ``space_model`` to ``llm2_comparison.tune_arm``) search the
#: loss beside the §7 ranges. The declared spaces of the paper's models do not change.
_OBJECTIVE_PARAMS = {"loss": _cat("ce", "sampled_softmax", "gbce"), "n_negatives": _cat(64, 256, 1024),
                     "negatives": _cat("uniform", "in_batch", "mixed"), "gbce_t": FloatDistribution(0.0, 1.0, step=0.05)}


def _objective_decode(decode):
    def dec(cfg: dict) -> dict:
        cfg = decode(cfg)
        if cfg.get("loss") == "gbce":
            cfg["negatives"] = "uniform"  # gSASRec draws uniform negatives
        return cfg

    return dec


#: The neural models' spaces with the objective dimensions, by ``"<model>+objective"``.
OBJECTIVE_SPACES: dict[str, TPESpace] = {
    f"{name}+objective": TPESpace({**space.params, **_OBJECTIVE_PARAMS}, decode=_objective_decode(space.decode),
                                  source=space.source + " + training objective (issue 23)")
    for name, space in TPE_SPACES.items() if name.removeprefix("LLM2") in _NEURAL}


def tpe_space(model: str) -> TPESpace:
    """The declared TPE space of ``model`` (or an opt-in ``"<neural model>+objective"`` space,
    :data:`OBJECTIVE_SPACES`); ``ValueError`` naming the models that have one."""
    if model in OBJECTIVE_SPACES:
        return OBJECTIVE_SPACES[model]
    if model not in TPE_SPACES:
        raise ValueError(f"no TPE search space declared for {model!r} (rec_utils/tuning/spaces.py); "
                         f"declared: {sorted(TPE_SPACES)} and {sorted(OBJECTIVE_SPACES)}")
    return TPE_SPACES[model]


__all__ = ["LLMSeqSimSpace", "OBJECTIVE_SPACES", "OrNone", "TPESpace", "TPE_SPACES", "agg_fields", "parse_red", "red_fields",
           "sized_reductions", "sknnemb_configs", "sknnemb_fields", "tpe_space"]
