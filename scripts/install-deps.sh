#!/bin/sh
# Installs the Debian 12 packages rtrain needs, as root.
#   scripts/install-deps.sh          build + run + test (what CI and the README use)
#   scripts/install-deps.sh --peers  also PyTorch/h5py: fixture generation and bench/peers
set -eu
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (it calls apt-get install)" >&2
  exit 1
fi

packages="build-essential autoconf automake libtool pkg-config make
  openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
  libconfig-dev libopenblas-dev zlib1g-dev libjansson-dev libxxhash-dev
  dataset-fashion-mnist python3 python3-lxml ca-certificates
  slurm-wlm munge libpmix-dev"
# slurm-wlm + munge: the Slurm tests start a private one-node cluster
# (jobs/slurm/test-cluster-start.sh); libpmix-dev: srun --mpi=pmix needs
# libpmix.so, which nothing else pulls in.

if [ "${1:-}" = "--peers" ]; then
  packages="$packages python3-torch python3-torchvision python3-h5py python3-numpy"
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $packages
