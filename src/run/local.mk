# run: session, context, agreement across ranks, run directory and reports.
rtraininclude_HEADERS += include/rtrain/run.h
src_librtrain_la_SOURCES += src/run/session.c src/run/gpu_place.c src/run/rundir.c src/run/report.c src/run/resume.c \
	src/run/progress.c src/run/errfile.c src/run/runfiles.c src/run/tfevents.c src/run/lock.c
noinst_HEADERS += src/run/run_internal.h src/run/runfiles.h src/run/gpu_place.h

check_PROGRAMS += tests/unit/test_report
TESTS += tests/unit/test_report
check_PROGRAMS += tests/unit/test_runfiles
TESTS += tests/unit/test_runfiles

# GPU placement decisions for every layout, without a GPU.
check_PROGRAMS += tests/unit/test_gpu_place
TESTS += tests/unit/test_gpu_place
