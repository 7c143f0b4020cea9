# Tests: CUnit suites (tests/unit), command-line scripts (tests/cli) and
# benchmarks (tests/bench, run by `make bench`).
if HAVE_CUNIT
noinst_LTLIBRARIES += libikvtest.la
libikvtest_la_SOURCES = tests/unit/runner.c tests/unit/runner.h
libikvtest_la_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)

UNIT_LDADD = libikvtest.la $(CUNIT_LIBS) -lm

check_PROGRAMS += tests/unit/test_core_params tests/unit/test_core_select \
	tests/unit/test_core_policies tests/unit/test_core_properties
TESTS += tests/unit/test_core_params tests/unit/test_core_select \
	tests/unit/test_core_policies tests/unit/test_core_properties

tests_unit_test_core_params_SOURCES = tests/unit/test_core_params.c
tests_unit_test_core_params_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_unit_test_core_params_LDADD = libikvcore.la $(UNIT_LDADD)
tests_unit_test_core_select_SOURCES = tests/unit/test_core_select.c
tests_unit_test_core_select_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_unit_test_core_select_LDADD = libikvcore.la $(UNIT_LDADD)
tests_unit_test_core_policies_SOURCES = tests/unit/test_core_policies.c tests/unit/core_fixture.h
tests_unit_test_core_policies_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_unit_test_core_policies_LDADD = libikvcore.la $(UNIT_LDADD)
tests_unit_test_core_properties_SOURCES = tests/unit/test_core_properties.c tests/unit/core_fixture.h
tests_unit_test_core_properties_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_unit_test_core_properties_LDADD = libikvcore.la $(UNIT_LDADD)
endif

# The core links from an outside program with nothing but libc and libm.
TESTS += tests/cli/core_link.sh
EXTRA_DIST += tests/cli/core_link.sh tests/cli/lib.sh

BENCHES += tests/bench/bench_select
EXTRA_PROGRAMS += tests/bench/bench_select
tests_bench_bench_select_SOURCES = tests/bench/bench_select.c
tests_bench_bench_select_CFLAGS = $(CORE_CFLAGS) -O2
tests_bench_bench_select_LDADD = libikvcore.la -lm
