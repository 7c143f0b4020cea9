# Engine tests: GGUF reading and hostile files, loaders, kernels (vector
# code and the portable fallback), the forward pass against a reference,
# the observer, sampling, real models (skipped without ../shared/models),
# the capture program; and the engine benchmark.
if HAVE_CUNIT
MODEL_TEST_LDADD = libikvmodel.la $(UNIT_LDADD)
MODEL_TEST_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
MODEL_FIXTURE = tests/unit/gguf_writer.c tests/unit/gguf_writer.h \
	tests/unit/model_fixture.c tests/unit/model_fixture.h

MODEL_TESTS = tests/unit/test_model_forward tests/unit/test_model_gguf \
	tests/unit/test_model_observer tests/unit/test_model_kernels \
	tests/unit/test_model_kernels_portable tests/unit/test_model_sampler \
	tests/unit/test_model_stories
check_PROGRAMS += $(MODEL_TESTS)
TESTS += $(MODEL_TESTS)

tests_unit_test_model_forward_SOURCES = tests/unit/test_model_forward.c $(MODEL_FIXTURE)
tests_unit_test_model_forward_CFLAGS = $(MODEL_TEST_CFLAGS)
tests_unit_test_model_forward_LDADD = $(MODEL_TEST_LDADD)
tests_unit_test_model_gguf_SOURCES = tests/unit/test_model_gguf.c $(MODEL_FIXTURE)
tests_unit_test_model_gguf_CFLAGS = $(MODEL_TEST_CFLAGS)
tests_unit_test_model_gguf_LDADD = $(MODEL_TEST_LDADD)
tests_unit_test_model_observer_SOURCES = tests/unit/test_model_observer.c $(MODEL_FIXTURE)
tests_unit_test_model_observer_CFLAGS = $(MODEL_TEST_CFLAGS)
tests_unit_test_model_observer_LDADD = $(MODEL_TEST_LDADD)
tests_unit_test_model_kernels_SOURCES = tests/unit/test_model_kernels.c \
	tests/unit/gguf_writer.c tests/unit/gguf_writer.h
tests_unit_test_model_kernels_CFLAGS = $(MODEL_TEST_CFLAGS)
tests_unit_test_model_kernels_LDADD = $(MODEL_TEST_LDADD)
# the same tests on the portable fallback of the vector code
tests_unit_test_model_kernels_portable_SOURCES = tests/unit/test_model_kernels.c \
	tests/unit/gguf_writer.c tests/unit/gguf_writer.h \
	src/model/kernels.c src/model/kernels_q8.c src/model/kernels_bf16.c src/model/wtype.c src/model/sha256.c
tests_unit_test_model_kernels_portable_CFLAGS = $(MODEL_TEST_CFLAGS) -DIKV_PORTABLE_KERNELS
tests_unit_test_model_kernels_portable_LDADD = $(UNIT_LDADD)
tests_unit_test_model_sampler_SOURCES = tests/unit/test_model_sampler.c
tests_unit_test_model_sampler_CFLAGS = $(MODEL_TEST_CFLAGS)
tests_unit_test_model_sampler_LDADD = $(MODEL_TEST_LDADD)
tests_unit_test_model_stories_SOURCES = tests/unit/test_model_stories.c
tests_unit_test_model_stories_CFLAGS = $(MODEL_TEST_CFLAGS)
tests_unit_test_model_stories_LDADD = $(MODEL_TEST_LDADD)
endif

# The capture program: flags and bad files; stories260K (skipped without it).
TESTS += tests/cli/capture_errors.sh tests/cli/capture_stories.sh
EXTRA_DIST += tests/cli/capture_errors.sh tests/cli/capture_stories.sh

# The engine benchmark (`make bench`): prefill/decode tokens/s against the
# measured read bandwidth (see the program's comment for options).
BENCHES += tests/bench/bench_engine
EXTRA_PROGRAMS += tests/bench/bench_engine
tests_bench_bench_engine_SOURCES = tests/bench/bench_engine.c tests/bench/bench_stats.h
tests_bench_bench_engine_LDADD = libikvmodel.la -lm
tests_bench_bench_engine_CPPFLAGS = $(AM_CPPFLAGS) -DIKV_SRCDIR='"$(abs_top_srcdir)"'
