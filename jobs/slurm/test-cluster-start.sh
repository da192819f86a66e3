#!/bin/sh
# Starts a private Slurm test cluster on this machine: munged, slurmctld and
# one slurmd per node, every file under STATE_DIR (config, munge key and
# socket, state, spool, logs, PID files), on two free TCP ports. Used by
# tests/slurm/*.test; also handy to try jobs/train.sbatch on a laptop:
#
#   jobs/slurm/test-cluster-start.sh /tmp/mycluster
#   . /tmp/mycluster/env          # sets SLURM_CONF for sbatch, squeue, scontrol
#   sbatch jobs/train.sbatch examples/mnist_mlp.cfg
#   jobs/slurm/test-cluster-stop.sh /tmp/mycluster
#
# One node (the default): the node is this machine, named after it, at
# 127.0.0.1. Several nodes (tests/slurm/*_2node.test, on the test hosts of
# tests/multinode/netns.sh):
#
#   test-cluster-start.sh --agent AGENT --ctld-addr ADDR \
#       --node NAME=ADDR [--node NAME=ADDR ...] STATE_DIR
#
# slurmctld runs here, reached at ADDR (an address of this machine that
# every node can reach); node NAME's slurmd is started with `AGENT ADDR
# slurmd -f STATE_DIR/slurm.conf` (AGENT runs a command on the host at ADDR,
# as netns.sh's rsh agent or ssh do; that host's hostname must be NAME,
# which is how slurmd finds its node). The nodes share this file system;
# each has its own spool directory (STATE_DIR/slurmd/NAME), PMIx directory
# (STATE_DIR/tmp/NAME), log and PID file (STATE_DIR/slurmd-NAME.log, .pid)
# through Slurm's "%n" in those paths, and the same slurmd port (each host
# has its own addresses). By hand, as root:
#
#   . tests/multinode/netns.sh && mn_up 2          # test hosts h1 and h2
#   jobs/slurm/test-cluster-start.sh --agent "$MN_STATE/agent" \
#       --ctld-addr "$MN_NET.1" --node "h1=$(mn_addr 1)" --node "h2=$(mn_addr 2)" /tmp/c2
#   . /tmp/c2/env
#   export OMPI_MCA_btl=tcp,self OMPI_MCA_btl_tcp_if_include="$MN_NET.0/24"
#   srun -N2 -n4 --mpi=pmix rtrain examples/mnist_mlp.cfg
#   jobs/slurm/test-cluster-stop.sh /tmp/c2 && mn_down   # the cluster first
#
# (tests/slurm/lib.sh's start_cluster_hosts does the same.) The ranks of a
# job talk TCP across the hosts, hence the Open MPI settings, which sbatch
# passes on to its jobs with the rest of the environment.
#
# Needs the Debian packages slurm-wlm, munge and libpmix-dev (srun --mpi=pmix).
# The daemons run as the calling user; as root (containers, CI) jobs run as
# root too. Exit status: 0 up and every node idle; 1 it did not come up (the
# logs are printed, and whatever was started is stopped again); 2 bad
# arguments; 77 Slurm or munge is not installed (the test harness's "skip").
set -eu

die() { echo "test-cluster-start: $*" >&2; exit 1; }

usage() {
    echo "usage: $0 [--agent AGENT --ctld-addr ADDR --node NAME=ADDR ...] STATE_DIR" >&2
    exit 2
}
agent='' ctld_addr='' nodes=''
while [ $# -gt 1 ]; do
    case $1 in
        --agent) agent=$2 ;;
        --ctld-addr) ctld_addr=$2 ;;
        --node)
            case $2 in
                [A-Za-z]*=[0-9A-Za-z]*) nodes="$nodes ${2%%=*} ${2#*=}" ;;
                *) echo "test-cluster-start: --node wants NAME=ADDR, not '$2'" >&2; usage ;;
            esac ;;
        *) usage ;;
    esac
    shift 2
done
[ $# -eq 1 ] || usage
case $1 in -*) usage ;; esac
if [ -n "$nodes" ]; then
    if [ -z "$agent" ] || [ -z "$ctld_addr" ]; then
        echo "test-cluster-start: --node needs --agent and --ctld-addr" >&2; usage
    fi
elif [ -n "$agent$ctld_addr" ]; then
    echo "test-cluster-start: --agent and --ctld-addr go with --node" >&2; usage
fi
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

host=$(hostname -s)
cpus=$(nproc)
# The nodes, one "NAME ADDR" line each (test-cluster-stop.sh reads it, and
# the agent that reaches them).
if [ -z "$nodes" ]; then
    set -- "$host" 127.0.0.1
    ctld_addr=127.0.0.1
    per_node_dir='' per_node_file=''
else
    # shellcheck disable=SC2086 # NAME ADDR pairs, checked above
    set -- $nodes
    # Slurm puts the node's name for the first "%n" of these paths.
    per_node_dir=/%n per_node_file=-%n
fi
: >"$state/nodes"
: >"$state/nodes.conf"
node_names=
while [ $# -gt 0 ]; do
    echo "$1 $2" >>"$state/nodes"
    echo "NodeName=$1 NodeAddr=$2 CPUs=$cpus State=UNKNOWN" >>"$state/nodes.conf"
    node_names=${node_names:+$node_names,}$1
    [ -z "$per_node_dir" ] || mkdir -p "$state/slurmd/$1" "$state/tmp/$1"
    shift 2
done
echo "PartitionName=test Nodes=$node_names Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO" \
    >>"$state/nodes.conf"
printf '%s\n' "$agent" >"$state/agent"

# Two free ports: bind to port 0 and let the kernel pick.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
ctld_port=$(free_port)
slurmd_port=$(free_port)
while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port=$(free_port); done

first_job_id=$(python3 -c 'import random; print(random.randint(1000, 60000000))')
user=$(id -un)
sed -e "s|@STATE@|$state|g" -e "s|@HOST@|$host|g" -e "s|@USER@|$user|g" \
    -e "s|@CTLD_ADDR@|$ctld_addr|g" -e "s|@PER_NODE_DIR@|$per_node_dir|g" \
    -e "s|@PER_NODE_FILE@|$per_node_file|g" \
    -e "s|@CTLD_PORT@|$ctld_port|g" -e "s|@SLURMD_PORT@|$slurmd_port|g" \
    -e "s|@FIRST_JOB_ID@|$first_job_id|g" \
    -e "/^@NODES@\$/{r $state/nodes.conf" -e "d}" \
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
    for log in "$state"/munge/munged.log "$state"/slurmctld.log "$state"/slurmd*.log; do
        [ -f "$log" ] && { echo "--- $log (last lines)" >&2; tail -20 "$log" >&2; }
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
while read -r name addr; do
    if [ -z "$agent" ]; then
        slurmd || failed "slurmd did not start"
    else
        "$agent" "$addr" slurmd -f "$state/slurm.conf" </dev/null ||
            failed "slurmd of node $name did not start on $addr"
    fi
done <"$state/nodes"

# Up when every node reports itself idle (its slurmd registered).
i=0
while read -r name addr; do
    until scontrol show node "$name" 2>/dev/null | grep -q 'State=IDLE'; do
        i=$((i + 1))
        [ $i -le 60 ] || failed "node $name did not become idle within 30 s"
        sleep 0.5
    done
done <"$state/nodes"
echo "test-cluster-start: cluster up in $state (SLURM_CONF=$state/slurm.conf)"
