# gbdt: gradient-boosted trees over MPI through a real boosting library
# (include/rtrain/gbdt.h): the trainer (trainer.c, shard.c, metrics.c,
# checkpoint.c, check.c), the library table (library.h, library.c), the
# LightGBM backend (lightgbm.c: lib_lightgbm.so loaded with dlopen at run
# time, no build dependency) and the XGBoost backend with its rabit tracker,
# built when ./configure finds libxgboost.
rtraininclude_HEADERS += include/rtrain/gbdt.h
noinst_HEADERS += src/gbdt/library.h src/gbdt/internal.h src/gbdt/rabit_tracker.h
src_librtrain_la_SOURCES += src/gbdt/library.c src/gbdt/trainer.c src/gbdt/shard.c \
	src/gbdt/check.c src/gbdt/metrics.c src/gbdt/checkpoint.c src/gbdt/lightgbm.c
if HAVE_XGBOOST
src_librtrain_la_SOURCES += src/gbdt/xgboost.c src/gbdt/rabit_tracker.c
endif

check_PROGRAMS += tests/unit/test_gbdt
TESTS += tests/unit/test_gbdt

# Trees against LightGBM's own socket-based distributed training (the
# wheel's Python package, installed by scripts/install-deps.sh), resume,
# and bad input, on 2 ranks.
check_PROGRAMS += tests/mpi/test_gbdt_lightgbm
GBDT_LIGHTGBM_TESTS = tests/mpi/gbdt_lightgbm.test
TESTS += $(GBDT_LIGHTGBM_TESTS)
EXTRA_DIST += $(GBDT_LIGHTGBM_TESTS) tests/mpi/gbdt_lightgbm_ref.py
tests_mpi_test_gbdt_lightgbm_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/unit
