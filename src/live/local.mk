# Live eviction: an eviction-core policy compacting an engine session's cache.
noinst_LTLIBRARIES += libikvlive.la
libikvlive_la_SOURCES = src/live/live.c src/live/live.h
libikvlive_la_LIBADD = libikvmodel.la libikvcore.la -lm
