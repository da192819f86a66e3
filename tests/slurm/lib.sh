# Helpers for the launcher and Slurm tests (tests/slurm/*.test), on top of
# tests/e2e/lib.sh ($TMP, fail, RTRAIN, EXAMPLES, json_field, need_dataset).
# A test that needs Slurm calls start_cluster: a private one-node cluster
# under $TMP/c (jobs/slurm/test-cluster-start.sh), stopped on exit whatever
# happens, so no daemon outlives the test; or start_cluster_hosts N, the
# same over N test hosts (the *_2node.test files).
. "$top_srcdir/tests/e2e/lib.sh"
RTRAIN_RUN="$top_builddir/tools/rtrain-run"
RESULTS="$top_builddir/tools/rtrain-results"
CKPT_TOOL="$top_builddir/tools/rtrain-ckpt"
JOBS="$top_srcdir/jobs"

# make check may itself run inside a Slurm job: its variables would make
# rtrain-run use srun and sbatch inherit the outer job's settings.
for v in $(env | sed -n 's/^\(SLURM_[A-Za-z0-9_]*\)=.*/\1/p; s/^\(SRUN_[A-Za-z0-9_]*\)=.*/\1/p'); do
    unset "$v"
done

cluster=
cleanup() {
    [ -z "$cluster" ] || "$JOBS/slurm/test-cluster-stop.sh" "$cluster" >/dev/null 2>&1
    if [ -n "${RTRAIN_TEST_KEEP:-}" ]; then
        echo "kept $TMP (RTRAIN_TEST_KEEP)" >&2
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# start_cluster: skips (77) only when Slurm or munge is not installed.
start_cluster() {
    cluster="$TMP/c"
    src=0
    "$JOBS/slurm/test-cluster-start.sh" "$cluster" || src=$?
    [ "$src" -ne 77 ] || { echo "SKIP: Slurm or munge not installed"; exit 77; }
    [ "$src" -eq 0 ] || fail "the test cluster did not start"
    . "$cluster/env"
}

# start_cluster_hosts N: a private cluster of N test hosts h1..hN
# (tests/multinode/netns.sh: network and UTS namespaces on a bridge):
# munged and slurmctld on this machine at the bridge's address, one slurmd
# on each host. Skips (77) where namespaces or Slurm are not available.
# Exports the Open MPI settings that keep ranks on the hosts' subnet (TCP;
# sbatch passes them on to its jobs). On exit the cluster is stopped first,
# while its hosts still run, then the hosts are torn down.
start_cluster_hosts() {
    . "$top_srcdir/tests/multinode/netns.sh"
    mn_require
    mn_up "$1"
    trap 'cleanup_hosts' EXIT
    cluster="$TMP/c"
    set -- --agent "$MN_STATE/agent" --ctld-addr "$MN_NET.1"
    n=1
    while [ "$n" -le "$MN_HOSTS" ]; do
        set -- "$@" --node "h$n=$(mn_addr "$n")"
        n=$((n + 1))
    done
    src=0
    "$JOBS/slurm/test-cluster-start.sh" "$@" "$cluster" || src=$?
    [ "$src" -ne 77 ] || { echo "SKIP: Slurm or munge not installed"; exit 77; }
    [ "$src" -eq 0 ] || fail "the test cluster did not start on $MN_HOSTS test hosts"
    . "$cluster/env"
    OMPI_MCA_btl=tcp,self
    OMPI_MCA_btl_tcp_if_include=$MN_NET.0/24
    OMPI_MCA_oob_tcp_if_include=$MN_NET.0/24
    export OMPI_MCA_btl OMPI_MCA_btl_tcp_if_include OMPI_MCA_oob_tcp_if_include
}
cleanup_hosts() {
    [ -z "$cluster" ] || "$JOBS/slurm/test-cluster-stop.sh" "$cluster" >/dev/null 2>&1
    cluster=
    mn_down
    cleanup
}

# rank_hosts_wrapper FILE: writes FILE, a program that appends "RANK HOST"
# (the rank's PMIx rank and hostname) to FILE.hosts.<job>.<restart> and
# then runs rtrain: which host each rank of a Slurm job step ran on.
rank_hosts_wrapper() {
    cat >"$1" <<EOF
#!/bin/sh
if [ -n "\${PMIX_RANK:-}" ]; then
    echo "\$PMIX_RANK \$(hostname)" >>"$1.hosts.\${SLURM_JOB_ID:-none}.\${SLURM_RESTART_COUNT:-0}"
fi
exec "$RTRAIN" "\$@"
EOF
    chmod 0755 "$1"
}

# ranks_per_host FILE: "HOST COUNT HOST COUNT ..." (one line, hosts sorted)
# from a hosts file that rank_hosts_wrapper's program wrote; fails when no
# rank wrote it or a rank wrote it twice.
ranks_per_host() {
    [ -s "$1" ] || fail "no rank wrote $1"
    ! cut -d' ' -f1 "$1" | sort -n | uniq -d | grep -q . || fail "a rank ran twice: $(cat "$1")"
    cut -d' ' -f2 "$1" | sort | uniq -c | awk '{printf "%s%s %s", (NR > 1 ? " " : ""), $2, $1} END {print ""}'
}

# job_field JOBID FIELD: FIELD=value of `scontrol show job` (e.g. JobState).
job_field() {
    scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}

# show_job JOBID: what a failing test prints about the job.
show_job() {
    echo "--- scontrol show job $1" >&2
    scontrol show job "$1" >&2 || true
    for f in "$TMP"/rtrain-"$1".out; do
        [ -f "$f" ] && { echo "--- $f" >&2; cat "$f" >&2; }
    done
    echo "--- slurmctld.log (last lines)" >&2
    tail -15 "$cluster/slurmctld.log" >&2 || true
}

# wait_job JOBID STATE SECONDS [RESTARTS]: until the job is in STATE (with
# at least RESTARTS restarts); fails at once on another final state.
wait_job() {
    end=$(( $(date +%s) + $3 ))
    while :; do
        state=$(job_field "$1" JobState)
        restarts=$(job_field "$1" Restarts)
        if [ "$state" = "$2" ] && [ "${restarts:-0}" -ge "${4:-0}" ]; then
            return 0
        fi
        case $state in
            COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE)
                show_job "$1"; fail "job $1 ended in state $state, waiting for $2" ;;
        esac
        if [ "$(date +%s)" -ge "$end" ]; then
            show_job "$1"; fail "job $1 not $2 within $3 s (state ${state:-?})"
        fi
        sleep 0.5
    done
}

# wait_steps_gone JOBID SECONDS: until no job step of JOBID has its sockets
# in the spool directory any more (its slurmstepd has exited). A requeued
# job started at once (StartTime=now) while the previous run's step 0 still
# cleans up fails to launch its step 0 (the PMIx socket is in use): Slurm
# itself holds requeued jobs back for ~2 minutes for this.
wait_steps_gone() {
    end=$(( $(date +%s) + $2 ))
    # slurmd/ for one node, slurmd/NODE/ for each of several.
    while ls "$cluster/slurmd" "$cluster"/slurmd/*/ 2>/dev/null | grep -Eq "_$1\.|pmix\.$1\."; do
        [ "$(date +%s)" -lt "$end" ] || { ls -lR "$cluster/slurmd" >&2; fail "steps of job $1 still there after $2 s"; }
        sleep 0.2
    done
}

# attempts_field RUN_DIR EXPR: a python expression over d = attempts.json.
attempts_field() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
        "$1/attempts.json" "$2"
}

# latest_ckpt RUN_DIR: the path of the run's newest checkpoint (rtrain-results).
latest_ckpt() {
    "$RESULTS" --json "$1" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["latest_checkpoint"]["path"])'
}

# report_rows RUN_DIR: result.json's rows without the fields that measure
# time (one JSON object a line, keys sorted), to compare two runs.
report_rows() {
    python3 -c 'import json,sys
skip={"time_this_iter_s","time_total_s","timestamp","samples_per_s","train_time_s","checkpoint",
      "data_wait_s"}
for l in open(sys.argv[1]):
    print(json.dumps({k:v for k,v in json.loads(l).items() if k not in skip}, sort_keys=True))' \
        "$1/result.json"
}

# rows_ok RUN_DIR EPOCHS: result.json has one report per epoch 1..EPOCHS,
# in order: no gap, no duplicate.
rows_ok() {
    python3 - "$1/result.json" "$2" <<'EOF' || fail "result.json rows are not epochs 1..$2 exactly once"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
epochs = [int(r["epoch"]) for r in rows]
print("epochs reported:", epochs)
sys.exit(0 if epochs == list(range(1, int(sys.argv[2]) + 1)) else 1)
EOF
}
