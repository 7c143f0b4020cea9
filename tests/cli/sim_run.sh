#!/bin/sh
# infokv-sim end to end on a synthetic trace: tables, their invariants,
# the report with and without gnuplot.
. "${top_srcdir}/tests/cli/lib.sh"
sim="$top_builddir/infokv-sim"
make_trace="$top_builddir/tests/unit/make_trace"
trace="$IKV_TMP/synth.h5"
check "make a synthetic trace" "$make_trace" "$trace" --tokens 80 --prompt 48 --signals default
out="$IKV_TMP/sim"
check "sim runs with defaults and a sweep" "$sim" -q -o "$out" -b 8,16 -s prefill,decode \
    --param window=4 --param infokv.alpha=0,0.5 "$trace"
check_grep "report.md" "$IKV_TMP/out" "prints the report's path"
for f in summary.tsv per_layer.tsv per_step.tsv influence.tsv sequence.tsv traces.tsv report.md index.html; do
    check "$f written" test -s "$out/$f"
done
check_grep "^trace	scenario	policy	params	budget	budget_tokens	recall	out_err	oracle_overlap" \
    "$out/summary.tsv" "summary header"
# 9 policies, infokv twice (alpha sweep), full once per scenario: (8*2+1)... per scenario
rows=$(awk 'NR > 1' "$out/summary.tsv" | wc -l)
check "summary has one row per job (2 scenarios x (full + 9 x 2 budgets))" test "$rows" -eq 38
check "full keeps recall 1 and error 0" awk -F'\t' \
    'NR > 1 && $3 == "full" { if ($7 != 1 || $8 != 0) bad = 1; n++ } END { exit bad || n != 2 }' "$out/summary.tsv"
check "oracle recall is the ceiling in prefill" awk -F'\t' \
    'NR > 1 && $2 == "prefill" { r[$3 "|" $4 "|" $5] = $7; if ($3 == "oracle") o[$5] = $7; b[$3 "|" $4 "|" $5] = $5 }
     END { for (k in r) if (r[k] > o[b[k]] + 1e-5 && k !~ /^full/) { print k, r[k], o[b[k]]; bad = 1 } exit bad }' "$out/summary.tsv"
check "the oracle overlaps itself fully" awk -F'\t' \
    'NR > 1 && $3 == "oracle" { if ($9 != 1) bad = 1 } END { exit bad }' "$out/summary.tsv"
check "recall grows with the budget" awk -F'\t' \
    'NR > 1 && $3 == "h2o" { r[$2 $5] = $7 } END { exit !(r["prefill8"] < r["prefill16"] && r["decode8"] < r["decode16"]) }' "$out/summary.tsv"
check "alpha=0 infokv equals snapkv in prefill (same window)" awk -F'\t' \
    'NR > 1 && $2 == "prefill" && $5 == 8 { if ($3 == "snapkv") s = $7; if ($3 == "infokv" && $4 ~ /alpha=0($|,)/) i = $7 }
     END { exit !(s != "" && s == i) }' "$out/summary.tsv"
layers=5
check "per_layer rows = jobs x layers" test "$(awk 'NR > 1' "$out/per_layer.tsv" | wc -l)" -eq $((38 * layers))
check "per_step rows = jobs x decode positions" test "$(awk 'NR > 1' "$out/per_step.tsv" | wc -l)" -eq $((38 * 32))
check "sequence has every position" test "$(awk 'NR > 1' "$out/sequence.tsv" | wc -l)" -eq 80
check_grep "^synth	top-attention" "$out/influence.tsv" "influence of the top-attention set"
check_grep "^synth	evicted	prefill	h2o" "$out/influence.tsv" "influence of evicted tokens"
if command -v gnuplot >/dev/null 2>&1; then
    check "figures drawn" test -s "$out/recall_prefill.png" -a -s "$out/err_decode.svg" -a -s "$out/influence.png"
    check_grep "recall_prefill.png" "$out/report.md" "report shows the figures"
fi

# Without gnuplot: tables still written, the report says figures were skipped.
mkdir -p "$IKV_TMP/bin"
for tool in sh awk sed mktemp date dirname rm mv cat head wc grep sort tail; do
    p=$(command -v $tool) && ln -sf "$p" "$IKV_TMP/bin/$tool"
done
out2="$IKV_TMP/out2"
PATH="$IKV_TMP/bin" check "sim runs without gnuplot" "$sim" -q -o "$out2" -P h2o,oracle -b 8 "$trace"
check "tables written without gnuplot" test -s "$out2/summary.tsv"
check_grep "gnuplot was not found, so the figures were skipped" "$out2/report.md" "report says figures were skipped"
check "no figure files" test ! -e "$out2/recall_prefill.png"
check "--no-plots" "$sim" -q --no-plots -o "$IKV_TMP/out3" -P h2o -b 8 "$trace"
check_grep "not requested" "$IKV_TMP/out3/report.md" "report says figures were not requested"

# analysis/: the report can be rebuilt by hand; runs compare side by side.
check "report.sh rebuilds the report" sh "$top_srcdir/analysis/report.sh" "$out2"
check_exit 2 "report.sh refuses a folder without tables" sh "$top_srcdir/analysis/report.sh" "$IKV_TMP"
check "compare.sh across runs" sh "$top_srcdir/analysis/compare.sh" --tsv "$out" "$out2"
check_grep "^prefill	h2o	-	8	0.[0-9]*	0.[0-9]*$" "$IKV_TMP/out" "one column per run"
check_exit 2 "compare.sh: unknown metric" sh "$top_srcdir/analysis/compare.sh" --metric speed "$out"
finish
