# optim: SGD, Adam, AdamW (PyTorch 1.13 update rules) and LR schedules.
rtraininclude_HEADERS += include/rtrain/optim.h
src_librtrain_la_SOURCES += src/optim/optim.c src/optim/schedule.c

check_PROGRAMS += tests/unit/test_optim
TESTS += tests/unit/test_optim
# The reference trajectories are written by tests/gen_optim_fixture.py
# (run with Debian's torch: /usr/bin/python3 tests/gen_optim_fixture.py).
EXTRA_DIST += tests/fixtures/optim_reference.txt tests/gen_optim_fixture.py
