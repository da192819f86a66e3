#!/bin/sh
# Starts a private one-node Slurm cluster on this machine: munged, slurmctld
# and slurmd, every file under STATE_DIR (config, munge key and socket, state,
# spool, logs, PID files), on two free TCP ports. Used by tests/slurm/*.test;
# also handy to try jobs/train.sbatch on a laptop:
#
#   jobs/slurm/test-cluster-start.sh /tmp/mycluster
#   . /tmp/mycluster/env          # sets SLURM_CONF for sbatch, squeue, scontrol
#   sbatch jobs/train.sbatch examples/mnist_mlp.cfg
#   jobs/slurm/test-cluster-stop.sh /tmp/mycluster
#
# Needs the Debian packages slurm-wlm, munge and libpmix-dev (srun --mpi=pmix).
# The daemons run as the calling user; as root (containers, CI) jobs run as
# root too. Exit status: 0 up and the node idle; 1 it did not come up (the
# logs are printed, and whatever was started is stopped again); 77 Slurm or
# munge is not installed (the test harness's "skip").
set -eu

die() { echo "test-cluster-start: $*" >&2; exit 1; }

[ $# -eq 1 ] || { echo "usage: $0 STATE_DIR" >&2; exit 2; }
for prog in munged slurmctld slurmd scontrol sbatch srun; do
    command -v "$prog" >/dev/null 2>&1 ||
        { echo "test-cluster-start: $prog not found (install slurm-wlm munge libpmix-dev)" >&2; exit 77; }
done

here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
state=$(cd "$1" && pwd)
# munged refuses directories others may write to; slurmd wants short paths
# for its step sockets (sun_path is 108 bytes).
chmod 0700 "$state"
[ ${#state} -le 60 ] || die "STATE_DIR path $state is too long for Slurm's sockets (keep it under 60 characters, e.g. under /tmp)"
mkdir -p "$state/munge" "$state/ctld" "$state/slurmd" "$state/tmp"
chmod 0700 "$state/munge"

# Two free ports: bind to port 0 and let the kernel pick.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
ctld_port=$(free_port)
slurmd_port=$(free_port)
while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port=$(free_port); done

first_job_id=$(python3 -c 'import random; print(random.randint(1000, 60000000))')
host=$(hostname -s)
user=$(id -un)
cpus=$(nproc)
sed -e "s|@STATE@|$state|g" -e "s|@HOST@|$host|g" -e "s|@USER@|$user|g" \
    -e "s|@CPUS@|$cpus|g" -e "s|@CTLD_PORT@|$ctld_port|g" -e "s|@SLURMD_PORT@|$slurmd_port|g" \
    -e "s|@FIRST_JOB_ID@|$first_job_id|g" \
    "$here/slurm.conf.in" >"$state/slurm.conf"
cat >"$state/env" <<EOF
SLURM_CONF='$state/slurm.conf'; export SLURM_CONF
EOF
SLURM_CONF=$state/slurm.conf
export SLURM_CONF

# A fresh munge key for this cluster only (1 KiB of random bytes, mode 0600).
umask 077
dd if=/dev/urandom of="$state/munge/munge.key" bs=1024 count=1 2>/dev/null

failed() {
    echo "test-cluster-start: $*" >&2
    for log in munge/munged.log slurmctld.log slurmd.log; do
        [ -f "$state/$log" ] && { echo "--- $state/$log (last lines)" >&2; tail -20 "$state/$log" >&2; }
    done
    "$here/test-cluster-stop.sh" "$state" >&2 || true
    exit 1
}

munged --socket="$state/munge/munge.socket" --key-file="$state/munge/munge.key" \
    --pid-file="$state/munge/munged.pid" --log-file="$state/munge/munged.log" \
    --seed-file="$state/munge/munged.seed" --force ||
    failed "munged did not start"
# -c: start from an empty state (no jobs of an earlier test cluster).
slurmctld -c || failed "slurmctld did not start"
slurmd || failed "slurmd did not start"

# Up when the node reports itself idle (slurmd registered).
i=0
until scontrol show node "$host" 2>/dev/null | grep -q 'State=IDLE'; do
    i=$((i + 1))
    [ $i -le 60 ] || failed "node $host did not become idle within 30 s"
    sleep 0.5
done
echo "test-cluster-start: cluster up in $state (SLURM_CONF=$state/slurm.conf)"
