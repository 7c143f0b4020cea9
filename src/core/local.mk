# The eviction core: C11 + libm only (no OpenMP, no HDF5, no I/O).
# libikvcore.la holds the objects (tests link it to reach internals);
# libinfokv-core is the installed shared library exporting the public API.
noinst_LTLIBRARIES += libikvcore.la
libikvcore_la_SOURCES = \
	src/core/internal.h \
	src/core/params.c \
	src/core/budget.c \
	src/core/select.c \
	src/core/policy.c \
	src/core/policy_full.c \
	src/core/policy_random.c \
	src/core/policy_streaming.c \
	src/core/policy_h2o.c \
	src/core/policy_tova.c \
	src/core/policy_snapkv.c \
	src/core/policy_infokv.c \
	src/core/policy_oracle.c \
	src/core/signals.c
libikvcore_la_CFLAGS = $(CORE_CFLAGS)

lib_LTLIBRARIES += libinfokv-core.la
infokvinclude_HEADERS += include/infokv/core.h
libinfokv_core_la_SOURCES =
libinfokv_core_la_CFLAGS = $(CORE_CFLAGS)
libinfokv_core_la_LIBADD = libikvcore.la -lm
libinfokv_core_la_LDFLAGS = -version-info 0:0:0 -no-undefined $(SAN_LDFLAGS) \
	-export-symbols-regex '^ikv_(strerror|policy_.*|params_.*|budget_parse|.*default_params|param_info_at|entropy_from_logits|logits_summary|top_k|evolution)$$'
