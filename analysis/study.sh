#!/bin/sh
# study.sh BUILD_DIR OUTDIR [PROMPTS]: the reproducible study of infokv's
# README, on stories260K and GSM8K/MATH500 prompts (needs ../shared):
#   1. for each prompt, a trace with closed-loop runs of every live policy
#      at three budgets (scenario decode) and exact Forward Influence
#      probes of top-attention, top-entropy and random tokens;
#   2. infokv-sim over all traces: replay beside live numbers, rank
#      agreement, exact vs first-order influence, and the figures
#      (OUTDIR/influence_exact.png: influence vs distance per token set;
#      OUTDIR/live_kl.png: closed-loop KL vs budget per policy).
# PROMPTS is the number of prompts taken from each data set (default 4).
# `make study` runs it into the build folder.
set -eu
build=${1:?usage: study.sh BUILD_DIR OUTDIR [PROMPTS]}
out=${2:?usage: study.sh BUILD_DIR OUTDIR [PROMPTS]}
per_set=${3:-4}
here=$(cd "$(dirname "$0")" && pwd)
shared=${INFOKV_SHARED:-$(dirname "$here")/../shared}
models="$shared/models"
data="$shared/data"
for f in "$models/stories260K.bin" "$models/tok512.bin" "$data/gsm8k_test.jsonl" "$data/math500_test.jsonl"; do
    [ -r "$f" ] || { echo "study.sh: $f not found (the study needs ../shared/models and ../shared/data)" >&2; exit 2; }
done
cap="$build/infokv-capture"
sim="$build/infokv-sim"
[ -x "$cap" ] && [ -x "$sim" ] || { echo "study.sh: build infokv first ($cap, $sim)" >&2; exit 2; }
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

policies=random,streaming,h2o,tova,snapkv,pyramidkv,infokv
budgets=16,32,64
# stories260K's heads are 8 wide and its context 512: SnapKV's window of 32
# would eat the smaller budgets, so the SnapKV family observes 8 queries
# and re-compresses every 16 decode steps.
params="--param window=8 --param snapkv.interval=16 --param pyramidkv.interval=16"
traces="$out/traces"
mkdir -p "$traces"
i=0
for set in gsm8k:question math500:problem; do
    file=${set%%:*}_test.jsonl
    field=${set#*:}
    n=0
    while [ "$n" -lt "$per_set" ]; do
        name="${set%%:*}_$n"
        echo "study: capturing $name" >&2
        # shellcheck disable=SC2086
        "$cap" -q -m "$models/stories260K.bin" -z "$models/tok512.bin" \
            --jsonl "$data/$file" --field "$field" --index "$n" -n 512 -t 0 \
            --policy "$policies" --budget "$budgets" $params --scenario decode \
            --influence 16 -o "$traces/$name.h5" >"$traces/$name.txt"
        n=$((n + 1))
        i=$((i + 1))
    done
done
echo "study: replaying $i traces" >&2
# shellcheck disable=SC2086
"$sim" -q -o "$out" -P "$policies,oracle" -b "$budgets" -s decode $params "$traces"/*.h5
