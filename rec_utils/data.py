"""Loading, validating and ordering session datasets.

Every dataset lives in one tidy form (see ``data/README.md``)::

    <folder>/interactions.csv.gz   session_id,item_id,timestamp   (Unix seconds)
    <folder>/items.csv             item_id,title[,more text columns]

``load_dataset("beauty")`` reads a folder under the project's ``data/`` by name; any other
path to a folder in that form works too. Bad input raises :class:`DataValidationError`
whose message names the file, the column and the (1-based, header = line 1) line; a file that
cannot be read as CSV at all (not gzip although named ``.gz``, truncated, not UTF-8, not CSV)
raises it too, naming the file and what is wrong. Two spellings of one id that differ only by
padding or spaces (``"007"`` and ``"7"``) and timestamps in mixed units (seconds next to
milliseconds, told apart by magnitude) are refused, never merged or mixed silently; other
formats become this form through :mod:`rec_utils.importers`.

The catalogue (paper §3, §4: NUM_ITEMS) is the set of distinct items that occur in the
dataset's interactions, :attr:`Dataset.catalog`. Items listed in ``items.csv`` without any
interaction are dropped from :attr:`Dataset.items` at load (counted in
``dataset.info["items_without_interactions"]``; MovieLens latest-small lists 18 such items), so
recommenders, which see ``dataset.items``, and metrics agree on the catalogue.

Within-session order. Beauty has day-resolution timestamps: 57 % of its interactions share
a day with another interaction of the same session, so "which item is last" depends on how
ties are ordered. :func:`order_interactions` orders ties by a seeded shuffle by default
(``tie_order="shuffle"``) because the file keeps OpenP5's within-day order, which is by
ASIN and biases the last item towards newer products; the paper's non-stable sort behaves
like a random order. ``tie_order="file"`` keeps the file's order.
"""
from __future__ import annotations

import codecs
import gzip
import html
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .utils import PROJECT_ROOT

DATA_ROOT = PROJECT_ROOT / "data"
#: Datasets shipped in ``data/`` (a folder name); the first is the default of the study.
KNOWN_DATASETS = ("beauty", "ml-latest-small")
INTERACTION_COLUMNS = ("session_id", "item_id", "timestamp")
TIE_ORDERS = ("shuffle", "file")


class DataValidationError(ValueError):
    """Raised when a data file does not have the tidy form; the message says what and where."""


class DataWarning(UserWarning):
    """Something in a data file that loads but deserves attention (e.g. items without a title)."""


@dataclass
class Dataset:
    """A session dataset: interactions in session/time order plus optional item metadata.

    ``info`` (filled by :func:`load_dataset`): ``duplicates`` (the policy), ``n_duplicates``
    (exact duplicate interaction rows found), and when ``items.csv`` was read ``items_listed``
    (its rows), ``items_without_interactions`` (listed items dropped because no interaction
    uses them) and ``items_without_title`` (kept items whose title is empty or blank).
    """

    name: str
    interactions: pd.DataFrame  # session_id, item_id, timestamp (int64), ordered
    items: pd.DataFrame | None  # item_id, title, ... (text columns as str) of catalogue items, or None
    path: Path | None = None
    n_duplicates: int = 0  # exact duplicate rows found in the file
    info: dict = field(default_factory=dict)

    @property
    def n_sessions(self) -> int:
        return int(self.interactions["session_id"].nunique())

    @property
    def catalog(self) -> np.ndarray:
        """The catalogue: sorted unique item ids (int64) of the interactions (paper §4's
        NUM_ITEMS items; what catalogue coverage divides by). Items listed in ``items.csv``
        without any interaction are not part of it."""
        return np.unique(self.interactions["item_id"].to_numpy(dtype=np.int64))

    @property
    def n_items(self) -> int:
        """Distinct items that occur in the interactions (the paper's NUM_ITEMS) = ``len(catalog)``."""
        return int(self.interactions["item_id"].nunique())

    def item_counts(self) -> pd.Series:
        """Interaction count of every item over the whole dataset (popularity for metrics)."""
        return self.interactions["item_id"].value_counts().sort_index()

    def statistics(self) -> dict:
        lengths = self.interactions.groupby("session_id", sort=False).size()
        n_inter = len(self.interactions)
        return {
            "dataset": self.name,
            "sessions": self.n_sessions,
            "items": self.n_items,
            "interactions": n_inter,
            "avg_session_length": round(lengths.mean(), 2),
            "median_session_length": float(lengths.median()),
            "min_session_length": int(lengths.min()),
            "max_session_length": int(lengths.max()),
            "density": n_inter / (self.n_sessions * self.n_items),
            "items_listed": (None if self.items is None
                             else self.info.get("items_listed", len(self.items))),
            "items_without_interactions": self.info.get("items_without_interactions"),
            "items_without_title": self.info.get("items_without_title"),
            "n_duplicates": self.n_duplicates,
        }


# ----------------------------------------------------------------------------- loading


def resolve_dataset_path(name_or_path: str | Path) -> Path:
    """Map a dataset name (a folder of ``data/``) or a path to its folder."""
    p = Path(name_or_path)
    if p.is_dir():
        return p
    candidate = DATA_ROOT / str(name_or_path)
    if candidate.is_dir():
        return candidate
    known = sorted(d.name for d in DATA_ROOT.iterdir() if d.is_dir()) if DATA_ROOT.is_dir() else []
    raise FileNotFoundError(
        f"dataset {name_or_path!r}: no such folder (looked at {p} and {candidate}); "
        f"datasets in {DATA_ROOT}: {known}"
    )


def _find_interactions_file(folder: Path) -> Path:
    for fname in ("interactions.csv.gz", "interactions.csv"):
        if (folder / fname).is_file():
            return folder / fname
    raise FileNotFoundError(f"{folder}: no interactions.csv.gz or interactions.csv")


_GZIP_MAGIC = b"\x1f\x8b"


def _first_non_utf8_line(path: Path) -> str:
    """Where the first byte sequence that is not UTF-8 sits (error path only): "line N"."""
    opener = gzip.open if path.suffix == ".gz" else open
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with opener(path, "rb") as f:
            for lineno, raw in enumerate(f, start=1):
                try:
                    decoder.decode(raw)
                except UnicodeDecodeError as e:
                    return f"line {lineno}, byte {e.start + 1} ({raw[e.start:e.start + 1]!r})"
    except (OSError, EOFError, zlib.error):
        pass
    return "unknown line"


def _read_csv(path: Path, **kwargs) -> pd.DataFrame:
    """``pd.read_csv`` with every failure to read the file turned into a
    :class:`DataValidationError` that names the file and what is wrong with it."""
    try:
        return pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"{path}: the file is empty (no header, no rows)") from None
    except gzip.BadGzipFile as e:
        what = ("not a gzip file although its name ends in .gz" if "Not a gzipped file" in str(e)
                else f"corrupt gzip data ({e})")
        raise DataValidationError(f"{path}: {what}") from None
    except EOFError:
        raise DataValidationError(
            f"{path}: truncated: the gzip stream ends before its end marker (incomplete copy?)"
        ) from None
    except zlib.error as e:
        raise DataValidationError(f"{path}: corrupt gzip data ({e})") from None
    except UnicodeDecodeError:
        with open(path, "rb") as f:
            gz_inside = f.read(2) == _GZIP_MAGIC
        hint = "; it is gzip-compressed: name it *.gz" if gz_inside and path.suffix != ".gz" else ""
        raise DataValidationError(
            f"{path}: not UTF-8 text, first bad byte at {_first_non_utf8_line(path)}{hint}"
        ) from None
    except pd.errors.ParserError as e:
        raise DataValidationError(f"{path}: not a valid CSV file: {str(e).strip()}") from None


def _line(index_pos: int) -> int:
    """File line of a 0-based data row (line 1 is the header)."""
    return int(index_pos) + 2


def _integer_column(df: pd.DataFrame, col: str, path: Path, ids: bool = True) -> np.ndarray:
    """The column as int64; ``ids``: also refuse two spellings of one id (see
    :func:`id_spelling_collisions`), which a numeric parse would merge silently."""
    s = df[col]
    if s.isna().any():
        pos = int(np.flatnonzero(s.isna().to_numpy())[0])
        raise DataValidationError(
            f"{path}: column {col!r} has {int(s.isna().sum())} missing value(s), first at line {_line(pos)}"
        )
    if pd.api.types.is_integer_dtype(s):
        values = s.to_numpy(dtype=np.int64)
    else:
        # parse each distinct spelling once (files repeat ids and times a lot)
        codes, spellings = pd.factorize(s, sort=False)
        num_u = pd.to_numeric(pd.Series(spellings), errors="coerce")
        bad_u = (num_u.isna() | (num_u.notna() & (num_u != np.round(num_u)))).to_numpy()
        if bad_u.any():
            bad = bad_u[codes]
            pos = int(np.flatnonzero(bad)[0])
            raise DataValidationError(
                f"{path}: column {col!r} must hold integers; line {_line(pos)} has {s.iloc[pos]!r} "
                f"({int(bad.sum())} bad value(s))"
            )
        num_u = num_u.to_numpy().astype(np.int64)
        values = num_u[codes]
        if ids and len(np.unique(num_u)) < len(num_u):
            clash = id_spelling_collisions(s, values)
            raise DataValidationError(f"{path}: column {col!r}: {_describe_clash(clash, _line)}")
    if col != "timestamp" and (values < 0).any():
        pos = int(np.flatnonzero(values < 0)[0])
        raise DataValidationError(
            f"{path}: column {col!r} must be non-negative; line {_line(pos)} has {values[pos]}"
        )
    return values


def id_spelling_collisions(raw: pd.Series, keys) -> list[tuple[int, str]] | None:
    """Two or more different spellings of one id, or None.

    ``raw``: the ids as read (str); ``keys``: what each becomes (the parsed integer, or the
    stripped text). Spellings that differ only by padding or surrounding spaces (``" 42"`` and
    ``"42"``, ``"007"`` and ``"7"``) name the same key; merging them silently is never right,
    so readers refuse them. Returns the first clashing key's spellings as (0-based row of
    its first occurrence, spelling), in row order.
    """
    frame = pd.DataFrame({"raw": raw.to_numpy(dtype=object), "key": np.asarray(keys)})
    first = frame.drop_duplicates("raw")
    dup = first["key"].duplicated(keep=False).to_numpy()
    if not dup.any():
        return None
    key = first["key"].to_numpy()[dup][0]
    hit = first.loc[first["key"].to_numpy() == key]
    return [(int(i), str(r)) for i, r in zip(hit.index, hit["raw"])]


def _describe_clash(clash: list[tuple[int, str]], line_of) -> str:
    spellings = ", ".join(f"{r!r} (line {line_of(i)})" for i, r in clash)
    return (f"{len(clash)} spellings of one id differ only by padding or spaces: {spellings}; "
            "fix the file (they are not merged silently)")


#: Timestamp units, seconds per unit; :func:`timestamp_unit_classes` tells them apart by size.
TIMESTAMP_UNITS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
#: Upper bounds (exclusive) of |t| per unit: seconds below 1e11 (before the year 5138),
#: milliseconds below 1e14, microseconds below 1e17, nanoseconds above. A millisecond time
#: before 1973-03-03 (< 1e11) reads as seconds, so dates that old cannot be told apart.
_UNIT_BOUNDS = np.array([1e11, 1e14, 1e17])


def timestamp_unit_classes(timestamps) -> np.ndarray:
    """(n,) index into ``tuple(TIMESTAMP_UNITS)`` (0 s, 1 ms, 2 us, 3 ns) of every Unix time,
    judged by its magnitude (see ``_UNIT_BOUNDS``)."""
    t = np.abs(np.asarray(timestamps, dtype=np.float64))
    return np.searchsorted(_UNIT_BOUNDS, t, side="right")


def mixed_timestamp_units(timestamps, sessions, line_of=_line) -> str | None:
    """None when every timestamp has the same unit (by magnitude), else a message naming the
    units, how many sessions use each (sessions that mix units themselves are counted apart)
    and, per unit, the first sessions with a (line, value) example. ``line_of`` maps a 0-based
    row to the line the message shows."""
    cls = timestamp_unit_classes(timestamps)
    present = np.unique(cls)
    if len(present) < 2:
        return None
    units = tuple(TIMESTAMP_UNITS)
    frame = pd.DataFrame({"s": np.asarray(sessions), "c": cls})
    per_session = frame.groupby("s", sort=False)["c"].agg(["min", "max"])
    within = per_session.index[(per_session["min"] != per_session["max"]).to_numpy()]
    parts = []
    for c in present:
        rows = np.flatnonzero(cls == c)
        sess = pd.unique(frame["s"].to_numpy()[rows])
        names = ", ".join(map(str, sess[:5])) + (", ..." if len(sess) > 5 else "")
        r = int(rows[0])
        parts.append(f"{len(sess)} session(s) with times in {_UNIT_NAMES[units[c]]} ({names}; e.g. session "
                     f"{frame['s'].iloc[r]} line {line_of(r)}: {np.asarray(timestamps)[r]})")
    msg = "timestamps in mixed units: " + "; ".join(parts)
    if len(within):
        msg += (f"; {len(within)} session(s) mix units inside themselves ("
                + ", ".join(map(str, within[:5])) + (", ..." if len(within) > 5 else "") + ")")
    return msg


def read_interactions(path: str | Path, duplicates: str = "drop") -> tuple[pd.DataFrame, int]:
    """Read and validate an interactions file.

    Args:
        path: a CSV (optionally gzipped) with columns session_id, item_id, timestamp.
        duplicates: ``"drop"`` (default) removes exact duplicate rows (same session, item and
            timestamp), ``"keep"`` keeps them; ``"error"`` raises. Either way the count is returned.

    Returns:
        (interactions in file order with int64 columns, number of duplicate rows found)

    Raises:
        DataValidationError: the file is not gzip although named ``.gz``, is truncated or
            corrupt, is not UTF-8, is not CSV, or lacks a column / has a bad value (file,
            column and line in the message), spells one id in two ways that differ only by
            padding or spaces (``"007"`` and ``"7"``: both lines and values named), or holds
            timestamps in mixed units (seconds and milliseconds, by magnitude: the units,
            sessions, lines and values named).
    """
    path = Path(path)
    if duplicates not in ("drop", "keep", "error"):
        raise ValueError(f"duplicates must be 'drop', 'keep' or 'error', got {duplicates!r}")
    # ids as text: two spellings of one id must stay apart (timestamps parse as numbers)
    id_text = {"session_id": object, "item_id": object}
    df = _read_csv(path, dtype=id_text)
    if [str(c).strip() for c in df.columns] != list(df.columns):  # a header with spaces
        df = _read_csv(path, dtype=object)
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in INTERACTION_COLUMNS if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"{path}: missing column(s) {missing}; found {list(df.columns)}; "
            f"expected {list(INTERACTION_COLUMNS)}"
        )
    if df.empty:
        raise DataValidationError(f"{path}: the file has a header but no rows")
    out = pd.DataFrame({c: _integer_column(df, c, path, ids=c != "timestamp") for c in INTERACTION_COLUMNS})
    mixed = mixed_timestamp_units(out["timestamp"].to_numpy(), out["session_id"].to_numpy())
    if mixed:
        raise DataValidationError(
            f"{path}: column 'timestamp': {mixed}; the tidy form holds Unix seconds "
            "(python -m rec_utils.importers converts, see its --mixed-units)"
        )
    dup_mask = out.duplicated(keep="first").to_numpy()
    n_dup = int(dup_mask.sum())
    if n_dup and duplicates == "error":
        pos = int(np.flatnonzero(dup_mask)[0])
        raise DataValidationError(f"{path}: {n_dup} duplicate row(s), first at line {_line(pos)}")
    if n_dup and duplicates == "drop":
        out = out.loc[~dup_mask].reset_index(drop=True)
    return out, n_dup


def read_items(path: str | Path) -> pd.DataFrame:
    """Read and validate an items file: ``item_id`` unique non-negative ints and a ``title``
    column (may be empty per item); every text column stays str ("" where empty).

    Raises:
        DataValidationError: the file is unreadable (see :func:`read_interactions`), lacks the
            ``item_id`` or ``title`` column, or has a bad or duplicate id (file, column, line;
            ``"007"`` next to ``"7"`` is a duplicate, both lines named).
    """
    path = Path(path)
    items = _read_csv(path, keep_default_na=False, dtype=str)
    items.columns = [str(c).strip() for c in items.columns]
    missing = [c for c in ("item_id", "title") if c not in items.columns]
    if missing:
        raise DataValidationError(
            f"{path}: missing column(s) {missing}; found {list(items.columns)}; "
            "expected item_id,title[,more text columns]"
        )
    ids = items["item_id"].replace("", np.nan)
    items["item_id"] = _integer_column(pd.DataFrame({"item_id": ids}), "item_id", path)
    dup = items["item_id"].duplicated().to_numpy()
    if dup.any():
        pos = int(np.flatnonzero(dup)[0])
        raise DataValidationError(
            f"{path}: column 'item_id' has {int(dup.sum())} duplicate id(s), first at line "
            f"{_line(pos)} (id {items['item_id'].iloc[pos]})"
        )
    return items


def load_dataset(
    name_or_path: str | Path = "beauty",
    duplicates: str = "drop",
    require_items: bool = False,
) -> Dataset:
    """Load a dataset folder in the tidy form and validate it.

    Interactions are returned ordered by (session_id, timestamp), ties in file order; call
    :func:`order_interactions` to choose another tie order. Items referenced by interactions
    but missing from ``items.csv`` raise an error. Items listed without any interaction are
    not part of the catalogue (:attr:`Dataset.catalog`): they are dropped from
    ``dataset.items`` and counted in ``info["items_without_interactions"]``. Kept items whose
    title is empty (or blank) are counted in ``info["items_without_title"]``, with one
    :class:`DataWarning` giving the count; :func:`item_texts` gives them an empty text.

    Args:
        duplicates: policy for exact duplicate interaction rows (see :func:`read_interactions`);
            the count found is ``dataset.n_duplicates`` = ``info["n_duplicates"]``.
        require_items: raise ``FileNotFoundError`` when the folder has no ``items.csv``.
    """
    folder = resolve_dataset_path(name_or_path)
    inter_path = _find_interactions_file(folder)
    interactions, n_dup = read_interactions(inter_path, duplicates=duplicates)
    info = {"duplicates": duplicates, "n_duplicates": n_dup}
    items = None
    items_path = folder / "items.csv"
    if items_path.is_file():
        items = read_items(items_path)
        unknown = ~interactions["item_id"].isin(items["item_id"]).to_numpy()
        if unknown.any():
            pos = int(np.flatnonzero(unknown)[0])
            raise DataValidationError(
                f"{inter_path}: {int(unknown.sum())} interaction(s) reference item ids missing from "
                f"{items_path}; first at line {_line(pos)} (item_id {interactions['item_id'].iloc[pos]})"
            )
        used = items["item_id"].isin(interactions["item_id"]).to_numpy()
        info["items_listed"] = len(items)
        info["items_without_interactions"] = int((~used).sum())
        items = items.loc[used].reset_index(drop=True)
        no_title = _empty_title(items["title"]).to_numpy()
        info["items_without_title"] = int(no_title.sum())
        if no_title.any():
            warnings.warn(
                f"{items_path}: {int(no_title.sum())} item(s) have an empty title (first: item_id "
                f"{items['item_id'].iloc[int(np.flatnonzero(no_title)[0])]}); item_texts gives them "
                "an empty text", DataWarning, stacklevel=2,
            )
    elif require_items:
        raise FileNotFoundError(f"{folder}: no items.csv (item text is needed here)")
    interactions = order_interactions(interactions, tie_order="file")
    return Dataset(
        name=folder.name, interactions=interactions, items=items, path=folder, n_duplicates=n_dup,
        info=info,
    )


# ----------------------------------------------------------------------------- ordering / filtering


def order_interactions(
    interactions: pd.DataFrame, tie_order: str = "shuffle", tie_seed: int = 0
) -> pd.DataFrame:
    """Sort by (session_id, timestamp); order interactions with equal timestamps.

    Args:
        tie_order: ``"shuffle"`` (default) orders ties by a random permutation drawn from
            ``tie_seed``; ``"file"`` keeps the order of the input rows (a stable sort).
        tie_seed: seed of the shuffle; part of every split fingerprint.
    """
    if tie_order not in TIE_ORDERS:
        raise ValueError(f"tie_order must be one of {TIE_ORDERS}, got {tie_order!r}")
    n = len(interactions)
    if tie_order == "file":
        tiebreak = np.arange(n)
    else:
        tiebreak = np.random.default_rng(tie_seed).permutation(n)
    order = np.lexsort(
        (tiebreak, interactions["timestamp"].to_numpy(), interactions["session_id"].to_numpy())
    )
    return interactions.iloc[order].reset_index(drop=True)


def p_core_filter(interactions: pd.DataFrame, p: int = 5, max_iter: int = 100,
                  steps: list | None = None) -> pd.DataFrame:
    """Iteratively drop sessions and items with fewer than ``p`` interactions until stable.

    The paper's k-core (spec §2.1, the reference's ``create_sessions.ipynb``): each round
    drops sessions with fewer than ``p`` interactions, then items with fewer than ``p``, and
    repeats until nothing changes (Beauty: 10 rounds). Duplicate (session, item) rows count
    as separate interactions, as in the reference for Beauty.

    Args:
        steps: when given, one dict per round is appended: ``round``, and ``sessions``,
            ``items``, ``interactions`` left after its session and after its item filter.
    """
    df = interactions

    def counts(frame, prefix):
        return {f"{prefix}_sessions": int(frame["session_id"].nunique()),
                f"{prefix}_items": int(frame["item_id"].nunique()), f"{prefix}_interactions": len(frame)}

    for r in range(max_iter):
        s_len = df.groupby("session_id")["item_id"].transform("size")
        df = df.loc[s_len >= p]
        i_cnt = df.groupby("item_id")["session_id"].transform("size")
        df2 = df.loc[i_cnt >= p]
        if steps is not None:
            steps.append({"round": r + 1, **counts(df, "after_sessions"), **counts(df2, "after_items")})
        if len(df2) == len(df) and (df2.groupby("session_id").size() >= p).all():
            return df2.reset_index(drop=True)
        df = df2
    raise RuntimeError(f"p-core filter did not converge in {max_iter} iterations")


# ----------------------------------------------------------------------------- item text


#: The reference's title clean-up (spec §2.1, ``create_embeddings.ipynb``): these entities are
#: replaced; everything else is kept.
REFERENCE_ENTITY_REPLACEMENTS = {
    "&amp;": " and ", "&nbsp;": " ", "&lt;": "", "&gt;": "", "&ndash;": "", "&ndash": "",
    "&mdash;": "", "&ensp;": "", "&shy;": "", "&copy;": "", "&trade;": "", "&reg;": "", "&quot;": "",
}
TEXT_CLEANING = ("reference", "unescape", "none")


def clean_title(titles: pd.Series, clean: str = "reference") -> pd.Series:
    """Clean item titles.

    * ``"reference"`` — the authors' replacements (``&amp;`` → " and ", ``&nbsp;`` → space, a
      few entities removed). Beauty's ``items.csv`` already holds the authors' cleaned names, so
      this is a no-op there; it gives raw titles from elsewhere the same treatment.
    * ``"unescape"`` — additionally decode every remaining HTML entity (Beauty still has 97
      titles with ``&#9733;``, ``&egrave;``, ...) and collapse runs of whitespace (the
      reference's " and " replacement leaves double spaces). An improvement, not the paper's.
    * ``"none"`` — the text as stored.
    """
    if clean not in TEXT_CLEANING:
        raise ValueError(f"clean must be one of {TEXT_CLEANING}, got {clean!r}")
    t = titles.astype(str)
    if clean == "none":
        return t
    for ent, rep in REFERENCE_ENTITY_REPLACEMENTS.items():
        t = t.str.replace(ent, rep, regex=False)
    if clean == "unescape":
        t = t.map(html.unescape).str.replace(r"\s+", " ", regex=True).str.strip()
    return t


def _empty_title(titles: pd.Series) -> pd.Series:
    """True where a title is missing, empty or only whitespace."""
    return titles.fillna("").astype(str).str.strip() == ""


def item_texts(dataset: "Dataset | pd.DataFrame", template: str | None = None,
               clean: str = "reference") -> pd.Series:
    """Text of every listed item, indexed by item_id (empty string where there is none).

    The default builder per dataset: Beauty uses the title; MovieLens "title (genres)";
    Steam-like catalogues "name. Categories: ... Tags: ...". ``template`` (a
    ``str.format`` string over the item columns) overrides it. ``clean`` applies
    :func:`clean_title` to the title first (default: the reference's clean-up). Accepts a
    :class:`Dataset` or its ``items`` DataFrame.

    An item whose title is empty or blank (also after cleaning) gets an **empty** text with
    every builder and template, never genres, categories or a template's fixed words alone
    (spec §2.1: Beauty's 7 untitled items get an all-zero embedding, not one of other words).

    Raises:
        FileNotFoundError: the dataset has no items.
        DataValidationError: the items have no ``title`` column, or every title is empty or
            blank (the file and the column named; nothing could be embedded).
    """
    if isinstance(dataset, pd.DataFrame):
        items = dataset
    elif dataset.items is None:
        raise FileNotFoundError(f"dataset {dataset.name!r} has no items.csv")
    else:
        items = dataset.items
    if "title" not in items.columns:
        raise DataValidationError(
            f"item_texts: the items have no 'title' column; found {list(items.columns)}"
        )
    items = items.copy()
    items["title"] = clean_title(items["title"].fillna(""), clean)
    if len(items) and _empty_title(items["title"]).all():
        where = (f"{dataset.path / 'items.csv'}: " if isinstance(dataset, Dataset) and dataset.path else "items: ")
        raise DataValidationError(
            f"{where}column 'title' is empty in every one of the {len(items)} rows (item_id "
            f"{items['item_id'].iloc[0]} ... {items['item_id'].iloc[-1]}; with clean={clean!r}): no item has "
            "a text to embed or name; fill the titles (was the metadata file left out of the import?)"
        )
    if template is not None:
        text = items.apply(lambda r: template.format(**r.to_dict()), axis=1)
    elif {"category", "tags"} <= set(items.columns):
        text = (
            items["title"]
            + ". Categories: " + items["category"].str.replace("|", ", ", regex=False)
            + ". Tags: " + items["tags"].str.replace("|", ", ", regex=False)
        )
    elif "genres" in items.columns:
        genres = items["genres"].replace("(no genres listed)", "").str.replace("|", ", ", regex=False)
        text = items["title"] + np.where(genres != "", " (" + genres + ")", "")
    else:
        text = items["title"]
    text = text.where(~_empty_title(items["title"]), "")
    return pd.Series(text.to_numpy(dtype=object), index=items["item_id"].to_numpy(), name="text")


def session_lengths(interactions: pd.DataFrame) -> pd.Series:
    return interactions.groupby("session_id", sort=False).size()


__all__ = [
    "DATA_ROOT",
    "DataValidationError",
    "DataWarning",
    "Dataset",
    "KNOWN_DATASETS",
    "clean_title",
    "id_spelling_collisions",
    "item_texts",
    "load_dataset",
    "mixed_timestamp_units",
    "order_interactions",
    "p_core_filter",
    "read_interactions",
    "read_items",
    "resolve_dataset_path",
    "session_lengths",
    "TIMESTAMP_UNITS",
    "timestamp_unit_classes",
]
