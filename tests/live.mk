# Live eviction tests, and the capture's recorder (written behind the
# engine or not, the same trace).
if HAVE_CUNIT
check_PROGRAMS += tests/unit/test_live tests/unit/test_recorder
TESTS += tests/unit/test_live tests/unit/test_recorder
tests_unit_test_live_SOURCES = tests/unit/test_live.c
tests_unit_test_live_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_unit_test_live_LDADD = libikvlive.la libikvsim.la $(UNIT_LDADD)
tests_unit_test_recorder_SOURCES = tests/unit/test_recorder.c tests/unit/sync_fault.c \
	tests/unit/sync_fault.h
tests_unit_test_recorder_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_unit_test_recorder_LDADD = libikvcapture.la $(UNIT_LDADD)
endif

TESTS += tests/cli/capture_trace.sh tests/cli/capture_live.sh
EXTRA_DIST += tests/cli/capture_trace.sh tests/cli/capture_live.sh

BENCHES += tests/bench/bench_capture
EXTRA_PROGRAMS += tests/bench/bench_capture
tests_bench_bench_capture_SOURCES = tests/bench/bench_capture.c tests/bench/bench_stats.h
tests_bench_bench_capture_CPPFLAGS = $(AM_CPPFLAGS) -DIKV_SRCDIR='"$(abs_top_srcdir)"'
tests_bench_bench_capture_LDADD = libikvcapture.la -lm

BENCHES += tests/bench/bench_live
EXTRA_PROGRAMS += tests/bench/bench_live
tests_bench_bench_live_SOURCES = tests/bench/bench_live.c
tests_bench_bench_live_LDADD = libikvlive.la -lm
