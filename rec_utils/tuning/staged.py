"""Notebook 04's LLMSeqSim search on the validation folds (paper §7's objective), staged or full.

Staged (``GRID_MODE="staged"``), three stages sharing one resumable CSV:

1. every aggregation × every ``stage1_reductions`` entry (``"name[:size]"``) × every title
   cleaning, with the first similarity (aggregation outer, cleaning inner);
2. the ``stage2_top`` best distinct (aggregation, decay, text_clean) triples of stage 1, each
   with no reduction and every reduction × size (:func:`~rec_utils.tuning.spaces.sized_reductions`),
   first similarity; ranked together with stage 1;
3. the best config of stages 1+2 with every similarity.

The final table ranks stage 1 + 2 + 3 configs (duplicates removed, first position kept); ties
follow :func:`rec_utils.tuning.rank_order` (mean rounded to 6 decimals, first listed wins).
Full (``GRID_MODE="full"``): every config of :meth:`LLMSeqSimSpace.full`.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import pandas as pd

from ..split import Split
from .grid import best_config, expand_grid, grid_search
from .spaces import LLMSeqSimSpace, agg_fields, parse_red, sized_reductions

#: The fields that identify a stage-1 winner carried to stage 2.
STAGE2_KEYS = ("aggregation", "decay", "text_clean")


def staged_search(
    make_model: Callable[[dict], object],
    folds: Sequence[Split],
    space: LLMSeqSimSpace,
    *,
    stage1_reductions: Sequence[str],
    stage2_top: int,
    **grid_options,
) -> tuple[pd.DataFrame, list[dict]]:
    """The staged search of the module docstring over ``space``.

    Args:
        make_model: builds an unfitted LLMSeqSim from a config (keys ``aggregation``,
            ``decay``, ``reduction``, ``reduced_dim``, [``whiten``, ``lda_labels``],
            ``similarity``, ``text_clean``).
        stage1_reductions: ``"name[:size]"`` (the notebook's STAGE1_REDUCTIONS).
        stage2_top: stage-1 winners carried to stage 2 (STAGE2_TOP).
        grid_options: passed to every :func:`~rec_utils.tuning.grid_search` (``out_csv``: the
            one CSV of the three stages; ``items``, ``metric``, ``k``, ``resume``, ``progress``).

    Returns:
        ``(table, configs)``: the final ranked table of :func:`~rec_utils.tuning.grid_search`
        and the configs it ranks, in evaluation order (stage 1, new stage 2, new stage 3).
    """
    first = space.similarities[0]
    stage1 = expand_grid({"agg": [agg_fields(a) for a in space.aggregations],
                          "red": [parse_red(r) for r in stage1_reductions],
                          "similarity": [first], "text_clean": list(space.text_cleans)})
    t1 = grid_search(make_model, stage1, folds, **grid_options)
    tops = []
    for c in t1["config"]:
        top = {key: json.loads(c)[key] for key in STAGE2_KEYS}
        if top not in tops:
            tops.append(top)
    reds = sized_reductions(space.reductions, space.sizes)
    stage2 = [{**t, **r, "similarity": first} for t in tops[:stage2_top] for r in reds]
    t2 = grid_search(make_model, stage1 + stage2, folds, **grid_options)
    stage3 = [{**best_config(t2), "similarity": sim} for sim in space.similarities]
    configs = expand_grid({"c": stage1 + stage2 + stage3})
    return grid_search(make_model, configs, folds, **grid_options), configs


def full_grid(make_model: Callable[[dict], object], folds: Sequence[Split], space: LLMSeqSimSpace,
              **grid_options) -> tuple[pd.DataFrame, list[dict]]:
    """Every config of ``space.full()`` on the folds; ``(table, configs)`` as :func:`staged_search`."""
    configs = space.full()
    return grid_search(make_model, configs, folds, **grid_options), configs


__all__ = ["STAGE2_KEYS", "full_grid", "staged_search"]
