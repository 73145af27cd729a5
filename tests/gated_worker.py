"""``python -m rec_utils.tuning.worker`` with gates a test controls, so that a test acts at a
known point *inside* a trial instead of racing a running process.

Run as ``python tests/gated_worker.py <worker arguments>`` (the project on ``PYTHONPATH``). It
wraps :func:`rec_utils.tuning.optuna_search.suggest`, the step where a trial draws its parameters,
and then calls the real worker's ``main``; nothing else changes. The gates, from the environment:

``GATE_DIR``
    folder of the gate files (required when a gate is set).
``GATE_HOLD_TRIAL=<n>``
    trial number ``n`` draws its parameters, records a heartbeat, writes ``GATE_DIR/held.json``
    (``{"number": n, "params": {...}}``, atomically) and then blocks for ever: the worker is
    inside a RUNNING trial, with its heartbeat thread alive, until the test kills it.
``GATE_BARRIER=<k>``
    each worker's first trial writes ``GATE_DIR/started-<pid>`` after drawing its parameters
    and waits until ``k`` such files exist: every one of ``k`` workers is inside a trial before
    any of them finishes one, however the machine schedules their start-up.

Waiting loops poll files that are certain to appear; their outcome never depends on timing. The
only clock is a guard (``GATE_TIMEOUT_S``, default 600 s) that turns a broken test into an error
instead of a hang.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from rec_utils.tuning import optuna_search
from rec_utils.tuning.worker import main

_suggest = optuna_search.suggest
_state = {"first": True}


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + float(os.environ.get("GATE_TIMEOUT_S", 600))
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gated_worker: gave up waiting for {what}")
        time.sleep(0.02)


def gated_suggest(trial, space):
    params = _suggest(trial, space)
    gate = Path(os.environ["GATE_DIR"]) if "GATE_DIR" in os.environ else None
    if "GATE_BARRIER" in os.environ and _state["first"]:
        _state["first"] = False
        (gate / f"started-{os.getpid()}").touch()
        k = int(os.environ["GATE_BARRIER"])
        _wait_for(lambda: len(list(gate.glob("started-*"))) >= k, f"{k} workers inside a trial")
    if "GATE_HOLD_TRIAL" in os.environ and trial.number == int(os.environ["GATE_HOLD_TRIAL"]):
        # Optuna's heartbeat thread records its first beat asynchronously, and a trial that never
        # had one is never taken for stale: beat once here, so the trial is certain to have one
        # when the test kills this process.
        trial.study._storage.record_heartbeat(trial._trial_id)
        tmp = gate / "held.json.tmp"
        tmp.write_text(json.dumps({"number": trial.number, "params": trial.params}))
        tmp.replace(gate / "held.json")
        threading.Event().wait()  # held inside the trial until the test kills this process
    return params


optuna_search.suggest = gated_suggest

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
