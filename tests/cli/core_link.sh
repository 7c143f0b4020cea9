#!/bin/sh
# The eviction core installs as a library that an outside program links
# through pkg-config with nothing but libc and libm (no HDF5, no OpenMP),
# exporting only its public API.
. "${top_srcdir}/tests/cli/lib.sh"
cd "$top_builddir" || exit 1
prefix="$IKV_TMP/prefix"
mkdir -p "$prefix/lib" "$prefix/include/infokv" "$prefix/lib/pkgconfig"
./libtool --mode=install cp libinfokv-core.la "$prefix/lib/libinfokv-core.la" >/dev/null 2>&1
cp "$top_srcdir/include/infokv/core.h" "$prefix/include/infokv/"
sed "s|^prefix=.*|prefix=$prefix|" infokv.pc >"$prefix/lib/pkgconfig/infokv.pc"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"

check "pkg-config knows infokv" pkg-config --exists infokv
flags=$(pkg-config --cflags --libs infokv)
check "outside program compiles and links" \
    ${CC:-cc} -std=c11 -Wall -Wextra -Werror -o "$IKV_TMP/core_demo" \
    "$top_srcdir/examples/core_demo.c" $flags -lm ${SAN_LDFLAGS:-}
LD_LIBRARY_PATH="$prefix/lib" "$IKV_TMP/core_demo" >"$IKV_TMP/demo.out" 2>&1
check "outside program runs" test $? -eq 0
check_grep "^h2o        kept 16 slots" "$IKV_TMP/demo.out" "h2o keeps its budget"
check_grep "^full       kept 96 slots, evicted   0" "$IKV_TMP/demo.out" "full keeps everything"
LD_LIBRARY_PATH="$prefix/lib" ldd "$IKV_TMP/core_demo" >"$IKV_TMP/ldd.out" 2>&1
if grep -qE 'hdf5|gomp|libz\.' "$IKV_TMP/ldd.out"; then fail "links nothing beyond libc and libm"; else pass "links nothing beyond libc and libm"; fi
lib=$(ls "$prefix"/lib/libinfokv-core.so.* | head -1)
nm -D --defined-only "$lib" | awk '$2 == "T" {print $3}' >"$IKV_TMP/exports"
if grep -vE '^ikv_' "$IKV_TMP/exports" | grep -q . ||
   grep -qE '^ikv_(fail|set_error|select_top|rank_better|allocate_budgets|aggregate|evict_slots|keep_recent_and_top|pool_along_keys|snapkv_scores|h2o_recent|recent_threshold|ops_for)$' "$IKV_TMP/exports"; then
    fail "exports only the public API"
else
    pass "exports only the public API"
fi
finish
