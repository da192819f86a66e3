# core: status codes, errors, logging, allocation, RNG.
rtraininclude_HEADERS += include/rtrain/core.h
src_librtrain_la_SOURCES += src/core/status.c src/core/log.c src/core/util.c src/core/rng.c \
	src/core/abort.c src/core/fs.c src/core/fault.c \
	src/core/deadline.c
noinst_HEADERS += src/core/fs.h src/core/fault.h src/core/philox.h

check_PROGRAMS += tests/unit/test_core
TESTS += tests/unit/test_core
