# Robustness (GitHub issue 7): fuzz harnesses and corpus replay
# (tests/fuzz.mk), bad inputs, interruption, valgrind.
include $(top_srcdir)/tests/fuzz.mk

# Bad inputs and hostile environments: the table in README.md (section Errors).
TESTS += tests/cli/bad_inputs.sh
EXTRA_DIST += tests/cli/bad_inputs.sh

# Interruption by SIGINT, SIGTERM and SIGKILL at random moments: a few
# trials in `make check`, many with `make check-interrupt` (IKV_TRIALS).
TESTS += tests/cli/interrupt.sh
EXTRA_DIST += tests/cli/interrupt.sh
IKV_TRIALS = 60
check-interrupt: all
	top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' IKV_TRIALS='$(IKV_TRIALS)' \
		$(SHELL) $(srcdir)/tests/cli/interrupt.sh
.PHONY: check-interrupt

# valgrind (memcheck) on the demo capture and simulation. valgrind knows
# neither AVX-512 (-march=native) nor ASan: such builds make a plain one
# in valgrind-build/ first.
valgrind: all
	@if test -n "$(ARCH_CFLAGS)$(SAN_CFLAGS)"; then \
		echo "make valgrind: a build without '$(ARCH_CFLAGS) $(SAN_CFLAGS)' in valgrind-build/"; \
		mkdir -p valgrind-build && cd valgrind-build && \
		{ test -f Makefile || '$(abs_top_srcdir)/configure' --disable-native >configure.out; } && \
		$(MAKE) $(AM_MAKEFLAGS) infokv-capture infokv-sim infokv-inspect >build.out && \
		$(SHELL) '$(abs_top_srcdir)/tests/valgrind.sh' .; \
	else \
		$(SHELL) '$(abs_top_srcdir)/tests/valgrind.sh' .; \
	fi
.PHONY: valgrind
EXTRA_DIST += tests/valgrind.sh tests/valgrind.supp
