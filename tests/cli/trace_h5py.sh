#!/bin/sh
# Traces are readable from h5py without infokv code: tests/cli/check_trace.py
# checks shapes and types and recomputes attention from q/k against
# attn/probs, attn/lse and attn/out; the example of traces/SCHEMA.md runs.
. "$(dirname "$0")/lib.sh"
py=/usr/bin/python3
"$py" -c "import h5py, numpy" >/dev/null 2>&1 ||
    skip_all "/usr/bin/python3 has no h5py/numpy (Debian: apt-get install python3-h5py)"
make_trace="$top_builddir/tests/unit/make_trace"
t="$IKV_TMP"

check "make_trace: all signals f32" "$make_trace" "$t/f32.h5" --signals all --tokens 48
check "make_trace: all signals f16, layers 0,4" "$make_trace" "$t/f16.h5" --signals all --dtype f16 --layers 0,4
check "make_trace: default signals, interrupted" "$make_trace" "$t/stop.h5" --tokens 60 --stop 37 --signals default
check "check_trace.py: f32" "$py" "$top_srcdir/tests/cli/check_trace.py" "$t/f32.h5"
check "check_trace.py: f16 subset" "$py" "$top_srcdir/tests/cli/check_trace.py" "$t/f16.h5"
check "check_trace.py: interrupted" "$py" "$top_srcdir/tests/cli/check_trace.py" "$t/stop.h5"
check_grep "T=37" "$IKV_TMP/out" "interrupted trace reads 37 positions"
check "make_trace: broken attention row" "$make_trace" "$t/bad.h5" --poison probs
check_exit 1 "check_trace.py rejects it" "$py" "$top_srcdir/tests/cli/check_trace.py" "$t/bad.h5"
check_grep "probs differ" "$IKV_TMP/out" "check_trace.py says why"

# The h5py example of the schema document, extracted and run as written.
sed -n '/^```python$/,/^```$/p' "$top_srcdir/traces/SCHEMA.md" | sed '1d;$d' >"$t/example.py"
check "SCHEMA.md has a python example" test -s "$t/example.py"
check "SCHEMA.md example on an f32 trace" "$py" "$t/example.py" "$t/f32.h5"
check_grep "matches" "$IKV_TMP/out" "example agrees with attn/probs and lse"
check "SCHEMA.md example on an f16 trace" "$py" "$t/example.py" "$t/f16.h5"
check_exit 1 "SCHEMA.md example catches a broken row" "$py" "$t/example.py" "$t/bad.h5" 0 0 39
finish
