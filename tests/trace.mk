# Tests and benchmark of the trace writer/reader and infokv-inspect.
# make_trace writes synthetic self-consistent traces for the shell tests.
check_PROGRAMS += tests/unit/make_trace
tests_unit_make_trace_SOURCES = tests/unit/make_trace.c tests/unit/trace_synth.c \
	tests/unit/trace_synth.h
tests_unit_make_trace_LDADD = libikvtrace.la -lm

if HAVE_CUNIT
check_PROGRAMS += tests/unit/test_trace tests/unit/test_trace_hdf5
TESTS += tests/unit/test_trace tests/unit/test_trace_hdf5
tests_unit_test_trace_SOURCES = tests/unit/test_trace.c tests/unit/trace_synth.c \
	tests/unit/trace_synth.h
tests_unit_test_trace_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_unit_test_trace_LDADD = libikvtrace.la $(UNIT_LDADD)
# Forges foreign, hostile and broken HDF5 files, and checks our binary16
# conversion against HDF5's: the one test that uses the HDF5 API directly.
tests_unit_test_trace_hdf5_SOURCES = tests/unit/test_trace_hdf5.c tests/unit/trace_synth.c \
	tests/unit/trace_synth.h tests/unit/sync_fault.c tests/unit/sync_fault.h
tests_unit_test_trace_hdf5_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS) $(HDF5_CFLAGS)
tests_unit_test_trace_hdf5_LDADD = libikvtrace.la $(HDF5_LIBS) $(UNIT_LDADD)
endif

TESTS += tests/cli/inspect_trace.sh tests/cli/inspect_bad.sh tests/cli/trace_h5py.sh
EXTRA_DIST += tests/cli/inspect_trace.sh tests/cli/inspect_bad.sh tests/cli/trace_h5py.sh \
	tests/cli/check_trace.py tests/cli/forge_trace.py

BENCHES += tests/bench/bench_trace
EXTRA_PROGRAMS += tests/bench/bench_trace
tests_bench_bench_trace_SOURCES = tests/bench/bench_trace.c tests/unit/trace_synth.c \
	tests/unit/trace_synth.h
tests_bench_bench_trace_CFLAGS = $(AM_CFLAGS) -O2
tests_bench_bench_trace_LDADD = libikvtrace.la -lm
