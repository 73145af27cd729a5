"""Hyper-parameter search on the temporal validation folds (paper §7: the objective is the mean
NDCG@20 over the 3 forward-chaining folds of :func:`rec_utils.split.temporal_folds`).

* :mod:`.folds`: one config on the folds (:func:`evaluate_on_folds`, one cell: :func:`evaluate_fold`)
  and the resumable CSV of finished cells (:class:`CellStore`): shared by the grid and the tuner;
* :mod:`.grid`: :func:`expand_grid`, :func:`grid_search`, the tie rule (:func:`rank_order`:
  mean rounded to 6 decimals, then the first listed config wins) and :func:`best_config`;
* :mod:`.spaces`: the config encoders (``"mean:log"``, ``"pca:256"``, ...) and the search spaces
  (:class:`LLMSeqSimSpace`, :func:`sknnemb_configs`; the paper §7 TPE spaces go there too);
* :mod:`.staged`: notebook 04's staged LLMSeqSim search (:func:`staged_search`) and its full grid;
* :mod:`.optuna_search`: the paper's TPE search (:func:`tune`: one Optuna study per dataset,
  model, protocol and embedder, pruned per fold, resumable, several workers on one storage;
  :func:`write_best_config` → ``results/<dataset>/configs/<model>.json``, read by ``PRESET="tuned"``).

::

    folds = temporal_folds(split, 3)
    table = grid_search(make, expand_grid({"k": [50, 100], "similarity": ["cosine", "dot"]}), folds,
                        out_csv=OUT / "grid" / "sknn.csv")
    winner = best_config(table)
"""
from .folds import CELL_COLUMNS, CellStore, config_json, config_key, evaluate_fold, evaluate_on_folds
from .grid import TIE_DECIMALS, best_config, expand_grid, grid_search, rank_order, results_table
from .spaces import (LLMSeqSimSpace, agg_fields, parse_red, red_fields, sized_reductions,
                     sknnemb_configs, sknnemb_fields)
from .staged import full_grid, staged_search
from .spaces import TPE_SPACES, OrNone, TPESpace, tpe_space
from ..paths import config_path  # where write_best_config puts the best config
from .optuna_search import (FoldPercentilePruner, best_trial, default_storage, study_name,
                            trials_table, tune, write_best_config)

__all__ = [
    "CELL_COLUMNS", "CellStore", "LLMSeqSimSpace", "TIE_DECIMALS", "agg_fields", "best_config",
    "config_json", "config_key", "evaluate_fold", "evaluate_on_folds", "expand_grid", "full_grid",
    "grid_search", "parse_red", "rank_order", "red_fields", "results_table", "sized_reductions",
    "sknnemb_configs", "sknnemb_fields", "staged_search",
    "TPE_SPACES", "OrNone", "TPESpace", "tpe_space", "FoldPercentilePruner", "best_trial", "config_path",
    "default_storage", "study_name", "trials_table", "tune", "write_best_config",
]
