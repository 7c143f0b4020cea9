# The simulator's library: replay of traces through the eviction core.
noinst_LTLIBRARIES += libikvsim.la
libikvsim_la_SOURCES = \
	src/sim/attention.c src/sim/attention.h \
	src/sim/reference.c src/sim/reference.h \
	src/sim/replay.c src/sim/replay.h \
	src/sim/influence.c src/sim/influence.h \
	src/sim/jobs.c src/sim/jobs.h \
	src/sim/inputs.c src/sim/inputs.h \
	src/sim/results.c \
	src/sim/run.c src/sim/run.h \
	src/sim/tables.c src/sim/tables.h
libikvsim_la_LIBADD = libikvcore.la libikvtrace.la libikvutil.la -lm

bin_PROGRAMS += infokv-sim
infokv_sim_SOURCES = src/cli/sim.c
infokv_sim_CPPFLAGS = $(AM_CPPFLAGS) -DIKV_PKGDATADIR='"$(pkgdatadir)"' \
	-DIKV_SRCDIR='"$(abs_top_srcdir)"' $(MPI_CFLAGS)
infokv_sim_LDADD = libikvsim.la libikvcli.la $(MPI_LIBS)

# gnuplot scripts and the report/comparison scripts infokv-sim runs.
nobase_dist_pkgdata_DATA = plots/common.gp plots/vs_budget.gp plots/per_layer.gp \
	plots/influence.gp plots/sequence.gp analysis/report.sh analysis/compare.sh analysis/study.sh

# Contraction of a*b+c into FMA (off by default under -std=c11) halves the
# kernels' instruction count; exactness only needs one order per build.
libikvsim_la_CFLAGS = $(AM_CFLAGS) -ffp-contract=fast
