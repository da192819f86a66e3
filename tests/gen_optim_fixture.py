#!/usr/bin/python3
"""Writes tests/fixtures/optim_reference.txt: parameter trajectories of
torch.optim.SGD/Adam/AdamW and learning rates of torch.optim.lr_scheduler,
which tests/unit/test_optim.c compares with rtrain's optim module.

Run with Debian's torch 1.13:  /usr/bin/python3 tests/gen_optim_fixture.py

Every hyperparameter is rounded to float32 first, because rtrain keeps them
as floats: both sides then start from the same numbers. The parameter and
gradients are exact binary fractions given by formulas that the C test
repeats (keep INIT and grad() in step with test_optim.c). Avoid weight
decays that make grad + wd * param cancel exactly: PyTorch computes that sum
with a fused multiply-add and rtrain does not, and Adam turns the tiny
leftover into a full-size step (a real but harmless difference, not a bug).

Format (whitespace separated, '#' starts a comment line):
  optim NAME key=value ...          options of one optimizer case
  step S LR P0 ... P6               lr used by step S (1-based), params after it
  schedule NAME key=value ...       options of one schedule case
  lr STEP LR                        learning rate at 0-based optimizer step
"""
import math
import os
import sys
import warnings

import numpy as np
import torch

N = 7
STEPS = 10
INIT = [0.5, -1.25, 2.0, -0.75, 1.5, -2.5, 0.875]


def grad(step, i):
    """Gradient of element i at 1-based step: exact in float32."""
    return ((3 * step + 5 * i) % 11 - 5) * 0.125 + 0.0625 * (i % 3)


def f32(x):
    return float(np.float32(x))


def g(x):
    return "%.9g" % x


# name, torch class, options (rtrain names), per-step lr multipliers or None
OPTIM_CASES = [
    ("sgd_plain", "sgd", dict(lr=0.1), None),
    ("sgd_momentum", "sgd", dict(lr=0.05, momentum=0.9), None),
    ("sgd_momentum_damp_wd", "sgd", dict(lr=0.05, momentum=0.9, dampening=0.1,
                                          weight_decay=0.01), None),
    ("sgd_nesterov_wd_varlr", "sgd", dict(lr=0.03, momentum=0.8, nesterov=1,
                                           weight_decay=0.001), "var"),
    ("adam_default", "adam", dict(lr=0.001), None),
    ("adam_wd_varlr", "adam", dict(lr=0.01, weight_decay=0.07, beta1=0.8, beta2=0.99,
                                   eps=1e-6), "var"),
    ("adamw_default", "adamw", dict(lr=0.001, weight_decay=0.01), None),
    ("adamw_wd_varlr", "adamw", dict(lr=0.01, weight_decay=0.1, beta1=0.85, beta2=0.995,
                                     eps=1e-7), "var"),
]

DEFAULTS = dict(lr=0.01, momentum=0.0, dampening=0.0, nesterov=0, weight_decay=0.0,
                beta1=0.9, beta2=0.999, eps=1e-8)


def step_lr(base, mode, step):
    """lr of 1-based step: constant, or a float32 ramp (exercises per-step lr)."""
    return base if mode is None else f32(base * (1.0 - 0.07 * (step - 1)))


def make_optimizer(kind, p, o):
    if kind == "sgd":
        return torch.optim.SGD([p], lr=o["lr"], momentum=o["momentum"],
                               dampening=o["dampening"], nesterov=bool(o["nesterov"]),
                               weight_decay=o["weight_decay"], foreach=False)
    cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
    return cls([p], lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"],
               weight_decay=o["weight_decay"], foreach=False)


def optim_case(out, name, kind, opts, lr_mode):
    o = dict(DEFAULTS)
    o.update(opts)
    o = {k: (v if k == "nesterov" else f32(v)) for k, v in o.items()}
    keys = ["lr", "momentum", "dampening", "nesterov", "weight_decay", "beta1", "beta2", "eps"]
    out.append("optim %s type=%s %s steps=%d" % (
        name, kind, " ".join("%s=%s" % (k, g(o[k])) for k in keys), STEPS))
    p = torch.tensor(INIT, dtype=torch.float32, requires_grad=True)
    opt = make_optimizer(kind, p, o)
    for s in range(1, STEPS + 1):
        lr = step_lr(o["lr"], lr_mode, s)
        opt.param_groups[0]["lr"] = lr
        p.grad = torch.tensor([grad(s, i) for i in range(N)], dtype=torch.float32)
        opt.step()
        out.append("step %d %s %s" % (s, g(lr), " ".join(g(v) for v in p.detach().tolist())))


# name, options (rtrain names), steps_per_epoch, total_steps
SCHEDULE_CASES = [
    ("constant_warmup", dict(type="constant", warmup_steps=4, warmup_start_factor=0.25), 5, 12),
    ("step", dict(type="step", step_epochs=2, gamma=0.1), 3, 20),
    ("step_warmup", dict(type="step", step_epochs=1, gamma=0.5, warmup_steps=4), 3, 14),
    ("cosine", dict(type="cosine", min_lr=0.001), 5, 20),
    ("cosine_warmup", dict(type="cosine", min_lr=0.0, warmup_steps=5,
                           warmup_start_factor=0.1), 5, 25),
]
SCHED_DEFAULTS = dict(step_epochs=30, gamma=0.1, min_lr=0.0, warmup_steps=0,
                      warmup_start_factor=1.0 / 3)
BASE_LR = 0.1


def torch_schedulers(opt, o, spe, total):
    sch = torch.optim.lr_scheduler
    w = o["warmup_steps"]
    warm = sch.LinearLR(opt, start_factor=o["warmup_start_factor"], total_iters=w) if w else None
    if o["type"] == "constant":
        return warm or sch.ConstantLR(opt, factor=1.0, total_iters=0)
    if o["type"] == "step":
        main = sch.StepLR(opt, step_size=o["step_epochs"] * spe, gamma=o["gamma"])
        return sch.ChainedScheduler([warm, main]) if warm else main
    main = sch.CosineAnnealingLR(opt, T_max=total - w, eta_min=o["min_lr"])
    return sch.SequentialLR(opt, [warm, main], milestones=[w]) if warm else main


def schedule_case(out, name, opts, spe, total):
    o = dict(SCHED_DEFAULTS)
    o.update(opts)
    for k in ("gamma", "min_lr", "warmup_start_factor"):
        o[k] = f32(o[k])
    base = f32(BASE_LR)
    keys = ["type", "step_epochs", "gamma", "min_lr", "warmup_steps", "warmup_start_factor"]
    out.append("schedule %s %s base_lr=%s steps_per_epoch=%d total_steps=%d" % (
        name, " ".join("%s=%s" % (k, o[k] if isinstance(o[k], str) else g(o[k])) for k in keys),
        g(base), spe, total))
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base)
    sched = torch_schedulers(opt, o, spe, total)
    for step in range(total + 1):
        out.append("lr %d %s" % (step, g(opt.param_groups[0]["lr"])))
        opt.step()
        sched.step()


def main():
    # SequentialLR calls step(0) on the cosine schedule, which warns.
    warnings.filterwarnings("ignore", category=UserWarning)
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "fixtures", "optim_reference.txt")
    out = ["# torch.optim reference for tests/unit/test_optim.c, written by",
           "# tests/gen_optim_fixture.py with torch %s; do not edit." % torch.__version__]
    for case in OPTIM_CASES:
        optim_case(out, *case)
    for case in SCHEDULE_CASES:
        schedule_case(out, *case)
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote %s (%d lines)" % (path, len(out)), file=sys.stderr)


if __name__ == "__main__":
    main()
