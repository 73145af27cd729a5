"""All recommenders behind one interface (:class:`~rec_utils.models.base.Recommender`).

``build_model(name, **config)`` builds any of them by its paper name.
"""
from __future__ import annotations

from .base import Recommender
from .hybrids import HYBRIDS
from .llm2 import LLM2_BASES, LLM2BERT4Rec, LLM2GRU4Rec, LLM2SASRec
from .llmseqsim import LLMSeqSim
from .neural import BERT4Rec, GRU4Rec, SASRec
from .popular import MostPopular
from .presets import PRESETS as MODEL_PRESETS
from .presets import TUNED, tuned_config
from .sknn import SKNN
from .sknn import VARIANTS as SKNN_VARIANTS
from .sknn_emb import SKNNEmb

MODELS = {
    "MostPopular": MostPopular,
    "GRU4Rec": GRU4Rec,
    "SASRec": SASRec,
    "BERT4Rec": BERT4Rec,
    "LLM2GRU4Rec": LLM2GRU4Rec,
    "LLM2SASRec": LLM2SASRec,
    "LLM2BERT4Rec": LLM2BERT4Rec,
    **{name: (lambda name=name: (lambda **cfg: SKNN.variant(name, **cfg)))() for name in SKNN_VARIANTS},
    "LLMSeqSim": LLMSeqSim,
    "SKNNEmb": SKNNEmb,
    **HYBRIDS,  # §6.6, over stored component lists (rec_utils.hybrid_runs)
}


#: Model families, for reports and searches that treat a family alike (never select by notebook).
#: The LLM2 models are sequential neural models (their base model + an init step), so they are
#: "neural": the neural tables show them, the baselines' tie-order table leaves them out;
#: ``LLM2_BASES`` pairs each with its base.
FAMILIES = {
    "baseline": ("MostPopular",),
    "session-knn": tuple(SKNN_VARIANTS),
    "neural": ("GRU4Rec", "SASRec", "BERT4Rec", *LLM2_BASES),
    "embedding": ("LLMSeqSim", "SKNNEmb"),
    "hybrid": tuple(HYBRIDS),
}


def model_family(name: str) -> str:
    """The family of a model name (``"neural"`` for SASRec, ...); ``"other"`` when unknown."""
    return next((f for f, names in FAMILIES.items() if name in names), "other")


def preset_config(model: str, preset: str | None = "beauty", dataset: str | None = None,
                  protocol: str | None = None) -> dict:
    """The tuned configuration of ``model`` in ``preset`` (e.g. the paper's Beauty optimum);
    ``{}`` (the model's defaults) when the preset has none or ``preset`` is None/"default".
    ``preset="tuned"`` reads what notebook 10's Optuna search wrote for ``dataset`` (needed then;
    :func:`~rec_utils.models.presets.tuned_config`, a clear error when there is none)."""
    if preset in (None, "default"):
        return {}
    if preset == TUNED:
        if dataset is None:
            raise ValueError(f'preset "tuned" needs the dataset: preset_config({model!r}, "tuned", dataset=...)')
        return tuned_config(model, dataset, protocol)
    return dict(MODEL_PRESETS.get(preset, {}).get(model, {}))  # the one table, models/presets.py


def build_model(name: str, **config) -> Recommender:
    """A model by its paper name (``MostPopular``, ``SKNN``, ``V-SKNN``, ``S-SKNN``, ``SF-SKNN``,
    ``GRU4Rec``, ``SASRec``, ``BERT4Rec``, ``LLM2GRU4Rec``, ``LLM2SASRec``, ``LLM2BERT4Rec``, ...)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {sorted(MODELS)}")
    return MODELS[name](**config)


__all__ = ["BERT4Rec", "FAMILIES", "GRU4Rec", "LLM2BERT4Rec", "LLM2GRU4Rec", "LLM2SASRec", "LLM2_BASES", "LLMSeqSim",
           "MODELS", "model_family", "MostPopular", "Recommender", "SASRec", "SKNN",
           "SKNNEmb", "build_model",
           "preset_config"]
