"""LLMSeqPrompt throughput from the stored runs; writes results/benchmarks/llmseqprompt.csv.

    .venv/bin/python scripts/benchmark_llmseqprompt.py            # results/beauty/runs/LLMSeqPrompt/*.json
    .venv/bin/python scripts/benchmark_llmseqprompt.py --results build/ci/beauty

Every LLMSeqPrompt run records what its own fine-tuning and decoding measured (``fit_info``):
train tokens/s of the fine-tuning that produced its model (tokens of the training examples seen,
prompt + answer, over the Trainer's wall time including its evaluation passes and checkpoint
writes) and generated items/s of its decoder (recommended items over the decoding wall time,
the prompt prefill included). One row per run and figure, with the device, the thread count and,
where the run recorded it, the 1-minute load average: these runs share a 2-core box with other
jobs, so the figures are lower bounds for an idle machine.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from rec_utils.utils import PROJECT_ROOT, atomic_write_text  # noqa: E402


def rows_of(run: dict) -> list[dict]:
    info = run.get("fit_info") or {}
    ft, gen = info.get("finetune") or {}, info.get("generation") or {}
    cfg = run.get("config") or {}
    base = {"variant": run.get("variant", ""), "model": cfg.get("model"), "llm_variant": cfg.get("variant"),
            "device": run.get("device"), "threads": ft.get("threads"), "load_avg_1m": info.get("load_avg_1m"),
            "run_git_commit": run.get("git_commit"), "n_test_sessions": run.get("n_test_sessions")}
    out = []
    if ft.get("train_tokens_per_s"):
        out.append({**base, "benchmark": "finetune_train_tokens_per_s", "decoder": "", "value": ft["train_tokens_per_s"],
                    "n": ft.get("train_tokens"), "seconds": ft.get("train_s"), "lora": ft.get("lora"),
                    "finetune_key": ft.get("key")})
    if gen.get("items_per_s"):
        out.append({**base, "benchmark": "generation_items_per_s", "decoder": gen.get("decoder"),
                    "value": gen["items_per_s"], "n": gen.get("prompts"), "seconds": gen.get("seconds"),
                    "answers_per_s": gen.get("answers_per_s")})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default=str(PROJECT_ROOT / "results" / "beauty"))
    ap.add_argument("--out", default=str(PROJECT_ROOT / "results" / "benchmarks" / "llmseqprompt.csv"))
    a = ap.parse_args(argv)
    runs = sorted((Path(a.results) / "runs" / "LLMSeqPrompt").glob("*.json"))
    rows = [r for p in runs for r in rows_of(json.loads(p.read_text()))]
    if not rows:
        print(f"no LLMSeqPrompt runs under {a.results}")
        return 1
    df = pd.DataFrame(rows)
    # one fine-tuning serves several runs (decoders, temperatures): keep it once
    ft = df[df["benchmark"] == "finetune_train_tokens_per_s"].drop_duplicates("finetune_key")
    df = pd.concat([ft, df[df["benchmark"] != "finetune_train_tokens_per_s"]], ignore_index=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(a.out, df.to_csv(index=False))
    print(df[["benchmark", "llm_variant", "decoder", "value", "n", "seconds", "threads"]].round(2).to_string(index=False))
    print(f"-> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
