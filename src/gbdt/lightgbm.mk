# gbdt, LightGBM: the rt_gbdt_library table over lib_lightgbm.so, loaded
# with dlopen at run time (no build dependency; src/gbdt/lightgbm.c).
noinst_HEADERS += src/gbdt/library.h
src_librtrain_la_SOURCES += src/gbdt/lightgbm.c

# Trees against LightGBM's own socket-based distributed training (the
# wheel's Python package, installed by scripts/install-deps.sh), resume,
# and bad input, on 2 ranks.
check_PROGRAMS += tests/mpi/test_gbdt_lightgbm
GBDT_LIGHTGBM_TESTS = tests/mpi/gbdt_lightgbm.test
TESTS += $(GBDT_LIGHTGBM_TESTS)
EXTRA_DIST += $(GBDT_LIGHTGBM_TESTS) tests/mpi/gbdt_lightgbm_ref.py docs/gbdt-lightgbm.md
tests_mpi_test_gbdt_lightgbm_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/unit
