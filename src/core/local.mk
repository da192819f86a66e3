# core: status codes, errors, logging, allocation, RNG.
rtraininclude_HEADERS += include/rtrain/core.h
src_librtrain_la_SOURCES += src/core/status.c src/core/log.c src/core/util.c src/core/rng.c

check_PROGRAMS += tests/unit/test_core
TESTS += tests/unit/test_core
