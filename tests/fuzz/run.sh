#!/bin/sh
# Runs the libFuzzer harnesses one after another (`make fuzz` in a build
# configured with --enable-fuzzing CC=clang):
#   run.sh TOP_SRCDIR TOP_BUILDDIR
# Environment: FUZZ_TIME seconds per harness (60), FUZZ="gguf trace ..."
# to pick harnesses (all by default), FUZZ_JOBS parallel workers (1),
# FUZZ_ARGS extra libFuzzer options.
# Each harness grows a working corpus in BUILDDIR/fuzz/corpus/NAME, seeded
# from the committed one; crashes go to BUILDDIR/fuzz/artifacts/NAME/;
# logs to BUILDDIR/fuzz/logs/NAME-DATE.log. Every run appends
# "NAME seconds executions crashes" to BUILDDIR/fuzz/totals.tsv and the
# totals per harness are printed at the end.
set -u
src=$1; build=$2
time=${FUZZ_TIME:-60}
jobs=${FUZZ_JOBS:-1}
all="gguf llama2c tok_spm tok_gpt2 trace params"
names=${FUZZ:-$all}
[ -n "$names" ] || names=$all
out=$build/fuzz
mkdir -p "$out/logs"
status=0

# Longest input per harness: models and traces need room, text does not.
max_len() {
    case $1 in
        gguf|llama2c) echo 65536 ;;
        trace) echo 12288 ;;
        tok_spm|tok_gpt2) echo 4096 ;;
        *) echo 1024 ;;
    esac
}

for name in $names; do
    bin=$build/tests/fuzz/fuzz_$name
    if [ ! -x "$bin" ]; then
        echo "run.sh: no fuzzer $bin (known: $all)" >&2
        status=1
        continue
    fi
    corpus=$out/corpus/$name
    artifacts=$out/artifacts/$name
    mkdir -p "$corpus" "$artifacts"
    seeds=$src/tests/fuzz/corpus/$name
    [ -d "$seeds" ] && cp -n "$seeds"/* "$corpus"/ 2>/dev/null
    dict=""
    [ -f "$src/tests/fuzz/$name.dict" ] && dict="-dict=$src/tests/fuzz/$name.dict"
    log=$out/logs/$name-$(date +%Y%m%d-%H%M%S).log
    echo "== fuzz_$name for ${time}s (log $log)"
    before=$(ls "$artifacts" | wc -l)
    started=$(date +%s)
    # shellcheck disable=SC2086
    if [ "$jobs" -gt 1 ]; then
        (cd "$out/logs" && "$bin" "$corpus" $dict -artifact_prefix="$artifacts/" \
            -max_len="$(max_len "$name")" -timeout=20 -rss_limit_mb=2048 \
            -max_total_time="$time" -print_final_stats=1 -jobs="$jobs" -workers="$jobs" \
            ${FUZZ_ARGS:-} >"$log" 2>&1)
        cat "$out"/logs/fuzz-*.log >>"$log" 2>/dev/null; rm -f "$out"/logs/fuzz-*.log
    else
        "$bin" "$corpus" $dict -artifact_prefix="$artifacts/" \
            -max_len="$(max_len "$name")" -timeout=20 -rss_limit_mb=2048 \
            -max_total_time="$time" -print_final_stats=1 ${FUZZ_ARGS:-} >"$log" 2>&1
    fi
    rc=$?
    elapsed=$(($(date +%s) - started))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | awk '{s += $1} END {print s + 0}')
    after=$(ls "$artifacts" | wc -l)
    crashes=$((after - before))
    printf '%s\t%s\t%s\t%s\n' "$name" "$elapsed" "$execs" "$crashes" >>"$out/totals.tsv"
    echo "   exit $rc after ${elapsed}s, $execs executions, $crashes new artifacts in $artifacts"
    [ "$rc" -eq 0 ] || status=1
done

echo "== totals over every run (harness, seconds, executions, artifacts)"
awk -F'\t' '{t[$1] += $2; e[$1] += $3; c[$1] += $4}
    END {for (n in t) printf "%-10s %8d s %12d execs %4d artifacts\n", n, t[n], e[n], c[n]}' \
    "$out/totals.tsv" | sort
exit $status
