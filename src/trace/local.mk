# The HDF5 trace schema: writer and reader. The only code that includes
# hdf5.h; everything else goes through src/trace/trace.h.
noinst_LTLIBRARIES += libikvtrace.la
libikvtrace_la_SOURCES = \
	src/trace/trace.h \
	src/trace/internal.h \
	src/trace/writer_internal.h \
	src/trace/reader_internal.h \
	src/trace/schema.c \
	src/trace/dtype.c \
	src/trace/h5util.c \
	src/trace/heapcheck.c \
	src/trace/chunks.c \
	src/trace/compressor.c \
	src/trace/writer.c \
	src/trace/extra.c \
	src/trace/reader.c \
	src/trace/read.c
libikvtrace_la_CFLAGS = $(AM_CFLAGS) $(HDF5_CFLAGS) $(ZLIB_CFLAGS)
libikvtrace_la_LIBADD = libikvutil.la $(HDF5_LIBS) $(ZLIB_LIBS) -lm

# infokv-inspect: summary and validation of a trace.
bin_PROGRAMS += infokv-inspect
infokv_inspect_SOURCES = src/cli/inspect.c src/cli/inspect.h src/cli/inspect_stats.c
infokv_inspect_LDADD = libikvtrace.la libikvcli.la -lm
include $(top_srcdir)/tests/trace.mk
