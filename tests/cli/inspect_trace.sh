#!/bin/sh
# infokv-inspect on good traces written by tests/unit/make_trace: the
# summary, --check, --json, and h5dump opening the same files.
. "$(dirname "$0")/lib.sh"
inspect="$top_builddir/infokv-inspect"
make_trace="$top_builddir/tests/unit/make_trace"
t="$IKV_TMP"
py=""
for p in /usr/bin/python3 python3; do
    if command -v "$p" >/dev/null 2>&1; then py=$p; break; fi
done

check "make_trace: all signals, f32" "$make_trace" "$t/all.h5" --signals all --tokens 40
check "inspect: all signals" "$inspect" "$t/all.h5"
cp "$IKV_TMP/out" "$t/all.txt"
check_grep "positions  40 (prompt 8, generated 32), complete" "$t/all.txt" "summary: lengths"
check_grep "layers     all 5" "$t/all.txt" "summary: layers"
check_grep "/qkv/q  *\[5,8,40,8\]  *f32" "$t/all.txt" "summary: q shape and type"
check_grep "/attn/probs  *\[5,8,40,40\]" "$t/all.txt" "summary: probs listed"
check_grep "entropy (top-20)  *mean" "$t/all.txt" "summary: top-k entropy"
check_grep "attention (from attn/probs" "$t/all.txt" "summary: attention from probs"
check_grep "on the first token" "$t/all.txt" "summary: attention on the first token"
check_grep "^  total " "$t/all.txt" "summary: total sizes"
check "inspect --check: all signals" "$inspect" --check "$t/all.h5"
check_grep "result: valid" "$IKV_TMP/out" "check: valid"
check_grep "/attn/probs: matches softmax" "$IKV_TMP/out" "check: probs recomputed"

check "make_trace: f16, layers 1,3, stopped at 21 of 40" \
    "$make_trace" "$t/f16.h5" --dtype f16 --layers 1,3 --tokens 40 --stop 21
check "inspect --check: f16 subset, incomplete" "$inspect" --check "$t/f16.h5"
cp "$IKV_TMP/out" "$t/f16.txt"
check_grep "positions  21 (prompt 8, generated 13), INCOMPLETE" "$t/f16.txt" "incomplete trace"
check_grep "layers     1,3 (2 of 5)" "$t/f16.txt" "layer subset"
check_grep "/qkv/q  *\[2,8,21,8\]  *f16" "$t/f16.txt" "f16 q"
check_grep "/attn/lse  *\[2,8,21\]  *f32" "$t/f16.txt" "lse stays f32"
check_grep "result: valid" "$t/f16.txt" "f16 trace valid"

check "make_trace: default signals" "$make_trace" "$t/default.h5" --signals default --tokens 90 --chunk 32
check "inspect --check: default signals" "$inspect" --check "$t/default.h5"
cp "$IKV_TMP/out" "$t/default.txt"
check_grep "attention (from q/k/lse" "$t/default.txt" "attention without dense maps"
check_grep "row entropy (sampled)" "$t/default.txt" "sampled row entropy"
check_grep "/attn/lse: matches" "$t/default.txt" "lse recomputed"
check_grep "/attn/out: matches" "$t/default.txt" "out recomputed"

check "make_trace: extras" "$make_trace" "$t/extra.h5" --signals default --extra
check "inspect: extras" "$inspect" "$t/extra.h5"
check_grep "/live/kl" "$IKV_TMP/out" "extras listed"

if [ -n "$py" ]; then
    check "inspect --json --check" "$inspect" --json --check "$t/f16.h5"
    cp "$IKV_TMP/out" "$t/f16.json"
    check "json: parses and matches the trace" "$py" -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["n_tokens"] == 21 and d["complete"] is False, d
assert d["layers"] == [1, 3] and d["dtype"] == "f16"
assert d["check"]["valid"] is True and d["check"]["n_problems"] == 0
paths = {x["path"]: x for x in d["datasets"]}
assert paths["/qkv/q"]["shape"] == [2, 8, 21, 8] and paths["/qkv/q"]["type"] == "f16"
assert all(x["stored_bytes"] > 0 and x["logical_bytes"] > 0 for x in d["datasets"])
assert d["statistics"]["entropy"]["n"] == 21
' "$t/f16.json"
else
    echo "SKIP: no python3 for the JSON check"
fi

if command -v h5dump >/dev/null 2>&1; then
    check "h5dump -H opens a trace" h5dump -H "$t/all.h5"
    check_grep 'DATASET "q"' "$IKV_TMP/out" "h5dump sees /qkv/q"
    check_grep 'ATTRIBUTE "format"' "$IKV_TMP/out" "h5dump sees the format attribute"
    check "h5dump -H opens an f16 trace" h5dump -H "$t/f16.h5"
    check_grep "16-bit little-endian floating-point" "$IKV_TMP/out" "h5dump: binary16 type"
else
    echo "SKIP: h5dump not installed"
fi

check "inspect --help" "$inspect" --help
check_grep "^Usage: infokv-inspect" "$IKV_TMP/out" "help text"
check "inspect --version" "$inspect" --version
check_grep "infokv" "$IKV_TMP/out" "version text"
check_exit 2 "inspect without a file" "$inspect"
check_exit 2 "inspect with a bad option" "$inspect" --frobnicate "$t/all.h5"
check_exit 2 "inspect with two files" "$inspect" "$t/all.h5" "$t/f16.h5"
finish
