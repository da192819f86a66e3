# comm: collectives and DDP gradient buckets.
rtraininclude_HEADERS += include/rtrain/comm.h
src_librtrain_la_SOURCES += src/comm/collectives.c src/comm/ddp.c
