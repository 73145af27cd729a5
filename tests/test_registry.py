"""One registry for every extension point: every model name the notebooks and plans use builds
through build_model (LLMSeqPrompt and the hybrids included); providers come from one table."""
from __future__ import annotations

import json
import re

import pytest
import yaml

from rec_utils.models import FAMILIES, HYBRIDS, MODELS, REGISTRY, build_model
from rec_utils.text.embed import PROVIDERS
from rec_utils.utils import PROJECT_ROOT

MODEL_PARAMS = ("MODELS", "MODEL", "BASELINES", "SPREAD_MODELS", "LENGTH_MODELS", "HYBRIDS", "SEQUENTIAL")


def _model_names() -> set[str]:
    """Model names in the notebooks' parameter cells and in every plan's parameters."""
    names = set()

    def add(value):
        if isinstance(value, str):
            names.add(value)
        elif isinstance(value, dict):
            names.update(value)
        elif isinstance(value, list):
            names.update(v for v in value if isinstance(v, str))

    for path in sorted((PROJECT_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cell = next(c for c in json.loads(path.read_text())["cells"] if "parameters" in c["metadata"].get("tags", []))
        scope: dict = {}
        exec("".join(cell["source"]), scope)
        for p in MODEL_PARAMS:
            if p in scope and not (p == "MODEL" and path.stem in ("03_embeddings", "04_llmseqsim")):
                add(scope[p])  # 03/04's MODEL is an embedding model
    for plan in sorted((PROJECT_ROOT / "plans").glob("*.yaml")):
        for run in yaml.safe_load(plan.read_text())["runs"]:
            if run["notebook"].startswith(("03_", "04_")):
                continue
            for p in MODEL_PARAMS:
                add((run.get("parameters") or {}).get(p))
    return names


def test_every_model_name_the_notebooks_and_plans_use_is_registered_and_builds():
    names = _model_names() | {"LLMSeqPrompt"}  # notebook 06's model (its runs are keyed by that name)
    assert {"LLMSeqPrompt", "V-SKNN", "LLM2SASRec", "LLMSeqSim&Sequential"} <= names
    missing = sorted(names - set(MODELS))
    assert not missing, f"not in rec_utils.models.REGISTRY: {missing}"
    for name in sorted(names):
        model = build_model(name)
        assert model.get_config() is not None, name


def test_the_registry_is_the_one_source_of_names_families_and_hybrids():
    assert set(MODELS) == set(REGISTRY) and set(HYBRIDS) == set(FAMILIES["hybrid"])
    assert sorted(n for names in FAMILIES.values() for n in names) == sorted(REGISTRY)
    assert all(HYBRIDS[n].name == n for n in HYBRIDS)
    with pytest.raises(ValueError, match="unknown model 'Nope'"):
        build_model("Nope")


def test_every_provider_has_an_encoder_or_a_reader_and_a_default_model():
    for name, p in PROVIDERS.items():
        assert (p.encoder is None) != (p.reader is None) and p.default_model, name
        assert re.fullmatch(r"[a-z-]+", name)
