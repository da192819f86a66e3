# tests: shell-script and multi-rank tests, and tests that span modules.
noinst_HEADERS += tests/unit/check.h

# Reference tests of the nn module against PyTorch (fixtures written by
# tests/gen_fixtures.py, committed under tests/fixtures/).
check_PROGRAMS += tests/unit/test_reference
TESTS += tests/unit/test_reference
tests_unit_test_reference_SOURCES = tests/unit/test_reference.c tests/unit/fixture.c
noinst_HEADERS += tests/unit/fixture.h
EXTRA_DIST += tests/gen_fixtures.py tests/fixtures/ref_mlp.bin tests/fixtures/ref_conv.bin \
	tests/fixtures/ref_basicblock.bin tests/fixtures/ref_resnet18.bin \
	tests/fixtures/ref_resnet18.txt

# Data written by the tests: one synthetic set in every format, and
# scikit-learn's results on the real tables.
EXTRA_DIST += tests/data/same_data.py tests/data/sklearn_reference.py
