# The inference engine: loaders (llama2.c, GGUF), kernels, forward pass,
# sessions with an observer, sampling. The tokenizers come from
# libikvtok.la (src/model/tokenizer.mk); the eviction core from
# libikvcore.la (live eviction links it through the engine).
noinst_LTLIBRARIES += libikvmodel.la
libikvmodel_la_SOURCES = \
	src/model/status.h \
	src/model/half.h \
	src/model/wtype.h src/model/wtype.c \
	src/model/mapfile.h src/model/mapfile.c \
	src/model/sha256.h src/model/sha256.c \
	src/model/gguf.h src/model/gguf.c \
	src/model/kernels.h src/model/kernels_isa.h src/model/kernels.c \
	src/model/kernels_q8.h src/model/kernels_q8.c \
	src/model/kernels_bf16.h src/model/kernels_bf16.c \
	src/model/model.h src/model/model_internal.h src/model/model.c \
	src/model/llama2c.c \
	src/model/gguf_model.c \
	src/model/synthetic.c \
	src/model/observer.h \
	src/model/session.h src/model/session_internal.h src/model/session.c \
	src/model/forward.c \
	src/model/sampler.h src/model/sampler.c
libikvmodel_la_LIBADD = libikvtok.la libikvcore.la libikvutil.la -lm

