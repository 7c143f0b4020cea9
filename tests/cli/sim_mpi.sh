#!/bin/sh
# infokv-sim over 2 MPI ranks on this machine gives the tables of one
# process. Skipped unless infokv-sim was built --with-mpi and mpirun exists.
. "${top_srcdir}/tests/cli/lib.sh"
sim="$top_builddir/infokv-sim"
"$sim" --version | grep -q "with MPI" || skip_all "infokv-sim built without MPI (configure --with-mpi)"
command -v mpirun >/dev/null 2>&1 || skip_all "mpirun not found"
"$top_builddir/tests/unit/make_trace" "$IKV_TMP/a.h5" --tokens 70 --prompt 40 --signals default >/dev/null 2>&1
"$top_builddir/tests/unit/make_trace" "$IKV_TMP/b.h5" --tokens 60 --prompt 30 --signals default --seed 2 >/dev/null 2>&1
mpi="mpirun --oversubscribe -np 2"
[ "$(id -u)" -eq 0 ] && mpi="mpirun --allow-run-as-root --oversubscribe -np 2"
export OMPI_MCA_btl=self,vader OMPI_MCA_rmaps_base_oversubscribe=1
check "one process" "$sim" -q --no-plots -o "$IKV_TMP/one" -b 8,16 --param window=4 "$IKV_TMP/a.h5" "$IKV_TMP/b.h5"
# shellcheck disable=SC2086
check "two ranks" $mpi "$sim" -q --no-plots -o "$IKV_TMP/two" -b 8,16 --param window=4 "$IKV_TMP/a.h5" "$IKV_TMP/b.h5"
# Sums add in another order across ranks: equal to 1e-5 relative.
same() {
    awk -F'\t' 'NR == FNR { a[FNR] = $0; next }
        { split(a[FNR], x, "\t"); n = split($0, y, "\t")
          for (i = 1; i <= n; i++) {
              if (x[i] == y[i]) continue
              if (x[i] + 0 == x[i] && y[i] + 0 == y[i]) {
                  d = x[i] - y[i]; if (d < 0) d = -d
                  m = x[i] < 0 ? -x[i] : x[i]
                  if (d <= 1e-5 * (m > 1 ? m : 1)) continue
              }
              print FILENAME ": line " FNR " field " i ": " x[i] " vs " y[i]; bad = 1
          } }
        END { exit bad }' "$1" "$2"
}
for f in summary.tsv per_layer.tsv per_step.tsv influence.tsv sequence.tsv; do
    check "$f equal over 2 ranks" same "$IKV_TMP/one/$f" "$IKV_TMP/two/$f"
done
# shellcheck disable=SC2086
check_exit 2 "a bad trace: exit 2 from every rank" $mpi "$sim" -q -o "$IKV_TMP/bad" "$IKV_TMP/none.h5"
check "one line from infokv-sim" test "$(grep -c '^infokv-sim:' "$IKV_TMP/err")" -eq 1
finish
