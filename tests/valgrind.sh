#!/bin/sh
# The demo capture and simulation under valgrind (memcheck): no error and
# no leak (definite, indirect or possible) reported at exit.
#   tests/valgrind.sh BUILDDIR [MODELS_DIR]
# BUILDDIR must be built without -march=native (configure
# --disable-native): valgrind does not know AVX-512. `make valgrind` makes
# such a build in valgrind-build/ when the current one is native.
# tests/valgrind.supp suppresses one report that is not ours: libgomp's
# worker threads are never joined, so their thread-local storage reads as
# "possibly lost" at exit.
# Without MODELS_DIR (default ../shared/models beside the source tree, or
# $IKV_MODELS) holding stories260K, a tiny model from the fuzz corpus
# stands in for it.
set -u
build=${1:?usage: tests/valgrind.sh BUILDDIR [MODELS_DIR]}
src=$(cd "$(dirname "$0")/.." && pwd)
models=${2:-${IKV_MODELS:-$src/../shared/models}}
command -v valgrind >/dev/null 2>&1 || { echo "valgrind not installed (apt-get install valgrind)"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/ikv-valgrind.XXXXXX")
trap 'rm -rf "$work"' EXIT
passed=0; failed=0

# One program under memcheck; its log is kept in $work and shown on failure.
vg() {
    name=$1; shift
    log="$work/$name.vg"
    valgrind -q --error-exitcode=99 --leak-check=full --suppressions="$src/tests/valgrind.supp" \
        --errors-for-leak-kinds=definite,indirect,possible \
        --show-leak-kinds=definite,indirect,possible --track-origins=yes \
        --log-file="$log" "$@" >"$work/$name.out" 2>"$work/$name.err"
    rc=$?
    if [ "$rc" -eq 0 ] && [ ! -s "$log" ]; then
        echo "PASS: $name"
        passed=$((passed + 1))
    else
        echo "FAIL: $name (exit $rc)"; sed 's/^/    /' "$log" | head -60; sed 's/^/    /' "$work/$name.err" | head -5
        failed=$((failed + 1))
    fi
}

if [ -f "$models/stories260K.bin" ] && [ -f "$models/tok512.bin" ]; then
    model="-m $models/stories260K.bin -z $models/tok512.bin"
    gguf="$models/stories260K.gguf"
else
    echo "note: $models has no stories260K: a tiny fixture model stands in"
    gguf="$src/tests/fuzz/corpus/gguf/seed-llama-spm-tokenizer"
    model="-m $gguf"
fi
# the README's demo
vg capture "$build/infokv-capture" $model -p "Once upon a time" -n 64 -t 0 -o "$work/t.h5"
vg sim "$build/infokv-sim" -q -o "$work/out" "$work/t.h5" -b 8,16 --param window=4
vg inspect "$build/infokv-inspect" --check "$work/t.h5"
# and the other paths: GGUF, sampling without a trace, a trace with every
# signal, an interrupted capture, a bad input
[ -f "$gguf" ] && vg capture-gguf "$build/infokv-capture" -m "$gguf" -p "Once upon a time" -n 24 -t 0.8 -s 3
vg capture-all "$build/infokv-capture" $model -p "Once" -n 16 -t 0 --save all --dtype f16 -o "$work/all.h5"
vg sim-all "$build/infokv-sim" -q --no-plots -P all -s prefill,decode -o "$work/out-all" "$work/all.h5"
printf 'not a trace' >"$work/bad.h5"
valgrind -q --error-exitcode=99 --leak-check=full --suppressions="$src/tests/valgrind.supp" \
    --errors-for-leak-kinds=definite,indirect,possible --log-file="$work/bad.vg" "$build/infokv-sim" -q -o "$work/out-bad" "$work/bad.h5" >/dev/null 2>&1
rc=$?
if [ "$rc" -eq 2 ] && [ ! -s "$work/bad.vg" ]; then echo "PASS: sim on a bad trace (exit 2)"; passed=$((passed + 1))
else echo "FAIL: sim on a bad trace (exit $rc)"; head -40 "$work/bad.vg"; failed=$((failed + 1)); fi

echo "SUMMARY passed=$passed failed=$failed"
[ "$failed" -eq 0 ]
