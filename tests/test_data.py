"""Loading, validation errors, tie ordering and the p-core filter."""
from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from conftest import write_dataset
from rec_utils.data import (DataValidationError, DataWarning, item_texts, load_dataset, order_interactions,
                            p_core_filter)


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


# ----------------------------------------------------------------------------- catalogue


def test_catalog_is_the_interactions_items(beauty):
    cat = beauty.catalog
    assert cat.dtype == np.int64 and len(cat) == beauty.n_items == 12101
    assert (np.diff(cat) > 0).all()
    assert beauty.info["items_without_interactions"] == 0 and len(beauty.items) == 12101
    assert beauty.info["items_without_title"] == 7


def test_movielens_items_without_interactions_are_dropped():
    ml = load_dataset("ml-latest-small")
    assert ml.info["items_listed"] == 9742
    assert ml.info["items_without_interactions"] == 18
    assert len(ml.items) == ml.n_items == 9724
    np.testing.assert_array_equal(np.sort(ml.items["item_id"].to_numpy()), ml.catalog)
    st = ml.statistics()
    assert st["items"] == 9724 and st["items_listed"] == 9742 and st["items_without_interactions"] == 18


def test_listed_item_without_interaction_leaves_items_and_texts(tmp_path):
    folder = write_dataset(tmp_path / "extra", [(0, 1, 1), (0, 2, 2)],
                           items=[(1, "a"), (2, "b"), (3, "never used")])
    ds = load_dataset(folder)
    assert ds.info["items_without_interactions"] == 1
    assert ds.items["item_id"].tolist() == [1, 2] and ds.catalog.tolist() == [1, 2]
    assert item_texts(ds).index.tolist() == [1, 2]


# ----------------------------------------------------------------------------- unreadable files


def _write_bytes(folder, name, data: bytes):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return folder


GOOD_CSV = b"session_id,item_id,timestamp\n" + b"".join(b"%d,%d,%d\n" % (i // 5, i, i) for i in range(4000))


@pytest.mark.parametrize("name,make,pattern", [
    ("interactions.csv.gz", lambda: GOOD_CSV, r"interactions\.csv\.gz: not a gzip file although its name ends in \.gz"),
    ("interactions.csv.gz", lambda: gzip.compress(GOOD_CSV)[:300], r"interactions\.csv\.gz: truncated"),
    ("interactions.csv.gz", lambda: (lambda z: z[:20] + b"\x00" * 20 + z[40:])(gzip.compress(GOOD_CSV)),
     r"interactions\.csv\.gz: corrupt gzip data"),
    ("interactions.csv.gz", lambda: gzip.compress(GOOD_CSV)[:-4], r"interactions\.csv\.gz: (truncated|corrupt gzip data)"),
    ("interactions.csv", lambda: gzip.compress(GOOD_CSV), r"interactions\.csv: not UTF-8 text.*it is gzip-compressed"),
    ("interactions.csv", lambda: b"session_id,item_id,timestamp\n0,1,1\n0,\xff,2\n",
     r"interactions\.csv: not UTF-8 text, first bad byte at line 3, byte 3"),
    ("interactions.csv", lambda: b"session_id,item_id,timestamp\n0,1,1\n0,1,1,5,6\n",
     r"interactions\.csv: not a valid CSV file: .*line 3"),
])
def test_unreadable_interaction_files_name_the_file_and_the_fault(tmp_path, name, make, pattern):
    folder = _write_bytes(tmp_path / "bad", name, make())
    with pytest.raises(DataValidationError, match=pattern):
        load_dataset(folder)


def test_unreadable_items_file_names_the_file(tmp_path):
    folder = write_dataset(tmp_path / "latin", [(0, 1, 1)])
    (folder / "items.csv").write_bytes("item_id,title\n1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataValidationError, match=r"items\.csv: not UTF-8 text, first bad byte at line 2"):
        load_dataset(folder)
    (folder / "items.csv").write_bytes(b"item_id,title\n1,a\n2,b,c,d\n")
    with pytest.raises(DataValidationError, match=r"items\.csv: not a valid CSV file"):
        load_dataset(folder)


def test_items_file_without_title_column_is_rejected_at_load(tmp_path):
    folder = write_dataset(tmp_path / "notitle", [(0, 1, 1)], items=[(1, "a")], item_columns=("item_id", "name"))
    with pytest.raises(DataValidationError,
                       match=r"items\.csv: missing column\(s\) \['title'\]; found \['item_id', 'name'\]"):
        load_dataset(folder)
    with pytest.raises(DataValidationError, match=r"no 'title' column; found \['item_id', 'name'\]"):
        item_texts(pd.DataFrame({"item_id": [1], "name": ["a"]}))


# ----------------------------------------------------------------------------- empty titles, duplicates


def test_empty_titles_are_counted_and_warned_once(tmp_path, recwarn):
    folder = write_dataset(tmp_path / "untitled", [(0, 1, 1), (0, 2, 2), (0, 3, 3)],
                           items=[(1, ""), (2, "   "), (3, "c")])
    ds = load_dataset(folder)
    warned = [w for w in recwarn if issubclass(w.category, DataWarning)]
    assert len(warned) == 1 and "2 item(s) have an empty title" in str(warned[0].message)
    assert "items.csv" in str(warned[0].message)
    assert ds.info["items_without_title"] == 2 and ds.statistics()["items_without_title"] == 2
    assert item_texts(ds).tolist() == ["", "", "c"]


EMPTY = ["", "  ", "&quot;"]  # empty, blank, and empty after the reference clean-up


@pytest.mark.parametrize("items,template,want", [
    # Beauty-like: the title alone
    (pd.DataFrame({"item_id": [0, 1, 2, 3], "title": ["A"] + EMPTY}), None, ["A", "", "", ""]),
    # MovieLens: "title (genres)", never the genres alone
    (pd.DataFrame({"item_id": [0, 1, 2, 3], "title": ["Heat (1995)"] + EMPTY, "genres": ["Action"] * 4}), None,
     ["Heat (1995) (Action)", "", "", ""]),
    # Steam-like: "name. Categories: ... Tags: ..."
    (pd.DataFrame({"item_id": [0, 1, 2, 3], "title": ["G"] + EMPTY, "category": ["RPG"] * 4, "tags": ["a|b"] * 4}),
     None, ["G. Categories: RPG. Tags: a, b", "", "", ""]),
    # a template's fixed words are not a text either
    (pd.DataFrame({"item_id": [0, 1, 2, 3], "title": ["X"] + EMPTY, "genres": ["g"] * 4}), "Movie: {title} [{genres}]",
     ["Movie: X [g]", "", "", ""]),
])
def test_item_texts_are_empty_when_the_title_is(items, template, want):
    assert item_texts(items, template=template).tolist() == want


def test_duplicates_are_in_info_and_statistics(tmp_path):
    folder = write_dataset(tmp_path / "dup2", [(0, 1, 1), (0, 1, 1), (0, 2, 2), (0, 2, 2), (0, 3, 3)])
    for policy, n_rows in (("drop", 3), ("keep", 5)):
        ds = load_dataset(folder, duplicates=policy)
        assert len(ds.interactions) == n_rows
        assert ds.n_duplicates == ds.info["n_duplicates"] == ds.statistics()["n_duplicates"] == 2
        assert ds.info["duplicates"] == policy
