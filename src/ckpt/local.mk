# ckpt: parallel HDF5 checkpoints.
