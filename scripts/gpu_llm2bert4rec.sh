#!/usr/bin/env bash
# The faithful LLM2BERT4Rec pair (RecSys'23 configuration, 10 masking copies) on one GPU: the base
# (init=random) and the LLM2 arm (init=llm) of every seed, the seeds in parallel processes on the
# one card, each process training its two arms in turn (rec_utils.llm2_comparison.run_arms: same
# device, code and settings but the init). Runs are stored under the content-keyed run store of
# $RESULTS and archived to $OUT; bring runs/LLM2BERT4Rec back, then notebook 05 (paper plan entry
# `bert4rec`) or scripts/recompute_significance.py pairs them. Budget: about 10 min of an H200
# (measured GPU BERT4Rec base runs: 36-50 s per seed).
#
#   OUT=/tmp/out SEEDS="0 1 2" bash scripts/gpu_llm2bert4rec.sh
set -euo pipefail
PY=${PY:-python}
OUT=${OUT:-/tmp/llm2bert4rec}
RESULTS=${RESULTS:-results/beauty}
SEEDS=${SEEDS:-"0 1 2"}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONPATH=${PYTHONPATH:-$PWD}
# embed the catalogue once (cached) before the parallel processes read it
$PY - <<'PY'
from rec_utils.data import load_dataset
from rec_utils.models.llm2 import llm2_embedding
from rec_utils.utils import resolve_device
llm2_embedding(None, 512).embed(load_dataset("beauty", require_items=True).items, device=resolve_device("auto"))
PY
for s in $SEEDS; do
  $PY scripts/run_llm2_pairs.py --device cuda --threads 0 --models LLM2BERT4Rec --inits random llm \
      --seeds "$s" --out "$RESULTS" > "$OUT/seed$s.log" 2>&1 &
done
status=0
for job in $(jobs -p); do wait "$job" || status=1; done
tar czf "$OUT/llm2bert4rec_runs.tgz" -C "$RESULTS" runs/LLM2BERT4Rec
tail -n 3 "$OUT"/seed*.log
exit $status
