# Tokenizers of the engine (SPM score-merge BPE, GPT-2 byte-level BPE) and
# the llama2.c tokenizer.bin reader. The engine links libikvtok.la.
noinst_LTLIBRARIES += libikvtok.la
libikvtok_la_SOURCES = \
	src/model/tokenizer.h \
	src/model/tokenizer_internal.h \
	src/model/tokenizer.c \
	src/model/tokenizer_bpe.c \
	src/model/tokenizer_spm.c \
	src/model/tokenizer_gpt2.c \
	src/model/tokenizer_pretok.c \
	src/model/tokenizer_llama2c.c
libikvtok_la_CFLAGS = $(AM_CFLAGS) $(PCRE2_CFLAGS)
libikvtok_la_LIBADD = libikvutil.la $(PCRE2_LIBS)
