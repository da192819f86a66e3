# Launcher and Slurm tests (issue 6): tools/rtrain-run's retries without
# Slurm (run_*.test), and jobs/train.sbatch on a private one-node Slurm
# cluster that each sbatch_*.test starts and stops itself (jobs/slurm/;
# skipped, exit 77, only when slurm-wlm or munge is not installed). The
# *_2node.test files run that cluster over two test hosts
# (tests/multinode/netns.sh, one slurmd each; skipped, exit 77, also
# without root or network namespaces).
SLURM_TESTS = \
	tests/slurm/run_retry.test \
	tests/slurm/run_exhausted.test \
	tests/slurm/run_no_retry.test \
	tests/slurm/run_preempt.test \
	tests/slurm/run_stop.test \
	tests/slurm/sbatch_train.test \
	tests/slurm/sbatch_retry.test \
	tests/slurm/sbatch_preempt.test \
	tests/slurm/sbatch_tune.test \
	tests/slurm/srun_2node.test \
	tests/slurm/sbatch_2node.test \
	tests/slurm/sbatch_preempt_2node.test
TESTS += $(SLURM_TESTS)
EXTRA_DIST += tests/slurm/lib.sh tests/multinode/netns.sh $(SLURM_TESTS) jobs/train.sbatch jobs/tune.sbatch jobs/tune-array.sbatch \
	jobs/slurm/multinode.sbatch jobs/slurm/gpu.sbatch jobs/slurm/slurm.conf.in \
	jobs/slurm/test-cluster-start.sh jobs/slurm/test-cluster-stop.sh
