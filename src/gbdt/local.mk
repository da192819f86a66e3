# gbdt: gradient-boosted trees over MPI through a real boosting library
# (include/rtrain/gbdt.h): the trainer (trainer.c, shard.c, metrics.c,
# checkpoint.c), the library table (library.h, library.c) and the XGBoost
# backend with its rabit tracker, built when ./configure finds libxgboost.
rtraininclude_HEADERS += include/rtrain/gbdt.h
noinst_HEADERS += src/gbdt/library.h src/gbdt/internal.h src/gbdt/rabit_tracker.h
src_librtrain_la_SOURCES += src/gbdt/library.c src/gbdt/trainer.c src/gbdt/shard.c src/gbdt/check.c \
	src/gbdt/metrics.c src/gbdt/checkpoint.c
if HAVE_XGBOOST
src_librtrain_la_SOURCES += src/gbdt/xgboost.c src/gbdt/rabit_tracker.c
endif

check_PROGRAMS += tests/unit/test_gbdt
TESTS += tests/unit/test_gbdt
