# ckpt: parallel HDF5 checkpoints (format, commit protocol, retention, resume).
rtraininclude_HEADERS += include/rtrain/ckpt.h
noinst_HEADERS += src/ckpt/internal.h src/ckpt/h5internal.h
src_librtrain_la_SOURCES += src/ckpt/agree.c src/ckpt/listing.c src/ckpt/h5file.c src/ckpt/h5tensor.c src/ckpt/h5rows.c src/ckpt/h5attr.c src/ckpt/h5list.c \
	src/ckpt/state.c src/ckpt/index.c src/ckpt/retention.c src/ckpt/manager.c \
	src/ckpt/async.c src/ckpt/safetensors.c src/ckpt/weights.c
# Checkpoint write/read benchmark (bench/run workload ckpt; `make bench`).
EXTRA_PROGRAMS += bench/bench_ckpt
bench_programs += bench/bench_ckpt

# safetensors files and starting weights (model.init_from), no MPI.
check_PROGRAMS += tests/unit/test_safetensors
TESTS += tests/unit/test_safetensors
# The logits helper of tests/e2e/safetensors_torch.test.
check_PROGRAMS += tests/unit/st_logits
