#!/bin/sh
# report.sh OUTDIR: builds OUTDIR/report.md and OUTDIR/index.html from the
# tables infokv-sim wrote there, with figures drawn by the gnuplot scripts in
# plots/ when gnuplot is installed (PNG for the Markdown, SVG for the HTML).
# Without gnuplot the report says the figures were skipped. infokv-sim runs
# it after writing the tables; run it again by hand after editing a script.
#
# Environment: INFOKV_DATADIR (folder holding plots/), INFOKV_NO_PLOTS=1
# (no figures), INFOKV_QUIET=1, GNUPLOT (the gnuplot program).
set -eu
out=${1:-}
if [ -z "$out" ] || [ ! -f "$out/summary.tsv" ]; then
    echo "report.sh: usage: report.sh OUTDIR (a folder with infokv-sim's summary.tsv)" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
datadir=${INFOKV_DATADIR:-$(dirname "$here")}
plotdir="$datadir/plots"
gnuplot=${GNUPLOT:-gnuplot}
work=$(mktemp -d "${TMPDIR:-/tmp}/infokv-report.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

figures=yes
why_no_figures=""
if [ -n "${INFOKV_NO_PLOTS:-}" ]; then
    figures=no; why_no_figures="figures were not requested (--no-plots)"
elif ! command -v "$gnuplot" >/dev/null 2>&1; then
    figures=no; why_no_figures="gnuplot was not found, so the figures were skipped (install gnuplot and rerun analysis/report.sh $out)"
fi

# Which trace the overview uses: ALL when there are several.
traces=$(awk -F'\t' 'NR > 1 { print $1 }' "$out/traces.tsv" | wc -l)
overview=$(awk -F'\t' 'NR == 2 { print $1 }' "$out/traces.tsv")
[ "$traces" -gt 1 ] && overview=ALL
scenarios=$(awk -F'\t' 'NR > 1 && !seen[$2]++ { print $2 }' "$out/summary.tsv")
# The middle of the budget ladder, for the per-layer and influence figures.
mid_budget=$(awk -F'\t' 'NR > 1 && $3 != "full" && !seen[$5]++ { b[n++] = $5 } END { if (n) print b[int((n - 1) / 2)] }' "$out/summary.tsv")

label='function label(policy, params) { return params == "-" ? policy : policy " " params }'
# Tables in Markdown or HTML from one description: table_head(fmt,
# "col|col|...", "l r ...") then table_row(fmt, n) for the cells c[1..n].
TABLE_AWK='
function table_head(fmt, header, align,    h, a, n, k, line) {
    n = split(header, h, "|"); split(align, a, " ")
    if (fmt == "md") {
        line = "|"; for (k = 1; k <= n; k++) line = line " " h[k] " |"
        line = line "\n|"; for (k = 1; k <= n; k++) line = line (a[k] == "r" ? "---:|" : "---|")
    } else {
        line = "<table><tr>"; for (k = 1; k <= n; k++) line = line "<th>" h[k] "</th>"
        line = line "</tr>"
    }
    print line
}
function table_row(fmt, n,    k) {
    if (fmt == "md") { printf "|"; for (k = 1; k <= n; k++) printf " %s |", c[k]; printf "\n" }
    else { printf "<tr>"; for (k = 1; k <= n; k++) printf "<td>%s</td>", c[k]; printf "</tr>\n" }
}
function table_end(fmt) { if (fmt != "md") print "</table>" }'

# series FILE OUT FILTER KEY X Y [W]: data for gnuplot, one block per
# series KEY (in order of first appearance): a header line with its name,
# then "x<TAB>y" rows sorted by x, y the mean (weighted by W) over the rows
# of FILE that pass FILTER; two blank lines between blocks. Prints the
# number of blocks. FILTER, KEY, X, Y and W are awk expressions.
series() {
    awk -F'\t' -v sc="${sc:-}" -v b="$mid_budget" -v tr="$overview" "$label"'
        NR > 1 && ('"$3"') {
            k = '"$4"'; x = ('"$5"') + 0; y = ('"$6"') + 0; w = ('"${7:-1}"') + 0
            if (!(k in cnt)) { cnt[k] = 0; order[n++] = k }
            key = k SUBSEP x
            if (!(key in wsum)) xs[k, cnt[k]++] = x
            sum[key] += w * y; wsum[key] += w
        }
        END {
            for (s = 0; s < n; s++) {
                k = order[s]; m = cnt[k]
                for (i = 1; i < m; i++)  # insertion sort by x
                    for (j = i; j > 0 && xs[k, j] < xs[k, j - 1]; j--) {
                        t = xs[k, j]; xs[k, j] = xs[k, j - 1]; xs[k, j - 1] = t
                    }
                printf "%s\n", k > OUT
                for (i = 0; i < m; i++)
                    if (wsum[k SUBSEP xs[k, i]] > 0)
                        printf "%s\t%.6g\n", xs[k, i], sum[k SUBSEP xs[k, i]] / wsum[k SUBSEP xs[k, i]] > OUT
                printf "\n\n" > OUT
            }
            print n + 0
        }' OUT="$2" "$1"
}

plot() { # script data blocks outbase title ylabel [extra gnuplot assignments]
    [ "$figures" = yes ] || return 0
    [ "$3" -gt 0 ] || return 0
    for term in png svg; do
        "$gnuplot" -e "datafile='$2'; nblocks=$3; outfile='$4.$term'; term='$term'; plottitle='$5'; ylabelt='$6'; ${7:-}" \
            "$plotdir/$1" 2>>"$work/gnuplot.log" || {
            echo "report.sh: gnuplot failed on $1 (see below); continuing without it" >&2
            sed 's/^/  /' "$work/gnuplot.log" | tail -5 >&2
            return 0
        }
    done
    echo "$4" >>"$work/figures"
}

EVICTABLE='$1 == tr && $2 == sc && $3 != "full" && $12 !~ /^skipped/'
: >"$work/figures"
for sc in $scenarios; do
    n=$(series "$out/summary.tsv" "$work/recall_$sc.dat" "$EVICTABLE && \$7 != \"nan\"" 'label($3, $4)' '$6' '$7')
    plot vs_budget.gp "$work/recall_$sc.dat" "$n" "$out/recall_$sc" "Attention recall vs budget ($sc)" "attention recall" "logy=0"
    n=$(series "$out/summary.tsv" "$work/err_$sc.dat" "$EVICTABLE && \$8 != \"nan\"" 'label($3, $4)' '$6' '$8')
    plot vs_budget.gp "$work/err_$sc.dat" "$n" "$out/err_$sc" "Attention output error vs budget ($sc)" "relative output error" "logy=1"
    n=$(series "$out/per_layer.tsv" "$work/layer_$sc.dat" '$2 == sc && ($5 == b || $3 == "full") && $8 != "nan"' \
        'label($3, $4)' '$6' '$8')
    plot per_layer.gp "$work/layer_$sc.dat" "$n" "$out/layers_$sc" "Recall per layer at budget $mid_budget ($sc)" "attention recall"
done
sc=$(echo "$scenarios" | head -1)
n=$(series "$out/influence.tsv" "$work/influence.dat" \
    '$2 !~ /:/ && ($2 != "evicted" || ($3 == sc && $6 == b)) && $11 != "nan"' \
    '($2 == "evicted") ? "evicted by " label($4, $5) : $2' '$8' '$11' '$10')
plot influence.gp "$work/influence.dat" "$n" "$out/influence" "Trace Forward Influence vs distance" "mean relative FI"
# exact probes (KL) by distance, one line per token set
if [ -s "$out/influence.tsv" ]; then
    n=$(series "$out/influence.tsv" "$work/exact.dat" '$2 ~ /^exact-kl:/ && $11 != "nan"' \
        'substr($2, 10) " tokens"' '$8' '$11' '$10')
    plot influence.gp "$work/exact.dat" "$n" "$out/influence_exact" "Exact Forward Influence (closed loop) vs distance" "mean KL (nats)"
fi
# closed-loop KL against the budget, one line per policy and scenario (mean over traces)
if [ -s "$out/live.tsv" ] && [ "$(wc -l <"$out/live.tsv")" -gt 1 ]; then
    n=$(series "$out/live.tsv" "$work/live.dat" '$3 != "full" && $6 != "nan" && $5 ~ /^[0-9]+$/' \
        'label($3, $4) " (" $2 ")"' '$5' '$6')
    plot vs_budget.gp "$work/live.dat" "$n" "$out/live_kl" "Closed-loop KL(full || compressed) vs budget" "mean KL per decode step (nats)" "logy=1"
fi
awk -F'\t' 'NR > 1 && n < 4 && !seen[$1]++ { print $1; n++ }' "$out/traces.tsv" >"$work/seq_traces"
while read -r tr; do
    awk -F'\t' -v tr="$tr" 'NR > 1 && $1 == tr { print $2 "\t" $5 "\t" $6 "\t" $7 "\t" $8 }' "$out/sequence.tsv" >"$work/seq_$tr.dat"
    prompt=$(awk -F'\t' -v tr="$tr" 'NR > 1 && $1 == tr { print $5 }' "$out/traces.tsv")
    plot sequence.gp "$work/seq_$tr.dat" 1 "$out/sequence_$tr" "Entropy and attention along $tr" "entropy (nats)" "prompt=$prompt"
done <"$work/seq_traces"

# ---- tables as Markdown or HTML ----

# pivot FORMAT SCENARIO COLUMN: rows policy/params, columns budgets.
pivot() {
    awk -F'\t' -v fmt="$1" -v tr="$overview" -v sc="$2" -v col="$3" "$label"'
        NR > 1 && $1 == tr && $2 == sc {
            r = label($3, $4); b = ($3 == "full") ? "all" : $5
            if (!(r in rs)) { rs[r] = 1; rows[nr++] = r }
            if ($3 != "full" && !(b in bs)) { bs[b] = 1; cols[nc++] = b }
            if (!(b in tok) && $6 != "-" && $6 != "0") tok[b] = $6
            v[r SUBSEP b] = ($12 ~ /^skipped/) ? "skipped" : (($col == "nan") ? "-" : sprintf("%.4f", $col))
        }
        END {
            if (fmt == "md") {
                printf "| policy |"; for (c = 0; c < nc; c++) printf " %s%s |", cols[c], (cols[c] in tok && cols[c] ~ /%/) ? " (" tok[cols[c]] ")" : ""
                printf "\n|---|"; for (c = 0; c < nc; c++) printf "---:|"; printf "\n"
                for (i = 0; i < nr; i++) {
                    printf "| %s |", rows[i]
                    for (c = 0; c < nc; c++) { k = rows[i] SUBSEP cols[c]; if (!(k in v)) k = rows[i] SUBSEP "all"; printf " %s |", (k in v) ? v[k] : "" }
                    printf "\n"
                }
            } else {
                printf "<table><tr><th>policy</th>"; for (c = 0; c < nc; c++) printf "<th>%s</th>", cols[c]
                printf "</tr>\n"
                for (i = 0; i < nr; i++) {
                    printf "<tr><td>%s</td>", rows[i]
                    for (c = 0; c < nc; c++) { k = rows[i] SUBSEP cols[c]; if (!(k in v)) k = rows[i] SUBSEP "all"; printf "<td>%s</td>", (k in v) ? v[k] : "" }
                    printf "</tr>\n"
                }
                printf "</table>\n"
            }
        }' "$out/summary.tsv"
}

traces_table() { # FORMAT
    awk -F'\t' -v fmt="$1" '
        NR == 1 { next }
        fmt == "md" { if (!h++) print "| trace | model | positions | prompt | layers | query/KV heads | head dim |\n|---|---|---:|---:|---:|---:|---:|"
                      n = split($9, ls, ","); printf "| %s | %s | %s | %s | %d | %s/%s | %s |\n", $1, $3, $4, $5, n, $6, $7, $8 }
        fmt == "html" { if (!h++) print "<table><tr><th>trace</th><th>model</th><th>positions</th><th>prompt</th><th>layers</th><th>query/KV heads</th><th>head dim</th></tr>"
                      n = split($9, ls, ","); printf "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%d</td><td>%s/%s</td><td>%s</td></tr>\n", $1, $3, $4, $5, n, $6, $7, $8 }
        END { if (fmt == "html" && h) print "</table>" }' "$out/traces.tsv"
}

influence_table() { # FORMAT
    awk -F'\t' -v fmt="$1" '
        NR > 1 && $2 != "evicted" && $11 != "nan" {
            if (!($2 in ss)) { ss[$2] = 1; sets[ns++] = $2 }
            if (!($7 in bb)) { bb[$7] = 1; buckets[nb++] = $7; lo[$7] = $8; hi[$7] = $9 }
            sum[$2 SUBSEP $7] += $10 * $11; cnt[$2 SUBSEP $7] += $10
        }
        END {
            if (!ns) exit
            # buckets in numeric order
            for (i = 0; i < nb; i++) for (j = i + 1; j < nb; j++) if (buckets[j] + 0 < buckets[i] + 0) { t = buckets[i]; buckets[i] = buckets[j]; buckets[j] = t }
            if (fmt == "md") {
                printf "| token set |"; for (b = 0; b < nb; b++) printf " %s |", (lo[buckets[b]] == hi[buckets[b]]) ? lo[buckets[b]] : lo[buckets[b]] "-" hi[buckets[b]]
                printf "\n|---|"; for (b = 0; b < nb; b++) printf "---:|"; printf "\n"
                for (s = 0; s < ns; s++) { printf "| %s |", sets[s]; for (b = 0; b < nb; b++) { k = sets[s] SUBSEP buckets[b]; printf " %s |", (cnt[k] > 0) ? sprintf("%.4g", sum[k] / cnt[k]) : "" } printf "\n" }
            } else {
                printf "<table><tr><th>token set</th>"; for (b = 0; b < nb; b++) printf "<th>%s</th>", (lo[buckets[b]] == hi[buckets[b]]) ? lo[buckets[b]] : lo[buckets[b]] "-" hi[buckets[b]]
                printf "</tr>\n"
                for (s = 0; s < ns; s++) { printf "<tr><td>%s</td>", sets[s]; for (b = 0; b < nb; b++) { k = sets[s] SUBSEP buckets[b]; printf "<td>%s</td>", (cnt[k] > 0) ? sprintf("%.4g", sum[k] / cnt[k]) : "" } printf "</tr>\n" }
                printf "</table>\n"
            }
        }' "$out/influence.tsv"
}

live_table() { # FORMAT
    [ -s "$out/live.tsv" ] || return 0
    awk -F'\t' -v fmt="$1" "$TABLE_AWK"'
        NR == 1 { next }
        {
            row[n++] = $0
        }
        END {
            if (!n) exit
            table_head(fmt, "trace|scenario|policy|params|budget|replay recall|replay out_err|live KL|live top-1|greedy departs at|peak cache KiB|bookkeeping",
                       "l l l l r r r r r r r r")
            for (i = 0; i < n; i++) {
                split(row[i], f, "\t")
                dep = (f[8] < 0) ? "never (" f[9] ")" : f[8]
                c[1] = f[1]; c[2] = f[2]; c[3] = f[3]; c[4] = f[4]; c[5] = f[5]
                c[6] = (f[13] == "nan") ? "-" : sprintf("%.4f", f[13]); c[7] = (f[14] == "nan") ? "-" : sprintf("%.4f", f[14])
                c[8] = sprintf("%.4f", f[6]); c[9] = sprintf("%.1f%%", 100 * f[7]); c[10] = dep
                c[11] = sprintf("%.1f", f[10] / 1024); c[12] = (f[12] == "nan") ? "-" : sprintf("%.1f%%", 100 * f[12])
                table_row(fmt, 12)
            }
            table_end(fmt)
        }' "$out/live.tsv"
}

rank_table() { # FORMAT
    [ -s "$out/rank_agreement.tsv" ] || return 0
    awk -F'\t' -v fmt="$1" "$TABLE_AWK"'
        NR == 1 { next }
        $4 >= 3 { row[n++] = $0 }
        END {
            if (!n) exit
            table_head(fmt, "trace|scenario|budget|policies|Spearman(live KL, replay out_err)|Spearman(live KL, 1 - replay recall)",
                       "l l r r r r")
            for (i = 0; i < n; i++) {
                split(row[i], f, "\t")
                c[1] = f[1]; c[2] = f[2]; c[3] = f[3]; c[4] = f[4]
                c[5] = (f[5] == "nan") ? "-" : sprintf("%.2f", f[5]); c[6] = (f[6] == "nan") ? "-" : sprintf("%.2f", f[6])
                table_row(fmt, 6)
            }
            table_end(fmt)
        }' "$out/rank_agreement.tsv"
}

probe_table() { # FORMAT
    [ -s "$out/influence_compare.tsv" ] || return 0
    awk -F'\t' -v fmt="$1" "$TABLE_AWK"'
        NR == 1 { next }
        { row[n++] = $0 }
        END {
            if (!n) exit
            table_head(fmt, "trace|token set|(token, later position) pairs|Spearman(exact KL, first-order FI)|Pearson of logs",
                       "l l r r r")
            for (i = 0; i < n; i++) {
                split(row[i], f, "\t")
                c[1] = f[1]; c[2] = f[2]; c[3] = f[3]; c[4] = sprintf("%.3f", f[4]); c[5] = sprintf("%.3f", f[5])
                table_row(fmt, 5)
            }
            table_end(fmt)
        }' "$out/influence_compare.tsv"
}

skipped_list() {
    awk -F'\t' 'NR > 1 && $12 ~ /^skipped/ && $1 != "ALL" { printf "- %s: %s at budget %s (%s): %s\n", $1, $3, $5, $2, substr($12, 10) }' "$out/summary.tsv"
}

has_figure() { grep -qx "$out/$1" "$work/figures"; }

live_note="Open-loop replay: every later query in a trace was computed with the full cache, so these numbers flatter every policy. Closed-loop numbers (infokv-capture --policy) show the real cost where a trace holds a live run."

{
    echo "# infokv-sim report"
    echo
    echo "Replay of $traces trace(s) under KV-cache eviction policies; generated $(date -u +%Y-%m-%dT%H:%M:%SZ)."
    [ "$overview" = ALL ] && echo "Tables show the mean over traces (rows \`ALL\` of summary.tsv)."
    echo
    echo "## Traces"
    echo
    traces_table md
    echo
    echo "$live_note"
    echo
    for sc in $scenarios; do
        echo "## Scenario: $sc"
        echo
        echo "Budgets are slots kept per (layer, KV head); a fraction is of the $( [ "$sc" = prefill ] && echo prompt || echo whole sequence ) (tokens in brackets)."
        echo
        echo "### Attention recall"
        echo
        echo "Full-cache attention mass on the kept tokens, mean over layers, heads and decode queries (1 = nothing lost)."
        echo
        pivot md "$sc" 7
        echo
        has_figure "recall_$sc" && echo "![recall vs budget](recall_$sc.png)" && echo
        echo "### Attention output error"
        echo
        echo "|o_kept - o_full| / |o_full| of each head's attention output, softmax renormalised over the kept keys."
        echo
        pivot md "$sc" 8
        echo
        has_figure "err_$sc" && echo "![output error vs budget](err_$sc.png)" && echo
        echo "### Overlap with the hindsight oracle"
        echo
        echo "Share of the oracle's kept tokens the policy keeps too, at the same per-layer budget."
        echo
        pivot md "$sc" 9
        echo
        echo "### Kept fraction"
        echo
        echo "Mean slots a query attends over, relative to the full cache."
        echo
        pivot md "$sc" 10
        echo
        has_figure "layers_$sc" && echo "![recall per layer](layers_$sc.png)" && echo
    done
    if [ -n "$(live_table md)" ]; then
        echo "## Closed loop (live eviction) beside open loop (replay)"
        echo
        echo "Live runs recorded by \`infokv-capture --policy\` follow the full-cache run token by token: their KL(p_full || p_compressed) and top-1 agreement are the real cost of the policy, where replay only measures attention. The greedy column gives the first generated token where a free-running compressed run departs from the full cache's."
        echo
        live_table md
        echo
        has_figure live_kl && echo "![closed-loop KL vs budget](live_kl.png)" && echo
        if [ -n "$(rank_table md)" ]; then
            echo "Rank agreement across policies between closed-loop and open-loop numbers (1: replay orders the policies as live runs do):"
            echo
            rank_table md
            echo
        fi
    fi
    echo "## Forward Influence (open loop)"
    echo
    echo "Mean relative change of a later query's attention output if a token were removed, a/(1-a) |v - o| / |o|, by distance (columns) and token set; influence.tsv also has the tokens each policy evicted."
    echo
    influence_table md
    echo
    has_figure influence && echo "![Forward Influence vs distance](influence.png)" && echo
    if [ -n "$(probe_table md)" ]; then
        echo "## Exact Forward Influence (closed loop)"
        echo
        echo "Probes recorded by \`infokv-capture --influence\`: each token removed from every layer's cache, the later positions run again, KL(p_full || p_without) at each (influence.tsv, sets exact-kl:*), beside the first-order estimate of the same tokens from the trace (first-order:*) and their rank correlation over (token, later position) pairs:"
        echo
        probe_table md
        echo
        has_figure influence_exact && echo "![exact Forward Influence vs distance](influence_exact.png)" && echo
    fi
    while read -r tr; do
        has_figure "sequence_$tr" && echo "![entropy and attention along $tr](sequence_$tr.png)" && echo
    done <"$work/seq_traces"
    if [ -n "$(skipped_list)" ]; then
        echo "## Skipped"
        echo
        skipped_list
        echo
    fi
    if [ "$figures" != yes ]; then
        echo "Figures: $why_no_figures."
        echo
    fi
    echo "## Files"
    echo
    echo "summary.tsv (per trace and job), per_layer.tsv, per_step.tsv (per decode position), influence.tsv, influence_compare.tsv, live.tsv, rank_agreement.tsv, sequence.tsv, traces.tsv; figures as PNG and SVG."
} >"$work/report.md"

{
    echo "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>infokv-sim report</title>"
    echo "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}</style></head><body>"
    echo "<h1>infokv-sim report</h1><p>Replay of $traces trace(s). $live_note</p>"
    echo "<h2>Traces</h2>"
    traces_table html
    for sc in $scenarios; do
        echo "<h2>Scenario: $sc</h2>"
        echo "<h3>Attention recall</h3>"; pivot html "$sc" 7
        has_figure "recall_$sc" && echo "<img src=\"recall_$sc.svg\" alt=\"recall vs budget\">"
        echo "<h3>Attention output error</h3>"; pivot html "$sc" 8
        has_figure "err_$sc" && echo "<img src=\"err_$sc.svg\" alt=\"output error vs budget\">"
        echo "<h3>Overlap with the hindsight oracle</h3>"; pivot html "$sc" 9
        echo "<h3>Kept fraction</h3>"; pivot html "$sc" 10
        has_figure "layers_$sc" && echo "<img src=\"layers_$sc.svg\" alt=\"recall per layer\">"
    done
    if [ -n "$(live_table html)" ]; then
        echo "<h2>Closed loop (live eviction) beside open loop (replay)</h2>"
        live_table html
        has_figure live_kl && echo "<img src=\"live_kl.svg\" alt=\"closed-loop KL vs budget\">"
        rank_table html
    fi
    echo "<h2>Forward Influence (open loop)</h2>"
    influence_table html
    has_figure influence && echo "<img src=\"influence.svg\" alt=\"Forward Influence vs distance\">"
    if [ -n "$(probe_table html)" ]; then
        echo "<h2>Exact Forward Influence (closed loop)</h2>"
        probe_table html
        has_figure influence_exact && echo "<img src=\"influence_exact.svg\" alt=\"exact Forward Influence vs distance\">"
    fi
    while read -r tr; do
        has_figure "sequence_$tr" && echo "<img src=\"sequence_$tr.svg\" alt=\"entropy and attention along $tr\">"
    done <"$work/seq_traces"
    [ "$figures" != yes ] && echo "<p>Figures: $why_no_figures.</p>"
    echo "<p>Tables: <a href=\"summary.tsv\">summary.tsv</a>, <a href=\"per_layer.tsv\">per_layer.tsv</a>, <a href=\"per_step.tsv\">per_step.tsv</a>, <a href=\"influence.tsv\">influence.tsv</a>, <a href=\"sequence.tsv\">sequence.tsv</a>.</p>"
    echo "</body></html>"
} >"$work/index.html"

# Publish: each file appears complete or not at all.
mv "$work/index.html" "$out/index.html.tmp-$$" && mv "$out/index.html.tmp-$$" "$out/index.html"
mv "$work/report.md" "$out/report.md.tmp-$$" && mv "$out/report.md.tmp-$$" "$out/report.md"
[ -n "${INFOKV_QUIET:-}" ] || [ "$figures" = yes ] || echo "report.sh: $why_no_figures" >&2
exit 0
