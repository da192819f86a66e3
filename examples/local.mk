# Examples: user programs written against the installed API (they include
# <rtrain/rtrain.h> only), built by make check and run by tests/examples/.
# Their sources and configs are installed under $(pkgdatadir)/examples
# (install.mk).
check_PROGRAMS += examples/custom_loop examples/train_func
EXAMPLE_TESTS = tests/examples/custom_loop.test tests/examples/train_func.test
TESTS += $(EXAMPLE_TESTS)
EXTRA_DIST += $(EXAMPLE_TESTS)
