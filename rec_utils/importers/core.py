"""The shared part of every importer: checks, filters, ids, and the tidy folder with its
provenance. A format's reader (``amazon``, ``movielens``, ``recbole``) only turns its files
into a :class:`RawData`; :func:`build` does the rest the same way for all of them.

Pipeline of :func:`build` (each step's counts go to the provenance):

1. **ids**: the session and item keys as text; spellings of one key that differ only by
   padding or surrounding spaces (``" 42"``/``"42"``, ``"007"``/``"7"``), within a file or
   between the interactions and the items file, are refused naming file, column, lines and
   values (:func:`rec_utils.data.id_spelling_collisions`); surrounding spaces are stripped.
2. **timestamps**: parsed as numbers (file, column, line and value named when one is not);
   the unit is the declared one or inferred from the magnitude
   (:func:`rec_utils.data.timestamp_unit_classes`); times in more than one unit are refused
   (``mixed_units="error"``, the default: units, sessions, lines and values named) or
   converted row by row with a warning naming the sessions (``mixed_units="normalise"``).
3. **filters**, in this order: ``min_rating`` (when the format has ratings), ``duplicates``
   (``"keep"``, the paper's Beauty; ``"first"``: keep each (session, item) pair's earliest
   interaction, the paper's Steam), then the ``k_core`` loop of the paper
   (:func:`rec_utils.data.p_core_filter`: sessions below k, then items below k, until stable).
4. **integer ids**: the source's own ids when every key is a canonical non-negative integer
   (MovieLens), else 0..n-1 in sorted key order (Amazon ASINs / reviewer ids), with the maps
   written to ``session_ids.csv`` and the items' key column.
5. **write**, atomically (a temporary folder renamed into place): ``interactions.csv.gz``
   (``session_id,item_id,timestamp`` in Unix seconds, rows by session, then the source's full
   time resolution, then item id), ``items.csv`` (the catalogue's items: ``item_id,title``,
   more text columns, the source key), ``PROVENANCE.md`` and ``import.json`` (the same facts
   machine-readable: source files with size, MD5 and SHA-256, the format, the timestamp unit,
   and the counts before and after each filter).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..data import (TIMESTAMP_UNITS, DataValidationError, DataWarning, id_spelling_collisions,
                    mixed_timestamp_units, p_core_filter, timestamp_unit_classes)
from ..utils import git_commit

DUPLICATE_POLICIES = ("keep", "first")
MIXED_UNIT_POLICIES = ("error", "normalise")
UNIT_CHOICES = ("auto", *TIMESTAMP_UNITS)
_CANONICAL_INT = re.compile(r"^(0|[1-9][0-9]{0,17})$")


class SourceFormatError(DataValidationError):
    """A source file an importer cannot convert; the message names file, field, line, value."""


# ----------------------------------------------------------------------------- reading helpers


def open_text(path: Path, encoding: str = "utf-8"):
    """A text stream of ``path``, gunzipped when the file starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    if gz:
        return gzip.open(path, "rt", encoding=encoding, newline="")
    return open(path, encoding=encoding, newline="")


def file_facts(path: Path) -> dict:
    """Name, size and checksums of a source file (MD5, as dataset pages list it, and SHA-256)."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            md5.update(block)
            sha.update(block)
    return {"path": str(path), "name": path.name, "bytes": path.stat().st_size,
            "md5": md5.hexdigest(), "sha256": sha.hexdigest()}


def read_csv_checked(path: Path, source=None, **kwargs) -> pd.DataFrame:
    """``pd.read_csv`` of ``source`` (default ``path``) with every failure to parse turned into a
    :class:`~rec_utils.data.DataValidationError` naming ``path`` (and the line pandas names)."""
    try:
        return pd.read_csv(path if source is None else source, **kwargs)
    except pd.errors.EmptyDataError:
        raise SourceFormatError(f"{path}: the file is empty") from None
    except pd.errors.ParserError as e:
        raise SourceFormatError(f"{path}: not a valid delimited file: {str(e).strip()}") from None
    except UnicodeDecodeError as e:
        raise SourceFormatError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def need_file(path, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what}: no such file {p}")
    return p


# ----------------------------------------------------------------------------- the raw form


@dataclass
class RawData:
    """What a format reader hands :func:`build`.

    ``interactions``: one row per source record with ``session`` and ``item`` (str keys as
    written), ``time`` (str or number as written), ``line`` (1-based line of the record in
    ``interactions_file``) and optionally ``rating`` (float). ``columns`` names the source
    fields behind session / item / time for messages. ``items``: ``item`` (str key), ``title``
    (str, "" where missing), more text columns, ``line``; None when the format has no item file.
    """

    format: str
    interactions: pd.DataFrame
    interactions_file: Path
    columns: dict
    items: pd.DataFrame | None = None
    items_file: Path | None = None
    item_key_column: str = "item"  # the source's name of the item key (items.csv keeps it)
    session_key_column: str = "session"  # the source's name of the session key
    source_unit: str | None = None  # the unit the format documents (None: unknown)
    extra_files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class ImportResult:
    """The written folder and its provenance (``import.json``'s content)."""

    folder: Path
    provenance: dict

    @property
    def steps(self) -> pd.DataFrame:
        """Counts after each step: step, sessions, items, interactions."""
        return pd.DataFrame(self.provenance["steps"])


# ----------------------------------------------------------------------------- checks


def _spellings(raw: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """(distinct spellings in order of appearance, row of each one's first occurrence, code of
    every row): the id checks work on the few distinct spellings, not on every row."""
    codes, uniq = pd.factorize(raw.astype(object).to_numpy())
    first = np.unique(codes, return_index=True)[1]
    return pd.Series(np.asarray(uniq, dtype=object)), first, codes


def _check_keys(raw: RawData) -> None:
    """Refuse spellings of one session or item key that differ only by padding or spaces."""
    inter = raw.interactions
    lines = inter["line"].to_numpy()
    uniq, first, _ = _spellings(inter["session"])
    clash = id_spelling_collisions(uniq, _normal_keys(uniq))
    if clash:
        _raise_clash([(first[i], sp) for i, sp in clash], raw.interactions_file, raw.columns["session"], lines)
    parts = [(inter["item"], raw.interactions_file, raw.columns["item"], lines)]
    if raw.items is not None:
        parts.append((raw.items["item"], raw.items_file, raw.item_key_column, raw.items["line"].to_numpy()))
    spell = [_spellings(p[0]) for p in parts]
    everything = pd.concat([u for u, _, _ in spell], ignore_index=True)
    rows = np.concatenate([f for _, f, _ in spell])
    clash = id_spelling_collisions(everything, _normal_keys(everything))
    if clash:
        offsets = np.cumsum([0] + [len(u) for u, _, _ in spell])
        part = [int(np.searchsorted(offsets, row, side="right") - 1) for row, _ in clash]
        if len(set(part)) == 1:  # within one file
            k = part[0]
            _raise_clash([(rows[row], sp) for row, sp in clash], parts[k][1], parts[k][2], parts[k][3])
        where = []
        for (row, spelling), k in zip(clash, part):
            _, path, col, k_lines = parts[k]
            where.append(f"{spelling!r} ({path}, column {col!r}, line {k_lines[rows[row]]})")
        raise SourceFormatError(f"{len(clash)} spellings of one item id differ only by padding or spaces: "
                                + ", ".join(where) + "; fix the files (they are not merged silently)")


def _normal_keys(spellings: pd.Series) -> np.ndarray:
    """The key two spellings would share: stripped, and leading zeros dropped from digits."""
    out = np.array([str(v).strip() for v in spellings], dtype=object)
    return np.array([v.lstrip("0") or "0" if v.isdigit() and v.isascii() else v for v in out], dtype=object)


def _stripped(raw: pd.Series) -> np.ndarray:
    """Every key without surrounding spaces (computed once per distinct spelling)."""
    uniq, _, codes = _spellings(raw)
    return np.array([str(v).strip() for v in uniq], dtype=object)[codes]


def _raise_clash(clash, path, column, lines):
    spellings = ", ".join(f"{r!r} (line {lines[i]})" for i, r in clash)
    raise SourceFormatError(f"{path}: column {column!r}: {len(clash)} spellings of one id differ only by padding or "
                            f"spaces: {spellings}; fix the file (they are not merged silently)")


def _numeric_times(raw: RawData) -> np.ndarray:
    """The time column as int64 (integers) or float64 (with fractions); the first bad value is
    named with file, column and line."""
    t = raw.interactions["time"]
    num = pd.to_numeric(t, errors="coerce")
    bad = num.isna().to_numpy() | ~np.isfinite(num.to_numpy(dtype=np.float64, na_value=np.nan))
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise SourceFormatError(
            f"{raw.interactions_file}: column {raw.columns['time']!r}: line {raw.interactions['line'].iloc[pos]} "
            f"has {t.iloc[pos]!r}, not a number ({int(bad.sum())} bad value(s))")
    return num.to_numpy()


def _seconds(raw: RawData, unit: str, mixed_units: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """(sort key at full resolution, integer Unix seconds, facts about the unit)."""
    t = _numeric_times(raw)
    inter = raw.interactions
    lines = inter["line"].to_numpy()
    cls = timestamp_unit_classes(t)
    units = tuple(TIMESTAMP_UNITS)
    present = [units[c] for c in np.unique(cls)]
    facts: dict = {"column": raw.columns["time"], "units_found": present}
    if len(present) > 1:
        msg = mixed_timestamp_units(t, inter["session"].to_numpy(), line_of=lambda r: int(lines[r]))
        if mixed_units == "error":
            raise SourceFormatError(
                f"{raw.interactions_file}: column {raw.columns['time']!r}: {msg}. Fix the file, or pass "
                "mixed_units='normalise' (CLI: --mixed-units normalise) to convert every time by its own "
                "magnitude")
        minority = cls != np.bincount(cls).argmax()  # rows outside the most common unit
        sess = pd.unique(inter["session"].to_numpy()[minority])
        warnings.warn(f"{raw.interactions_file}: {msg}; normalised to seconds row by row (sessions "
                      f"converted: {', '.join(map(str, sess[:20]))}{', ...' if len(sess) > 20 else ''})",
                      DataWarning, stacklevel=3)
        factor = np.array([TIMESTAMP_UNITS[u] for u in units], dtype=np.float64)[cls]
        key = t.astype(np.float64) / factor
        facts.update(unit="mixed, normalised row by row", rows_converted=int(minority.sum()),
                     sessions_converted=[str(x) for x in sess])
        return key, np.floor(key).astype(np.int64), facts
    found = present[0]
    if unit != "auto" and unit != found:
        raise SourceFormatError(
            f"{raw.interactions_file}: column {raw.columns['time']!r}: declared unit {unit!r}, but the times "
            f"look like {found!r} (line {lines[0]}: {t[0]}); pass the right timestamp_unit or 'auto'")
    if raw.source_unit is not None and unit == "auto" and found != raw.source_unit:
        warnings.warn(f"{raw.interactions_file}: the {raw.format} format documents times in "
                      f"{raw.source_unit!r}, these look like {found!r}; read as {found!r}", DataWarning, stacklevel=3)
    div = TIMESTAMP_UNITS[found]
    facts["unit"] = found
    if pd.api.types.is_integer_dtype(t):
        seconds = np.floor_divide(t.astype(np.int64), div)
    else:
        seconds = np.floor(t.astype(np.float64) / div).astype(np.int64)
    facts["converted"] = f"{found} -> s" + ("" if div == 1 and pd.api.types.is_integer_dtype(t)
                                            else " (floored; ties keep the source's finer order)")
    return t, seconds, facts


# ----------------------------------------------------------------------------- build


def _counts(step: str, df: pd.DataFrame) -> dict:
    return {"step": step, "sessions": int(df["session"].nunique()), "items": int(df["item"].nunique()),
            "interactions": len(df)}


def _int_ids(keys: np.ndarray) -> tuple[bool, dict | None]:
    """(True, None) when every key is a canonical non-negative integer; else (False, key → 0..n-1
    in sorted key order)."""
    uniq = np.unique(keys.astype(str))
    if all(_CANONICAL_INT.match(k) for k in uniq):
        return True, None
    return False, {k: i for i, k in enumerate(uniq)}


def build(raw: RawData, out, *, k_core: int = 0, duplicates: str = "keep", min_rating: float | None = None,
          timestamp_unit: str = "auto", mixed_units: str = "error", force: bool = False,
          call: dict | None = None) -> ImportResult:
    """Check, filter and write ``raw`` as a tidy dataset folder ``out`` (see the module
    docstring for the steps). Returns the :class:`ImportResult`.

    Raises:
        DataValidationError: bad input (file, column, line and values named), or an empty
            result after the filters.
        FileExistsError: ``out`` exists and is not empty (``force`` replaces it).
        ValueError: an unknown option value.
    """
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {duplicates!r}")
    if mixed_units not in MIXED_UNIT_POLICIES:
        raise ValueError(f"mixed_units must be one of {MIXED_UNIT_POLICIES}, got {mixed_units!r}")
    if timestamp_unit not in UNIT_CHOICES:
        raise ValueError(f"timestamp_unit must be one of {UNIT_CHOICES}, got {timestamp_unit!r}")
    if k_core < 0:
        raise ValueError(f"k_core must be >= 0 (0: no k-core filter), got {k_core}")
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} exists and is not empty; pass force=True (CLI: --force) to replace it")
    if raw.interactions.empty:
        raise SourceFormatError(f"{raw.interactions_file}: no interactions in the file")

    _check_keys(raw)
    inter = raw.interactions.copy()
    inter["session"] = _stripped(inter["session"])
    inter["item"] = _stripped(inter["item"])
    sort_key, seconds, time_facts = _seconds(raw, timestamp_unit, mixed_units)
    inter["sort_key"], inter["timestamp"] = sort_key, seconds
    steps = [_counts("read", inter)]

    if min_rating is not None:
        if "rating" not in inter.columns:
            raise ValueError(f"min_rating: the {raw.format} source has no ratings")
        rating = inter["rating"].to_numpy(dtype=np.float64)
        if np.isnan(rating).any():
            pos = int(np.flatnonzero(np.isnan(rating))[0])
            raise SourceFormatError(f"{raw.interactions_file}: min_rating: the rating on line {inter['line'].iloc[pos]} "
                                    f"is missing or not a number ({int(np.isnan(rating).sum())} such row(s))")
        inter = inter.loc[rating >= min_rating]
        steps.append(_counts(f"rating >= {min_rating:g}", inter))
    n_pairs_dup = int(inter.duplicated(["session", "item"]).sum())
    if duplicates == "first":
        inter = inter.sort_values(["session", "sort_key", "line"], kind="stable")
        inter = inter.drop_duplicates(["session", "item"], keep="first")
        steps.append(_counts("repeated (session, item) pairs: first kept", inter))
    k_rounds: list = []
    if k_core:
        core = p_core_filter(inter.rename(columns={"session": "session_id", "item": "item_id"}), p=k_core,
                             steps=k_rounds)
        inter = core.rename(columns={"session_id": "session", "item_id": "item"})
        for r in k_rounds:
            steps.append({"step": f"{k_core}-core round {r['round']}: sessions < {k_core} dropped",
                          "sessions": r["after_sessions_sessions"], "items": r["after_sessions_items"],
                          "interactions": r["after_sessions_interactions"]})
            steps.append({"step": f"{k_core}-core round {r['round']}: items < {k_core} dropped",
                          "sessions": r["after_items_sessions"], "items": r["after_items_items"],
                          "interactions": r["after_items_interactions"]})
    if inter.empty:
        raise SourceFormatError(f"{raw.interactions_file}: no interaction is left after the filters "
                           f"(steps: {[(s['step'], s['interactions']) for s in steps]})")

    s_int, s_map = _int_ids(inter["session"].to_numpy())
    i_int, i_map = _int_ids(inter["item"].to_numpy())
    inter["session_id"] = (inter["session"].astype(np.int64) if s_int else inter["session"].map(s_map)).astype(np.int64)
    inter["item_id"] = (inter["item"].astype(np.int64) if i_int else inter["item"].map(i_map)).astype(np.int64)
    inter = inter.sort_values(["session_id", "sort_key", "item_id"], kind="stable").reset_index(drop=True)
    tidy = inter[["session_id", "item_id", "timestamp"]]
    steps.append(_counts("written", inter))

    # items of the catalogue (items in the kept interactions)
    catalogue = inter.drop_duplicates("item")[["item", "item_id"]].sort_values("item_id")
    n_meta_dup = 0
    if raw.items is not None:
        meta = raw.items.copy()
        meta["item"] = _stripped(meta["item"])
        n_meta_dup = int(meta["item"].duplicated().sum())
        meta = meta.drop_duplicates("item", keep="first").drop(columns=["line"])
        items = catalogue.merge(meta, on="item", how="left")
        n_no_meta = int(items["title"].isna().sum())
        items["title"] = items["title"].fillna("")
        items = items.fillna("")
    else:
        items = catalogue.assign(title="")
        n_no_meta = len(items)
    extra = [c for c in items.columns if c not in ("item", "item_id", "title")]
    key_col = raw.item_key_column
    cols = ["item_id", "title", *extra] + ([] if i_int else ["item"])
    items = items[cols].rename(columns={"item": key_col})
    items["title"] = items["title"].astype(str).str.replace(r"[\r\n\t]+", " ", regex=True)  # one line per item
    n_untitled = int((items["title"] == "").sum())

    ts = tidy["timestamp"].to_numpy()
    same = inter.groupby(["session_id", "timestamp"])["item_id"].transform("size").to_numpy() > 1
    time_facts.update(
        first=str(pd.to_datetime(ts.min(), unit="s", utc=True)), last=str(pd.to_datetime(ts.max(), unit="s", utc=True)),
        day_resolution=bool((ts % 86400 == 0).all()), interactions_sharing_a_second_in_session=round(float(same.mean()), 4))
    sources = [file_facts(raw.interactions_file)] + ([file_facts(raw.items_file)] if raw.items_file else []) \
        + [file_facts(p) for p in raw.extra_files]
    prov = {
        "format": raw.format, "sources": sources, "columns": raw.columns, "timestamp": time_facts,
        "options": {"k_core": k_core, "duplicates": duplicates, "min_rating": min_rating,
                    "timestamp_unit": timestamp_unit, "mixed_units": mixed_units},
        "steps": steps, "k_core_rounds": len(k_rounds),
        "ids": {"sessions": "source ids" if s_int else f"0..{len(s_map) - 1} in sorted {raw.session_key_column} order "
                "(map: session_ids.csv)",
                "items": "source ids" if i_int else f"0..{len(i_map) - 1} in sorted {key_col} order "
                f"(map: items.csv column {key_col!r})"},
        "repeated_session_item_pairs": n_pairs_dup, "items_without_metadata": n_no_meta,
        "items_without_title": n_untitled, "repeated_item_rows_in_metadata": n_meta_dup,
        "notes": raw.notes, "call": call or {}, "rec_utils": __version__, "git_commit": git_commit(),
    }
    _write_folder(out, tidy, items, None if s_int else s_map, raw.session_key_column, prov, force)
    if n_untitled == len(items):
        why = f"none in {raw.items_file}" if raw.items_file else "no metadata file was given"
        warnings.warn(f"{out}: no item has a title ({why}); text-based models cannot use this dataset",
                      DataWarning, stacklevel=2)
    return ImportResult(out, prov)


def _write_folder(out: Path, tidy, items, s_map, session_key: str, prov: dict, force: bool) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.import-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        with gzip.GzipFile(tmp / "interactions.csv.gz", "wb", compresslevel=6, mtime=0) as gz:  # as gzip -n
            gz.write(tidy.to_csv(index=False).encode("utf-8"))
        items.to_csv(tmp / "items.csv", index=False)
        if s_map is not None:
            pd.DataFrame({"session_id": list(s_map.values()), session_key: list(s_map.keys())}).to_csv(
                tmp / "session_ids.csv", index=False)
        (tmp / "import.json").write_text(json.dumps(prov, indent=1, default=str) + "\n")
        (tmp / "PROVENANCE.md").write_text(provenance_markdown(out.name, prov))
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def provenance_markdown(name: str, prov: dict) -> str:
    """``PROVENANCE.md`` of an imported folder, in the form of the shipped datasets' files."""
    t = prov["timestamp"]
    lines = [
        f"# {name}: imported from {prov['format']}",
        "",
        "Written by `rec_utils.importers` (rec_utils " + f"{prov['rec_utils']}, commit {prov['git_commit']}). "
        "One session = all interactions of one user, ordered by time; `import.json` holds these facts "
        "machine-readable.",
        "",
        "## Source files",
        "",
        "| file | bytes | md5 | sha256 |",
        "|---|---:|---|---|",
        *[f"| `{s['name']}` | {s['bytes']:,} | `{s['md5']}` | `{s['sha256']}` |" for s in prov["sources"]],
        "",
        "## Conversion",
        "",
        f"- Fields: session = `{prov['columns']['session']}`, item = `{prov['columns']['item']}`, "
        f"time = `{prov['columns']['time']}`.",
        f"- Timestamp unit in the source: {t['unit']} ({t.get('converted', 'row by row')}); written as Unix "
        f"seconds, {t['first']} to {t['last']}"
        + (", always midnight UTC (day resolution)" if t["day_resolution"] else "") + ".",
        f"- {t['interactions_sharing_a_second_in_session']:.1%} of interactions share their second with another "
        "of the same session; rows are ordered by session, then the source's full-resolution time, then item id.",
        f"- Ids: sessions {prov['ids']['sessions']}; items {prov['ids']['items']}.",
        f"- Options: " + ", ".join(f"{k}={v!r}" for k, v in prov["options"].items()) + ".",
        f"- Repeated (session, item) pairs after the rating filter: {prov['repeated_session_item_pairs']:,}; "
        f"items without metadata: {prov['items_without_metadata']:,}; items with an empty title: "
        f"{prov['items_without_title']:,}; repeated item rows in the metadata (first kept): "
        f"{prov['repeated_item_rows_in_metadata']:,}.",
        *[f"- {n}" for n in prov["notes"]],
        "",
        "## Counts after each step",
        "",
        "| step | sessions | items | interactions |",
        "|---|---:|---:|---:|",
        *[f"| {s['step']} | {s['sessions']:,} | {s['items']:,} | {s['interactions']:,} |" for s in prov["steps"]],
        "",
    ]
    return "\n".join(lines)
