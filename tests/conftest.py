"""Shared fixtures: a tiny hand-made dataset folder and the real Beauty dataset."""
from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from rec_utils.data import load_dataset


def write_dataset(folder: Path, rows: list[tuple], items: list[tuple] | None = None,
                  header: str = "session_id,item_id,timestamp",
                  item_columns: tuple[str, ...] = ("item_id", "title")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)
    with gzip.open(folder / "interactions.csv.gz", "wt") as f:
        f.write(text)
    if items is not None:
        pd.DataFrame(items, columns=list(item_columns)).to_csv(folder / "items.csv", index=False)
    return folder


@pytest.fixture
def tiny_folder(tmp_path) -> Path:
    """6 sessions over items 0..5, distinct days; session 5 is the most recent."""
    rows = []
    for s, (items, t0) in enumerate([
        ([0, 1, 2], 10), ([1, 2, 3], 20), ([0, 2, 3, 4], 30),
        ([2, 3], 40), ([0, 1, 5], 50), ([3, 1, 2], 60),
    ]):
        rows += [(s, it, t0 + j) for j, it in enumerate(items)]
    return write_dataset(tmp_path / "tiny", rows, [(i, f"item {i}") for i in range(6)])


@pytest.fixture(scope="session")
def beauty():
    return load_dataset("beauty")
