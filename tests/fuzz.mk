# Fuzzing (tests/fuzz). Each harness tests/fuzz/fuzz_NAME.c defines
# LLVMFuzzerTestOneInput() and is built twice:
#   replay_NAME  in every build, a plain program (replay.c) that feeds it
#                the committed corpus tests/fuzz/corpus/NAME and the
#                regression inputs tests/fuzz/regress/NAME; part of
#                `make check` (so the sanitizer build replays them too);
#   fuzz_NAME    with configure --enable-fuzzing CC=clang: a libFuzzer
#                program; `make fuzz` runs each harness for FUZZ_TIME
#                seconds (FUZZ=NAME... picks some), see tests/fuzz/run.sh.
FUZZ_COMMON = tests/fuzz/fuzz_util.c tests/fuzz/fuzz_util.h
FUZZ_REPLAY_CPPFLAGS = $(AM_CPPFLAGS) -DIKV_SRCDIR='"$(abs_top_srcdir)"'
FUZZ_ENGINE = tests/fuzz/fuzz_engine.c tests/fuzz/fuzz_engine.h
FUZZ_REPLAYS = tests/fuzz/replay_gguf tests/fuzz/replay_llama2c tests/fuzz/replay_tok_spm \
	tests/fuzz/replay_tok_gpt2 tests/fuzz/replay_params tests/fuzz/replay_trace
check_PROGRAMS += $(FUZZ_REPLAYS)
TESTS += $(FUZZ_REPLAYS)

tests_fuzz_replay_gguf_SOURCES = tests/fuzz/fuzz_gguf.c tests/fuzz/replay.c $(FUZZ_COMMON) $(FUZZ_ENGINE)
tests_fuzz_replay_gguf_CPPFLAGS = $(FUZZ_REPLAY_CPPFLAGS)
tests_fuzz_replay_gguf_LDADD = libikvmodel.la
tests_fuzz_replay_llama2c_SOURCES = tests/fuzz/fuzz_llama2c.c tests/fuzz/replay.c $(FUZZ_COMMON) $(FUZZ_ENGINE)
tests_fuzz_replay_llama2c_CPPFLAGS = $(FUZZ_REPLAY_CPPFLAGS)
tests_fuzz_replay_llama2c_LDADD = libikvmodel.la
tests_fuzz_replay_tok_spm_SOURCES = tests/fuzz/fuzz_tok_spm.c tests/fuzz/replay.c $(FUZZ_COMMON) $(FUZZ_ENGINE)
tests_fuzz_replay_tok_spm_CPPFLAGS = $(FUZZ_REPLAY_CPPFLAGS)
tests_fuzz_replay_tok_spm_LDADD = libikvmodel.la -lm
tests_fuzz_replay_tok_gpt2_SOURCES = tests/fuzz/fuzz_tok_gpt2.c tests/fuzz/replay.c $(FUZZ_COMMON) $(FUZZ_ENGINE)
tests_fuzz_replay_tok_gpt2_CPPFLAGS = $(FUZZ_REPLAY_CPPFLAGS)
tests_fuzz_replay_tok_gpt2_CFLAGS = $(AM_CFLAGS) $(PCRE2_CFLAGS)
tests_fuzz_replay_tok_gpt2_LDADD = libikvmodel.la
tests_fuzz_replay_params_SOURCES = tests/fuzz/fuzz_params.c tests/fuzz/replay.c $(FUZZ_COMMON)
tests_fuzz_replay_params_CPPFLAGS = $(FUZZ_REPLAY_CPPFLAGS)
tests_fuzz_replay_params_LDADD = libikvsim.la -lm
tests_fuzz_replay_trace_SOURCES = tests/fuzz/fuzz_trace.c tests/fuzz/replay.c $(FUZZ_COMMON) \
	src/cli/inspect_stats.c
tests_fuzz_replay_trace_CPPFLAGS = $(FUZZ_REPLAY_CPPFLAGS)
tests_fuzz_replay_trace_CFLAGS = $(AM_CFLAGS) $(HDF5_CFLAGS)
tests_fuzz_replay_trace_LDADD = libikvsim.la $(HDF5_LIBS) -lm

# The seed generator (run by hand when the seeds change: see tests/fuzz/README.md).
EXTRA_PROGRAMS += tests/fuzz/make_seeds
tests_fuzz_make_seeds_SOURCES = tests/fuzz/make_seeds.c tests/unit/gguf_writer.c \
	tests/unit/gguf_writer.h tests/unit/model_fixture.c tests/unit/model_fixture.h
tests_fuzz_make_seeds_LDADD = -lm

EXTRA_DIST += tests/fuzz/run.sh tests/fuzz/corpus tests/fuzz/regress tests/fuzz/README.md

if FUZZING
FUZZERS = tests/fuzz/fuzz_gguf tests/fuzz/fuzz_llama2c tests/fuzz/fuzz_tok_spm tests/fuzz/fuzz_tok_gpt2 \
	tests/fuzz/fuzz_params tests/fuzz/fuzz_trace
EXTRA_PROGRAMS += $(FUZZERS)
tests_fuzz_fuzz_gguf_SOURCES = tests/fuzz/fuzz_gguf.c $(FUZZ_COMMON) $(FUZZ_ENGINE)
tests_fuzz_fuzz_gguf_LDADD = libikvmodel.la
tests_fuzz_fuzz_gguf_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_llama2c_SOURCES = tests/fuzz/fuzz_llama2c.c $(FUZZ_COMMON) $(FUZZ_ENGINE)
tests_fuzz_fuzz_llama2c_LDADD = libikvmodel.la
tests_fuzz_fuzz_llama2c_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_tok_spm_SOURCES = tests/fuzz/fuzz_tok_spm.c $(FUZZ_COMMON) $(FUZZ_ENGINE)
tests_fuzz_fuzz_tok_spm_LDADD = libikvmodel.la -lm
tests_fuzz_fuzz_tok_spm_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_tok_gpt2_SOURCES = tests/fuzz/fuzz_tok_gpt2.c $(FUZZ_COMMON) $(FUZZ_ENGINE)
tests_fuzz_fuzz_tok_gpt2_CFLAGS = $(AM_CFLAGS) $(PCRE2_CFLAGS)
tests_fuzz_fuzz_tok_gpt2_LDADD = libikvmodel.la
tests_fuzz_fuzz_tok_gpt2_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_params_SOURCES = tests/fuzz/fuzz_params.c $(FUZZ_COMMON)
tests_fuzz_fuzz_params_LDADD = libikvsim.la -lm
tests_fuzz_fuzz_params_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_trace_SOURCES = tests/fuzz/fuzz_trace.c $(FUZZ_COMMON) src/cli/inspect_stats.c
tests_fuzz_fuzz_trace_CFLAGS = $(AM_CFLAGS) $(HDF5_CFLAGS)
tests_fuzz_fuzz_trace_LDADD = libikvsim.la $(HDF5_LIBS) -lm
tests_fuzz_fuzz_trace_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)

FUZZ_TIME = 60
fuzz: $(FUZZERS)
	FUZZ_TIME='$(FUZZ_TIME)' FUZZ='$(FUZZ)' $(SHELL) $(srcdir)/tests/fuzz/run.sh \
		'$(abs_top_srcdir)' '$(abs_top_builddir)'
else
fuzz:
	@echo "make fuzz: configure with --enable-fuzzing CC=clang (in its own build folder)"; exit 1
endif
.PHONY: fuzz
