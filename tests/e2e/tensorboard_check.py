"""Reads a run directory's TensorBoard event files with the tensorboard
package's own reader and compares them with the run's result.json.

Usage: tensorboard_check.py RUN_DIR [REFERENCE_RUN_DIR]

Checks (every failure is listed, exit 1):
- every events file is read record by record by tensorboard's record reader,
  which verifies both masked CRC32Cs of every record; each file starts with
  the file_version event "brain.Event:2";
- per tag, the steps over all files in order are strictly increasing (no
  step written twice, also after a resume);
- EventAccumulator's scalars equal result.json: every numeric field of
  every line but training_iteration, timestamp and time_total_s, at step =
  training_iteration, equal to the JSON value rounded to float32 (the
  event's simple_value is a float32: exact equality), and nothing else;
- step/train_loss and step/lr at every optimizer step 1..last (the run
  logs every step): the mean of an epoch's step losses is its train_loss
  (every step has the same global batch) to 1e-6 relative (float32
  rounding of each logged loss, about 6e-8 each), and the lr logged at the
  step after a report equals the report's lr (float32, exact);
- with REFERENCE_RUN_DIR (the same training without interruption): every
  scalar that does not measure time equals the reference's exactly
  (rtrain repeats bit for bit across a resume).
"""
import glob
import json
import os
import sys

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub import errors
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New

LEFT_OUT = {"training_iteration", "timestamp", "time_total_s"}
TIMING = {"samples_per_s", "train_time_s", "data_wait_s", "time_this_iter_s"}
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def f32(x):
    return float(np.float32(x))


def raw_events(path):
    """Every Event of one file through tensorboard's CRC-checking reader."""
    reader = PyRecordReader_New(path)
    out = []
    while True:
        try:
            reader.GetNext()
        except errors.OutOfRangeError:
            return out
        except errors.DataLossError as e:
            failures.append("%s: %s" % (path, e))
            return out
        ev = event_pb2.Event()
        ev.ParseFromString(reader.record())
        out.append(ev)


def check_files(run):
    files = sorted(glob.glob(os.path.join(run, "events.out.tfevents.*")))
    check(files, "%s: no events file" % run)
    last = {}
    for path in files:
        events = raw_events(path)
        check(events and events[0].file_version == "brain.Event:2",
              "%s: first event is not file_version brain.Event:2" % path)
        for ev in events[1:]:
            for v in ev.summary.value:
                check(ev.step > last.get(v.tag, -1),
                      "%s: tag %s step %d written again (last %d)"
                      % (path, v.tag, ev.step, last.get(v.tag, -1)))
                last[v.tag] = ev.step
    return files


def scalars(run):
    acc = EventAccumulator(run, size_guidance={"scalars": 0})
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def check_reports(run, sc):
    rows = [json.loads(l) for l in open(os.path.join(run, "result.json"))]
    expected = {}
    for row in rows:
        it = row["training_iteration"]
        for k, v in row.items():
            if k in LEFT_OUT or isinstance(v, str) or v is None:
                continue
            expected.setdefault(k, []).append((it, f32(v)))
    report_tags = {t for t in sc if not t.startswith("step/")}
    check(report_tags == set(expected), "report tags %s, result.json has %s"
          % (sorted(report_tags), sorted(expected)))
    for k, want in expected.items():
        check(sc.get(k) == want, "%s: events %s, result.json %s" % (k, sc.get(k), want))
    return rows


def check_steps(rows, sc):
    last_step = int(rows[-1]["step"])
    for tag in ("step/train_loss", "step/lr"):
        steps = [s for s, _ in sc.get(tag, [])]
        check(steps == list(range(1, last_step + 1)),
              "%s at steps %s, expected 1..%d" % (tag, steps, last_step))
    loss = dict(sc.get("step/train_loss", []))
    lr = dict(sc.get("step/lr", []))
    first = 1
    for row in rows:
        end = int(row["step"])
        mean = np.mean([loss.get(s, np.nan) for s in range(first, end + 1)])
        check(abs(mean - row["train_loss"]) <= 1e-6 * abs(row["train_loss"]),
              "epoch %d: mean step loss %r, train_loss %r" % (row["epoch"], mean,
                                                             row["train_loss"]))
        if end + 1 in lr:
            check(lr[end + 1] == f32(row["lr"]), "lr at step %d: %r, report %r"
                  % (end + 1, lr[end + 1], row["lr"]))
        first = end + 1


def main():
    run = sys.argv[1]
    check_files(run)
    sc = scalars(run)
    rows = check_reports(run, sc)
    check_steps(rows, sc)
    if len(sys.argv) > 2:
        ref = scalars(sys.argv[2])
        for tag in sorted(set(ref) | set(sc)):
            if tag not in TIMING:
                check(sc.get(tag) == ref.get(tag), "%s differs from the reference run:\n  %s\n"
                      "  %s" % (tag, sc.get(tag), ref.get(tag)))
    for f in failures:
        print("FAIL:", f)
    if not failures:
        print("events of %s match result.json (%d tags)" % (run, len(sc)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
