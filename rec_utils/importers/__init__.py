"""Importers: the dataset formats researchers have → the project's tidy dataset folder.

Each importer reads its files, checks them, applies the paper's filters and writes a folder
that :func:`rec_utils.data.load_dataset` reads (``data/README.md``)::

    <out>/interactions.csv.gz   session_id,item_id,timestamp (Unix seconds)
    <out>/items.csv             item_id,title[,more text columns][,source key]
    <out>/session_ids.csv       session_id,<source user key>   (when ids were renumbered)
    <out>/PROVENANCE.md         source files (size, MD5, SHA-256), conversion, counts per step
    <out>/import.json           the same, machine-readable

* :func:`import_amazon`: Amazon review dumps, 2014 (loose JSON), 2018 (JSON), 2023 (JSONL) or a
  ratings-only CSV, plus the metadata file for titles; default = the paper's Beauty
  preprocessing (spec §2.1): session = a reviewer's reviews, duplicates kept, 5-core.
* :func:`import_movielens`: ml-latest(-small) / ml-20m / ml-25m ``ratings.csv`` + ``movies.csv``,
  ml-1m / ml-10m ``ratings.dat`` + ``movies.dat``, ml-100k ``u.data`` + ``u.item``; no k-core by
  default (as ``data/ml-latest-small``).
* :func:`import_recbole`: RecBole atomic files ``.inter`` (+ ``.item``); no k-core by default.

Every importer refuses, naming file, column (field), line and values: ids that differ only by
padding or spaces (``"007"``/``"7"``), timestamps in mixed units (unless
``mixed_units="normalise"``, which converts and warns naming the sessions), values that are not
numbers, unreadable lines. The steps are in :mod:`rec_utils.importers.core`.

Command line: ``python -m rec_utils.importers {amazon,movielens,recbole} ... --out FOLDER``
(``--help`` for the options).
"""
from __future__ import annotations

from .amazon import read_amazon
from .core import ImportResult, RawData, SourceFormatError, build
from .movielens import read_movielens
from .recbole import read_recbole

#: Default k of the k-core per format: the paper's 5 for Amazon (Beauty); none for MovieLens
#: (every user has 20+ ratings) and RecBole (atomic files are usually filtered already).
DEFAULT_K_CORE = {"amazon": 5, "movielens": 0, "recbole": 0}


def import_amazon(reviews, out, meta=None, *, k_core: int = DEFAULT_K_CORE["amazon"], item_key: str = "auto",
                  duplicates: str = "keep", min_rating: float | None = None, timestamp_unit: str = "auto",
                  mixed_units: str = "error", force: bool = False, show_progress: bool = True) -> ImportResult:
    """Amazon reviews (+ metadata for titles) → tidy folder ``out``; see :mod:`.amazon` for the
    formats and :func:`.core.build` for the options. Defaults = the paper's Beauty (§2.1)."""
    raw = read_amazon(reviews, meta, item_key=item_key, show_progress=show_progress)
    return build(raw, out, k_core=k_core, duplicates=duplicates, min_rating=min_rating,
                 timestamp_unit=timestamp_unit, mixed_units=mixed_units, force=force,
                 call={"importer": "amazon", "reviews": str(reviews), "meta": None if meta is None else str(meta),
                       "item_key": item_key})


def import_movielens(source, out, movies=None, *, k_core: int = DEFAULT_K_CORE["movielens"],
                     duplicates: str = "keep", min_rating: float | None = None, timestamp_unit: str = "auto",
                     mixed_units: str = "error", force: bool = False) -> ImportResult:
    """MovieLens ratings (a folder or the ratings file) + movies → tidy folder ``out``; see
    :mod:`.movielens` for the formats and :func:`.core.build` for the options."""
    raw = read_movielens(source, movies)
    return build(raw, out, k_core=k_core, duplicates=duplicates, min_rating=min_rating,
                 timestamp_unit=timestamp_unit, mixed_units=mixed_units, force=force,
                 call={"importer": "movielens", "source": str(source), "movies": None if movies is None else str(movies)})


def import_recbole(inter, out, item=None, *, user_field: str = "user_id", item_field: str = "item_id",
                   time_field: str = "timestamp", title_field: str | None = None,
                   k_core: int = DEFAULT_K_CORE["recbole"], duplicates: str = "keep", min_rating: float | None = None,
                   timestamp_unit: str = "auto", mixed_units: str = "error", force: bool = False) -> ImportResult:
    """RecBole ``.inter`` (+ ``.item``) → tidy folder ``out``; see :mod:`.recbole` for the format
    and :func:`.core.build` for the options."""
    raw = read_recbole(inter, item, user_field=user_field, item_field=item_field, time_field=time_field,
                       title_field=title_field)
    return build(raw, out, k_core=k_core, duplicates=duplicates, min_rating=min_rating,
                 timestamp_unit=timestamp_unit, mixed_units=mixed_units, force=force,
                 call={"importer": "recbole", "inter": str(inter), "item": None if item is None else str(item),
                       "fields": [user_field, item_field, time_field, title_field]})


__all__ = ["DEFAULT_K_CORE", "ImportResult", "RawData", "SourceFormatError", "build", "import_amazon",
           "import_movielens", "import_recbole", "read_amazon", "read_movielens", "read_recbole"]
