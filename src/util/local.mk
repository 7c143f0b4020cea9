# Small utilities shared by the programs (not by the eviction core).
noinst_LTLIBRARIES += libikvutil.la
libikvutil_la_SOURCES = src/util/outfile.c src/util/outfile.h src/util/text.c src/util/text.h \
	src/util/bigalloc.c src/util/bigalloc.h src/util/thread.c src/util/thread.h
