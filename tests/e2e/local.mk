# End-to-end tests of the rtrain program (shell scripts, see tests/e2e/lib.sh).
E2E_TESTS = \
	tests/e2e/train_mlp_accuracy.test tests/e2e/quickstart.test \
	tests/e2e/error_unknown_key.test \
	tests/e2e/error_bad_type.test \
	tests/e2e/error_bad_override.test \
	tests/e2e/error_missing_config.test \
	tests/e2e/error_missing_data.test \
	tests/e2e/error_truncated_data.test \
	tests/e2e/error_wrong_magic.test \
	tests/e2e/error_num_workers.test \
	tests/e2e/error_global_batch.test \
	tests/e2e/error_one_rank_data.test \
	tests/e2e/error_use_gpu.test tests/e2e/error_cpu_paths.test tests/e2e/device_paths.test tests/e2e/tune.test tests/e2e/tune_asha.test tests/e2e/tune_pbt.test tests/e2e/tune_array_claims.test \
	tests/e2e/train_two_ranks.test \
	tests/e2e/profile.test \
	tests/e2e/resume.test tests/e2e/resume_async.test \
	tests/e2e/watchdog.test \
	tests/e2e/fault_kernel_one_rank.test \
	tests/e2e/fault_ckpt_write.test tests/e2e/ckpt_disk_full.test tests/e2e/ckpt_deadline.test tests/e2e/ckpt_damaged.test tests/e2e/preempt_first_epoch.test tests/e2e/run_lock.test tests/e2e/stop_signal_kernels.test tests/e2e/node_update.test tests/e2e/error_eval_split.test tests/e2e/watchdog_setup.test tests/e2e/run_symlinks.test tests/e2e/results_recovered.test \
	tests/e2e/fault_collective_start.test tests/e2e/fault_build.test tests/e2e/storage_links.test \
	tests/e2e/data_formats.test \
	tests/e2e/tables_sklearn.test \
	tests/e2e/error_data_inputs.test \
	tests/e2e/resume_data.test tests/e2e/sgd_no_momentum.test tests/e2e/preempt_mpirun.test \
	tests/e2e/fashion_hdf5.test \
	tests/e2e/data_tool.test \
	tests/e2e/predict_fashion.test tests/e2e/predict_tables.test \
	tests/e2e/check.test \
	tests/e2e/gbdt_xgboost.test tests/e2e/gbdt_lightgbm.test \
	tests/e2e/tensorboard.test \
	tests/e2e/safetensors_torch.test
TESTS += $(E2E_TESTS)
EXTRA_DIST += tests/e2e/lib.sh tests/e2e/predict_lib.sh tests/e2e/gbdt_lib.sh $(E2E_TESTS) \
	tests/gbdt/xgboost_reference.py tests/e2e/tensorboard_check.py \
	tests/e2e/safetensors_torch.py
