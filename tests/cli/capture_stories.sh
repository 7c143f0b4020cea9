#!/bin/sh
# infokv-capture on stories260K: llama2.c run.c's greedy story, the same
# through GGUF, -n counting positions like run.c, seeded sampling.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/cli/lib.sh"
capture="$top_builddir/infokv-capture"
models="${IKV_MODELS:-$top_srcdir/../shared/models}"
[ -f "$models/stories260K.bin" ] || skip_all "$models is absent"
T=$IKV_TMP
bin="$models/stories260K.bin"
tok="$models/tok512.bin"
gguf="$models/stories260K.gguf"

# llama2.c: ./run stories260K.bin -z tok512.bin -t 0 -n 64 -i "Once upon a time"
printf '%s\n%s\n' "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high." "Lily" >"$T/expected"

# `check` writes to $IKV_TMP/out and err: keep a copy before comparing
keep() { cp "$IKV_TMP/out" "$T/got"; cp "$IKV_TMP/err" "$T/got.err"; }

check "greedy, checkpoint" "$capture" -m "$bin" -z "$tok" -p "Once upon a time" -n 64 -t 0
keep
check "checkpoint: run.c's story" cmp "$T/got" "$T/expected"
check_grep "prefill: 5 tokens .* decode: 59 tokens" "$T/got.err" "speeds on stderr"
check "greedy, GGUF" "$capture" -m "$gguf" -p "Once upon a time" -n 64 -t 0 --threads 1 --quiet
keep
check "GGUF: run.c's story" cmp "$T/got" "$T/expected"
check "--quiet: nothing on stderr" test ! -s "$T/got.err"

# -n counts positions, prompt included (BOS + 4 prompt tokens here)
check "-n 6" "$capture" -m "$bin" -z "$tok" -p "Once upon a time" -n 6 -t 0 -q
keep
printf 'Once upon a time, there\n' >"$T/six"
check "-n 6: two generated tokens" cmp "$T/got" "$T/six"
check "-n 3" "$capture" -m "$bin" -z "$tok" -p "Once upon a time" -n 3 -t 0 -q
keep
printf 'Once upon a\n' >"$T/three"
check "-n 3: the prompt cut like run.c" cmp "$T/got" "$T/three"

# seeded sampling repeats itself; another seed does not
"$capture" -m "$gguf" -p "Tom" -n 80 -t 1 --top-p 0.9 -s 42 -q >"$T/a" 2>/dev/null
"$capture" -m "$gguf" -p "Tom" -n 80 -t 1 --top-p 0.9 -s 42 -q --threads 1 >"$T/b" 2>/dev/null
"$capture" -m "$gguf" -p "Tom" -n 80 -t 1 --top-p 0.9 -s 43 -q >"$T/c" 2>/dev/null
check "same seed, same story" cmp "$T/a" "$T/b"
check "another seed, another story" sh -c "! cmp -s '$T/a' '$T/c'"
check_grep "^Tom" "$T/a" "sampled story starts with the prompt"
check "unseeded: the seed is shown" "$capture" -m "$gguf" -p "Tom" -n 10 -t 1
keep
check_grep "seed [0-9]" "$T/got.err" "unseeded: seed on stderr"
finish
