"""MovieLens (GroupLens) → :class:`~rec_utils.importers.core.RawData`.

Formats, found by file name in a folder (or given as files):

* ``ratings.csv`` + ``movies.csv`` (ml-latest, ml-latest-small, ml-20m, ml-25m, ml-32m): CSV with a
  header ``userId,movieId,rating,timestamp`` and ``movieId,title,genres`` (``user_id`` /
  ``item_id`` spellings are accepted too, as in the copy shipped in ``data/ml-latest-small``).
* ``ratings.dat`` + ``movies.dat`` (ml-1m, ml-10m): ``UserID::MovieID::Rating::Timestamp`` and
  ``MovieID::Title::Genres``, no header (ml-1m's movies are Latin-1; read as UTF-8 when valid).
* ``u.data`` + ``u.item`` (ml-100k): tab-separated ``user item rating timestamp``, no header;
  ``u.item`` is ``|``-separated Latin-1 with 19 genre flags, named by ``u.genre`` when present.

Timestamps are Unix seconds. One session = all ratings of one user; every rating counts as one
interaction (``min_rating`` filters). Movie ids are kept (they are integers).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .core import RawData, SourceFormatError, need_file, open_text, read_csv_checked

#: ml-100k's genre flags in ``u.item`` order (its ``u.genre``).
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                 "War", "Western")
RATINGS_FILES = ("ratings.csv", "ratings.csv.gz", "ratings.dat", "ratings.dat.gz", "u.data")
MOVIES_FOR = {"ratings.csv": "movies.csv", "ratings.dat": "movies.dat", "u.data": "u.item"}
_ALIASES = {"session": ("userId", "user_id", "userid"), "item": ("movieId", "item_id", "movie_id", "movieid"),
            "time": ("timestamp",), "rating": ("rating",)}


def _find(folder: Path, names) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def _kind(ratings: Path) -> str:
    """Which ratings format a file has: by its name, else by its first line (``::`` for .dat,
    a tab for u.data, else CSV)."""
    name = ratings.name.removesuffix(".gz")
    if name in MOVIES_FOR:
        return name
    with open_text(ratings, "latin-1") as f:
        first = f.readline()
    return "ratings.dat" if "::" in first else "u.data" if "\t" in first else "ratings.csv"


def _read_lines(path: Path, sep: str, n_fields: int, what: str) -> pd.DataFrame:
    """Split a header-less file at ``sep`` into ``n_fields`` text columns (the last keeps any
    further separators) plus ``line``; UTF-8, else Latin-1."""
    for enc in ("utf-8", "latin-1"):
        try:
            with open_text(path, enc) as f:
                rows = [(no, line.rstrip("\r\n").split(sep, n_fields - 1))
                        for no, line in enumerate(f, start=1) if line.strip()]
            break
        except UnicodeDecodeError:
            continue
    bad = next(((no, p) for no, p in rows if len(p) != n_fields), None)
    if bad:
        raise SourceFormatError(f"{path}: line {bad[0]} has {len(bad[1])} field(s) separated by {sep!r}, "
                                f"{what} needs {n_fields}: {sep.join(bad[1])[:120]!r}")
    df = pd.DataFrame([p for _, p in rows], columns=range(n_fields), dtype=object)
    df["line"] = [no for no, _ in rows]
    df.attrs["encoding"] = enc
    return df


def _csv_with_lines(path: Path) -> pd.DataFrame:
    """A CSV with a header as text columns plus ``line`` (its line in the file; blank lines are
    skipped but counted, so messages point at the right line)."""
    df = read_csv_checked(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    df["line"] = df.index.to_numpy() + 2
    data = [c for c in df.columns if c != "line"]
    return df.loc[(df[data] != "").any(axis=1)].reset_index(drop=True)


def _pick(df: pd.DataFrame, path: Path, role: str) -> str:
    for name in _ALIASES[role]:
        if name in df.columns:
            return name
    raise SourceFormatError(f"{path}: no {role} column; expected one of {list(_ALIASES[role])}, "
                            f"found {list(df.columns)}")


def read_movielens(source, movies=None) -> RawData:
    """Read a MovieLens ratings file (or a folder holding one) and its movies file.

    Args:
        source: a folder with one of ``ratings.csv``, ``ratings.dat``, ``u.data``, or that file.
        movies: the movies file (default: ``movies.csv`` / ``movies.dat`` / ``u.item`` beside it).
    """
    src = Path(source)
    ratings = _find(src, RATINGS_FILES) if src.is_dir() else need_file(src, "MovieLens ratings")
    if ratings is None:
        raise FileNotFoundError(f"{src}: no MovieLens ratings file ({', '.join(RATINGS_FILES)})")
    base = _kind(ratings)
    if movies is None:
        movies = _find(ratings.parent, (MOVIES_FOR[base], MOVIES_FOR[base] + ".gz"))
    else:
        movies = need_file(movies, "MovieLens movies")
    extra = []
    if base == "ratings.csv":
        df = _csv_with_lines(ratings)
        cols = {r: _pick(df, ratings, r) for r in ("session", "item", "time", "rating")}
        line = df["line"].to_numpy()
        fmt = "movielens ratings.csv (ml-latest / ml-20m / ml-25m)"
    else:
        sep = "::" if base == "ratings.dat" else "\t"
        df = _read_lines(ratings, sep, 4, "a rating")
        cols = {"session": 0, "item": 1, "rating": 2, "time": 3}
        line = df["line"].to_numpy()
        fmt = "movielens ratings.dat (ml-1m / ml-10m)" if base == "ratings.dat" else "movielens u.data (ml-100k)"
    inter = pd.DataFrame({"session": df[cols["session"]].to_numpy(), "item": df[cols["item"]].to_numpy(),
                          "time": df[cols["time"]].to_numpy(),
                          "rating": pd.to_numeric(df[cols["rating"]], errors="coerce").to_numpy(), "line": line})
    names = ({r: str(c) for r, c in cols.items()} if base == "ratings.csv" else
             {"session": "user (field 1)", "item": "movie (field 2)", "time": "timestamp (field 4)"})
    raw = RawData(fmt, inter, ratings, names, item_key_column="movieId", session_key_column="userId",
                  source_unit="s")
    if movies is not None:
        raw.items, raw.items_file = _read_movies(movies, extra), movies
        raw.extra_files += extra
    return raw


def _read_movies(path: Path, extra: list) -> pd.DataFrame:
    name = path.name.removesuffix(".gz")
    if name.endswith(".csv"):
        df = _csv_with_lines(path)
        key = _pick(df, path, "item")
        if "title" not in df.columns:
            raise SourceFormatError(f"{path}: no 'title' column; found {list(df.columns)}")
        return pd.DataFrame({"item": df[key], "title": df["title"],
                             "genres": df["genres"] if "genres" in df.columns else "", "line": df["line"]})
    if name == "movies.dat":
        df = _read_lines(path, "::", 3, "a movie")
        return pd.DataFrame({"item": df[0], "title": df[1], "genres": df[2], "line": df["line"]})
    # u.item: id|title|release date|video release date|IMDb URL|19 flags
    df = _read_lines(path, "|", 24, "a u.item movie")
    genres = list(ML100K_GENRES)
    genre_file = path.parent / "u.genre"
    if genre_file.is_file():
        g = _read_lines(genre_file, "|", 2, "a genre")
        genres = list(g.sort_values(1, key=lambda c: c.astype(int))[0])
        extra.append(genre_file)
    flags = df[list(range(5, 24))].to_numpy() == "1"
    joined = ["|".join(g for g, f in zip(genres, row) if f) for row in flags]
    return pd.DataFrame({"item": df[0], "title": df[1], "genres": joined, "line": df["line"]})
