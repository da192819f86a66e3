# End-to-end tests of run directories, reports and rtrain-results
# (tests/e2e/results_*.test, helpers in results_lib.sh).
RESULTS_TESTS = \
	tests/e2e/results_two_ranks.test \
	tests/e2e/results_failed.test \
	tests/e2e/results_tool.test \
	tests/e2e/results_modes.test \
	tests/e2e/results_storage.test \
	tests/e2e/results_terminal.test \
	tests/e2e/results_experiment.test
TESTS += $(RESULTS_TESTS)
EXTRA_DIST += tests/e2e/results_lib.sh $(RESULTS_TESTS)
