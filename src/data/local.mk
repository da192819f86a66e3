# data: datasets (generic, idx files), the global sample order, the
# per-rank batch split and the prefetching loader.
rtraininclude_HEADERS += include/rtrain/data.h
src_librtrain_la_SOURCES += src/data/dataset.c src/data/format.c src/data/idx.c src/data/sampler.c \
	src/data/loader.c src/data/hdf5.c src/data/csv.c src/data/augment.c

check_PROGRAMS += tests/unit/test_data
TESTS += tests/unit/test_data
# Real FashionMNIST files; SKIPs (exit 77) where they are not installed.
check_PROGRAMS += tests/unit/test_data_fashion
TESTS += tests/unit/test_data_fashion
noinst_HEADERS += src/data/formats.h

check_PROGRAMS += tests/unit/test_csv
TESTS += tests/unit/test_csv
check_PROGRAMS += tests/unit/test_hdf5_data
TESTS += tests/unit/test_hdf5_data
