#!/bin/sh
# infokv-capture --policy and --influence: closed-loop runs and exact
# Forward Influence probes in the trace, read back by infokv-sim.
. "${top_srcdir}/tests/cli/lib.sh"
cap="$top_builddir/infokv-capture"
sim="$top_builddir/infokv-sim"
export OMP_WAIT_POLICY=passive
models="$top_srcdir/../shared/models"
if [ -r "$models/stories260K.bin" ]; then
    model="-m $models/stories260K.bin -z $models/tok512.bin"
    prompt="Once upon a time there was a big dog who liked to run in the park with his friends"
else
    echo "note: ../shared/models absent: using a synthetic model"
    model="-m synthetic:tiny"
    prompt="a synthetic prompt of some length for the test"
fi
t="$IKV_TMP/live.h5"
# shellcheck disable=SC2086
check "capture with live policies and probes" "$cap" $model -p "$prompt" -n 96 -t 0 \
    --policy full,h2o,snapkv --budget 16 --param snapkv.window=4 --scenario decode \
    --influence 3 -o "$t"
check_grep "live full budget all (decode): KL 0 nats, top-1 agreement 100.0%" "$IKV_TMP/err" "full is lossless"
check_grep "live h2o budget 16 (decode): KL" "$IKV_TMP/err" "h2o summary"
check_grep "influence of attention tokens" "$IKV_TMP/err" "influence summary"
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import h5py, numpy" 2>/dev/null; then
    cat >"$IKV_TMP/check.py" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
T = int(f.attrs["n_tokens"])
runs = sorted(k for k in f["live"].keys())
assert runs == ["run0", "run1", "run2"], runs
full = f["live/run0"]
assert full.attrs["policy"] == "full"
kl0 = full["kl"][()]
assert np.all(kl0[~np.isnan(kl0)] == 0.0), "full: KL must be 0"
assert np.all(full["agree"][()][~np.isnan(kl0)] == 1)
h2o = f["live/run1"]
lens = h2o["cache_len"][()]
assert lens.shape == (f.attrs["n_layers"], T)
assert lens[:, -1].max() <= 16, "h2o keeps its budget"
assert np.nanmean(h2o["kl"][()][f.attrs["n_prompt"]:]) > 0
pos = f["influence/pos"][()]; kl = f["influence/kl"][()]
assert kl.shape == (len(pos), T) and len(pos) > 0
for i, j in enumerate(pos):
    assert np.all(np.isnan(kl[i, :j + 1])), "NaN up to the removed token"
    after = kl[i, j + 1:]
    assert np.all(after >= 0) and not np.any(np.isnan(after)), "KL defined and >= 0 after it"
print("ok", len(pos), "probes")
PY
    check "h5py: live runs and probes are well formed" /usr/bin/python3 "$IKV_TMP/check.py" "$t"
fi
check "sim replays the live configurations" "$sim" -q -o "$IKV_TMP/simout" -P full -b 16 "$t"
check_grep "^live	decode	h2o	-	16	0.[0-9]*	0.[0-9]*	" "$IKV_TMP/simout/live.tsv" "live.tsv row for h2o"
check "replay numbers beside live ones" awk -F'\t' 'NR > 1 && $3 == "h2o" { ok = ($13 != "nan" && $14 != "nan") } END { exit !ok }' "$IKV_TMP/simout/live.tsv"
check_grep "exact-kl:attention" "$IKV_TMP/simout/influence.tsv" "exact influence by distance"
check_grep "^live	all	" "$IKV_TMP/simout/influence_compare.tsv" "exact vs first-order correlation"
check_grep "Closed loop (live eviction) beside open loop" "$IKV_TMP/simout/report.md" "report shows both"

# Bad live options.
# shellcheck disable=SC2086
check_exit 2 "oracle is replay only" "$cap" $model -p "x" -n 20 --policy oracle
check_grep "replay" "$IKV_TMP/err" "says why"
# shellcheck disable=SC2086
check_exit 2 "--budget without --policy" "$cap" $model -p "x" --budget 8
# shellcheck disable=SC2086
check_exit 2 "budget below the SnapKV window" "$cap" $model -p "$prompt" -n 40 --policy snapkv --budget 8
check_grep "below the observation window" "$IKV_TMP/err" "names the window"
# shellcheck disable=SC2086
check_exit 2 "unknown influence set" "$cap" $model -p "x" --influence 2 --influence-set loud
finish
