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

Paper §7 TPE search spaces (Optuna tuner): declared at the end of this module, next to the
grids, as data (one dict per model of parameter → range), so the tuner and the report read the
same ranges. Not declared yet.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
# The Optuna tuner's search spaces go here: one dict per model, parameter -> range, with the
# ranges of paper §7 (e.g. learning_rate 1e-4..1e-2 log, weight_decay 0..0.1, emb_dim 16..512,
# drop_rate 0..0.9, L 1..4, h 1..4, mask_prob 0.05..0.9, hidden_dim 16..512, red_method
# {PCA, AE, LDA, Random}), documented like the grids above.


__all__ = ["LLMSeqSimSpace", "agg_fields", "parse_red", "red_fields", "sized_reductions",
           "sknnemb_configs", "sknnemb_fields"]
