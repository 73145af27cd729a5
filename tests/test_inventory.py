"""results/index.csv (rec_utils.inventory): every file under results/ mapped to its setting; one
short naming rule for side files (rec_utils.results.artifact_path)."""
from __future__ import annotations

import pandas as pd
import pytest

from rec_utils import inventory, results
from rec_utils.data import load_dataset
from rec_utils.evaluation import run_seeds
from rec_utils.models import build_model
from rec_utils.setting import Setting
from rec_utils.split import make_split


def test_the_committed_index_covers_every_file_and_no_path_is_too_long():
    assert inventory.check() == [], "run .venv/bin/python -m rec_utils.inventory and commit results/index.csv"


def test_side_file_names_are_short_and_map_back_to_their_label():
    long_label = ",".join(f"option_{i}=value_{i}" for i in range(20))
    path = results.artifact_path(results.RESULTS_ROOT / "beauty", "06_output_shares", "temporal", long_label)
    assert len(path.name) == len("06_output_shares__") + 10 + len(".csv")
    assert results.artifact_path(results.RESULTS_ROOT, "x", "temporal", "").name == "x.csv"  # the standard split
    assert results.artifact_path(results.RESULTS_ROOT, "x", "loo", "").name != "x.csv"


def test_the_index_lists_runs_with_their_status_and_artifacts_with_their_label(tmp_path, tiny_folder):
    root = tmp_path / "results"
    split = make_split(load_dataset(tiny_folder), "loo", tie_order="file")
    setting = Setting.of("MostPopular", split, preset=None)
    out = root / "tiny"
    runs = run_seeds(lambda seed: build_model("MostPopular", seed=seed), split, setting, out_dir=out, notebook="nb")
    results.record(runs, out)
    orphan = Setting.of("MostPopular", split, preset=None, config={"exclude_prompt_items": True},
                        overrides={"exclude_prompt_items": True})
    run_seeds(lambda seed: build_model("MostPopular", exclude_prompt_items=True, seed=seed), split, orphan,
              out_dir=out, notebook="nb")  # stored, never summarised
    side = results.artifact_path(out, "bands", "loo", setting.label)
    pd.DataFrame({"a": [1]}).to_csv(side, index=False)
    index = inventory.build_index(root).set_index("path")
    run_rows = index[index["kind"] == "run"]
    assert sorted(run_rows["status"]) == ["no summary row", "summary"]
    assert set(run_rows["setting_id"]) == {setting.id, orphan.id}
    assert (index["kind"] == "run lists").sum() == 2
    art = index.loc[inventory._shown(side)]
    assert (art["kind"], art["protocol"], art["label"]) == ("artifact", "loo", setting.label)
    assert inventory.check(root)[-1].endswith("run python -m rec_utils.inventory")  # no index yet
    inventory.write_index(root)
    assert inventory.check(root) == []
    (out / ("x" * 130 + ".csv")).write_text("a\n")
    problems = inventory.check(root)
    assert any("characters (> 120)" in p for p in problems) and any("not in the index" in p for p in problems)


def test_a_side_table_of_runs_is_named_by_its_settings_and_carries_its_labels(tmp_path):
    curves = pd.DataFrame({"protocol": ["loo", "loo"], "setting_id": ["b" * 12, "a" * 12],
                           "label": ["tie_order=file", ""], "epoch": [1, 1], "loss": [9.0, 8.5]})
    path = results.save_side_table(tmp_path / "results" / "tiny", "neural_curves", curves)
    again = results.save_side_table(tmp_path / "results" / "tiny", "neural_curves", curves.iloc[::-1])
    other = results.save_side_table(tmp_path / "results" / "tiny", "neural_curves", curves.iloc[:1])
    assert path == again != other  # the settings name the file, not the row order
    assert len(path.name) == len("neural_curves__") + 10 + len(".csv")
    assert list(pd.read_csv(path).columns[:3]) == list(results.SIDE_TABLE_COLUMNS)
    path.with_suffix(".png").write_bytes(b"png")
    index = inventory.build_index(tmp_path / "results").set_index("path")
    for f in (path, path.with_suffix(".png")):  # a figure reads the labels of its table
        row = index.loc[inventory._shown(f)]
        assert (row["protocol"], row["label"]) == ("loo", "(default) | tie_order=file")
    with pytest.raises(ValueError, match="setting_id"):
        results.save_side_table(tmp_path, "x", curves.drop(columns="setting_id"))
