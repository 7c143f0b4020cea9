# The simulator's library: replay of traces through the eviction core.
noinst_LTLIBRARIES += libikvsim.la
libikvsim_la_SOURCES = \
	src/sim/attention.c src/sim/attention.h \
	src/sim/reference.c src/sim/reference.h \
	src/sim/replay.c src/sim/replay.h
libikvsim_la_LIBADD = libikvcore.la -lm
