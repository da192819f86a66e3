#!/bin/sh
# Stops the test cluster that jobs/slurm/test-cluster-start.sh started in
# STATE_DIR: cancels its jobs, waits for their processes to go, then stops
# every slurmd, slurmctld and munged by their PID files (SIGTERM, then
# SIGKILL after 10 s). Only processes of this cluster are touched. Safe to
# call twice, or after a start that failed half-way. With several nodes the
# leftover job processes of a node are asked for on that node, through the
# agent the cluster was started with, while its host is still up.
set -u

[ $# -eq 1 ] || { echo "usage: $0 STATE_DIR" >&2; exit 2; }
state=$1
[ -d "$state" ] || exit 0
SLURM_CONF=$state/slurm.conf
export SLURM_CONF

# alive PIDFILE: the PID in PIDFILE, if that process still runs.
alive() {
    [ -f "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# Jobs first, while slurmctld and slurmd can still clean them up.
if [ -f "$SLURM_CONF" ] && alive "$state/slurmctld.pid"; then
    scancel --quiet --full --signal=KILL --state=RUNNING --partition=test 2>/dev/null || true
    scancel --quiet --partition=test 2>/dev/null || true
    i=0
    # Each running step has a socket in the spool directory until its
    # slurmstepd exits.
    while ls "$state/slurmd" "$state"/slurmd/*/ 2>/dev/null | grep -q '_[0-9]'; do
        i=$((i + 1))
        [ $i -le 30 ] || break
        sleep 0.5
    done
fi

# Any slurmstepd of this cluster still there (its socket lives in our spool
# directory, slurmd/ or slurmd/NODE/): ask it, on its node, for its job's
# processes and kill them.
agent=
[ -r "$state/agent" ] && agent=$(cat "$state/agent")
for sock in "$state"/slurmd/*_[0-9]* "$state"/slurmd/*/*_[0-9]*; do
    [ -S "$sock" ] || continue
    jobid=${sock##*_}
    jobid=${jobid%%.*}
    if [ -n "$agent" ]; then
        node=$(basename "$(dirname "$sock")")
        addr=$(awk -v n="$node" '$1 == n {print $2}' "$state/nodes" 2>/dev/null)
        [ -n "$addr" ] || continue
        pids=$("$agent" "$addr" env SLURM_CONF="$SLURM_CONF" scontrol listpids "$jobid" 2>/dev/null </dev/null)
    else
        pids=$(scontrol listpids "$jobid" 2>/dev/null)
    fi
    for pid in $(echo "$pids" | awk 'NR > 1 && $1 ~ /^[0-9]+$/ {print $1}'); do
        kill -KILL "$pid" 2>/dev/null || true
    done
done

stop() {
    alive "$1" || return 0
    pid=$(cat "$1")
    kill -TERM "$pid" 2>/dev/null || return 0
    i=0
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 100 ]; then
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
}
for pidfile in "$state"/slurmd*.pid; do
    stop "$pidfile"
done
stop "$state/slurmctld.pid"
stop "$state/munge/munged.pid"
exit 0
