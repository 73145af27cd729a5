#!/usr/bin/env bash
# On the GPU machine, after every chunk is staged: assemble and check the payload (sha256 from
# .dev/payload.sha256), install it into /root/site, copy the project WITHOUT .git to /root/work (a
# stale .git there would name the wrong commit: rec_utils.utils.git_commit then reads
# REC_UTILS_GIT_COMMIT, trusted only when the copy's tree fingerprint matches), and run plan entries.
#   REC_UTILS_GIT_COMMIT=... REC_UTILS_TREE_FINGERPRINT=... PLAN_ONLY='06_llmseqprompt__*-gpu' STUDY_S=480 \
#     bash scripts/offline_gpu/run.sh      # results come back as $OUT/results.tgz (+ study.log)
set -u
src=$PWD S=/root/stage OUT=${OUT:-/root/out}
mkdir -p "$OUT"
if ls $S/pl.* >/dev/null 2>&1; then
  cat $S/pl.* > $S/payload.tar
  [ "$(sha256sum $S/payload.tar | cut -c1-64)" = "$(cut -c1-64 "$src/.dev/payload.sha256")" ] || { echo "payload sha256 mismatch"; exit 3; }
  tar -xf $S/payload.tar -C $S && mkdir -p /root/site && tar -xf $S/payload/models.tar -C /root/site
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /root/site $S/payload/.whl/*.whl
  rm -f $S/pl.* $S/payload.tar
fi
mkdir -p /root/work && tar -C "$src" --exclude=./.git --exclude=./results --exclude=./.dev -cf - . | tar -xf - -C /root/work
cd /root/work
export PYTHONPATH=/root/site:$PWD HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
python3 -c "import torch; from rec_utils.utils import git_commit; print('commit', git_commit(), 'cuda', torch.cuda.is_available())"
start=$(date +%s)
timeout "${STUDY_S:-480}" python3 -m rec_utils.study plans/paper.yaml --only "${PLAN_ONLY:?PLAN_ONLY: which plan entries}" \
  --no-log-output > "$OUT/study.log" 2>&1
echo "study rc $? wall $(( $(date +%s) - start )) s"; tail -c 3000 "$OUT/study.log"
tar -czf "$OUT/results.tgz" results
