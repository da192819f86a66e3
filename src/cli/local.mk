# cli: the rtrain program.
bin_PROGRAMS += src/cli/rtrain
src_cli_rtrain_SOURCES = src/cli/rtrain.c src/cli/trainer.c src/cli/trainer_ckpt.c \
	src/cli/fault.c src/cli/trainer.h
