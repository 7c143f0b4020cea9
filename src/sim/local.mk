# The simulator's library: replay of traces through the eviction core.
noinst_LTLIBRARIES += libikvsim.la
libikvsim_la_SOURCES = \
	src/sim/attention.c src/sim/attention.h \
	src/sim/reference.c src/sim/reference.h \
	src/sim/replay.c src/sim/replay.h \
	src/sim/influence.c src/sim/influence.h \
	src/sim/jobs.c src/sim/jobs.h \
	src/sim/run.c src/sim/run.h \
	src/sim/tables.c src/sim/tables.h
libikvsim_la_LIBADD = libikvcore.la libikvtrace.la libikvutil.la -lm
