# Helpers for the run-directory / rtrain-results tests (tests/e2e/results_*.test),
# sourced after lib.sh.
RESULTS="$top_builddir/tools/rtrain-results"

# train NAME ARGS...: the small MLP for 2 epochs of 20 steps on 2 ranks into
# $TMP/NAME; sets $rc, output in $TMP/NAME.out.
train() {
    name=$1; shift
    rc=0
    timeout -k 10 300 "$MPIRUN" -np 2 --bind-to none "$RTRAIN" "$EXAMPLES/mnist_mlp.cfg" \
        train.epochs=2 train.steps_per_epoch=20 run.storage_path="$TMP" run.name="$name" \
        "$@" >"$TMP/$name.out" 2>&1 || rc=$?
    cat "$TMP/$name.out"
    [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "rtrain timed out"
}

# results ARGS...: rtrain-results, stdout in $TMP/res.out, stderr in
# $TMP/res.err, exit status in $rrc.
results() {
    rrc=0
    timeout -k 5 60 "$RESULTS" "$@" >"$TMP/res.out" 2>"$TMP/res.err" || rrc=$?
    cat "$TMP/res.out" "$TMP/res.err"
}

# mode_of PATH: octal permission bits, e.g. 640.
mode_of() { stat -c %a "$1"; }
