#!/usr/bin/env bash
# LLMSeqPrompt at paper scale on a GPU: the paper plan's `06_llmseqprompt__genitem-full` entry
# (GenItem, SmolLM2-135M-Instruct fully fine-tuned on every Beauty training case, full prompts,
# both decoders on all 4,469 test sessions, MostPopular / V-SKNN / LLMSeqSim on the same sessions).
#
#   scripts/llmseqprompt_gpu.sh            # in the project root of a clone with `make install` done
#   PLAN_ONLY='06_llmseqprompt__genitem-full*' scripts/llmseqprompt_gpu.sh
#
# DEVICE is "auto" in notebook 06, so the fine-tuning (transformers Trainer) and the decoding run on
# the GPU; decoding batches 64 prompts a step there (LLMSeqPrompt gen_batch_size 0). Results go to
# results/beauty/ like every plan run (stored runs are never deleted; a rerun resumes).
# Time: EXTRAPOLATED, not measured: see the comment of the entry in plans/paper.yaml (with what one
# H200 lease measured for the list formats). Check `nvidia-smi` first; the script refuses to start
# without CUDA. On an offline GPU machine (no package index, files copied without .git) use
# scripts/offline_gpu/ instead (docs/running.md, "On an offline GPU machine").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
"$PY" - <<'PYEOF'
import torch
if not torch.cuda.is_available():
    raise SystemExit("llmseqprompt_gpu.sh: no CUDA device visible to torch (this entry is sized for a GPU)")
print("GPU:", torch.cuda.get_device_name(0))
PYEOF
start=$(date +%s)
"$PY" -m rec_utils.study plans/paper.yaml --only "${PLAN_ONLY:-06_llmseqprompt__genitem-full}"
echo "wall: $(( $(date +%s) - start )) s (record it: scripts/record_plan_time.py)"
