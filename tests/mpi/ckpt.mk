# Checkpoint tests (issue 5): test_ckpt is driven by the ckpt_*.test
# scripts under mpirun; test_ckpt_retention is a plain program.
check_PROGRAMS += tests/mpi/test_ckpt tests/mpi/test_ckpt_retention
tests_mpi_test_ckpt_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/unit
tests_mpi_test_ckpt_retention_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/unit
CKPT_TESTS = tests/mpi/ckpt_reshard.test tests/mpi/ckpt_suite.test \
	tests/mpi/ckpt_crash.test tests/mpi/ckpt_h5py.test tests/mpi/ckpt_tool.test
TESTS += tests/mpi/test_ckpt_retention $(CKPT_TESTS)
EXTRA_DIST += $(CKPT_TESTS) tests/mpi/ckpt_h5py.py
