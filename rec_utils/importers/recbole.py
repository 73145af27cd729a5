"""RecBole atomic files → :class:`~rec_utils.importers.core.RawData`.

An atomic file is tab-separated text with a typed header, ``name:type`` per column (types
``token``, ``token_seq``, ``float``, ``float_seq``): ``.inter`` for interactions (e.g.
``user_id:token	item_id:token	rating:float	timestamp:float``), ``.item`` for item features
(e.g. ``item_id:token	movie_title:token_seq	release_year:token	class:token_seq``). RecBole's
field names are configurable, so the user, item and time fields can be named. The time unit
is not part of the format: it is inferred from the magnitude unless declared.
"""
from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from .core import RawData, SourceFormatError, need_file, read_csv_checked

TITLE_FIELDS = ("title", "movie_title", "name", "item_name", "product_name", "app_name")
TYPES = ("token", "token_seq", "float", "float_seq")


def read_atomic(path: Path) -> tuple[pd.DataFrame, dict]:
    """(text columns named by field, field → type, plus ``line``) of an atomic file."""
    df = read_csv_checked(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE,
                          skip_blank_lines=False, encoding="utf-8")
    types = {}
    for col in df.columns:
        name, _, typ = str(col).partition(":")
        if typ not in TYPES:
            raise SourceFormatError(f"{path}: line 1: header column {col!r} is not 'name:type' with a type of {TYPES}")
        types[name] = typ
    df.columns = list(types)
    df["line"] = df.index.to_numpy() + 2
    df = df.loc[(df[list(types)] != "").any(axis=1)].reset_index(drop=True)
    return df, types


def _need(types: dict, field: str, path: Path, what: str) -> str:
    if field not in types:
        raise SourceFormatError(f"{path}: line 1: no {what} field {field!r}; fields: {list(types)} "
                                f"(name it with the {what}_field option)")
    return field


def read_recbole(inter, item=None, *, user_field: str = "user_id", item_field: str = "item_id",
                 time_field: str = "timestamp", title_field: str | None = None) -> RawData:
    """Read a RecBole ``.inter`` file and optionally its ``.item`` file.

    Args:
        user_field, item_field, time_field: the field names (without ``:type``).
        title_field: the ``.item`` field holding the title (default: the first of
            :data:`TITLE_FIELDS` present). The other ``.item`` fields are kept as text columns.
    """
    inter = need_file(inter, "RecBole .inter")
    df, types = read_atomic(inter)
    for f, what in ((user_field, "user"), (item_field, "item"), (time_field, "time")):
        _need(types, f, inter, what)
    raw_inter = pd.DataFrame({"session": df[user_field], "item": df[item_field], "time": df[time_field],
                              "line": df["line"]})
    if "rating" in types:
        raw_inter["rating"] = pd.to_numeric(df["rating"], errors="coerce")
    raw = RawData("recbole atomic files", raw_inter, inter,
                  {"session": f"{user_field}:{types[user_field]}", "item": f"{item_field}:{types[item_field]}",
                   "time": f"{time_field}:{types[time_field]}"},
                  item_key_column=item_field, session_key_column=user_field)
    if item is not None:
        item = need_file(item, "RecBole .item")
        idf, itypes = read_atomic(item)
        _need(itypes, item_field, item, "item")
        title = title_field or next((f for f in TITLE_FIELDS if f in itypes), None)
        if title is None or title not in itypes:
            raise SourceFormatError(f"{item}: line 1: no title field ({title_field or 'one of ' + str(TITLE_FIELDS)}); "
                                    f"fields: {list(itypes)} (name it with title_field)")
        extra = [f for f in itypes if f not in (item_field, title)]
        raw.items = pd.DataFrame({"item": idf[item_field], "title": idf[title],
                                  **{f: idf[f] for f in extra}, "line": idf["line"]})
        raw.items_file = item
    return raw
