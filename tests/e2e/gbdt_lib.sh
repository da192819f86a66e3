# Shared steps of the gradient-boosted-tree end-to-end tests
# (gbdt_xgboost.test, gbdt_lightgbm.test), sourced after lib.sh. The caller
# sets PY (the Python with sklearn), GBDT_CFG (the configuration, on the
# breast cancer table of $TMP/d), GBDT_EXT (the suffix of exported models)
# and GBDT_METRICS (the command that prints sklearn's metrics of a model:
# GBDT_METRICS CSV TARGET TEST_FRACTION MODEL TASK).
CKPT="$top_builddir/tools/rtrain-ckpt"
RTRAIN_RUN="$top_builddir/tools/rtrain-run"
"$PY" "$EXAMPLES/data/sklearn_tables.py" "$TMP/d" >/dev/null || fail "cannot write the tables"
CSV="$TMP/d/breast_cancer.csv"

gbdt_cmd() {   # NAME ARGS...: the arguments of rtrain for a 20-round run NAME
    name=$1; shift
    echo "$GBDT_CFG data.dir=$TMP/d run.storage_path=$TMP/runs run.name=$name \
model.num_rounds=20 scaling.threads_per_worker=1 $*"
}
run_rc=0
gbdt_run() {   # NAME ARGS...: 2 ranks, 20 rounds unless ARGS say otherwise; sets $run_rc
    name=$1; shift
    run_rc=0
    # shellcheck disable=SC2046 # word splitting intended (no blanks in the paths)
    timeout -k 10 120 "$MPIRUN" -np 2 --oversubscribe --bind-to none "$RTRAIN" \
        $(gbdt_cmd "$name" "$@") >"$TMP/$name.out" 2>&1 || run_rc=$?
}
run() {   # NAME ARGS...: gbdt_run, which must succeed
    gbdt_run "$@"
    [ "$run_rc" -eq 0 ] || { cat "$TMP/$1.out"; fail "$1: exit code $run_rc"; }
}
latest() { ls -d "$TMP/runs/$1"/checkpoint_[0-9]* | tail -1; }
export_model() {   # NAME: the newest checkpoint's model as $TMP/NAME.$GBDT_EXT
    "$CKPT" export "$(latest "$1")" "$TMP/$1.$GBDT_EXT" >/dev/null || fail "$1: export failed"
}
# Report rows without the fields that measure time (and the fields named
# after FILE).
rows() {
    "$PY" -c 'import json,sys
skip={"time_this_iter_s","time_total_s","timestamp","time_per_round_s","train_time_s"}
skip.update(sys.argv[2:])
for l in open(sys.argv[1]):
    print(json.dumps({k:v for k,v in json.loads(l).items() if k not in skip}, sort_keys=True))' "$@"
}

# gbdt_resume_checks: the 20-round run A (run and exported by the caller)
# against
#  B: 10 rounds, then the same command with 20, resumed from the round-10
#     checkpoint: A's model bytes and report rows;
#  C: rank 1 killed after round 13 under tools/rtrain-run, which starts the
#     job again: it resumes from round 10 and ends with A's model bytes;
#  P: SIGUSR1 on rank 1 after round 13 (a preemption), seen by all ranks in
#     round 14's agreement: every rank stops with exit code 3 after writing
#     round 14's report and checkpoint, without error.txt; the same command
#     again resumes from it and ends with A's model bytes and report rows.
gbdt_resume_checks() {
    run B model.num_rounds=10
    run B
    grep -q "resuming from .*checkpoint_000000: 10 rounds done" "$TMP/B.out" || fail "B did not resume"
    export_model B
    cmp "$TMP/A.$GBDT_EXT" "$TMP/B.$GBDT_EXT" || fail "10 + 10 rounds differ from 20"
    [ "$(rows "$TMP/runs/A/result.json")" = "$(rows "$TMP/runs/B/result.json")" ] ||
        fail "B's rows differ from A's"

    # C and P inject their faults (RTRAIN_FAULT): a build without the hooks
    # leaves them out.
    if ! have_fault_injection; then
        echo "C and P skipped: this build has no fault injection (configure --enable-fault-injection)"
        return 0
    fi
    mkdir "$TMP/faults"
    rc=0
    # shellcheck disable=SC2046
    RTRAIN_FAULT=kill_at_step:13 RTRAIN_FAULT_RANK=1 RTRAIN_FAULT_DIR="$TMP/faults" \
        timeout -k 10 200 "$RTRAIN_RUN" -n 2 --max-failures 2 $(gbdt_cmd C) \
        >"$TMP/C.out" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || { cat "$TMP/C.out"; fail "C: rtrain-run exited $rc"; }
    [ -e "$TMP/faults/fault.13" ] || fail "the fault did not fire"
    grep -q "resuming from .*: 10 rounds done" "$TMP/C.out" || fail "C did not resume from round 10"
    export_model C
    cmp "$TMP/A.$GBDT_EXT" "$TMP/C.$GBDT_EXT" || fail "the killed and resumed run ends with another model"

    mkdir "$TMP/usr1"
    RTRAIN_FAULT=usr1_at_step:13 RTRAIN_FAULT_RANK=1 RTRAIN_FAULT_DIR="$TMP/usr1" gbdt_run P
    [ "$run_rc" -eq 3 ] || { cat "$TMP/P.out"; fail "P stopped with exit code $run_rc, expected 3 (preempted)"; }
    grep -q "stopped by a signal after round 14" "$TMP/P.out" || fail "P: no stop message"
    [ ! -e "$TMP/runs/P/error.txt" ] || fail "a stop is not a failure, yet error.txt was written"
    [ "$(wc -l <"$TMP/runs/P/result.json")" -eq 14 ] || fail "P should have 14 reports when stopped"
    run P
    grep -q "resuming from .*: 14 rounds done" "$TMP/P.out" || fail "P did not resume from round 14"
    export_model P
    cmp "$TMP/A.$GBDT_EXT" "$TMP/P.$GBDT_EXT" || fail "the preempted and resumed run ends with another model"
    # P checkpointed round 14 as well: the rows' checkpoint names differ.
    [ "$(rows "$TMP/runs/A/result.json" checkpoint)" = "$(rows "$TMP/runs/P/result.json" checkpoint)" ] ||
        fail "P's rows differ from A's"
}

# check_metrics NAME CSV TARGET TASK: the last report's val_* of run NAME
# equal sklearn's on the whole evaluation split, from the exported model's
# predictions in one process: sums of per-row terms in another order, 1e-9
# relative; mlogloss 1e-6, as sklearn rescales float32 probability rows that
# sum to 1 within ~1e-7; AUC and errors to 1e-12.
check_metrics() {
    $GBDT_METRICS "$2" "$3" 0.2 "$TMP/$1.$GBDT_EXT" "$4" >"$TMP/$1.metrics" ||
        fail "$1: reference metrics"
    "$PY" - "$TMP/runs/$1/result.json" "$TMP/$1.metrics" <<'PY' || fail "$1: metrics differ from sklearn's"
import json, sys
row = json.loads(open(sys.argv[1]).readlines()[-1])
ref = json.load(open(sys.argv[2]))
for k, v in ref.items():
    got = row["val_" + k]
    tol = 1e-12 if k in ("auc", "error", "merror") else \
          (1e-6 if k == "mlogloss" else 1e-9) * abs(v)
    assert abs(got - v) <= tol, (k, got, v)
print("metrics equal sklearn's:", ref)
PY
}

# write_iris: scikit-learn's iris table, rows shuffled (seed 0), as
# $TMP/d/iris.csv with the class in the column "species".
write_iris() {
    "$PY" - "$TMP/d/iris.csv" <<'PY' || fail "cannot write iris.csv"
import numpy as np, sys
from sklearn.datasets import load_iris
d = load_iris()
o = np.random.RandomState(0).permutation(len(d.target))
with open(sys.argv[1], "w") as f:
    f.write(",".join(n.split(" (")[0].replace(" ", "_") for n in d.feature_names) + ",species\n")
    for i in o:
        f.write(",".join(repr(float(v)) for v in d.data[i]) + ",%d\n" % d.target[i])
PY
}
