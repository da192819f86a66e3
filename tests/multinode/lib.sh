# Helpers for the multi-host tests (tests/multinode/*.test): the test hosts
# of netns.sh (h1, h2, ... on one machine; root only, else the test skips)
# with tests/e2e/lib.sh's helpers ($TMP, fail, RTRAIN, EXAMPLES, ...).
. "$top_srcdir/tests/multinode/netns.sh"
mn_require
. "$top_srcdir/tests/e2e/lib.sh"
need_dataset
CKPT_TOOL="$top_builddir/tools/rtrain-ckpt"
RTRAIN_RUN="$top_builddir/tools/rtrain-run"
# The small MLP with a fixed global batch (the same batches on any number
# of ranks), no evaluation, one thread per rank unless a test says
# otherwise.
MN_CFG="$EXAMPLES/mnist_mlp.cfg data.global_batch_size=256 train.eval_every=0 run.storage_path=$TMP"

# one_host NP NAME ARGS...: rtrain on NP ranks of this machine (plain
# mpirun, shared memory), into $TMP/NAME; output in $TMP/NAME.out, exit
# status in $rc.
one_host() {
    np=$1; name=$2; shift 2
    rc=0
    timeout -k 10 120 "$MPIRUN" -np "$np" --oversubscribe --bind-to none "$RTRAIN" $MN_CFG \
        run.name="$name" "$@" >"$TMP/$name.out" 2>&1 || rc=$?
}

# two_hosts NAME ARGS...: rtrain on 2 test hosts x 2 ranks (mpirun on h1),
# into $TMP/NAME; output in $TMP/NAME.out, exit status in $rc.
two_hosts() {
    name=$1; shift
    rc=0
    mn_mpirun 2 --timeout 120 -np 4 "$RTRAIN" $MN_CFG run.name="$name" "$@" \
        >"$TMP/$name.out" 2>&1 || rc=$?
}

# rows RESULT_JSON: the report rows without the fields that measure time.
rows() {
    python3 -c 'import json,sys
skip={"time_this_iter_s","time_total_s","timestamp","samples_per_s","train_time_s","checkpoint",
      "data_wait_s"}
for l in open(sys.argv[1]):
    print(json.dumps({k:v for k,v in json.loads(l).items() if k not in skip}, sort_keys=True))' "$1"
}

# iterations_ok RUN_DIR N: result.json's training_iteration runs 1..N, each
# once, in order (no gap, no duplicate).
iterations_ok() {
    python3 - "$1/result.json" "$2" <<'EOF' || fail "$1/result.json: iterations are not 1..$2 exactly once"
import json, sys
its = [int(json.loads(l)["training_iteration"]) for l in open(sys.argv[1]) if l.strip()]
print("iterations reported:", its)
sys.exit(0 if its == list(range(1, int(sys.argv[2]) + 1)) else 1)
EOF
}

# wait_for SECONDS WHAT CONDITION...: polls CONDITION (a command) every
# 0.1 s; fails naming WHAT when it does not hold within SECONDS.
wait_for() {
    secs=$1; limit=$(( $(date +%s) + $1 )); what=$2; shift 2
    until "$@"; do
        [ "$(date +%s)" -lt "$limit" ] || fail "$what: not within $secs s"
        sleep 0.1
    done
}

# now: seconds since the epoch with fractions.
now() { date +%s.%N; }
# since T0: seconds from T0 (a now) to now, 1 decimal.
since() { python3 -c 'import sys,time; print("%.1f" % (time.time() - float(sys.argv[1])))' "$1"; }

# retrying NAME ARGS...: starts, in the background ($launcher), rtrain-run
# on h1 with 4 ranks and one retry allowed (and $RUN_OPTS), its mpirun
# given a hostfile ($TMP/hostfile: h1 and h2, 2 slots each) that mpirun
# reads at each attempt; output in $TMP/NAME.out.
RUN_OPTS=
retrying() {
    name=$1; shift
    printf '%s slots=2\n%s slots=2\n' "$(mn_addr 1)" "$(mn_addr 2)" >"$TMP/hostfile"
    mn_exec 1 env MPIRUN="$(mn_mpirun_words "$TMP/hostfile")" timeout -k 10 240 \
        "$RTRAIN_RUN" -n 4 --max-failures 1 $RUN_OPTS $MN_CFG run.name="$name" "$@" \
        >"$TMP/$name.out" 2>&1 &
    launcher=$!
}

# only_h1: the next attempt's hostfile lists h1 alone, with 4 slots.
only_h1() { printf '%s slots=4\n' "$(mn_addr 1)" >"$TMP/hostfile"; }

# retried_on_h1 NAME EPOCHS: after `retrying NAME`, rtrain-run ended with
# 0 after exactly 2 attempts, the second resumed from a checkpoint on h1
# alone, and result.json has iterations 1..EPOCHS, each once.
retried_on_h1() {
    rc=0; wait "$launcher" || rc=$?
    cat "$TMP/$1.out"
    [ "$rc" -eq 0 ] || fail "$1: rtrain-run exit $rc, expected 0 after one retry"
    [ "$(grep -c 'rtrain-run: attempt [0-9]*:' "$TMP/$1.out")" -eq 2 ] || fail "$1: not 2 attempts"
    grep -q "resuming from .*checkpoint_0000" "$TMP/$1.out" || fail "$1: the retry did not resume"
    # The newest placement lines of ranks 2 and 3 (run.log_per_rank).
    for r in 2 3; do
        last=$(grep "rtrain: rank $r of 4 on host" "$TMP/$1/rank_$r.log" | tail -n 1)
        case $last in
            *"on host h1: node 0 of 1, local rank $r of 4") ;;
            *) fail "$1: rank $r of the retry: '$last', expected h1" ;;
        esac
    done
    iterations_ok "$TMP/$1" "$2"
}

# attempt_ended NAME: rtrain-run says its first attempt failed.
attempt_ended() { grep -q "rtrain-run: attempt failed" "$TMP/$1.out"; }
