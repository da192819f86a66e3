# bench: `make bench` runs rtrain side by side with PyTorch (bench/run, see
# bench/README.md) and writes bench/RESULTS.md; `make check` runs the quick
# smoke test of the harness (bench/quick.test -> bench/run --quick).
#
# bench_programs: programs that `make bench` builds first (micro-benchmarks
# that modules list, e.g. bench/bench_kernels in src/backend/local.mk).
# Lower case on purpose: automake takes any *_PROGRAMS name for a primary
# and would want a BENCHdir. Only referenced here.
# Data-loading benchmark (bench/run workload loader; before the rule below,
# whose prerequisites are expanded where it is read).
EXTRA_PROGRAMS += bench/bench_loader
bench_programs += bench/bench_loader
# GPU training speed against bench/gpu_torch.py on one GPU (tools/gpu/device-check
# runs both; exits 77 without a GPU). Built with the others so that it always
# compiles.
EXTRA_PROGRAMS += bench/bench_gpu
bench_programs += bench/bench_gpu
bench: all $(bench_programs)
	$(srcdir)/bench/run --rtrain $(abs_builddir)/src/cli/rtrain$(EXEEXT)
.PHONY: bench

TESTS += bench/quick.test
# The smoke test also runs the micro-benchmarks (all-reduce, checkpoint), which
# `make check` would not build otherwise (they are EXTRA_PROGRAMS).
bench/quick.log: $(bench_programs)
# make check builds them for the quick test: clean removes them again.
CLEANFILES += $(bench_programs)
noinst_HEADERS += bench/bench_util.h
EXTRA_DIST += bench/run bench/quick.test bench/README.md \
	bench/peers/common.py bench/peers/torch_mlp.py bench/peers/torch_resnet18.py \
	bench/peers/torch_allreduce.py bench/peers/torch_ckpt.py bench/peers/torch_loader.py \
	bench/peers/loader_data.py bench/gpu_torch.py tools/gpu/make-bundle tools/gpu/device-check \
	tools/gpu/rebuild-cuda-lib bench/tune_overhead bench/tune_asha \
	bench/gbdt_xgboost bench/peers/xgboost_dist.py bench/gbdt_lightgbm bench/peers/lightgbm_dist.py
