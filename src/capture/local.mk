# The capture program: generate text, record traces (src/capture is the
# glue from engine observer callbacks to trace rows).
noinst_LTLIBRARIES += libikvcapture.la
libikvcapture_la_SOURCES = src/capture/recorder.c src/capture/recorder.h
libikvcapture_la_LIBADD = libikvmodel.la libikvtrace.la

bin_PROGRAMS += infokv-capture
infokv_capture_SOURCES = src/cli/capture.c src/cli/capture.h src/cli/capture_live.c \
	src/cli/capture_influence.c src/cli/prompt.c src/cli/prompt.h
infokv_capture_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
infokv_capture_LDADD = libikvcapture.la libikvlive.la libikvsim.la libikvcli.la libikvutil.la \
	$(JANSSON_LIBS) -lm
