"""The offline-GPU kit (scripts/offline_gpu, scripts/trainer_log_from_notebook.py)."""
from __future__ import annotations

import importlib.util
import json

import pandas as pd

from rec_utils.utils import PROJECT_ROOT


def _script(name, path):
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "scripts" / path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_payload_ships_what_the_notebooks_import_and_never_the_gpu_machines_torch():
    payload = _script("payload", "offline_gpu/payload.py")
    need = payload.closure(payload.ROOTS)
    for name in ("papermill", "nbclient", "ipykernel", "jupyter-client", "transformers", "peft", "gguf"):
        assert name in need, name
    assert "torch" in need and "torch" in payload.NEVER  # sentence-transformers needs it; the GPU build stays


def test_an_interrupted_notebooks_trainer_log_becomes_its_loss_curve(tmp_path):
    logs = _script("tlog", "trainer_log_from_notebook.py")
    nb = {"cells": [
        {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]},
         "source": ['CONFIG = {"variant": "genlist", "n_train_cases": 2000}\n', "EVAL_SESSIONS = 500\n"], "outputs": []},
        {"cell_type": "code", "metadata": {"papermill": {"duration": None}}, "source": [], "outputs": [
            {"output_type": "stream", "text": ["{'eval_loss': '2.529', 'eval_runtime': '1.1', 'epoch': 0}\n",
                                               "{'loss': '2.693', 'grad_norm': '2.5', 'learning_rate': '5e-05', 'epoch': '0.004'}\n",
                                               "{'loss': '1.409', 'grad_norm': '1.1', 'learning_rate': '3e-07', 'epoch': '1.99'}\n"]}]},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "06_llmseqprompt__genlist-gpu.ipynb"
    path.write_text(json.dumps(nb))
    rows = pd.DataFrame(logs.curves(path, "test"))
    assert list(rows["kind"]) == ["eval", "train", "train"]
    assert list(rows["loss"]) == [2.529, 2.693, 1.409] and list(rows["epoch"]) == [0.0, 0.004, 1.99]
    assert (rows["variant"] == "genlist").all()
