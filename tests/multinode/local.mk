# Multi-host tests on one machine (issue 17): test hosts h1, h2 made of
# network and UTS namespaces joined by a bridge (tests/multinode/netns.sh);
# Open MPI starts ranks on them over TCP. They need root (skipped, exit 77,
# elsewhere) and each claims its own bridge and subnet, so they may run
# side by side. abort_grace.test (rtrain-run --abort-grace) needs no root.
MULTINODE_TESTS = \
	tests/multinode/abort_grace.test \
	tests/multinode/placement.test \
	tests/multinode/host_kill.test \
	tests/multinode/link_cut.test
TESTS += $(MULTINODE_TESTS)
EXTRA_DIST += tests/multinode/netns.sh tests/multinode/lib.sh $(MULTINODE_TESTS)
