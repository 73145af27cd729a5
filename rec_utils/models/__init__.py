"""All recommenders behind one interface (:class:`~rec_utils.models.base.Recommender`), in one
registry.

``build_model(name, **config)`` builds any of them by its paper name. Adding a model is one new
file (a config dataclass and a ``Recommender`` subclass) plus one line in :data:`REGISTRY`
below: its name, how to build it, its family and whether notebook 10 searches it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from ..tuned import TUNED, tuned_config
from .base import Recommender
from .hybrids import EmbeddingEnsemble, LLMSeqSimPopularity, LLMSeqSimSequential
from .llm2 import LLM2_BASES, LLM2BERT4Rec, LLM2GRU4Rec, LLM2SASRec
from .llmseqprompt import LLMSeqPrompt
from .llmseqsim import LLMSeqSim
from .neural import BERT4Rec, GRU4Rec, SASRec
from .popular import MostPopular
from .presets import PRESETS as MODEL_PRESETS
from .sknn import SKNN
from .sknn import VARIANTS as SKNN_VARIANTS
from .sknn_emb import SKNNEmb
from .sknn_index import IndexedSKNN


def _session_knn(name: str, **config) -> SKNN:
    """A paper SKNN variant by name; with an ``index_cap`` over the capped item → recent-sessions
    index (:class:`IndexedSKNN`), else the faithful model."""
    cls = IndexedSKNN if config.get("index_cap") is not None else SKNN
    return cls.variant(name, **config)


@dataclass(frozen=True)
class Registered:
    """A model in the registry: ``build(**config)`` makes it; ``family`` groups it in reports
    and searches (never select by notebook); ``tunable``: notebook 10 has a search space for it,
    so ``PRESET="tuned"`` reads its config file (an untunable model runs with its defaults)."""

    build: Callable[..., Recommender]
    family: str
    tunable: bool = True


#: Every model by its paper name. The LLM2 models are sequential neural models (their base
#: model + an init step), so they are "neural" (``LLM2_BASES`` pairs each with its base).
REGISTRY: dict[str, Registered] = {
    "MostPopular": Registered(MostPopular, "baseline", tunable=False),
    **{name: Registered(partial(_session_knn, name), "session-knn") for name in SKNN_VARIANTS},
    "GRU4Rec": Registered(GRU4Rec, "neural"),
    "SASRec": Registered(SASRec, "neural"),
    "BERT4Rec": Registered(BERT4Rec, "neural"),
    "LLM2GRU4Rec": Registered(LLM2GRU4Rec, "neural"),
    "LLM2SASRec": Registered(LLM2SASRec, "neural"),
    "LLM2BERT4Rec": Registered(LLM2BERT4Rec, "neural"),
    "LLMSeqSim": Registered(LLMSeqSim, "embedding"),
    "SKNNEmb": Registered(SKNNEmb, "embedding"),
    "LLMSeqPrompt": Registered(LLMSeqPrompt, "llm", tunable=False),  # §6.2: tuned by its own sweeps (notebook 06)
    # §6.6, over stored component lists (rec_utils.hybrid_runs); searched by their grids (notebook 07)
    "EmbeddingEnsemble": Registered(EmbeddingEnsemble, "hybrid", tunable=False),
    "LLMSeqSim&Sequential": Registered(LLMSeqSimSequential, "hybrid", tunable=False),
    "LLMSeqSim&Popularity": Registered(LLMSeqSimPopularity, "hybrid", tunable=False),
}

#: name → factory (``MODELS[name](**config)`` builds the model).
MODELS: dict[str, Callable[..., Recommender]] = {name: r.build for name, r in REGISTRY.items()}
#: The hybrids (§6.6) of the registry: name → class (notebook 07 searches each by its ``GRID``).
HYBRIDS = {name: r.build for name, r in REGISTRY.items() if r.family == "hybrid"}

#: Model families, for reports and searches that treat a family alike.
FAMILIES: dict[str, tuple[str, ...]] = {}
for _name, _r in REGISTRY.items():
    FAMILIES[_r.family] = (*FAMILIES.get(_r.family, ()), _name)


def model_family(name: str) -> str:
    """The family of a model name (``"neural"`` for SASRec, ...); ``"other"`` when unknown."""
    return REGISTRY[name].family if name in REGISTRY else "other"


def preset_config(model: str, preset: str | None = "beauty", dataset: str | None = None,
                  protocol: str | None = None) -> dict:
    """The tuned configuration of ``model`` in ``preset`` (e.g. the paper's Beauty optimum);
    ``{}`` (the model's defaults) when the preset has none or ``preset`` is None/"default".
    ``preset="tuned"`` reads what notebook 10's Optuna search wrote for ``dataset`` (needed then;
    :func:`~rec_utils.tuned.tuned_config`, a clear error when there is none); a model notebook 10
    does not search (MostPopular: nothing to tune) runs with its defaults."""
    if preset in (None, "default"):
        return {}
    if preset == TUNED:
        if dataset is None:
            raise ValueError(f'preset "tuned" needs the dataset: preset_config({model!r}, "tuned", dataset=...)')
        if model in REGISTRY and not REGISTRY[model].tunable:
            return {}
        return tuned_config(model, dataset, protocol)
    return dict(MODEL_PRESETS.get(preset, {}).get(model, {}))  # the one table, models/presets.py


def build_model(name: str, **config) -> Recommender:
    """A model by its paper name (``MostPopular``, ``SKNN``, ``V-SKNN``, ``S-SKNN``, ``SF-SKNN``,
    ``GRU4Rec``, ``SASRec``, ``BERT4Rec``, ``LLM2GRU4Rec``, ``LLM2SASRec``, ``LLM2BERT4Rec``,
    ``LLMSeqSim``, ``SKNNEmb``, ``LLMSeqPrompt`` and the hybrids)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {sorted(MODELS)}")
    return MODELS[name](**config)


__all__ = ["BERT4Rec", "FAMILIES", "GRU4Rec", "HYBRIDS", "LLM2BERT4Rec", "LLM2GRU4Rec", "LLM2SASRec", "LLM2_BASES", "LLMSeqPrompt",
           "LLMSeqSim", "MODELS", "MostPopular", "REGISTRY", "Recommender", "Registered", "SASRec", "SKNN", "SKNNEmb",
           "build_model", "model_family", "preset_config"]
