# cli: the rtrain program, a thin main over rt_trainer_run (src/train/).
bin_PROGRAMS += src/cli/rtrain
src_cli_rtrain_SOURCES = src/cli/rtrain.c
