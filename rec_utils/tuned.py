"""``PRESET="tuned"``: the configuration notebook 10's Optuna search chose, read from
``results/<dataset>/configs/<model>.json``.

It sits below the models (``rec_utils.models.preset_config`` reads it) and above nothing but
:mod:`rec_utils.paths`: the search that writes the file (:mod:`rec_utils.tuning`) is a layer up
and is never imported from here.
"""
from __future__ import annotations

import json
from pathlib import Path

from .paths import config_path

#: The preset name that reads the configuration an Optuna search wrote
#: (:func:`rec_utils.tuning.optuna_search.write_best_config`) instead of the presets table.
TUNED = "tuned"


def tuned_config(model: str, dataset: str, protocol: str | None = None, root: str | Path | None = None) -> dict:
    """The configuration of ``model`` chosen by notebook 10's TPE search on ``dataset``: the
    ``config`` of ``results/<dataset>/configs/<model>.json`` (``root``: the dataset's results
    folder instead of ``results/<dataset>``).

    Raises:
        FileNotFoundError: no tuned config for this model and dataset (the message says how to
            make one).
        ValueError: the file was tuned under another protocol than ``protocol``, or is not a
            tuned-config file (no ``config`` mapping).
    """
    path = config_path(dataset, model, root)
    if not path.is_file():
        raise FileNotFoundError(
            f'PRESET="tuned": no tuned configuration of {model} for dataset {dataset!r} ({path} is missing); '
            f"run notebooks/10_tuning.ipynb with MODEL={model!r}, DATASET={dataset!r} first "
            f"(e.g. make run NB=10_tuning PARAMS='-p MODEL {model}')")
    doc = json.loads(path.read_text())
    if not isinstance(doc.get("config"), dict):
        raise ValueError(f"{path}: not a tuned-config file (no 'config' mapping)")
    if protocol is not None and doc.get("protocol") not in (None, protocol):
        raise ValueError(f"{path}: {model} was tuned under protocol {doc.get('protocol')!r}, "
                         f"this run uses {protocol!r}")
    return dict(doc["config"])


__all__ = ["TUNED", "tuned_config"]
