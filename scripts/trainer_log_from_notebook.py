"""Recover the fine-tuning curves of executed (or interrupted) notebook-06 runs from the Trainer's
printed log lines, for runs that never reached their run record (a notebook killed at a time limit
keeps its outputs up to there)::

    python scripts/trainer_log_from_notebook.py results/x/06_llmseqprompt__genlist-gpu.ipynb ... \\
        --note "H200, 14da1ca, killed at 145 s" --out results/benchmarks/llmseqprompt_gpu_curves.csv

One row per logged dict (``loss`` or ``eval_loss`` with its ``epoch``), with the notebook's
parameters (CONFIG, EVAL_SESSIONS, DEVICE), its cell durations so far and the note. Rows of the
same notebook name in an existing ``--out`` are replaced (atomic write).
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from rec_utils.utils import atomic_write_text  # noqa: E402

LOG = re.compile(r"\{'(?:loss|eval_loss)'[^{}]*\}")


def curves(path: Path, note: str) -> list[dict]:
    nb = json.loads(path.read_text())
    params = next((c for c in nb["cells"] if "injected-parameters" in c.get("metadata", {}).get("tags", [])), None)
    injected = {}
    for line in "".join(params["source"]).splitlines() if params else []:
        if "=" in line and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            try:
                injected[k.strip()] = ast.literal_eval(v.strip())
            except (ValueError, SyntaxError):
                injected[k.strip()] = v.strip()
    ran_s = sum(float(c.get("metadata", {}).get("papermill", {}).get("duration") or 0) for c in nb["cells"])
    rows = []
    for c in nb["cells"]:
        for o in c.get("outputs", []):
            text = o.get("text") or ""
            for m in LOG.finditer("".join(text) if isinstance(text, list) else str(text)):
                text_d = re.sub(r"(?<!['\w])(nan|inf|-inf)(?![\w'])", r"'\1'", m.group(0))  # unquoted nan / inf
                d = {k: float(v) for k, v in ast.literal_eval(text_d).items()}
                rows.append({"notebook": path.name, "variant": injected.get("CONFIG", {}).get("variant"),
                             "kind": "eval" if "eval_loss" in d else "train", "epoch": d.get("epoch"),
                             "loss": d.get("eval_loss", d.get("loss")), "config": json.dumps(injected, sort_keys=True),
                             "completed_cells_s": round(ran_s, 1), "note": note})
    if not rows:
        raise SystemExit(f"{path}: no Trainer log line ({{'loss': ...}} / {{'eval_loss': ...}}) in its outputs")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--note", required=True, help="where and how the notebooks ran (device, commit, limit)")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    new = pd.DataFrame([r for p in args.notebooks for r in curves(p, args.note)])
    if args.out.is_file():
        old = pd.read_csv(args.out)
        new = pd.concat([old[~old["notebook"].isin(set(new["notebook"]))], new], ignore_index=True)
    atomic_write_text(args.out, new.to_csv(index=False))
    print(new.groupby(["notebook", "kind"])["loss"].agg(["count", "first", "last"]).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
