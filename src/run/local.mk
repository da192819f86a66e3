# run: session, context, agreement across ranks, run directory and reports.
rtraininclude_HEADERS += include/rtrain/run.h
src_librtrain_la_SOURCES += src/run/session.c src/run/rundir.c
