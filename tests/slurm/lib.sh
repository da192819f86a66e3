# Helpers for the launcher and Slurm tests (tests/slurm/*.test), on top of
# tests/e2e/lib.sh ($TMP, fail, RTRAIN, EXAMPLES, json_field, need_dataset).
# A test that needs Slurm calls start_cluster: a private one-node cluster
# under $TMP/c (jobs/slurm/test-cluster-start.sh), stopped on exit whatever
# happens, so no daemon outlives the test.
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
    while ls "$cluster/slurmd" | grep -Eq "_$1\.|pmix\.$1\."; do
        [ "$(date +%s)" -lt "$end" ] || { ls -l "$cluster/slurmd" >&2; fail "steps of job $1 still there after $2 s"; }
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
