"""``python -m rec_utils.importers {amazon,movielens,recbole} SOURCE ... --out FOLDER``: write a
tidy dataset folder (see :mod:`rec_utils.importers`) and print its counts per step. Exit status
2 with the message (file, column, line, values) on bad input."""
from __future__ import annotations

import argparse
import sys

from ..data import DataValidationError
from . import DEFAULT_K_CORE, import_amazon, import_movielens, import_recbole
from .core import DUPLICATE_POLICIES, MIXED_UNIT_POLICIES, UNIT_CHOICES


def _common(p: argparse.ArgumentParser, fmt: str) -> None:
    p.add_argument("--out", required=True, help="the dataset folder to write (e.g. data/my-dataset)")
    p.add_argument("--k-core", type=int, default=DEFAULT_K_CORE[fmt],
                   help=f"k of the paper's k-core loop, 0 = none (default {DEFAULT_K_CORE[fmt]})")
    p.add_argument("--duplicates", choices=DUPLICATE_POLICIES, default="keep",
                   help="repeated (user, item) pairs: keep all (paper's Beauty) or the first (paper's Steam)")
    p.add_argument("--min-rating", type=float, default=None, help="keep only ratings >= this (default: all)")
    p.add_argument("--timestamp-unit", choices=UNIT_CHOICES, default="auto",
                   help="unit of the source times (default: inferred from their magnitude)")
    p.add_argument("--mixed-units", choices=MIXED_UNIT_POLICIES, default="error",
                   help="times in more than one unit: refuse (default) or convert each and warn")
    p.add_argument("--force", action="store_true", help="replace an existing non-empty --out folder")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m rec_utils.importers",
        description="Write a tidy dataset folder (interactions.csv.gz, items.csv, PROVENANCE.md, import.json) from "
                    "Amazon, MovieLens or RecBole files and print its counts per step; bad input exits with status 2 "
                    "and a message naming file, column, line and values.")
    sub = ap.add_subparsers(dest="format", required=True)
    a = sub.add_parser("amazon", help="Amazon review dumps 2014 / 2018 / 2023 (+ metadata for titles)")
    a.add_argument("reviews", help="reviews_*.json.gz (2014), *.json.gz (2018), *.jsonl (2023) or a ratings CSV")
    a.add_argument("--meta", help="the metadata file (meta_*.json.gz / meta_*.jsonl) for the titles")
    a.add_argument("--item-key", choices=("auto", "asin", "parent_asin"), default="auto")
    _common(a, "amazon")
    m = sub.add_parser("movielens", help="MovieLens ratings.csv / ratings.dat / u.data (+ movies)")
    m.add_argument("source", help="the MovieLens folder, or its ratings file")
    m.add_argument("--movies", help="the movies file (default: the one beside the ratings)")
    _common(m, "movielens")
    r = sub.add_parser("recbole", help="RecBole atomic files .inter (+ .item)")
    r.add_argument("inter", help="the .inter file")
    r.add_argument("--item", help="the .item file (titles)")
    r.add_argument("--user-field", default="user_id")
    r.add_argument("--item-field", default="item_id")
    r.add_argument("--time-field", default="timestamp")
    r.add_argument("--title-field", default=None)
    _common(r, "recbole")
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    common = dict(out=args.out, k_core=args.k_core, duplicates=args.duplicates, min_rating=args.min_rating,
                  timestamp_unit=args.timestamp_unit, mixed_units=args.mixed_units, force=args.force)
    try:
        if args.format == "amazon":
            res = import_amazon(args.reviews, meta=args.meta, item_key=args.item_key, **common)
        elif args.format == "movielens":
            res = import_movielens(args.source, movies=args.movies, **common)
        else:
            res = import_recbole(args.inter, item=args.item, user_field=args.user_field, item_field=args.item_field,
                                 time_field=args.time_field, title_field=args.title_field, **common)
    except (DataValidationError, FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {res.folder} ({res.provenance['format']}; times in {res.provenance['timestamp']['unit']})")
    print(res.steps.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
