#!/bin/sh
# compare.sh [--metric recall|out_err|oracle_overlap|kept_frac] [--tsv] OUTDIR...
# One table across several infokv-sim output folders (runs on different
# traces, models or parameters): a row per (scenario, policy, params,
# budget), a column per folder with the chosen metric (rows ALL where a
# folder holds several traces). Markdown by default, TSV with --tsv.
set -eu
metric=recall
format=md
while [ $# -gt 0 ]; do
    case "$1" in
        --metric) metric=${2:?--metric needs a value}; shift 2 ;;
        --metric=*) metric=${1#--metric=}; shift ;;
        --tsv) format=tsv; shift ;;
        -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --) shift; break ;;
        -*) echo "compare.sh: unknown option '$1'" >&2; exit 2 ;;
        *) break ;;
    esac
done
case "$metric" in
    recall) col=7 ;; out_err) col=8 ;; oracle_overlap) col=9 ;; kept_frac) col=10 ;;
    *) echo "compare.sh: unknown metric '$metric' (recall, out_err, oracle_overlap, kept_frac)" >&2; exit 2 ;;
esac
[ $# -gt 0 ] || { echo "compare.sh: usage: compare.sh [--metric M] [--tsv] OUTDIR..." >&2; exit 2; }
for dir in "$@"; do
    [ -f "$dir/summary.tsv" ] || { echo "compare.sh: $dir/summary.tsv not found" >&2; exit 2; }
done
for dir in "$@"; do
    name=$(basename "$dir")
    # the overview rows of each folder: ALL if present, else its only trace
    awk -F'\t' -v name="$name" -v col="$col" '
        NR == 1 { next }
        { rows[NR] = $0; if ($1 == "ALL") all = 1 }
        END {
            for (i = 2; i <= NR; i++) {
                split(rows[i], f, "\t")
                if (all && f[1] != "ALL") continue
                v = (f[12] ~ /^skipped/) ? "skipped" : f[col]
                print name "\t" f[2] "\t" f[3] "\t" f[4] "\t" f[5] "\t" v
            }
        }' "$dir/summary.tsv"
done | awk -F'\t' -v fmt="$format" -v metric="$metric" '
    {
        if (!($1 in ds)) { ds[$1] = 1; dirs[nd++] = $1 }
        k = $2 "\t" $3 "\t" $4 "\t" $5
        if (!(k in ks)) { ks[k] = 1; keys[nk++] = k }
        v[k SUBSEP $1] = $6
    }
    END {
        if (fmt == "tsv") {
            printf "scenario\tpolicy\tparams\tbudget"; for (d = 0; d < nd; d++) printf "\t%s", dirs[d]; printf "\n"
            for (i = 0; i < nk; i++) { printf "%s", keys[i]; for (d = 0; d < nd; d++) printf "\t%s", ((keys[i] SUBSEP dirs[d]) in v) ? v[keys[i] SUBSEP dirs[d]] : "-"; printf "\n" }
        } else {
            printf "%s\n\n| scenario | policy | params | budget |", metric; for (d = 0; d < nd; d++) printf " %s |", dirs[d]
            printf "\n|---|---|---|---|"; for (d = 0; d < nd; d++) printf "---:|"; printf "\n"
            for (i = 0; i < nk; i++) {
                split(keys[i], f, "\t"); printf "| %s | %s | %s | %s |", f[1], f[2], f[3], f[4]
                for (d = 0; d < nd; d++) { x = ((keys[i] SUBSEP dirs[d]) in v) ? v[keys[i] SUBSEP dirs[d]] : "-"; printf " %s |", (x ~ /^[0-9.eE+-]+$/ && x != "-") ? sprintf("%.4f", x) : x }
                printf "\n"
            }
        }
    }'
