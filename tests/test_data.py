"""Loading, validation errors, tie ordering and the p-core filter."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import write_dataset
from rec_utils.data import DataValidationError, item_texts, load_dataset, order_interactions, p_core_filter


def test_beauty_matches_the_paper_statistics(beauty):
    st = beauty.statistics()
    assert (st["sessions"], st["items"], st["interactions"]) == (22363, 12101, 198502)
    assert st["avg_session_length"] == 8.88 and st["min_session_length"] == 5


def test_loads_tiny_folder_in_session_time_order(tiny_folder):
    ds = load_dataset(tiny_folder)
    assert ds.name == "tiny" and ds.n_sessions == 6 and ds.n_items == 6
    assert ds.interactions.dtypes.tolist() == [np.int64] * 3
    g = ds.interactions.groupby("session_id")["timestamp"]
    assert g.apply(lambda t: t.is_monotonic_increasing).all()


@pytest.mark.parametrize("header,rows,pattern", [
    ("session,item_id,timestamp", [(0, 1, 1)], r"missing column\(s\) \['session_id'\]"),
    ("session_id,item_id,timestamp", [(0, "x", 1)], r"column 'item_id' must hold integers; line 2 has 'x'"),
    ("session_id,item_id,timestamp", [(0, 1, 1), (0, 2, "")], r"column 'timestamp' has 1 missing value\(s\), first at line 3"),
    ("session_id,item_id,timestamp", [(0, 1.5, 1)], r"column 'item_id' must hold integers; line 2"),
    ("session_id,item_id,timestamp", [(-1, 1, 1)], r"column 'session_id' must be non-negative; line 2"),
    ("session_id,item_id,timestamp", [], r"header but no rows"),
])
def test_bad_interactions_name_file_column_and_line(tmp_path, header, rows, pattern):
    folder = write_dataset(tmp_path / "bad", rows, header=header)
    with pytest.raises(DataValidationError, match=pattern) as e:
        load_dataset(folder)
    assert "interactions.csv.gz" in str(e.value)


def test_empty_file_is_a_clear_error(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "interactions.csv").write_text("")
    with pytest.raises(DataValidationError, match="empty"):
        load_dataset(folder)


def test_unknown_item_ids_are_reported(tmp_path):
    folder = write_dataset(tmp_path / "unk", [(0, 1, 1), (0, 7, 2)], items=[(1, "a")])
    with pytest.raises(DataValidationError, match=r"reference item ids missing.*line 3 \(item_id 7\)"):
        load_dataset(folder)


def test_duplicate_item_rows_in_items_file(tmp_path):
    folder = write_dataset(tmp_path / "dupitems", [(0, 1, 1)], items=[(1, "a"), (1, "b")])
    with pytest.raises(DataValidationError, match="duplicate id"):
        load_dataset(folder)


def test_duplicates_counted_and_kept_or_dropped(tmp_path):
    folder = write_dataset(tmp_path / "dup", [(0, 1, 1), (0, 1, 1), (0, 2, 2)])
    assert len(load_dataset(folder).interactions) == 2
    kept = load_dataset(folder, duplicates="keep")
    assert len(kept.interactions) == 3 and kept.n_duplicates == 1
    with pytest.raises(DataValidationError, match="1 duplicate row"):
        load_dataset(folder, duplicates="error")


def test_tie_order_shuffle_is_seeded_and_only_permutes_ties():
    df = pd.DataFrame({"session_id": [0] * 6 + [1] * 2, "item_id": [5, 4, 3, 2, 1, 0, 9, 8],
                       "timestamp": [1, 1, 1, 1, 2, 2, 7, 7]})
    a = order_interactions(df, "shuffle", tie_seed=1)
    b = order_interactions(df, "shuffle", tie_seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert a["timestamp"].tolist() == [1, 1, 1, 1, 2, 2, 7, 7]
    assert sorted(a["item_id"][:4]) == [2, 3, 4, 5]
    file_order = order_interactions(df, "file")
    assert file_order["item_id"].tolist() == df["item_id"].tolist()
    orders = {tuple(order_interactions(df, "shuffle", s)["item_id"]) for s in range(20)}
    assert len(orders) > 5
    with pytest.raises(ValueError, match="tie_order"):
        order_interactions(df, "random")


def test_p_core_is_iterative():
    # item 2 occurs once: dropping it leaves session 2 with one item, which must then go too
    rows = [(0, 0, 1), (0, 1, 2), (1, 0, 1), (1, 1, 2), (2, 1, 1), (2, 2, 2)]
    df = pd.DataFrame(rows, columns=["session_id", "item_id", "timestamp"])
    out = p_core_filter(df, p=2)
    assert sorted(set(out["session_id"])) == [0, 1]
    assert sorted(set(out["item_id"])) == [0, 1]
    assert len(out) == 4


def test_beauty_is_already_5_core(beauty):
    assert len(p_core_filter(beauty.interactions, p=5)) == len(beauty.interactions)


def test_item_texts_per_dataset(beauty):
    t = item_texts(beauty)
    assert len(t) == 12101 and (t == "").sum() == 7
    ml = load_dataset("ml-latest-small")
    assert item_texts(ml).loc[1] == "Toy Story (1995) (Adventure, Animation, Children, Comedy, Fantasy)"
