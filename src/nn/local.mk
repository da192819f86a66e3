# nn: layers, losses and model assembly (include/rtrain/nn.h). One file per
# layer type; builder.c and model.c own the slabs; arch.c the architectures.
rtraininclude_HEADERS += include/rtrain/nn.h
noinst_HEADERS += src/nn/layers.h src/nn/builder.h
src_librtrain_la_SOURCES += src/nn/layer.c src/nn/builder.c src/nn/model.c \
	src/nn/arch.c src/nn/loss.c src/nn/linear.c src/nn/conv2d.c \
	src/nn/batchnorm2d.c src/nn/relu.c src/nn/maxpool2d.c src/nn/avgpool.c \
	src/nn/flatten.c src/nn/dropout.c src/nn/basicblock.c

check_PROGRAMS += tests/unit/test_nn
TESTS += tests/unit/test_nn
tests_unit_test_nn_SOURCES = tests/unit/test_nn.c tests/unit/thread_comm.c
noinst_HEADERS += tests/unit/thread_comm.h
