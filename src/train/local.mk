# train: the built-in training loop (rt_trainer_run: trainer.c, its
# checkpoints and resume in trainer_ckpt.c, run.profile in profile.c,
# batch prediction with a trained model in predict.c (rtrain-predict),
# test-only faults in fault.c, rtrain --check in check.c, the optimizer
# step of ranks sharing one node in node_update.c) and
# the API for a user's own training loop (include/rtrain/train.h):
# prepare_model, prepare_data_loader, get_checkpoint, report with a
# checkpoint, user-defined models (src/nn/custom.c, listed here to leave the
# nn fragment alone), and the umbrella header rtrain/rtrain.h.
rtraininclude_HEADERS += include/rtrain/train.h include/rtrain/rtrain.h
noinst_HEADERS += src/nn/custom.h src/train/trainer.h
src_librtrain_la_SOURCES += src/train/prepare.c src/train/checkpoint.c src/nn/custom.c \
	src/train/trainer.c src/train/trainer_ckpt.c src/train/fault.c src/train/preprocess.c \
	src/train/metrics.c src/train/profile.c src/train/predict.c src/train/check.c \
	src/train/node_update.c

check_PROGRAMS += tests/unit/test_train
TESTS += tests/unit/test_train
