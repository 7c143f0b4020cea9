# Helpers for the command-line tests (sourced). Each `check` is one test;
# the script ends with `finish`, which prints the SUMMARY line that
# scripts/test sums, and exits 1 if any check failed.
#   check "name" command args...       passes when the command exits 0
#   check_exit N "name" command...     passes when it exits with N
#   check_grep PATTERN FILE "name"     passes when FILE matches PATTERN
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$(pwd)}"
IKV_PASSED=0
IKV_FAILED=0
IKV_TMP=$(mktemp -d "${TMPDIR:-/tmp}/ikv-test.XXXXXX")
trap 'rm -rf "$IKV_TMP"' EXIT

pass() { IKV_PASSED=$((IKV_PASSED + 1)); echo "PASS: $1"; }
fail() { IKV_FAILED=$((IKV_FAILED + 1)); echo "FAIL: $1"; }

check() {
    name=$1; shift
    if "$@" >"$IKV_TMP/out" 2>"$IKV_TMP/err"; then pass "$name"
    else echo "  exit $?; stderr:"; sed 's/^/    /' "$IKV_TMP/err" | head -20; fail "$name"; fi
}

check_exit() {
    want=$1; name=$2; shift 2
    "$@" >"$IKV_TMP/out" 2>"$IKV_TMP/err"
    got=$?
    if [ "$got" -eq "$want" ]; then pass "$name"
    else echo "  wanted exit $want, got $got; stderr:"; sed 's/^/    /' "$IKV_TMP/err" | head -20; fail "$name"; fi
}

check_grep() {
    if grep -q -- "$1" "$2"; then pass "$3"
    else echo "  '$1' not found in $2:"; head -20 "$2" | sed 's/^/    /'; fail "$3"; fi
}

# Skips the whole script (automake counts exit 77 as SKIP).
skip_all() { echo "SKIP: $1"; echo "SUMMARY passed=0 failed=0"; exit 77; }

finish() {
    echo "SUMMARY passed=$IKV_PASSED failed=$IKV_FAILED"
    [ "$IKV_FAILED" -eq 0 ]
}
