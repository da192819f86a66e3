#!/usr/bin/env python3
"""bench/gpu_torch.py: PyTorch's side of the one-GPU speed comparison.

The peer of bench/bench_gpu.c (tools/gpu/device-check runs both): the same
models, batch, optimizer and math mode, timed the same way.

- resnet18: torchvision's resnet18(num_classes=10) with conv1 replaced by
  Conv2d(1, 64, 7, stride 2, padding 3, bias False), as rtrain's "resnet18"
  arch builds it (src/nn/arch.c: 7x7/2 conv1 from the config, BatchNorm,
  ReLU, 3x3/2 max-pool, four stages of two BasicBlocks, average pool, fc).
  When torchvision is missing, the same network is defined here.
- mlp: Ray Train's FashionMNIST MLP (examples/fashion_mnist_mlp.cfg):
  Flatten, 784-512-512-10 with a ReLU after every Linear, the last included.

One batch of random 1x28x28 images and labels lives on the GPU; each step is
forward, cross-entropy (mean), backward, Adam (lr 1e-3) and zero_grad.
cudnn.benchmark = True (the counterpart of rtrain's cudnnFind plans);
--tf32 0 keeps fp32 math in cuBLAS and cuDNN, --tf32 1 allows TF32. 20
warm-up steps, then 5 windows of 100 steps timed with CUDA events; the
median window gives img_per_s, torch.cuda.max_memory_allocated() (reset
before the model is built) peak_mb. One line per configuration:

  torch <model> batch=<B> tf32=<0|1> img_per_s=<median> peak_mb=<MiB>

  gpu_torch.py --model resnet18 --batch 128 256 --tf32 0 1
  gpu_torch.py --model mlp --batch 64 --tf32 0
  gpu_torch.py --model mlp --batch 64 --tf32 0 --device cpu --steps 5 --windows 2

--sync-loss reads the loss on the host every step (loss.item()), as
rtrain's loop does (rt_model_loss_grad returns the loss sum to the host).
Exits 77 when CUDA is not available (unless --device cpu, a debugging mode
timed with the wall clock). Standard library and torch only.
"""
import argparse
import os
import statistics
import sys
import time

EXIT_SKIP = 77


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", nargs="+", choices=("resnet18", "mlp"), required=True)
    p.add_argument("--batch", nargs="+", type=int, required=True)
    p.add_argument("--tf32", nargs="+", type=int, choices=(0, 1), required=True)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--windows", type=int, default=5)
    p.add_argument("--steps", type=int, default=100, help="steps per timed window")
    p.add_argument("--sync-loss", action="store_true",
                   help="loss.item() every step, as rtrain's loop reads its loss")
    p.add_argument("--profile", type=int, default=0, metavar="STEPS",
                   help="after the timing, STEPS more steps under torch.profiler; prints its "
                   "table of kernels and operators by GPU time (stderr)")
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                   help="cpu: check this script without a GPU (wall-clock timing)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for --device cpu")
    return p.parse_args()


# ---- models ------------------------------------------------------------------------------

def resnet18_local(nn):
    """torchvision's ResNet-18 (BasicBlock, [2, 2, 2, 2]) with rtrain's conv1."""

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                                nn.BatchNorm2d(cout))

        def forward(self, x):
            idt = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + idt)

    class ResNet18(nn.Module):
        def __init__(self, num_classes=10):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            layers, cin = [], 64
            for stage in range(4):
                cout = 64 << stage
                stride = 1 if stage == 0 else 2
                layers.append(nn.Sequential(BasicBlock(cin, cout, stride),
                                            BasicBlock(cout, cout, 1)))
                cin = cout
            self.layer1, self.layer2, self.layer3, self.layer4 = layers
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512, num_classes)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.avgpool(x).flatten(1))

    return ResNet18()


def build_model(name, torch):
    nn = torch.nn
    if name == "mlp":
        return nn.Sequential(nn.Flatten(),
                             nn.Linear(28 * 28, 512), nn.ReLU(),
                             nn.Linear(512, 512), nn.ReLU(),
                             nn.Linear(512, 10), nn.ReLU()), "Ray's MLP"
    try:
        import torchvision
        model = torchvision.models.resnet18(num_classes=10)
        model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        return model, "torchvision %s" % torchvision.__version__
    except ImportError:
        return resnet18_local(nn), "local BasicBlock ResNet-18 (no torchvision)"


# ---- math mode ------------------------------------------------------------------------------

def set_tf32(torch, on):
    """TF32 in cuBLAS and cuDNN. PyTorch >= 2.9 has fp32_precision ("tf32" /
    "ieee") and refuses a mix of it with the older allow_tf32 flags, so the
    newer is used when present. Returns which API was used."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    matmul = torch.backends.cuda.matmul
    if conv is not None and hasattr(conv, "fp32_precision") and hasattr(matmul, "fp32_precision"):
        value = "tf32" if on else "ieee"
        matmul.fp32_precision = value
        conv.fp32_precision = value
        return "fp32_precision=%s" % value
    matmul.allow_tf32 = bool(on)
    torch.backends.cudnn.allow_tf32 = bool(on)
    return "allow_tf32=%s" % bool(on)


# ---- timing ---------------------------------------------------------------------------------

def profile_steps(torch, step, steps, cuda):
    """`steps` steps under torch.profiler: where PyTorch's GPU time goes,
    to set beside `rtrain --profile` (per layer) when looking for a gap."""
    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=acts) as prof:
        for _ in range(steps):
            step()
        if cuda:
            torch.cuda.synchronize()
    key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    print("# torch.profiler over %d steps, sorted by %s" % (steps, key), file=sys.stderr)
    print(prof.key_averages().table(sort_by=key, row_limit=40, max_name_column_width=60),
          file=sys.stderr)


def bench_one(torch, args, model_name, batch, tf32, dev):
    import torch.nn.functional as F
    cuda = dev.type == "cuda"
    api = set_tf32(torch, tf32) if cuda else "cpu"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    torch.manual_seed(1)
    model, source = build_model(model_name, torch)
    model = model.to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 1, 28, 28, device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)
    loss = None

    def step():
        nonlocal loss
        out = model(x)
        loss = F.cross_entropy(out, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if args.sync_loss:
            loss.item()

    for _ in range(args.warmup):
        step()
    rates = []
    for _ in range(args.windows):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(args.steps):
                step()
            end.record()
            end.synchronize()
            seconds = start.elapsed_time(end) / 1e3
        else:
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            seconds = time.perf_counter() - t0
        rates.append(batch * args.steps / max(seconds, 1e-9))
    if args.profile > 0:
        profile_steps(torch, step, args.profile, cuda)
    final = loss.item()
    if final != final:   # NaN
        raise RuntimeError("loss is NaN after training")
    peak = torch.cuda.max_memory_allocated(dev) / 1048576.0 if cuda else 0.0
    print("# %s (%s), %s, sync_loss=%d, loss %.4f, windows: %s img/s"
          % (model_name, source, api, args.sync_loss, final,
             " ".join("%.0f" % r for r in rates)), file=sys.stderr)
    print("torch %s batch=%d tf32=%d img_per_s=%.1f peak_mb=%.1f"
          % (model_name, batch, tf32, statistics.median(rates), peak), flush=True)
    # The model, optimizer and batch go with this frame; the next
    # configuration empties the cache and resets the peak first.


def main():
    args = parse_args()
    if min(args.batch) < 1 or args.windows < 1 or args.steps < 1 or args.warmup < 0:
        sys.exit("gpu_torch.py: batch, windows and steps must be >= 1, warmup >= 0")
    import torch
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_torch.py: SKIP: torch %s sees no CUDA device (torch.version.cuda=%s, "
              "CUDA_VISIBLE_DEVICES=%s); --device cpu checks this script without one"
              % (torch.__version__, torch.version.cuda,
                 os.environ.get("CUDA_VISIBLE_DEVICES", "unset")), flush=True)
        sys.exit(EXIT_SKIP)
    dev = torch.device(args.device)
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
        print("# torch %s, CUDA %s, cuDNN %s, %s" % (torch.__version__, torch.version.cuda,
              torch.backends.cudnn.version(), torch.cuda.get_device_name(dev)), file=sys.stderr)
    elif args.threads > 0:
        torch.set_num_threads(args.threads)
    failed = 0
    for model_name in args.model:
        for batch in args.batch:
            for tf32 in args.tf32:
                try:
                    bench_one(torch, args, model_name, batch, tf32, dev)
                except (RuntimeError, ValueError, AttributeError) as e:   # next config still runs
                    failed = 1
                    print("torch %s batch=%d tf32=%d error=%s"
                          % (model_name, batch, tf32, str(e).splitlines()[0] if str(e) else
                             type(e).__name__), flush=True)
    sys.exit(failed)


if __name__ == "__main__":
    main()
