# Helpers of the rtrain-predict tests (sourced after lib.sh).
PREDICT="$top_builddir/tools/rtrain-predict"
PY=/usr/bin/python3

# run_predict NP ARGS...: rtrain-predict on NP ranks (0: without mpirun)
# under a time limit; sets $rc, leaves stdout+stderr in $TMP/pout.
run_predict() {
    np=$1; shift
    rc=0
    if [ "$np" -eq 0 ]; then
        timeout -k 10 300 "$PREDICT" "$@" >"$TMP/pout" 2>&1 || rc=$?
    else
        timeout -k 10 300 "$MPIRUN" -np "$np" --oversubscribe --bind-to none "$PREDICT" "$@" \
            >"$TMP/pout" 2>&1 || rc=$?
    fi
}

# predict NP ARGS...: must succeed.
predict() {
    run_predict "$@"
    [ "$rc" -eq 0 ] || { cat "$TMP/pout"; fail "rtrain-predict exit $rc for: $*"; }
}

# expect_predict_error PATTERN ARGS...: on 2 ranks, exit 2 (not a timeout),
# exactly one "rtrain: error:" line, matching PATTERN (grep -E).
expect_predict_error() {
    pattern=$1; shift
    run_predict 2 "$@"
    [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "rtrain-predict hung for: $*"
    [ "$rc" -eq 2 ] || { cat "$TMP/pout"; fail "exit $rc, expected 2 for: $*"; }
    n=$(grep -c "rtrain: error:" "$TMP/pout" || true)
    [ "$n" -eq 1 ] || { cat "$TMP/pout"; fail "$n error lines (expected 1) for: $*"; }
    grep "rtrain: error:" "$TMP/pout" | grep -qE "$pattern" ||
        { cat "$TMP/pout"; fail "no message matching '$pattern' for: $*"; }
}
