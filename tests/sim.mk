# Simulator tests.
if HAVE_CUNIT
check_PROGRAMS += tests/unit/test_sim_replay
TESTS += tests/unit/test_sim_replay
tests_unit_test_sim_replay_SOURCES = tests/unit/test_sim_replay.c
tests_unit_test_sim_replay_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_unit_test_sim_replay_LDADD = libikvsim.la $(UNIT_LDADD)
endif

TESTS += tests/cli/sim_run.sh tests/cli/sim_errors.sh
EXTRA_DIST += tests/cli/sim_run.sh tests/cli/sim_errors.sh

BENCHES += tests/bench/bench_sim
EXTRA_PROGRAMS += tests/bench/bench_sim
tests_bench_bench_sim_SOURCES = tests/bench/bench_sim.c
tests_bench_bench_sim_LDADD = libikvsim.la -lm

TESTS += tests/cli/sim_mpi.sh
EXTRA_DIST += tests/cli/sim_mpi.sh
