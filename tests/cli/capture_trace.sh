#!/bin/sh
# infokv-capture -o: traces that infokv-inspect validates and h5py reads,
# prompt sources, signal selection, the dense-attention guard, bad input,
# and an interrupted capture that leaves a readable trace with complete=0.
. "${top_srcdir}/tests/cli/lib.sh"
cap="$top_builddir/infokv-capture"
inspect="$top_builddir/infokv-inspect"
models="$top_srcdir/../shared/models"
data="$top_srcdir/../shared/data"
export OMP_WAIT_POLICY=passive

# Mechanics on a synthetic model (no files needed).
t="$IKV_TMP/syn.h5"
check "synthetic capture" "$cap" -q -m synthetic:tiny -p "abc" -n 48 -t 0 --save all -o "$t"
check "inspect --check accepts it" "$inspect" --check "$t"
check_grep "result: valid" "$IKV_TMP/out" "valid"
"$inspect" "$t" >"$IKV_TMP/info"
check_grep "positions  48 (prompt 4, generated 44), complete" "$IKV_TMP/info" "48 positions, prompt of 4"
check_grep "/attn/probs" "$IKV_TMP/info" "dense attention saved"
check_grep "/hidden/states" "$IKV_TMP/info" "states saved"
check "layer subset and f16" "$cap" -q -m synthetic:tiny -p "abc" -n 24 -t 0 --layers 1,3 --dtype f16 -o "$IKV_TMP/sub.h5"
"$inspect" "$IKV_TMP/sub.h5" >"$IKV_TMP/info2"
check_grep "layers     1,3" "$IKV_TMP/info2" "layers 1,3 stored"
check_grep "dtype      f16" "$IKV_TMP/info2" "f16 stored"
check "default signals" "$cap" -q -m synthetic:tiny -p "ab" -n 16 -t 0 -o "$IKV_TMP/def.h5"
"$inspect" "$IKV_TMP/def.h5" >"$IKV_TMP/info3"
if grep -q "/attn/probs" "$IKV_TMP/info3"; then fail "no dense attention by default"; else pass "no dense attention by default"; fi
check_grep "/qkv/q" "$IKV_TMP/info3" "q/k/v by default"
check_grep "/hidden/evolution" "$IKV_TMP/info3" "evolution by default"
check_grep "/logits/topk_logprobs" "$IKV_TMP/info3" "top-k by default"
check "--deflate 0" "$cap" -q -m synthetic:tiny -p "ab" -n 16 -t 0 --deflate 0 -o "$IKV_TMP/raw.h5"
check "inspect --check accepts it" "$inspect" --check "$IKV_TMP/raw.h5"
check "--fsync" "$cap" -q -m synthetic:tiny -p "ab" -n 16 -t 0 --fsync -o "$IKV_TMP/synced.h5"
check "inspect --check accepts the synced trace" "$inspect" --check "$IKV_TMP/synced.h5"
if command -v h5dump >/dev/null 2>&1; then
    h5dump -p -H -d /qkv/q "$IKV_TMP/raw.h5" >"$IKV_TMP/raw.dump" 2>&1
    if grep -q "DEFLATE" "$IKV_TMP/raw.dump"; then fail "--deflate 0 stores q/k/v as is"; else pass "--deflate 0 stores q/k/v as is"; fi
    h5dump -p -H -d /qkv/q "$IKV_TMP/def.h5" >"$IKV_TMP/def.dump" 2>&1
    check_grep "DEFLATE" "$IKV_TMP/def.dump" "deflate by default"
fi
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import h5py" 2>/dev/null; then
    check "h5py recomputes attention from q/k" /usr/bin/python3 "$top_srcdir/tests/cli/check_trace.py" "$t"
fi

# Bad input: one line, exit 2, no trace left.
check_exit 2 "bad --save" "$cap" -m synthetic:tiny -o "$IKV_TMP/x.h5" --save qkv,everything
check_grep "unknown signal 'everything'" "$IKV_TMP/err" "names the signal"
check_exit 2 "--deflate out of range" "$cap" -m synthetic:tiny -o "$IKV_TMP/x.h5" --deflate 10
check_exit 2 "layer out of range" "$cap" -m synthetic:tiny -o "$IKV_TMP/x.h5" --layers 0,9
check_exit 2 "layers out of order" "$cap" -m synthetic:tiny -o "$IKV_TMP/x.h5" --layers 2,1
check_exit 2 "dense attention guard" "$cap" -m synthetic:tiny -n 1000 --save attn --max-attn 1 -o "$IKV_TMP/x.h5"
check_grep "would take" "$IKV_TMP/err" "says how big"
check "no trace left by a refused run" test ! -e "$IKV_TMP/x.h5"
check "--force writes it anyway" "$cap" -q -m synthetic:tiny -n 40 -t 0 --save attn --max-attn 0.001 --force -o "$IKV_TMP/forced.h5"
check_exit 2 "unknown synthetic shape" "$cap" -m synthetic:huge -o "$IKV_TMP/x.h5"
check_exit 2 "two prompt sources" "$cap" -m synthetic:tiny -p a -f /etc/hostname
check_exit 2 "output folder missing" "$cap" -m synthetic:tiny -n 8 -o "$IKV_TMP/no/such/dir/t.h5"
check "no temporary left behind" sh -c "! ls '$IKV_TMP' | grep -q 'tmp-'"

# Interrupted: SIGINT midway leaves a valid trace with complete=0
# (INFOKV_INTERRUPT_AFTER makes the program signal itself at position 30).
INFOKV_INTERRUPT_AFTER=30 "$cap" -m synthetic:tiny -p "interrupt me" -n 200 -t 0 \
    -o "$IKV_TMP/int.h5" >/dev/null 2>"$IKV_TMP/int.err"
status=$?
check "interrupted capture exits 1" test "$status" -eq 1
check_grep "interrupted: complete=0" "$IKV_TMP/int.err" "says so"
check "the trace stands under its final name" test -s "$IKV_TMP/int.h5"
"$inspect" "$IKV_TMP/int.h5" >"$IKV_TMP/int.info" 2>&1
check_grep "INCOMPLETE" "$IKV_TMP/int.info" "complete=0"
check_grep "positions  3[0-9] " "$IKV_TMP/int.info" "the positions before the signal"
check "it is valid" "$inspect" --check "$IKV_TMP/int.h5"
# A real asynchronous SIGINT: whenever it lands, what stands is valid.
"$cap" -q -m synthetic:tiny -p "interrupt me" -n 1000 -t 0 --threads 1 --save all \
    -o "$IKV_TMP/int2.h5" >/dev/null 2>&1 &
pid=$!
sleep 0.3
kill -INT $pid 2>/dev/null
wait $pid
if [ -e "$IKV_TMP/int2.h5" ]; then
    check "after an asynchronous SIGINT the trace is valid" "$inspect" --check "$IKV_TMP/int2.h5"
fi
check "no temporary left behind after SIGINT" sh -c "! ls '$IKV_TMP' | grep -q 'int2.h5.tmp-'"

# Real model and prompts from files (skipped without ../shared).
if [ -r "$models/stories260K.bin" ] && [ -r "$data/gsm8k_test.jsonl" ]; then
    check "GSM8K record as prompt" "$cap" -q -m "$models/stories260K.bin" -z "$models/tok512.bin" \
        --jsonl "$data/gsm8k_test.jsonl" --index 2 -n 200 -t 0 -o "$IKV_TMP/g.h5"
    check "it is a valid trace" "$inspect" --check "$IKV_TMP/g.h5"
    check_exit 2 "record past the end" "$cap" -m "$models/stories260K.bin" -z "$models/tok512.bin" \
        --jsonl "$data/gsm8k_test.jsonl" --index 5000 -o "$IKV_TMP/x.h5"
    check_grep "the file has 1319" "$IKV_TMP/err" "says how many records"
    check_exit 2 "missing field" "$cap" -m "$models/stories260K.bin" -z "$models/tok512.bin" \
        --jsonl "$data/gsm8k_test.jsonl" --field prompt -o "$IKV_TMP/x.h5"
    check_grep "fields: question, answer" "$IKV_TMP/err" "lists the fields"
    printf 'Once upon a time' >"$IKV_TMP/prompt.txt"
    "$cap" -q -m "$models/stories260K.bin" -z "$models/tok512.bin" -f "$IKV_TMP/prompt.txt" -n 64 -t 0 >"$IKV_TMP/story"
    check_grep "^Once upon a time, there was a little girl named Lily" "$IKV_TMP/story" "prompt from a file"
else
    echo "note: ../shared/models or ../shared/data absent: real-model checks skipped"
fi
finish
