#!/usr/bin/env bash
# On the GPU machine, in each transfer call: keep this call's carried payload chunk(s) outside the
# project copy (/root/stage survives between calls while the machine stays warm).
#   bash scripts/offline_gpu/stage.sh [.dev]
set -eu
mkdir -p /root/stage
cp "${1:-.dev}"/pl.* /root/stage/ 2>/dev/null || true
ls -la /root/stage | tail -n +4 | awk '{print $5, $9}'
