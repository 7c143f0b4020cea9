#!/bin/sh
# infokv-inspect on bad input: truncated, foreign, empty, missing files,
# other formats and versions, and traces whose values --check rejects.
# Each must exit 2 with one line naming the file.
. "$(dirname "$0")/lib.sh"
inspect="$top_builddir/infokv-inspect"
make_trace="$top_builddir/tests/unit/make_trace"
t="$IKV_TMP"

# bad FILE NAME PATTERN [options]: exit 2 and stderr names FILE and matches PATTERN.
bad() {
    file=$1; name=$2; pattern=$3; shift 3
    check_exit 2 "$name: exit 2" "$inspect" "$@" "$file"
    check_grep "$file" "$IKV_TMP/err" "$name: message names the file"
    check_grep "$pattern" "$IKV_TMP/err" "$name: message says why"
    lines=$(wc -l <"$IKV_TMP/err")
    if [ "$lines" -eq 1 ]; then pass "$name: one line"; else fail "$name: one line ($lines)"; fi
}

check "make_trace" "$make_trace" "$t/good.h5" --signals all --tokens 40
size=$(wc -c <"$t/good.h5")
for cut in 0 100 2048 $((size / 2)) $((size - 1)); do
    head -c "$cut" "$t/good.h5" >"$t/cut$cut.h5"
done
bad "$t/cut0.h5" "empty file" "not an HDF5 file"
bad "$t/cut100.h5" "truncated to 100 bytes" "HDF5"
bad "$t/cut2048.h5" "truncated to 2048 bytes" "truncated"
bad "$t/cut$((size / 2)).h5" "truncated to half" "truncated"
bad "$t/cut$((size - 1)).h5" "one byte short" "truncated"
bad "$t/cut$((size / 2)).h5" "truncated, --check" "truncated" --check
printf 'just some text\n' >"$t/text.h5"
bad "$t/text.h5" "text file" "not an HDF5 file"
bad "$t/missing.h5" "missing file" "No such file"
mkdir "$t/dir.h5"
bad "$t/dir.h5" "directory" "not a regular file"

if command -v h5copy >/dev/null 2>&1; then
    check "h5copy: an HDF5 file of another format" \
        h5copy -i "$t/good.h5" -o "$t/other.h5" -s /tokens -d /tokens
    bad "$t/other.h5" "HDF5 without infokv attributes" "not an infokv trace"
else
    echo "SKIP: no h5copy for a foreign HDF5 file"
fi

if /usr/bin/python3 -c "import h5py" >/dev/null 2>&1; then
    forge="/usr/bin/python3 $top_srcdir/tests/cli/forge_trace.py"
    check "forge: version 2" $forge "$t/good.h5" "$t/v2.h5" version 2
    bad "$t/v2.h5" "version 2" "unsupported trace version 2"
    check "forge: other format" $forge "$t/good.h5" "$t/fmt.h5" format netcdf-thing
    bad "$t/fmt.h5" "other format" "format is 'netcdf-thing'"
    check "forge: no n_heads" $forge "$t/good.h5" "$t/noheads.h5" delete n_heads
    bad "$t/noheads.h5" "missing attribute" "'n_heads' is missing"
else
    echo "SKIP: /usr/bin/python3 has no h5py; forged versions are covered by test_trace_hdf5"
fi

check "make_trace: NaN in q" "$make_trace" "$t/nan.h5" --poison nan
check "inspect without --check accepts it" "$inspect" "$t/nan.h5"
bad "$t/nan.h5" "NaN in q, --check" "check failed: /qkv/q layer slot 0: 1 non-finite" --check
check "make_trace: broken attention row" "$make_trace" "$t/row.h5" --poison probs
bad "$t/row.h5" "attention row, --check" "do not sum to 1" --check
check_exit 2 "inspect --check --json: exit 2 on an invalid trace" "$inspect" --check --json "$t/row.h5"
check_grep '"valid": false' "$IKV_TMP/out" "json says invalid"
finish
