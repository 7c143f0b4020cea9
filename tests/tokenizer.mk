# Tokenizer tests: SPM (hand-built and real vocabularies), the llama2.c
# tokenizer.bin reader on corrupt files, GPT-2 byte-level BPE and its
# pre-tokenizers.
if HAVE_CUNIT
TOK_TEST_LDADD = libikvtok.la $(UNIT_LDADD)
TOK_TEST_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
TOK_FIXTURE = tests/unit/tok_fixture.c tests/unit/tok_fixture.h

check_PROGRAMS += tests/unit/test_tokenizer_spm tests/unit/test_tokenizer_load
TESTS += tests/unit/test_tokenizer_spm tests/unit/test_tokenizer_load

tests_unit_test_tokenizer_spm_SOURCES = tests/unit/test_tokenizer_spm.c $(TOK_FIXTURE)
tests_unit_test_tokenizer_spm_CFLAGS = $(TOK_TEST_CFLAGS)
tests_unit_test_tokenizer_spm_LDADD = $(TOK_TEST_LDADD)
tests_unit_test_tokenizer_load_SOURCES = tests/unit/test_tokenizer_load.c $(TOK_FIXTURE)
tests_unit_test_tokenizer_load_CFLAGS = $(TOK_TEST_CFLAGS)
tests_unit_test_tokenizer_load_LDADD = $(TOK_TEST_LDADD)
endif
