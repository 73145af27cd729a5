"""`make run` / `python -m rec_utils.adhoc`: one notebook with other parameters into a scratch
folder, parameters as papermill's command line gives them, unknown names refused."""
from __future__ import annotations

import pytest

from rec_utils import adhoc, results


def test_notebooks_are_found_by_name_file_or_prefix():
    assert adhoc.find_notebook("01_baselines").name == "01_baselines.ipynb"
    assert adhoc.find_notebook("notebooks/01_baselines.ipynb").name == "01_baselines.ipynb"
    assert adhoc.find_notebook("01").name == "01_baselines.ipynb"
    with pytest.raises(SystemExit, match="no notebook '99' .*known: 00_data, 01_baselines"):
        adhoc.find_notebook("99")


def test_a_run_goes_to_scratch_with_papermills_parameters(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(results.SCRATCH_ENV, raising=False)
    monkeypatch.setattr(results, "SCRATCH_ROOT", tmp_path / "scratch")
    seen = {}

    def fake_run(notebook, output, params, kernel, log_output):
        seen.update(notebook=notebook, output=output, params=params, env=adhoc.os.environ[results.SCRATCH_ENV])
        out, _ = results.output_dirs(params.get("DATASET", "beauty"), params.get("RESULTS_DIR"))
        (out / "runs" / "V-SKNN").mkdir(parents=True)
        (out / "runs" / "V-SKNN" / "r.json").write_text("{}")
        (out / "summary.csv").write_text("")
        return 3.0

    monkeypatch.setattr(adhoc, "papermill_run", fake_run)
    rc = adhoc.main(["01_baselines", "-p", "SAMPLE_SESSIONS", "500", "-p", "MODELS", '["V-SKNN"]',
                     "-y", "{SEEDS: [0, 1], PROTOCOL: loo}", "-p", "PROTOCOL", "temporal", "-r", "PRESET", "beauty"])
    assert rc == 0
    assert seen["params"] == {"SEEDS": [0, 1], "PROTOCOL": "temporal", "SAMPLE_SESSIONS": 500,
                              "MODELS": '["V-SKNN"]', "PRESET": "beauty"}, "-p after -y, as papermill"
    scratch = seen["output"].parent
    assert scratch.parent == tmp_path / "scratch" and seen["output"].name == "01_baselines.ipynb"
    assert seen["env"] == str(scratch), "the kernel writes next to the executed notebook"
    out = capsys.readouterr().out
    assert f"results: {scratch / 'beauty'}/" in out and "summary.csv; 1 run record(s) under runs/" in out


def test_an_unknown_parameter_is_refused_with_the_known_ones():
    with pytest.raises(SystemExit, match="01_baselines has no parameter SAMPLE_SESSION; its parameters: DATASET, "):
        adhoc.main(["01_baselines", "-p", "SAMPLE_SESSION", "500"])


@pytest.mark.parametrize("text, value", [("500", 500), ("0.5", 0.5), ("True", True), ("None", None),
                                         ('["V-SKNN"]', '["V-SKNN"]'), ("V-SKNN,SKNN", "V-SKNN,SKNN")])
def test_p_values_are_typed_as_papermill_types_them(text, value):
    assert adhoc.resolve_type(text) == value


def test_the_scratch_variable_is_only_set_for_the_run(tmp_path, monkeypatch):
    monkeypatch.delenv(results.SCRATCH_ENV, raising=False)
    monkeypatch.setattr(results, "SCRATCH_ROOT", tmp_path / "scratch")
    monkeypatch.setattr(adhoc, "papermill_run", lambda *a, **kw: 1.0)
    assert adhoc.main(["00"]) == 0
    assert results.SCRATCH_ENV not in adhoc.os.environ
