# Tokenizer tests: SPM (hand-built and real vocabularies), the llama2.c
# tokenizer.bin reader on corrupt files, GPT-2 byte-level BPE and its
# pre-tokenizers.
if HAVE_CUNIT
TOK_TEST_LDADD = libikvtok.la $(UNIT_LDADD)
TOK_TEST_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
TOK_FIXTURE = tests/unit/tok_fixture.c tests/unit/tok_fixture.h

TOK_TESTS = tests/unit/test_tokenizer_spm tests/unit/test_tokenizer_load \
	tests/unit/test_tokenizer_gpt2
check_PROGRAMS += $(TOK_TESTS)
TESTS += $(TOK_TESTS)

tests_unit_test_tokenizer_spm_SOURCES = tests/unit/test_tokenizer_spm.c $(TOK_FIXTURE)
tests_unit_test_tokenizer_spm_CFLAGS = $(TOK_TEST_CFLAGS)
tests_unit_test_tokenizer_spm_LDADD = $(TOK_TEST_LDADD)
tests_unit_test_tokenizer_load_SOURCES = tests/unit/test_tokenizer_load.c $(TOK_FIXTURE)
tests_unit_test_tokenizer_load_CFLAGS = $(TOK_TEST_CFLAGS)
tests_unit_test_tokenizer_load_LDADD = $(TOK_TEST_LDADD)
tests_unit_test_tokenizer_gpt2_SOURCES = tests/unit/test_tokenizer_gpt2.c $(TOK_FIXTURE)
tests_unit_test_tokenizer_gpt2_CFLAGS = $(TOK_TEST_CFLAGS)
tests_unit_test_tokenizer_gpt2_LDADD = $(TOK_TEST_LDADD)

# make bench: SPM against a run.c-style O(n^2) encoder, GPT-2 against its
# pre-tokenizer alone.
BENCHES += tests/bench/bench_tokenizer
EXTRA_PROGRAMS += tests/bench/bench_tokenizer
tests_bench_bench_tokenizer_SOURCES = tests/bench/bench_tokenizer.c $(TOK_FIXTURE)
tests_bench_bench_tokenizer_CPPFLAGS = $(AM_CPPFLAGS) -DIKV_SRCDIR='"$(abs_top_srcdir)"'
tests_bench_bench_tokenizer_CFLAGS = $(TOK_TEST_CFLAGS) -O2
tests_bench_bench_tokenizer_LDADD = $(TOK_TEST_LDADD)
CLEANFILES += tests/bench/bench_tokenizer
endif
