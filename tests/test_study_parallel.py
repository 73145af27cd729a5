"""Parallel plan runs (rec_utils.study --workers): dependency waves, and a plan on 2 local
workers storing every (model, setting, seed) run exactly once."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from rec_utils import results, study
from conftest import write_dataset


def fake_runs(names):
    return [{"name": f"{n}#{i}", "input": Path(f"notebooks/{n}.ipynb")} for i, n in enumerate(names)]


def test_a_run_waits_for_earlier_runs_of_smaller_notebook_numbers():
    runs = fake_runs(["00_data", "01_baselines", "01_baselines", "03_embeddings", "04_llmseqsim",
                      "02_sequential", "05_llm2sequential", "11_results"])
    got = [[r["name"].split("#")[0] for r in w] for w in study.waves(runs)]
    assert got == [["00_data"], ["01_baselines", "01_baselines"], ["03_embeddings", "02_sequential"],
                   ["04_llmseqsim"], ["05_llm2sequential"], ["11_results"]]
    # a later run of a smaller number does not make an earlier, larger one wait
    assert [len(w) for w in study.waves(fake_runs(["04_llmseqsim", "03_embeddings"]))] == [2]
    assert study.waves([]) == []


def test_plan_on_two_workers_stores_every_run_once(tmp_path):
    rng = np.random.default_rng(0)
    rows = [(s, int(i), 1000 * s + j) for s in range(80) for j, i in enumerate(rng.integers(0, 25, size=4))]
    data = write_dataset(tmp_path / "toyshop", rows, [(i, f"item {i}") for i in range(25)])
    # two runs at once that share the V-SKNN run of seed 1 (random sampling: seeded)
    plan = {"description": "two workers", "defaults": {"DATASET": str(data), "PRESET": "beauty"},
            "runs": [{"notebook": "01_baselines", "tag": "a", "parameters": {"MODELS": ["MostPopular", "V-SKNN"], "SEEDS": [0, 1]}},
                     {"notebook": "01_baselines", "tag": "b", "parameters": {"MODELS": ["V-SKNN"], "SEEDS": [1, 2]}}]}
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    out = tmp_path / "results"
    assert study.main([str(tmp_path / "plan.yaml"), "--out", str(out), "--workers", "2"]) == 0

    res = out / "toyshop"
    stored = sorted(res.glob("runs/*/*.json"))
    records = [json.loads(p.read_text()) for p in stored]
    keys = [(r["model"], r["setting_id"], r["seed"]) for r in records]
    assert len(keys) == len(set(keys))  # one file per run
    assert sorted((m, s) for m, _, s in keys) == [("MostPopular", 0), ("V-SKNN", 0), ("V-SKNN", 1), ("V-SKNN", 2)]
    assert all(p.with_suffix(".npz").is_file() for p in stored)
    summary = results.read_summary(res)
    mean = summary[summary["aggregate"] == "mean"]
    assert mean.groupby(["model", "setting_id"]).size().max() == 1  # one row per setting
    assert mean.set_index("model").loc["V-SKNN", "seeds"] == "0 1 2"  # every stored seed, whichever worker ran it
    assert all((res / "notebooks" / f"01_baselines__{t}.done.json").is_file() for t in "ab")
    # resumed: nothing left to run
    assert study.main([str(tmp_path / "plan.yaml"), "--out", str(out), "--workers", "2"]) == 0
    assert sorted(res.glob("runs/*/*.json")) == stored
