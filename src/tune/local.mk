# tune: search spaces (space.c), the schedulers' rules (asha.c, pbt_rule.c)
# and the sweep rt_tune_run runs (src/tune/internal.h); rtrain-tune is a
# thin main over it.
rtraininclude_HEADERS += include/rtrain/tune.h
src_librtrain_la_SOURCES += src/tune/space.c src/tune/asha.c src/tune/pbt_rule.c \
	src/tune/internal.h src/tune/experiment.c src/tune/claims.c src/tune/schedulers.c \
	src/tune/pbt.c src/tune/table.c src/tune/sweep.c

check_PROGRAMS += tests/unit/test_tune_space
TESTS += tests/unit/test_tune_space

# rtrain-tune: the search over MPI groups of ranks (the trainer in the library,
# one session per trial on the group's communicator).
bin_PROGRAMS += tools/rtrain-tune
tools_rtrain_tune_SOURCES = tools/rtrain-tune.c

# ASHA's stopping rule on synthetic curves.
check_PROGRAMS += tests/unit/test_tune_asha
TESTS += tests/unit/test_tune_asha

# PBT's exploit rule and explore step on synthetic populations.
check_PROGRAMS += tests/unit/test_tune_pbt
TESTS += tests/unit/test_tune_pbt
