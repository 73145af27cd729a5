"""Write a synthetic shop dataset in the tidy form (data/README.md), for end-to-end runs on data
the project does not ship (``make study DATASET=<folder>``).

    python scripts/make_synthetic_dataset.py build/toyshop --sessions 3000 --items 800

Items have titles "<brand> <adjective> <product>" in 12 product categories; a session picks a
category (Zipf over categories), starts at an item of it (Zipf popularity) and mostly moves to
the category's next items (a sequential pattern), sometimes to a globally popular item. Every
interaction has its own timestamp (no ties). Seeded: the same arguments write the same files.
"""
from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np
import pandas as pd

CATEGORIES = {
    "shampoo": ["shampoo", "conditioner", "hair mask", "hair oil"],
    "skin": ["face cream", "serum", "toner", "cleanser"],
    "nails": ["nail polish", "top coat", "nail file", "cuticle oil"],
    "eyes": ["mascara", "eyeliner", "eye shadow palette", "brow gel"],
    "lips": ["lipstick", "lip balm", "lip gloss", "lip liner"],
    "fragrance": ["eau de parfum", "body mist", "cologne", "perfume oil"],
    "sun": ["sunscreen", "after-sun gel", "tanning lotion", "sun stick"],
    "bath": ["bath bomb", "shower gel", "body scrub", "bath salts"],
    "tools": ["makeup brush set", "sponge", "hair dryer", "curling iron"],
    "men": ["beard oil", "shaving cream", "aftershave", "razor"],
    "body": ["body lotion", "hand cream", "foot cream", "body butter"],
    "face": ["foundation", "concealer", "blush", "bronzer"],
}
BRANDS = ["Aurora", "Belle", "Cedar", "Dune", "Elm", "Fjord", "Glow", "Halo", "Iris", "Juniper",
          "Kelp", "Lumen", "Moss", "Nova", "Opal", "Pure", "Quartz", "Rose", "Sage", "Tide"]
ADJECTIVES = ["hydrating", "matte", "organic", "volumizing", "gentle", "long-lasting", "vegan", "radiant",
              "soothing", "intense", "travel-size", "classic", "fresh", "repairing", "mineral", "silky"]


def make(n_sessions: int, n_items: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    cats = list(CATEGORIES)
    cat_of = np.sort(rng.integers(0, len(cats), size=n_items))  # items grouped by category
    titles = []
    for i in range(n_items):
        c = cats[cat_of[i]]
        titles.append(f"{BRANDS[rng.integers(len(BRANDS))]} {ADJECTIVES[rng.integers(len(ADJECTIVES))]} "
                      f"{CATEGORIES[c][rng.integers(len(CATEGORIES[c]))]}")
    items = pd.DataFrame({"item_id": np.arange(n_items) + 1000, "title": titles})
    members = [np.flatnonzero(cat_of == c) for c in range(len(cats))]
    cat_p = 1.0 / np.arange(1, len(cats) + 1)
    glob_p = 1.0 / np.arange(1, n_items + 1) ** 0.8
    glob_p /= glob_p.sum()
    rows, t = [], 1_600_000_000
    for s in range(n_sessions):
        c = rng.choice(len(cats), p=cat_p / cat_p.sum())
        m = members[c] if len(members[c]) else np.arange(n_items)
        pop = 1.0 / np.arange(1, len(m) + 1)
        pos = rng.choice(len(m), p=pop / pop.sum())
        length = 2 + rng.geometric(0.25)
        for _ in range(length):
            if rng.random() < 0.15:
                item = rng.choice(n_items, p=glob_p)
            else:
                item = m[pos % len(m)]
                pos += 1 + (rng.random() < 0.3)  # mostly the next item of the category
            rows.append((s + 1, int(item) + 1000, t))
            t += int(rng.integers(1, 600))
        t += int(rng.integers(600, 7200))
    return pd.DataFrame(rows, columns=["session_id", "item_id", "timestamp"]), items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--sessions", type=int, default=3000)
    ap.add_argument("--items", type=int, default=800)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    inter, items = make(args.sessions, args.items, args.seed)
    out = Path(args.folder)
    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(out / "interactions.csv.gz", "wt") as f:
        inter.to_csv(f, index=False)
    items[items["item_id"].isin(inter["item_id"])].to_csv(out / "items.csv", index=False)
    print(f"{out}: {len(inter):,} interactions, {inter.session_id.nunique():,} sessions, "
          f"{inter.item_id.nunique():,} items")


if __name__ == "__main__":
    main()
