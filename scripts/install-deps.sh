#!/bin/sh
# Installs the Debian 12 packages rtrain needs to build, run and pass its
# whole test suite, as root (the README's two commands and CI use it).
set -eu
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (it calls apt-get install)" >&2
  exit 1
fi

packages="build-essential autoconf automake libtool pkg-config make
  openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
  libconfig-dev libopenblas-dev zlib1g-dev libjansson-dev libxxhash-dev libcsv-dev libdnnl-dev clang
  dataset-fashion-mnist python3 python3-lxml ca-certificates
  slurm-wlm munge libpmix-dev environment-modules
  python3-torch python3-torchvision python3-h5py python3-numpy python3-sklearn
  libxgboost-dev python3-xgboost"
# libdnnl-dev: oneDNN, the CPU backend's convolutions (optional: without
# it ./configure keeps the im2col + sgemm path). slurm-wlm + munge: the
# Slurm tests start a private one-node cluster (jobs/slurm/test-cluster-start.sh); libpmix-dev: srun --mpi=pmix needs
# libpmix.so, which nothing else pulls in. environment-modules: the install
# test loads the installed modulefile (module use/load). python3-h5py: the
# checkpoint interoperability test reads checkpoints without rtrain;
# python3-torch(vision): the PyTorch peers of bench/ (their quick mode runs
# in make check) and tests/gen_fixtures.py, which writes the committed
# reference fixtures. python3-sklearn: its bundled tables (diabetes, breast
# cancer) are the real-data examples and its least squares the regression
# reference of the tests.
# clang: make fuzz (libFuzzer targets of the parsers, fuzz/).
# libxgboost-dev: gradient-boosted trees with model.library = "xgboost"
# (optional: ./configure links it when found). python3-xgboost: XGBoost's
# own distributed training (RabitTracker), the reference the gbdt test
# compares rtrain's trees with, and the peer of bench/gbdt_xgboost.sh.

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $packages
