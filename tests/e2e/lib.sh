# Shared helpers for rtrain's end-to-end tests (sourced by tests/e2e/*.test).
# The automake harness exports top_srcdir, top_builddir and MPIRUN.
set -u
: "${top_srcdir:?run through make check}" "${top_builddir:?run through make check}"
MPIRUN=${MPIRUN:-mpirun}
RTRAIN="$top_builddir/src/cli/rtrain"
DATA_DIR=/usr/share/datasets/fashion-mnist
EXAMPLES="$top_srcdir/examples"
# Every test gets a private scratch directory, removed on exit.
TMP=$(mktemp -d "${TMPDIR:-/tmp}/rtrain-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# Skips (exit 77) when the real dataset is not installed.
need_dataset() {
    [ -r "$DATA_DIR/train-images-idx3-ubyte.gz" ] || { echo "SKIP: $DATA_DIR missing"; exit 77; }
}

# have_fault_injection: true when this build has the test-only fault hooks
# (RTRAIN_FAULT; ./configure --enable-fault-injection), as rtrain --version says.
have_fault_injection() {
    "$RTRAIN" --version 2>/dev/null | grep -q '^fault injection: on'
}

# need_fault_injection: skips (exit 77) a test that needs them in a build without.
need_fault_injection() {
    have_fault_injection ||
        { echo "SKIP: this build has no fault injection (RTRAIN_FAULT): configure --enable-fault-injection"; exit 77; }
}

# run_rtrain NP ARGS...: runs rtrain on NP ranks under a time limit; sets
# $rc and leaves stdout+stderr in $TMP/out.
run_rtrain() {
    np=$1; shift
    rc=0
    timeout -k 10 600 "$MPIRUN" -np "$np" --bind-to none "$RTRAIN" "$@" >"$TMP/out" 2>&1 || rc=$?
    cat "$TMP/out"
}

# run_check ARGS...: `rtrain --check ARGS` in one process (no mpirun);
# sets $check_rc and $check_cpu_ms (its user + system CPU time: a loaded
# machine stretches wall time, not work) and leaves its output in
# $TMP/check.out.
run_check() {
    r=$(/usr/bin/python3 - "$RTRAIN" "$TMP/check.out" "$@" <<'PYEOF'
import resource, subprocess, sys
with open(sys.argv[2], "w") as out:
    try:
        rc = subprocess.call([sys.argv[1], "--check"] + sys.argv[3:], stdout=out,
                             stderr=subprocess.STDOUT, timeout=60)
    except subprocess.TimeoutExpired:
        rc = 124
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(rc, int((u.ru_utime + u.ru_stime) * 1000))
PYEOF
) || fail "cannot run rtrain --check"
    check_rc=${r% *}; check_cpu_ms=${r#* }
}

# same_as_check NP ARGS...: after a run on NP ranks that failed with $rc
# and its message in $TMP/out, `rtrain --check -n NP ARGS` must give the
# same exit code and the same 'rtrain: error:' line, in under 2 s of CPU.
same_as_check() {
    np=$1; shift
    run_check -n "$np" "$@"
    cat "$TMP/check.out"
    [ "$check_rc" -eq "$rc" ] || fail "rtrain --check exited $check_rc, the run $rc: $*"
    want=$(grep "^rtrain: error:" "$TMP/out" | head -n 1)
    got=$(grep "^rtrain: error:" "$TMP/check.out")
    [ "$got" = "$want" ] || fail "rtrain --check said '$got', the run '$want': $*"
    [ "$check_cpu_ms" -lt 2000 ] || fail "rtrain --check took $check_cpu_ms ms of CPU: $*"
}

# expect_error CODE PATTERN ARGS...: rtrain on 2 ranks must exit CODE (not
# time out) and print PATTERN (grep -E) exactly once: one clear message.
# rtrain --check must find the same error (same_as_check) unless the caller
# sets check_too=no (an error that only the run meets).
check_too=yes
expect_error() {
    code=$1; pattern=$2; shift 2
    run_rtrain 2 "$@"
    [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "rtrain hung (timeout) for: $*"
    [ "$rc" -ne 0 ] || fail "rtrain exited 0 for bad input: $*"
    # mpirun reports the first non-zero rank exit code.
    [ "$rc" -eq "$code" ] || fail "exit code $rc, expected $code for: $*"
    n=$(grep -cE "$pattern" "$TMP/out" || true)
    [ "$n" -eq 1 ] || fail "expected exactly one message matching '$pattern', got $n"
    grep -q "rtrain: error:" "$TMP/out" || fail "no 'rtrain: error:' line"
    if [ "$check_too" = yes ]; then
        same_as_check 2 "$@"
    fi
}

# json_field FILE LINE KEY: value of KEY in line LINE (1-based; -1 = last)
# of a JSON-lines file, printed by python3's json module.
json_field() {
    python3 -c 'import json,sys
lines=[l for l in open(sys.argv[1]) if l.strip()]
v=json.loads(lines[int(sys.argv[2]) if int(sys.argv[2])<0 else int(sys.argv[2])-1])[sys.argv[3]]
print(v)' "$1" "$2" "$3"
}
