#!/bin/sh
# infokv-sim's answers to bad input: one line, exit 2, no output left
# that looks complete.
. "${top_srcdir}/tests/cli/lib.sh"
sim="$top_builddir/infokv-sim"
make_trace="$top_builddir/tests/unit/make_trace"
trace="$IKV_TMP/synth.h5"
"$make_trace" "$trace" --tokens 60 --prompt 40 --signals default >/dev/null 2>&1 || skip_all "make_trace failed"

check_exit 2 "no trace" "$sim" -o "$IKV_TMP/o"
check_exit 2 "missing trace" "$sim" -o "$IKV_TMP/o" "$IKV_TMP/nope.h5"
check_grep "nope.h5: No such file" "$IKV_TMP/err" "names the missing file"
printf 'not hdf5 at all\n' >"$IKV_TMP/foreign.h5"
check_exit 2 "foreign file" "$sim" -q -o "$IKV_TMP/o" "$IKV_TMP/foreign.h5"
lines=$(wc -l <"$IKV_TMP/err")
check "foreign file: one line" test "$lines" -eq 1
: >"$IKV_TMP/empty.h5"
check_exit 2 "empty file" "$sim" -q -o "$IKV_TMP/o" "$IKV_TMP/empty.h5"
head -c 3000 "$trace" >"$IKV_TMP/cut.h5"
check_exit 2 "truncated trace" "$sim" -q -o "$IKV_TMP/o" "$IKV_TMP/cut.h5"
check_exit 2 "unknown policy" "$sim" -q -P h2o,lru -o "$IKV_TMP/o" "$trace"
check_grep "unknown policy 'lru'" "$IKV_TMP/err" "names the unknown policy"
check_exit 2 "bad budget" "$sim" -q -b 0 -o "$IKV_TMP/o" "$trace"
check_exit 2 "bad parameter" "$sim" -q --param h2o.window=4 -P h2o -o "$IKV_TMP/o" "$trace"
check_exit 2 "bad parameter value" "$sim" -q --param heavy=2 -P h2o -o "$IKV_TMP/o" "$trace"
check_exit 2 "bad scenario" "$sim" -q -s online -o "$IKV_TMP/o" "$trace"
check_exit 2 "unknown option" "$sim" --frobnicate "$trace"
check_exit 2 "option without value" "$sim" "$trace" -b
check_exit 2 "bad thread count" "$sim" -j 0 "$trace"
check_exit 0 "--help" "$sim" --help
check_exit 0 "--version" "$sim" --version
check_exit 0 "--list-policies" "$sim" --list-policies
check_grep "^  heavy" "$IKV_TMP/out" "policies listed with parameters"

# An impossible explicit budget fails before writing anything.
fresh="$IKV_TMP/fresh"
check_exit 2 "budget below the SnapKV window" "$sim" -q -P snapkv -b 8 -o "$fresh" "$trace"
check_grep "below the observation window" "$IKV_TMP/err" "says why"
check "no table left behind" test ! -e "$fresh/summary.tsv"
check "no temporary left behind" sh -c "! ls '$fresh' 2>/dev/null | grep -q tmp"

# A trace without q/k/v cannot be replayed (made with h5py where present).
cp "$trace" "$IKV_TMP/noqkv.h5"
if /usr/bin/python3 -c "import h5py; f = h5py.File('$IKV_TMP/noqkv.h5', 'r+'); del f['qkv']" 2>/dev/null; then
    check_exit 2 "trace without q/k/v" "$sim" -q -o "$IKV_TMP/o" "$IKV_TMP/noqkv.h5"
    check_grep "/qkv/q" "$IKV_TMP/err" "names the missing dataset"
fi
# A trace with only a prompt has nothing to replay.
"$make_trace" "$IKV_TMP/short.h5" --tokens 20 --prompt 20 --signals default >/dev/null 2>&1
check_exit 2 "prompt only" "$sim" -q -o "$IKV_TMP/o" "$IKV_TMP/short.h5"
check_grep "needs generated positions" "$IKV_TMP/err" "says why"

# An output folder that cannot be written is refused before any work.
mkdir -p "$IKV_TMP/ro" && chmod 555 "$IKV_TMP/ro"
if [ "$(id -u)" -ne 0 ]; then
    check_exit 2 "unwritable output folder" "$sim" -q -o "$IKV_TMP/ro/out" "$trace"
fi
: >"$IKV_TMP/afile"
check_exit 2 "output is a file" "$sim" -q -o "$IKV_TMP/afile" "$trace"
finish
