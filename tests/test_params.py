"""List and mapping parameters given as text (papermill's ``-p``) are parsed or refused by name,
and every notebook passes its list and mapping parameters through the helpers."""
from __future__ import annotations

import ast

import nbformat
import pytest

from rec_utils.params import ParameterError, as_dict, as_list
from rec_utils.study import NOTEBOOK_DIR


@pytest.mark.parametrize("value, expected", [
    (["V-SKNN"], ["V-SKNN"]),
    (("V-SKNN", "SKNN"), ["V-SKNN", "SKNN"]),
    ('["V-SKNN"]', ["V-SKNN"]),          # what `-p MODELS '["V-SKNN"]'` passes
    ("[V-SKNN, SKNN]", ["V-SKNN", "SKNN"]),
    ("V-SKNN,SKNN", ["V-SKNN", "SKNN"]),
    (" V-SKNN ", ["V-SKNN"]),
    ("", []),
    ("[]", []),
    ("mean:harmonic, last", ["mean:harmonic", "last"]),
    ("none,no,on", ["none", "no", "on"]),  # words YAML 1.1 would turn into booleans stay text
])
def test_as_list_takes_a_list_or_a_string(value, expected):
    assert as_list(value, "MODELS") == expected


def test_as_list_converts_and_checks_item_types():
    assert as_list("0,1,2", "SEEDS", of=int) == [0, 1, 2]
    assert as_list("[0, 1]", "SEEDS", of=int) == [0, 1]
    assert as_list(["3"], "SEEDS", of=int) == [3]
    with pytest.raises(ParameterError, match=r"SEEDS\[1\] must be int, got 'x'"):
        as_list("0,x", "SEEDS", of=int)
    with pytest.raises(ParameterError, match=r"SEEDS\[0\] must be int, got True"):
        as_list([True], "SEEDS", of=int)


@pytest.mark.parametrize("value, message", [
    (3, "MODELS must be a list .*got int 3"),
    (None, "MODELS must be a list .*got NoneType None"),
    ({"a": 1}, "MODELS must be a list .*got dict"),
    ("{MODELS: [V-SKNN]}", "MODELS must be a list, got the mapping"),
    ("[V-SKNN", "MODELS: could not read '\\[V-SKNN' as a list"),
])
def test_as_list_refuses_anything_else_naming_the_parameter(value, message):
    with pytest.raises(ParameterError, match=message):
        as_list(value, "MODELS")


def test_as_dict_takes_a_dict_or_a_mapping_string():
    assert as_dict({"SASRec": {"epochs": 2}}, "CONFIG") == {"SASRec": {"epochs": 2}}
    assert as_dict('{"SASRec": {"epochs": 2}}', "CONFIG") == {"SASRec": {"epochs": 2}}
    assert as_dict("{SASRec: {epochs: 2}}", "CONFIG") == {"SASRec": {"epochs": 2}}
    assert as_dict("", "CONFIG") == {}
    for bad in ("[1, 2]", 3, "SASRec"):
        with pytest.raises(ParameterError, match="CONFIG must be a mapping"):
            as_dict(bad, "CONFIG")


# ------------------------------------------------------------------ the notebooks use them


def _cells(path):
    nb = nbformat.read(path, as_version=4)
    i = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    return nb.cells[i].source, nb.cells[i + 1].source


def _parsed_in(source: str) -> dict[str, str]:
    """``NAME = as_list(NAME, "NAME", ...)`` / ``as_dict`` statements: name -> helper."""
    out = {}
    for node in ast.parse(source).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)):
            name, call = node.targets[0].id, node.value
            args = call.args
            if (len(args) >= 2 and isinstance(args[0], ast.Name) and args[0].id == name
                    and isinstance(args[1], ast.Constant) and args[1].value == name):
                out[name] = call.func.id
    return out


@pytest.mark.parametrize("path", sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.stem)
def test_every_list_and_mapping_parameter_goes_through_the_helpers(path):
    params, following = _cells(path)
    wanted = {}
    for node in ast.parse(params).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, (ast.List, ast.Tuple, ast.Dict)):
            wanted[node.targets[0].id] = "as_dict" if isinstance(node.value, ast.Dict) else "as_list"
    assert _parsed_in(following) == wanted, f"{path.name}: the cell after `parameters` must parse {wanted}"
    assert any(f"results.{f}(DATASET, RESULTS_DIR)" in following for f in ("notebook_output", "output_dirs")), \
        f"{path.name}: results go through results.notebook_output (or output_dirs)"


@pytest.mark.parametrize("path", sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.stem)
def test_papermill_reads_every_parameter_with_its_comment(path):
    """papermill's inspection (``papermill --help-notebook``, its ``Passed unknown parameter``
    warning) gives up on a line with a second ``=`` (e.g. in the comment): every assigned name of
    the parameters cell must be among the parameters it reads, each with its help comment."""
    import papermill as pm

    params, _ = _cells(path)
    assigned = [n.targets[0].id for n in ast.parse(params).body if isinstance(n, ast.Assign)]
    seen = pm.inspect_notebook(str(path))
    assert sorted(seen) == sorted(assigned), f"{path.name}: papermill misses {sorted(set(assigned) - set(seen))}"
    assert all(p["help"] for p in seen.values()), f"{path.name}: a parameter without a comment"
