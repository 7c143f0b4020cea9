# Robustness (GitHub issue 7): fuzz harnesses and corpus replay
# (tests/fuzz.mk), bad inputs, interruption, valgrind.
include $(top_srcdir)/tests/fuzz.mk
