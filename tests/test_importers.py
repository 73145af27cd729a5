"""Importers (rec_utils.importers): each format from a small file written here, the paper's
k-core with its per-round counts, the provenance, the CLI, an imported folder that loads and
splits, the shipped MovieLens set rebuilt from its raw files; and the bad input every reader
refuses (ids spelled two ways, mixed timestamp units) naming file, column, line and values."""
from __future__ import annotations

import gzip
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from rec_utils.data import DATA_ROOT, DataValidationError, DataWarning, load_dataset
from rec_utils.importers import import_amazon, import_movielens, import_recbole
from rec_utils.importers.__main__ import main as cli
from rec_utils.split import make_split

#: imports without a metadata file warn that no item has a title (asserted where it matters)
pytestmark = pytest.mark.filterwarnings("ignore:.*no item has a title:rec_utils.data.DataWarning")
DAY = 86400
T0 = 1_400_000_000 - 1_400_000_000 % DAY  # a midnight UTC, as Amazon's unixReviewTime


def _lines(path, lines, gz=False):
    text = "\n".join(lines) + "\n"
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def _read(folder):
    inter = pd.read_csv(folder / "interactions.csv.gz")
    items = pd.read_csv(folder / "items.csv", keep_default_na=False)
    return inter, items, json.loads((folder / "import.json").read_text())


# ----------------------------------------------------------------------------- Amazon


def _beauty_like():
    """Reviewers r1..r6 review items A..E on days 0..4; r7 reviews A..D and F (F only by r7),
    so the 5-core needs two rounds: F goes (round 1), then r7 with 4 reviews (round 2). r1
    reviews A twice (kept: duplicates are not removed for Beauty)."""
    rows = []
    for u in range(1, 7):
        rows += [(f"r{u}", a, T0 + d * DAY) for d, a in enumerate("ABCDE")]
    rows += [("r7", a, T0 + d * DAY) for d, a in enumerate("ABCDF")]
    rows.append(("r1", "A", T0 + 9 * DAY))
    return rows


def _amazon_2014(tmp_path):
    recs = [{"reviewerID": u, "asin": a, "unixReviewTime": t, "overall": 5.0, "helpful": [0, 0],
             "reviewTime": "01 1, 2014"} for u, a, t in _beauty_like()]
    lines = [json.dumps(r) for r in recs]
    lines[3] = repr(recs[3])  # a "loose JSON" line: a Python literal with single quotes
    reviews = _lines(tmp_path / "reviews_Beauty.json.gz", lines, gz=True)
    # 2014 metadata: Python literals; item E has none, item A a quote and an entity in its title
    meta = [{"asin": "A", "title": "Rosewater 'Toner' &amp; mist", "categories": [["Beauty"]]},
            {"asin": "B", "title": "Shampoo"}, {"asin": "C", "title": "Nail polish"}, {"asin": "D"},
            {"asin": "F", "title": "Rare"}]
    meta_file = _lines(tmp_path / "meta_Beauty.json.gz", [repr(m) for m in meta], gz=True)
    return reviews, meta_file


def test_amazon_2014_loose_json_is_the_papers_5_core_with_counts_per_round(tmp_path):
    reviews, meta = _amazon_2014(tmp_path)
    res = import_amazon(reviews, tmp_path / "beauty", meta, show_progress=False)
    inter, items, prov = _read(res.folder)
    # sessions r1..r6 → 0..5 and items A..E → 0..4 in sorted key order; F and r7 are gone
    assert sorted(inter["session_id"].unique()) == [0, 1, 2, 3, 4, 5]
    assert items["asin"].tolist() == list("ABCDE") and items["item_id"].tolist() == [0, 1, 2, 3, 4]
    assert len(inter) == 31  # 6 × 5 + r1's second review of A (kept)
    steps = [(s["step"], s["sessions"], s["items"], s["interactions"]) for s in prov["steps"]]
    assert steps == [("read", 7, 6, 36),
                     ("5-core round 1: sessions < 5 dropped", 7, 6, 36),
                     ("5-core round 1: items < 5 dropped", 7, 5, 35),
                     ("5-core round 2: sessions < 5 dropped", 6, 5, 31),
                     ("5-core round 2: items < 5 dropped", 6, 5, 31),
                     ("written", 6, 5, 31)]
    assert prov["format"] == "amazon 2014" and prov["timestamp"]["unit"] == "s"
    assert prov["timestamp"]["day_resolution"] and prov["repeated_session_item_pairs"] == 1
    assert prov["items_without_metadata"] == 1 and prov["items_without_title"] == 2  # E: no meta; D: no title
    assert any("Python literals" in n for n in prov["notes"])
    assert items.loc[0, "title"] == "Rosewater 'Toner' &amp; mist"  # stored as found; item_texts cleans
    assert pd.read_csv(res.folder / "session_ids.csv")["reviewer_id"].tolist() == [f"r{u}" for u in range(1, 7)]
    md = (res.folder / "PROVENANCE.md").read_text()
    assert prov["sources"][0]["md5"] in md and "| 5-core round 2: sessions < 5 dropped | 6 | 5 | 31 |" in md


def test_amazon_duplicates_first_keeps_each_pair_once(tmp_path):
    reviews, meta = _amazon_2014(tmp_path)
    res = import_amazon(reviews, tmp_path / "b", meta, duplicates="first", show_progress=False)
    inter, _, prov = _read(res.folder)
    assert len(inter) == 30 and not inter.duplicated(["session_id", "item_id"]).any()
    first_a = inter[(inter.session_id == 0) & (inter.item_id == 0)]["timestamp"].tolist()
    assert first_a == [T0]  # the earliest review of the pair is kept
    assert prov["steps"][1]["step"] == "repeated (session, item) pairs: first kept"


def test_amazon_2018_json_and_ratings_csv_give_the_same_interactions(tmp_path):
    rows = _beauty_like()
    recs = [json.dumps({"reviewerID": u, "asin": a, "unixReviewTime": t, "overall": 4.0, "verified": True})
            for u, a, t in rows]
    csv = _lines(tmp_path / "ratings_Beauty.csv.gz", [f"{u},{a},4.0,{t}" for u, a, t in rows], gz=True)
    with pytest.warns(DataWarning, match="no item has a title.*no metadata file was given"):
        r2018 = import_amazon(_lines(tmp_path / "Beauty.json", recs), tmp_path / "a18", show_progress=False)
        rcsv = import_amazon(csv, tmp_path / "acsv", show_progress=False)
    assert r2018.provenance["format"] == "amazon 2018" and rcsv.provenance["format"] == "amazon ratings CSV"
    pd.testing.assert_frame_equal(_read(r2018.folder)[0], _read(rcsv.folder)[0])
    assert _read(r2018.folder)[1]["title"].eq("").all()  # no metadata given


def test_amazon_2023_jsonl_uses_parent_asin_and_milliseconds(tmp_path):
    ms = 1_600_000_000_000
    recs = []
    for u in range(3):
        # two reviews in the same second: the milliseconds order them (item Z before item Y)
        recs += [{"user_id": f"U{u}", "asin": f"Z{u}", "parent_asin": "PZ", "timestamp": ms + 100, "rating": 5.0},
                 {"user_id": f"U{u}", "asin": "Y", "parent_asin": "PY", "timestamp": ms + 900, "rating": 3.0},
                 {"user_id": f"U{u}", "asin": "X", "parent_asin": "PX", "timestamp": ms + 5000, "rating": 4.0,
                  "title": "a review's title, not the product's"}]
    reviews = _lines(tmp_path / "All_Beauty.jsonl", [json.dumps(r) for r in recs])
    meta = _lines(tmp_path / "meta_All_Beauty.jsonl",
                  [json.dumps({"parent_asin": p, "title": f"product {p}", "main_category": "Beauty"})
                   for p in ("PX", "PY", "PZ")])
    res = import_amazon(reviews, tmp_path / "a23", meta, k_core=2, show_progress=False)
    inter, items, prov = _read(res.folder)
    assert prov["format"] == "amazon 2023" and prov["timestamp"]["unit"] == "ms"
    assert items["parent_asin"].tolist() == ["PX", "PY", "PZ"]
    assert items["title"].tolist() == ["product PX", "product PY", "product PZ"]
    s0 = inter[inter.session_id == 0]
    assert s0["timestamp"].tolist() == [ms // 1000, ms // 1000, ms // 1000 + 5]
    assert s0["item_id"].tolist() == [2, 1, 0]  # PZ (…100 ms) before PY (…900 ms), not by id


def test_amazon_bad_lines_name_file_line_and_field(tmp_path):
    good = json.dumps({"reviewerID": "a", "asin": "x", "unixReviewTime": T0, "overall": 5.0})
    bad = _lines(tmp_path / "r.json", [good, "{'reviewerID': 'b', 'asin': ", good])
    with pytest.raises(DataValidationError, match=r"r\.json: line 2 is neither JSON .* nor a Python literal"):
        import_amazon(bad, tmp_path / "o", show_progress=False)
    missing = _lines(tmp_path / "m.json", [good, json.dumps({"reviewerID": "b", "asin": "y", "overall": 1.0})])
    with pytest.raises(DataValidationError, match=r"m\.json: line 2: field 'unixReviewTime' is missing"):
        import_amazon(missing, tmp_path / "o", show_progress=False)
    text_time = _lines(tmp_path / "t.json", [good, good.replace(str(T0), '"01 30, 2014"')])
    with pytest.raises(DataValidationError, match=r"t\.json: column 'unixReviewTime': line 2 has '01 30, 2014', not a number"):
        import_amazon(text_time, tmp_path / "o", k_core=0, show_progress=False)


# ----------------------------------------------------------------------------- MovieLens


def _ml_ratings():
    return [(1, 10, 4.0, 978300760), (1, 20, 3.5, 978300761), (1, 30, 5.0, 978300761),
            (2, 20, 1.0, 978302109), (2, 10, 2.0, 978301968), (3, 30, 4.5, 978200000)]


def _check_ml(res, latin_title="Café (1999)"):
    inter, items, prov = _read(res.folder)
    assert inter["session_id"].tolist() == [1, 1, 1, 2, 2, 3]  # MovieLens ids are kept
    assert inter["item_id"].tolist() == [10, 20, 30, 10, 20, 30]  # time order; same second: by id
    assert items.set_index("item_id").loc[30, "title"] == latin_title
    assert items.set_index("item_id").loc[10, "genres"] == "Action|Comedy"
    assert prov["timestamp"]["unit"] == "s" and prov["ids"]["items"] == "source ids"
    return inter, items, prov


def test_movielens_csv(tmp_path):
    d = tmp_path / "ml-latest-small"
    d.mkdir()
    _lines(d / "ratings.csv", ["userId,movieId,rating,timestamp"] + [",".join(map(str, r)) for r in _ml_ratings()])
    _lines(d / "movies.csv", ["movieId,title,genres", "10,Heat (1995),Action|Comedy", "20,\"Big, Fish (2003)\",Drama",
                              "30,Café (1999),(no genres listed)"])
    inter, items, prov = _check_ml(import_movielens(d, tmp_path / "out"))
    assert items.set_index("item_id").loc[20, "title"] == "Big, Fish (2003)"
    assert prov["format"].startswith("movielens ratings.csv")


def test_movielens_1m_dat_latin1(tmp_path):
    d = tmp_path / "ml-1m"
    d.mkdir()
    _lines(d / "ratings.dat", ["::".join(map(str, (u, i, int(r), t))) for u, i, r, t in _ml_ratings()])
    (d / "movies.dat").write_bytes("10::Heat (1995)::Action|Comedy\n20::Star Wars: Episode IV (1977)::Sci-Fi\n"
                                   "30::Café (1999)::Drama\n".encode("latin-1"))
    inter, items, prov = _check_ml(import_movielens(d / "ratings.dat", tmp_path / "out"))
    assert items.set_index("item_id").loc[20, "title"] == "Star Wars: Episode IV (1977)"
    assert prov["format"].startswith("movielens ratings.dat")


def test_movielens_100k_u_data_with_genre_flags(tmp_path):
    d = tmp_path / "ml-100k"
    d.mkdir()
    _lines(d / "u.data", ["\t".join(map(str, (u, i, int(r), t))) for u, i, r, t in _ml_ratings()])
    flags = {10: {"Action", "Comedy"}, 20: {"Drama"}, 30: set()}
    genres = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
              "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]
    rows = [f"{i}|{t}|01-Jan-1995||http://x|" + "|".join("1" if g in flags[i] else "0" for g in genres)
            for i, t in ((10, "Heat (1995)"), (20, "Se7en (1995)"), (30, "Café (1999)"))]
    (d / "u.item").write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    _lines(d / "u.genre", [f"{g}|{k}" for k, g in enumerate(genres)])
    inter, items, prov = _check_ml(import_movielens(d, tmp_path / "out"))
    assert items.set_index("item_id").loc[20, "genres"] == "Drama"
    assert "u.genre" in [s["name"] for s in prov["sources"]]


def test_shipped_movielens_is_rebuilt_exactly_from_its_raw_files(tmp_path):
    raw = DATA_ROOT / "ml-latest-small" / "raw"
    res = import_movielens(raw / "ratings.csv.gz", tmp_path / "ml-latest-small", raw / "movies.csv")
    shipped = load_dataset("ml-latest-small")
    imported = load_dataset(res.folder)
    pd.testing.assert_frame_equal(imported.interactions, shipped.interactions)
    pd.testing.assert_frame_equal(imported.items, shipped.items)
    assert make_split(imported).fingerprint == make_split(shipped).fingerprint


# ----------------------------------------------------------------------------- RecBole


def test_recbole_atomic_files_with_typed_headers(tmp_path):
    inter = _lines(tmp_path / "ml.inter", ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
                   + [f"{u}\t{i}\t{r}\t{t}.0" for u, i, r, t in _ml_ratings()])
    item = _lines(tmp_path / "ml.item", ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq",
                                         "10\tHeat\t1995\tAction Comedy", "20\tSe7en\t1995\tDrama",
                                         "30\tCafé\t1999\tDrama"])
    res = import_recbole(inter, tmp_path / "out", item, min_rating=2.0)
    out, items, prov = _read(res.folder)
    assert prov["columns"] == {"session": "user_id:token", "item": "item_id:token", "time": "timestamp:float"}
    assert [s["step"] for s in prov["steps"]] == ["read", "rating >= 2", "written"]
    assert len(out) == 5 and out["timestamp"].dtype == np.int64  # the 1.0 rating went; times are integers
    assert list(items.columns) == ["item_id", "title", "release_year", "class"]
    assert items.set_index("item_id").loc[10, "class"] == "Action Comedy"


def test_recbole_names_a_missing_field(tmp_path):
    inter = _lines(tmp_path / "x.inter", ["uid:token\titem_id:token\tts:float", "1\t2\t3"])
    with pytest.raises(DataValidationError, match=r"x\.inter: line 1: no user field 'user_id'; fields: \['uid', 'item_id', 'ts'\]"):
        import_recbole(inter, tmp_path / "o")
    res = import_recbole(inter, tmp_path / "o", user_field="uid", time_field="ts")
    assert _read(res.folder)[0].shape == (1, 3)
    bad = _lines(tmp_path / "y.inter", ["user_id\titem_id:token\ttimestamp:float", "1\t2\t3"])
    with pytest.raises(DataValidationError, match=r"y\.inter: line 1: header column 'user_id' is not 'name:type'"):
        import_recbole(bad, tmp_path / "o2")


# ----------------------------------------------------------------------------- bad input: ids, units


def _ratings_csv(path, rows):
    return _lines(path, ["userId,movieId,rating,timestamp"] + [",".join(map(str, r)) for r in rows])


@pytest.mark.parametrize("a,b", [(" 42", "42"), ("007", "7")])
def test_ids_spelled_two_ways_are_refused_with_file_line_and_values(tmp_path, a, b):
    f = _ratings_csv(tmp_path / "ratings.csv", [(1, a, 4, 978300760), (1, 5, 4, 978300761), (2, b, 3, 978300762)])
    with pytest.raises(DataValidationError) as e:
        import_movielens(f, tmp_path / "o")
    msg = str(e.value)
    assert "ratings.csv" in msg and "'movieId'" in msg and f"{a!r} (line 2)" in msg and f"{b!r} (line 4)" in msg
    assert not (tmp_path / "o").exists()  # nothing written


def test_item_ids_spelled_differently_in_the_movies_file_are_refused(tmp_path):
    f = _ratings_csv(tmp_path / "ratings.csv", [(1, 7, 4, 978300760)])
    m = _lines(tmp_path / "movies.csv", ["movieId,title,genres", "007,Bond,Action"])
    with pytest.raises(DataValidationError, match=r"'7' \(.*ratings\.csv, column 'movieId', line 2\), '007' "
                                                  r"\(.*movies\.csv, column 'movieId', line 2\)"):
        import_movielens(f, tmp_path / "o", m)


def _half_ms(tmp_path):
    """Sessions 1 and 2 in seconds, 3 and 4 in milliseconds."""
    rows = []
    for u in (1, 2, 3, 4):
        scale = 1000 if u > 2 else 1
        rows += [(u, i, 4, (1_500_000_000 + 60 * i + u) * scale) for i in (1, 2, 3)]
    return _ratings_csv(tmp_path / "ratings.csv", rows)


def test_mixed_timestamp_units_are_refused_naming_sessions_lines_values(tmp_path):
    f = _half_ms(tmp_path)
    with pytest.raises(DataValidationError) as e:
        import_movielens(f, tmp_path / "o")
    msg = str(e.value)
    assert "ratings.csv: column 'timestamp': timestamps in mixed units" in msg
    assert "2 session(s) with times in seconds (1, 2; e.g. session 1 line 2: 1500000061)" in msg
    assert "2 session(s) with times in milliseconds (3, 4; e.g. session 3 line 8: 1500000063000)" in msg


def test_mixed_timestamp_units_normalised_on_request_with_a_warning(tmp_path):
    f = _half_ms(tmp_path)
    with pytest.warns(DataWarning, match=r"normalised to seconds row by row \(sessions converted: 3, 4\)"):
        res = import_movielens(f, tmp_path / "o", mixed_units="normalise")
    inter = _read(res.folder)[0]
    assert inter["timestamp"].between(1_500_000_000, 1_500_001_000).all()
    with pytest.raises(DataValidationError, match=r"declared unit 'ms', but the times look like 's'"):
        import_movielens(_ratings_csv(tmp_path / "r2.csv", [(1, 1, 4, 1_500_000_000)]), tmp_path / "o2",
                         timestamp_unit="ms")


def test_loader_refuses_ids_spelled_two_ways_and_mixed_units(tmp_path):
    from conftest import write_dataset

    folder = write_dataset(tmp_path / "pad", [(0, "007", 1), (0, "7", 2), (1, "8", 3)])
    with pytest.raises(DataValidationError, match=r"interactions\.csv\.gz: column 'item_id': 2 spellings of one id "
                                                  r"differ only by padding or spaces: '007' \(line 2\), '7' \(line 3\)"):
        load_dataset(folder)
    folder = write_dataset(tmp_path / "hdr", [(0, "007", 1), (0, "7", 2)], header="session_id, item_id, timestamp")
    with pytest.raises(DataValidationError, match=r"column 'item_id': .*'007' \(line 2\), '7' \(line 3\)"):
        load_dataset(folder)  # a header with spaces too
    folder = write_dataset(tmp_path / "sp", [(0, 1, 1), (" 0", 2, 2)])
    with pytest.raises(DataValidationError, match=r"column 'session_id': .*'0' \(line 2\), ' 0' \(line 3\)"):
        load_dataset(folder)
    folder = write_dataset(tmp_path / "units", [(0, 1, 1_500_000_000), (0, 2, 1_500_000_001),
                                                (1, 1, 1_500_000_000_000), (1, 2, 1_500_000_001_000)])
    with pytest.raises(DataValidationError, match=r"interactions\.csv\.gz: column 'timestamp': timestamps in mixed units: "
                                                  r"1 session\(s\) with times in seconds \(0; e\.g\. session 0 line 2"):
        load_dataset(folder)
    folder = write_dataset(tmp_path / "items", [(0, 7, 1)], items=[("007", "a"), ("7", "b")])
    with pytest.raises(DataValidationError, match=r"items\.csv: column 'item_id': .*'007' \(line 2\), '7' \(line 3\)"):
        load_dataset(folder)


def test_unparseable_rows_and_ratings_name_file_and_line(tmp_path):
    ragged = _lines(tmp_path / "ratings.csv", ["userId,movieId,rating,timestamp", "1,2,3,4", "1,2,3,4,5,6"])
    with pytest.raises(DataValidationError, match=r"ratings\.csv: not a valid delimited file: .*line 3"):
        import_movielens(ragged, tmp_path / "o")
    blank = _lines(tmp_path / "b.csv", ["userId,movieId,rating,timestamp", "1,2,3,978300760", "", "1,3,3,x"])
    with pytest.raises(DataValidationError, match=r"b\.csv: column 'timestamp': line 4 has 'x', not a number"):
        import_movielens(blank, tmp_path / "o")  # the blank line is counted
    no_rating = _ratings_csv(tmp_path / "r.csv", [(1, 2, 3, 978300760), (1, 3, "", 978300761)])
    with pytest.raises(DataValidationError, match=r"r\.csv: min_rating: the rating on line 3 is missing"):
        import_movielens(no_rating, tmp_path / "o", min_rating=3)


# ----------------------------------------------------------------------------- end to end, CLI


def test_imported_amazon_folder_loads_and_splits(tmp_path):
    reviews, meta = _amazon_2014(tmp_path)
    res = import_amazon(reviews, tmp_path / "beauty-mini", meta, show_progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # D and E have no title
        ds = load_dataset(res.folder, duplicates="keep")
        again = load_dataset(res.folder, duplicates="keep")
    assert (ds.n_sessions, ds.n_items, len(ds.interactions)) == (6, 5, 31)
    assert ds.info["items_without_title"] == 2
    split = make_split(ds, "loo", tie_order="file")
    assert len(split.test) == 6 and split.train["item_id"].isin(range(5)).all()
    assert make_split(ds, "temporal").fingerprint == make_split(again, "temporal").fingerprint


def test_cli_writes_a_folder_and_reports_bad_input(tmp_path, capsys):
    d = tmp_path / "ml"
    d.mkdir()
    _ratings_csv(d / "ratings.csv", _ml_ratings())
    _lines(d / "movies.csv", ["movieId,title,genres", "10,Heat,Action", "20,Fish,Drama", "30,Cafe,Drama"])
    assert cli(["movielens", str(d), "--out", str(tmp_path / "out"), "--k-core", "2"]) == 0
    out = capsys.readouterr().out
    assert "2-core round 1: sessions < 2 dropped" in out and load_dataset(tmp_path / "out").n_sessions == 2
    assert cli(["movielens", str(d), "--out", str(tmp_path / "out")]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert cli(["movielens", str(_half_ms(tmp_path)), "--out", str(tmp_path / "o2")]) == 2
    assert "timestamps in mixed units" in capsys.readouterr().err
