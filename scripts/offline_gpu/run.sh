#!/usr/bin/env bash
# On the GPU machine, after every chunk is staged (stage.sh): assemble and check the payload (sha256
# from .dev/payload.sha256), install it into /root/site (once: marker /root/site/.installed), copy the
# project WITHOUT .git to /root/work (a stale .git there would name the wrong commit), refuse to run
# unless CUDA is visible and the copy holds the commit's code (tree fingerprint), run plan entries,
# and leave the results in $OUT as results.tgz.NN parts of <= 15 MB (cat them back together here).
#   REC_UTILS_GIT_COMMIT=... REC_UTILS_TREE_FINGERPRINT=... PLAN_ONLY='06_llmseqprompt__*-gpu' STUDY_S=480 \
#     bash scripts/offline_gpu/run.sh       # the two variables: scripts/commit_env.py
set -uo pipefail
src=$PWD
S=/root/stage
OUT=${OUT:-/root/out}
mkdir -p "$OUT"
if [ ! -f /root/site/.installed ]; then
  (
    set -e
    cat "$S"/pl.* > "$S/payload.tar"
    [ "$(sha256sum "$S/payload.tar" | cut -c1-64)" = "$(cut -c1-64 "$src/.dev/payload.sha256")" ] \
      || { echo "payload sha256 mismatch (a chunk missing or stale?)"; exit 3; }
    tar -xf "$S/payload.tar" -C "$S"
    mkdir -p /root/site
    tar -xf "$S/payload/models.tar" -C /root/site
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /root/site \
      "$S"/payload/.whl/*.whl
    touch /root/site/.installed
  ) || { echo "payload install failed; the staged chunks are kept in $S"; exit 3; }
  rm -f "$S"/pl.* "$S/payload.tar"
fi
mkdir -p /root/work
find /root/work -mindepth 1 -maxdepth 1 ! -name results ! -name .cache -exec rm -rf {} +  # keep runs to resume
tar -C "$src" --exclude=./.git --exclude=./results --exclude=./.dev --exclude=./.cache -cf - . | tar -xf - -C /root/work
cd /root/work
export PYTHONPATH=/root/site:$PWD HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
python3 - <<'PY' || exit 4
import os, sys
import torch
from rec_utils.provenance import tree_fingerprint
fp, want = tree_fingerprint(), os.environ.get("REC_UTILS_TREE_FINGERPRINT", "")
print(f"commit {os.environ.get('REC_UTILS_GIT_COMMIT')} tree {fp} (expected {want}) cuda {torch.cuda.is_available()}")
if fp != want:
    sys.exit("the copy does not hold the commit's code (tree fingerprint differs): not running")
if not torch.cuda.is_available():
    sys.exit("no CUDA device visible: the GPU entries would be skipped; not running")
PY
start=$(date +%s)
timeout "${STUDY_S:-480}" python3 -m rec_utils.study plans/paper.yaml --only "${PLAN_ONLY:?PLAN_ONLY: which plan entries}" \
  --no-log-output > "$OUT/study.log" 2>&1
echo "study rc $? wall $(( $(date +%s) - start )) s"; tail -c 3000 "$OUT/study.log"
tar -czf - results | split -b 15000000 -d - "$OUT/results.tgz."
ls -la "$OUT"
