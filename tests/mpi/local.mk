# Multi-rank tests: programs built here, launched by the .test scripts.
check_PROGRAMS += tests/mpi/test_ddp tests/mpi/test_session tests/mpi/test_two_trainers \
	tests/mpi/test_node_cache tests/mpi/test_tune_api
tests_mpi_test_node_cache_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/unit
tests_mpi_test_ddp_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/unit
tests_mpi_test_session_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/unit
MPI_TESTS = tests/mpi/ddp_2ranks.test tests/mpi/ddp_4ranks.test tests/mpi/ddp_tcp.test \
	tests/mpi/session.test tests/mpi/two_trainers.test tests/mpi/node_cache.test \
	tests/mpi/tune_api.test
TESTS += $(MPI_TESTS)
EXTRA_DIST += $(MPI_TESTS)
