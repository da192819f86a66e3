# tune: search spaces (space.c) and rtrain-tune's trials (tools/rtrain-tune.c).
rtraininclude_HEADERS += include/rtrain/tune.h
src_librtrain_la_SOURCES += src/tune/space.c src/tune/asha.c

check_PROGRAMS += tests/unit/test_tune_space
TESTS += tests/unit/test_tune_space

# rtrain-tune: the search over MPI groups of ranks (the trainer in the library,
# one session per trial on the group's communicator).
bin_PROGRAMS += tools/rtrain-tune
tools_rtrain_tune_SOURCES = tools/rtrain-tune.c

# ASHA's stopping rule on synthetic curves.
check_PROGRAMS += tests/unit/test_tune_asha
TESTS += tests/unit/test_tune_asha
