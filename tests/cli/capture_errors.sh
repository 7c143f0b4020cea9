#!/bin/sh
# infokv-capture: flags and bad model files give exit 2 and one line on
# stderr naming the problem; --help and --version work.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/cli/lib.sh"
capture="$top_builddir/infokv-capture"
T=$IKV_TMP

# The latest command's stderr holds exactly one line (copied first:
# `check` itself writes to $IKV_TMP/err).
keep() { cp "$IKV_TMP/out" "$T/last.out"; cp "$IKV_TMP/err" "$T/last.err"; }
one_line() { keep; check "$1" test "$(wc -l <"$T/last.err")" -eq 1; }

check "--help" "$capture" --help
check_grep "--top-p" "$IKV_TMP/out" "--help lists --top-p"
check_grep "Usage: infokv-capture" "$IKV_TMP/out" "--help names the program"
check "--version" "$capture" --version
check_grep "^infokv-capture [0-9]" "$IKV_TMP/out" "--version prints a version"

check_exit 2 "no model" "$capture" -p hi
check_grep "no model given" "$IKV_TMP/err" "no model: message"
check_exit 2 "unknown long option" "$capture" --bogus
check_grep "unknown option --bogus" "$IKV_TMP/err" "unknown long option: message"
check_exit 2 "unknown short option" "$capture" -x
check_exit 2 "missing value" "$capture" -m
check_grep "needs a value" "$IKV_TMP/err" "missing value: message"
check_exit 2 "negative temperature" "$capture" -m x -t -1
check_grep "out of range" "$IKV_TMP/err" "negative temperature: message"
check_exit 2 "top-p above 1" "$capture" -m x --top-p 2
check_exit 2 "steps not a number" "$capture" -m x -n abc
check_grep "not an integer" "$IKV_TMP/err" "steps: message"
check_exit 2 "threads zero" "$capture" -m x --threads 0
check_exit 2 "negative seed" "$capture" -m x -s -3
check_exit 2 "stray argument" "$capture" -m x extra
check_grep "unexpected argument 'extra'" "$IKV_TMP/err" "stray argument: message"

check_exit 2 "missing model file" "$capture" -m "$T/nope.gguf"
check_grep "$T/nope.gguf: No such file" "$IKV_TMP/err" "missing file: names it"
one_line "missing file: one line"
check_exit 2 "a directory" "$capture" -m "$T"
check_grep "not a regular file" "$IKV_TMP/err" "a directory: message"

: >"$T/empty.bin"
check_exit 2 "empty file" "$capture" -m "$T/empty.bin"
check_grep "empty.bin: not a GGUF file" "$IKV_TMP/err" "empty file: message"
head -c 4096 /dev/urandom >"$T/noise.bin"
check_exit 2 "random bytes" "$capture" -m "$T/noise.bin"
one_line "random bytes: one line"
printf 'GGUF\001\000\000\000' >"$T/v1.gguf"
head -c 64 /dev/zero >>"$T/v1.gguf"
check_exit 2 "GGUF version 1" "$capture" -m "$T/v1.gguf"
check_grep "GGUF version 1 is not supported" "$IKV_TMP/err" "GGUF version 1: message"
printf 'GGUF\003\000\000\000\377\377\377\377\377\377\377\177\000\000\000\000\000\000\000\000' >"$T/huge.gguf"
check_exit 2 "GGUF with a huge tensor count" "$capture" -m "$T/huge.gguf"
check_grep "more than the file holds" "$IKV_TMP/err" "huge count: message"
one_line "huge count: one line"

models="${IKV_MODELS:-$top_srcdir/../shared/models}"
if [ -f "$models/stories260K.gguf" ]; then
    head -c 100000 "$models/stories260K.gguf" >"$T/cut.gguf"
    check_exit 2 "truncated GGUF" "$capture" -m "$T/cut.gguf"
    check_grep "cut.gguf: truncated or corrupt: tensor" "$IKV_TMP/err" "truncated GGUF: message"
    head -c 500000 "$models/stories260K.bin" >"$T/cut.bin"
    check_exit 2 "truncated checkpoint" "$capture" -m "$T/cut.bin"
    check_grep "cut.bin: truncated llama2.c checkpoint" "$IKV_TMP/err" "truncated checkpoint: message"
    cp "$models/stories260K.bin" "$T/alone.bin"
    check_exit 2 "checkpoint without a tokenizer" "$capture" -m "$T/alone.bin" -p hi
    check_grep "no tokenizer" "$IKV_TMP/err" "no tokenizer: message"
    check_exit 2 "a tokenizer that is not one" "$capture" -m "$T/alone.bin" -z "$T/noise.bin"
    one_line "bad tokenizer: one line"
else
    echo "note: $models absent, model-file cases skipped"
fi
finish
