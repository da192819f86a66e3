# config: libconfig file + key=value overrides -> rt_config (see rtrain/config.h).
rtraininclude_HEADERS += include/rtrain/config.h
noinst_HEADERS += src/config/internal.h
src_librtrain_la_SOURCES += src/config/schema.c src/config/apply.c src/config/config.c \
	src/config/validate.c src/config/json.c src/config/reference.c

check_PROGRAMS += tests/unit/test_config
TESTS += tests/unit/test_config

# The examples double as documentation; the fixtures are the error-case inputs.
EXTRA_DIST += examples/fashion_mnist_mlp.cfg examples/fashion_mnist_quickstart.cfg examples/mnist_mlp.cfg \
	examples/fashion_mnist_resnet18.cfg examples/fashion_mnist_cnn.cfg \
	tests/fixtures/config/unknown_group.cfg tests/fixtures/config/unknown_key.cfg \
	tests/fixtures/config/wrong_type.cfg tests/fixtures/config/out_of_range.cfg \
	tests/fixtures/config/bad_enum.cfg tests/fixtures/config/syntax_error.cfg \
	tests/fixtures/config/both_batch_sizes.cfg tests/fixtures/config/bad_layer.cfg \
	tests/fixtures/config/int_overflow.cfg tests/fixtures/config/wrong_variant.cfg \
	tests/fixtures/config/minimal.cfg
