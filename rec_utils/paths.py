"""Where results live: ``results/<dataset>/`` and the files every layer finds there by name.

The bottom of the results layout, importable from every layer (the models read tuned configs
from here, :mod:`rec_utils.results` writes runs and summaries under the same folder).
"""
from __future__ import annotations

from pathlib import Path

from .utils import PROJECT_ROOT

RESULTS_ROOT = PROJECT_ROOT / "results"


def results_dir(dataset: str, root: str | Path | None = None) -> Path:
    """``results/<dataset name>`` (a dataset given as a folder path uses the folder's name:
    results never go into a data folder), or ``root`` when given."""
    return Path(root) if root is not None else RESULTS_ROOT / Path(str(dataset)).name


def config_path(dataset: str, model: str, root: str | Path | None = None) -> Path:
    """``results/<dataset>/configs/<model>.json``: where the tuned config of ``model`` lives
    (written by :func:`rec_utils.tuning.optuna_search.write_best_config`, read by
    :func:`rec_utils.tuned.tuned_config`)."""
    return results_dir(dataset, root) / "configs" / f"{model}.json"


__all__ = ["RESULTS_ROOT", "config_path", "results_dir"]
