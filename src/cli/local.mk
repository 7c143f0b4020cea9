# The command-line layer: the only code that may exit().
noinst_LTLIBRARIES += libikvcli.la
libikvcli_la_SOURCES = src/cli/common.c src/cli/common.h
libikvcli_la_LIBADD = libikvutil.la -lm
