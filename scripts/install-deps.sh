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
  libconfig-dev libopenblas-dev zlib1g-dev libjansson-dev libxxhash-dev libcsv-dev libisal-dev libdnnl-dev clang libclang-rt-14-dev
  dataset-fashion-mnist python3 python3-lxml ca-certificates
  slurm-wlm munge libpmix-dev environment-modules bash-completion
  lua5.3 lua-posix lua-filesystem lua-term lua-json tcl
  python3-torch python3-torchvision python3-h5py python3-numpy python3-sklearn
  libxgboost-dev python3-xgboost python3-pip python3-scipy libgomp1 libisal-dev
  iproute2"
# libdnnl-dev: oneDNN, the CPU backend's convolutions (optional: without
# it ./configure keeps the im2col + sgemm path). slurm-wlm + munge: the
# Slurm tests start a private one-node cluster (jobs/slurm/test-cluster-start.sh); libpmix-dev: srun --mpi=pmix needs
# libpmix.so, which nothing else pulls in. environment-modules: the install
# test loads the installed Tcl modulefile (module use/load). lua5.3 and
# the lua-* libraries: Lmod, with which the install test loads the Lua
# modulefile (see below). bash-completion: the install test completes the
# programs' options through its loader, as an interactive shell does. python3-h5py: the
# checkpoint interoperability test reads checkpoints without rtrain;
# python3-torch(vision): the PyTorch peers of bench/ (their quick mode runs
# in make check) and tests/gen_fixtures.py, which writes the committed
# reference fixtures. python3-sklearn: its bundled tables (diabetes, breast
# cancer) are the real-data examples and its least squares the regression
# reference of the tests.
# clang, libclang-rt-14-dev (libFuzzer and the sanitizer runtimes; only a
# Recommends of clang, which --no-install-recommends leaves out): make fuzz
# and make check's short fuzz run (tests/fuzz/fuzz_smoke.test, fuzz/).
# libxgboost-dev: gradient-boosted trees with model.library = "xgboost"
# (optional: ./configure links it when found). python3-xgboost: XGBoost's
# own distributed training (RabitTracker), the reference the gbdt test
# compares rtrain's trees with, and the peer of bench/gbdt_xgboost.sh.
# python3-pip, python3-scipy, libgomp1: LightGBM (below).
# libisal-dev: Intel ISA-L's CRC32C for the records of TensorBoard event
# files (src/run/tfevents.c); neither zlib nor any other base library has
# the Castagnoli CRC.
# iproute2: `ip` makes the multi-host tests' test hosts (network namespaces,
# veth pairs, a bridge: tests/multinode/netns.sh; nsenter and unshare come
# with util-linux, which every Debian system has).

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $packages

# Lmod, for the install test's Lua modulefile. Debian's lmod package
# conflicts with environment-modules (each defines `module` for login
# shells), so its files are unpacked into /opt/lmod instead, outside the
# package database and the login shells, and the package's own paths in its
# scripts (/usr/share/lmod, /usr/lib/lmod) are pointed there; its
# dependencies are in the list above. tests/install/install.test sources
# /opt/lmod/usr/share/lmod/lmod/init/sh.
if [ ! -x /opt/lmod/usr/share/lmod/lmod/libexec/lmod ]; then
  lmod_tmp=$(mktemp -d)
  chown _apt "$lmod_tmp" 2>/dev/null || true   # apt-get download fetches as _apt
  (cd "$lmod_tmp" && apt-get download -qq lmod)
  rm -rf /opt/lmod.new && mkdir -p /opt/lmod.new
  dpkg-deb -x "$lmod_tmp"/lmod_*.deb /opt/lmod.new
  grep -rlI -e /usr/share/lmod -e /usr/lib/lmod /opt/lmod.new/usr | xargs sed -i \
    -e 's|/usr/share/lmod|/opt/lmod/usr/share/lmod|g' -e 's|/usr/lib/lmod|/opt/lmod/usr/lib/lmod|g'
  rm -rf /opt/lmod && mv /opt/lmod.new /opt/lmod
  rm -rf "$lmod_tmp"
fi

# LightGBM (model.library = "lightgbm") is not packaged in Debian: rtrain
# loads lib_lightgbm.so from PyPI's wheel with dlopen at run time (no build
# dependency). The wheel is unpacked, not installed: the library (it needs
# libgomp1) and VERSION.txt are linked into $lightgbm_dir, where rtrain
# looks first, and python/ holds the Python package with its one pure-Python
# dependency (narwhals; numpy and scipy are Debian's) for the reference peer
# of tests/mpi/gbdt_lightgbm.test, LightGBM's own socket-based distributed
# training (PYTHONPATH=$lightgbm_dir/python). Nothing imports Python at run
# time.
lightgbm_version=4.7.0
narwhals_version=2.29.0
lightgbm_dir=/usr/local/lib/rtrain-lightgbm
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
/usr/bin/python3 -m pip download -q --no-deps --only-binary :all: -d "$wheels" \
  "lightgbm==$lightgbm_version" "narwhals==$narwhals_version"
rm -rf "$lightgbm_dir"
mkdir -p "$lightgbm_dir/python"
for w in "$wheels"/*.whl; do
  /usr/bin/python3 -m zipfile -e "$w" "$lightgbm_dir/python"
done
ln -s python/lightgbm/lib/lib_lightgbm.so "$lightgbm_dir/lib_lightgbm.so"
ln -s python/lightgbm/VERSION.txt "$lightgbm_dir/VERSION.txt"

# Test-only Python packages from PyPI, for /usr/bin/python3 (Debian has
# neither): tensorboard, whose own event reader checks the events files
# rtrain writes (tests/e2e/tensorboard.test), and safetensors, which moves
# weights between rtrain and PyTorch (tests/e2e/safetensors_torch.test).
# They go into a directory of their own that only the tests put on
# PYTHONPATH, with --no-deps so that Debian's numpy and torch stay the ones
# used; absl-py and protobuf are what tensorboard's reader imports.
RTRAIN_TEST_PYTHONPATH=${RTRAIN_TEST_PYTHONPATH:-/usr/local/lib/rtrain-test-python}
/usr/bin/python3 -m pip install -q --no-deps --upgrade --target "$RTRAIN_TEST_PYTHONPATH" \
  tensorboard==2.21.0 protobuf==7.36.2 absl-py==2.5.1 safetensors==0.8.0
