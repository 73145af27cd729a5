"""Amazon review dumps (McAuley's lab) → :class:`~rec_utils.importers.core.RawData`.

Formats (detected from the first record):

* **2014** per-category files (``reviews_Beauty.json.gz``, ``meta_Beauty.json.gz``): one record a
  line; the review files are JSON, the metadata files Python literals ("loose JSON": single
  quotes), so every line is read as JSON and, failing that, as a Python literal
  (``ast.literal_eval``, never ``eval``). Fields ``reviewerID``, ``asin``, ``unixReviewTime``
  (Unix seconds, midnight UTC), ``overall``; metadata ``asin``, ``title``.
* **2018** (``Beauty.json.gz`` / ``All_Beauty.json.gz``, ``meta_*.json.gz``): JSON lines with the
  same review fields (plus ``verified``, ``vote``).
* **2023** (``All_Beauty.jsonl``, ``meta_All_Beauty.jsonl``): JSON lines with ``user_id``,
  ``asin``, ``parent_asin``, ``timestamp`` (Unix **milliseconds**), ``rating``; metadata keyed by
  ``parent_asin``. Items are ``parent_asin`` by default (as the 2023 benchmark does;
  ``item_key="asin"`` for the variant, which then has no metadata titles).
* **ratings-only CSV** (2014 ``ratings_Beauty.csv``, 2018 ``Beauty.csv``): ``user,item,rating,
  timestamp`` without a header.

The paper's Beauty (spec §2.1, the reference's ``beauty/create_sessions.ipynb``): session = a
reviewer's reviews, interaction = (reviewerID, asin, unixReviewTime), duplicates kept, then the
5-core loop (sessions below 5, then items below 5, until stable: 10 rounds on the 2014 file). That
is :func:`import_amazon`'s default. Deviations: the reference numbers ids by enumerating a Python
set (an order that cannot be reproduced); here ids are 0..n-1 in sorted key order, and the
reference's own maps are shipped in ``data/beauty``. Titles are stored as in the metadata; the
reference's entity clean-up happens when texts are built (``rec_utils.data.item_texts``).
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

try:  # a faster JSON parser when installed (same results); the standard library otherwise
    from orjson import loads as _json_loads
except ImportError:  # pragma: no cover - depends on the environment
    _json_loads = json.loads

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .core import RawData, SourceFormatError, need_file, open_text, read_csv_checked

#: Review fields per format: session, item, time, rating.
REVIEW_FIELDS = {
    "2014/2018": ("reviewerID", "asin", "unixReviewTime", "overall"),
    "2023": ("user_id", "parent_asin", "timestamp", "rating"),
}


def _records(path: Path, show_progress: bool):
    """(line number, dict, was a Python literal) of every non-empty line."""
    with open_text(path) as f:
        for no, line in enumerate(tqdm(f, desc=f"reading {path.name}", unit=" lines", disable=not show_progress,
                                       mininterval=2, leave=False), start=1):
            text = line.strip()
            if not text:
                continue
            literal = False
            try:
                rec = _json_loads(text)
            except ValueError as e:  # json's and orjson's decode errors are ValueErrors
                try:
                    rec, literal = ast.literal_eval(text), True
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    raise SourceFormatError(
                        f"{path}: line {no} is neither JSON ({e}) nor a Python literal: {text[:120]!r}") from None
            if not isinstance(rec, dict):
                raise SourceFormatError(f"{path}: line {no} is a {type(rec).__name__}, not a record: {text[:120]!r}")
            yield no, rec, literal


def _field(rec: dict, name: str, path: Path, no: int):
    v = rec.get(name)
    if v is None or (isinstance(v, str) and not v.strip()):
        raise SourceFormatError(f"{path}: line {no}: field {name!r} is missing or empty (fields: {sorted(rec)[:12]})")
    return v


def _ratings_csv(path: Path) -> RawData:
    with open_text(path) as f:
        df = read_csv_checked(path, f, header=None, dtype=str, keep_default_na=False, skip_blank_lines=False)
    if df.shape[1] != 4:
        raise SourceFormatError(f"{path}: an Amazon ratings CSV has 4 columns (user,item,rating,timestamp) and no "
                                f"header; line 1 has {df.shape[1]}")
    df = df.loc[(df != "").any(axis=1)]
    inter = pd.DataFrame({"session": df[0], "item": df[1], "time": df[3],
                          "rating": pd.to_numeric(df[2], errors="coerce"), "line": df.index.to_numpy() + 1})
    return RawData("amazon ratings CSV", inter.reset_index(drop=True), path,
                   {"session": "user (column 1)", "item": "item (column 2)", "time": "timestamp (column 4)"},
                   item_key_column="asin", session_key_column="reviewer_id", source_unit="s")


def read_amazon(reviews, meta=None, *, item_key: str = "auto", show_progress: bool = True) -> RawData:
    """Read an Amazon review file (2014, 2018 or 2023 JSON lines, or a ratings-only CSV) and
    optionally its metadata file (for the titles).

    Args:
        reviews, meta: the files (gzip or plain).
        item_key: ``"auto"`` (``asin``; ``parent_asin`` for 2023), ``"asin"`` or ``"parent_asin"``.

    Raises:
        SourceFormatError: a line that is neither JSON nor a Python literal, a record without
            one of the needed fields (file, line and field named).
    """
    reviews = need_file(reviews, "Amazon reviews")
    if item_key not in ("auto", "asin", "parent_asin"):
        raise ValueError(f"item_key must be 'auto', 'asin' or 'parent_asin', got {item_key!r}")
    with open_text(reviews, "latin-1") as f:
        first = f.readline().lstrip()
    if not first.startswith("{"):
        raw = _ratings_csv(reviews)
    else:
        raw = _read_reviews(reviews, item_key, show_progress)
    if meta is not None:
        meta = need_file(meta, "Amazon metadata")
        key = "parent_asin" if raw.format == "amazon 2023" else "asin"
        if raw.item_key_column != key:
            raw.notes.append(f"Items are keyed by {raw.item_key_column!r} but the metadata by {key!r}: no titles.")
        rows = []
        n_literal = 0
        for no, rec, literal in _records(meta, show_progress):
            n_literal += literal
            rows.append((str(_field(rec, key, meta, no)), str(rec.get("title") or ""), no))
        raw.items = pd.DataFrame(rows, columns=["item", "title", "line"])
        raw.items_file = meta
        if n_literal:
            raw.notes.append(f"{n_literal:,} metadata lines are Python literals (loose JSON), read with ast.literal_eval.")
    return raw


def _read_reviews(path: Path, item_key: str, show_progress: bool) -> RawData:
    sessions, items, times, ratings, lines = [], [], [], [], []
    fmt = fields = None
    n_literal = 0
    label = "2014/2018"
    for no, rec, literal in _records(path, show_progress):
        if fields is None:
            fmt = "2023" if "user_id" in rec and "reviewerID" not in rec else "2014/2018"
            s, i, t, r = REVIEW_FIELDS[fmt]
            if item_key != "auto":
                i = item_key
            fields = (s, i, t, r)
            label = "2023" if fmt == "2023" else ("2018" if "verified" in rec or "vote" in rec else "2014")
        s, i, t, r = fields
        n_literal += literal
        sessions.append(rec.get(s))
        items.append(rec.get(i))
        times.append(rec.get(t))
        ratings.append(rec.get(r))
        lines.append(no)
    if fields is None:
        raise SourceFormatError(f"{path}: no records")
    s, i, t, _ = fields
    inter = pd.DataFrame({"session": sessions, "item": items, "time": times,
                          "rating": pd.to_numeric(pd.Series(ratings, dtype=object), errors="coerce"), "line": lines})
    for col, name in (("session", s), ("item", i), ("time", t)):  # checked once, not per line
        empty = inter[col].isna().to_numpy() | (inter[col].astype(str).str.strip() == "").to_numpy()
        if empty.any():
            pos = int(np.flatnonzero(empty)[0])
            raise SourceFormatError(f"{path}: line {lines[pos]}: field {name!r} is missing or empty "
                                    f"({int(empty.sum())} record(s))")
    inter["session"], inter["item"] = inter["session"].astype(str), inter["item"].astype(str)
    raw = RawData(f"amazon {label}", inter, path, {"session": s, "item": i, "time": t}, item_key_column=i,
                  session_key_column=s if s != "reviewerID" else "reviewer_id",
                  source_unit="ms" if label == "2023" else "s")
    if n_literal:
        raw.notes.append(f"{n_literal:,} review lines are Python literals (loose JSON), read with ast.literal_eval.")
    return raw
