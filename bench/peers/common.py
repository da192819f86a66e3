"""Shared plumbing for the PyTorch peers of bench/run.

The peers are the PyTorch programs rtrain is compared with. They follow the
same semantics as rtrain (src/cli/trainer.c) so that the figures compare like
with like:

- data is read once from the idx(.gz) files into tensors (no torchvision
  download, no DataLoader workers);
- the global order of epoch e is a permutation that depends on (seed, e)
  only; global batch i is positions [i*G, min((i+1)*G, N)) of it and rank r of
  W takes its contiguous part (sizes differ by at most one), exactly like
  rt_batch_split. The permutation itself comes from torch's generator, not
  rtrain's Philox, so the *order* is equivalent, not bit-identical;
- the loss of a step is sum(per-sample loss) / global_batch, so with DDP
  (which averages gradients over ranks) the gradient is the mean over the
  global batch, as in rtrain;
- evaluation splits the test set into global batches of eval_batch * W and
  sums loss / correct / count over ranks;
- one JSON object per epoch with the keys of rtrain's result.json.

Launched by bench/run with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT in the
environment (torchrun is not used: it is broken in Debian's torch 1.13).
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

DATA_DIR = "/usr/share/datasets/fashion-mnist"


def common_args(description, batch_help):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data-dir", default=DATA_DIR,
                   help="directory with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--steps-per-epoch", type=int, default=0,
                   help="stop each epoch after N optimizer steps (0: whole epoch)")
    p.add_argument("--eval-every", type=int, default=1,
                   help="evaluate every N epochs and after the last (0: never)")
    p.add_argument("--eval-batch", type=int, default=0,
                   help="evaluation samples per rank per step (0: the training batch per rank)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--out", required=True, help="JSON lines written here by rank 0")
    p.add_argument("--batch", type=int, default=None, help=batch_help)
    return p


def set_threads_early(argv):
    """OMP_NUM_THREADS must be set before torch is imported to size its pool."""
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            os.environ["OMP_NUM_THREADS"] = argv[i + 1]
        elif a.startswith("--threads="):
            os.environ["OMP_NUM_THREADS"] = a.split("=", 1)[1]


def _open(path):
    if os.path.exists(path):
        f = open(path, "rb")
    elif os.path.exists(path + ".gz"):
        f = open(path + ".gz", "rb")
    else:
        sys.exit("peer: no idx file %s(.gz)" % path)
    head = f.read(2)
    f.seek(0)
    return gzip.GzipFile(fileobj=f) if head == b"\x1f\x8b" else f


def read_idx(path):
    """Reads an idx file of unsigned bytes (magic 0x0000 08 NDIM) into numpy."""
    import numpy as np
    with _open(path) as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        sys.exit("peer: %s is not an unsigned-byte idx file" % path)
    ndim = data[3]
    dims = struct.unpack(">%dI" % ndim, data[4:4 + 4 * ndim])
    body = data[4 + 4 * ndim:]
    if len(body) != math.prod(dims):
        sys.exit("peer: %s: %d bytes of data for dims %s" % (path, len(body), dims))
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def load_fashion(data_dir, mean=None, std=None):
    """Returns (xtrain, ytrain, xtest, ytest) as float32 N x 1 x 28 x 28 and int64
    tensors; x = raw/255, then (x - mean)/std when mean is given."""
    import torch
    out = []
    for split in ("train", "t10k"):
        x = read_idx(os.path.join(data_dir, split + "-images-idx3-ubyte"))
        y = read_idx(os.path.join(data_dir, split + "-labels-idx1-ubyte"))
        xt = torch.from_numpy(x.copy()).float().div_(255.0).unsqueeze(1)
        if mean is not None:
            xt.sub_(mean).div_(std)
        out += [xt.contiguous(), torch.from_numpy(y.astype("int64"))]
    return tuple(out)


def batch_split(g, rank, world):
    """Rank's [begin, end) of a global batch of g samples (as rt_batch_split)."""
    base, extra = divmod(g, world)
    begin = rank * base + min(rank, extra)
    return begin, begin + base + (1 if rank < extra else 0)


def sample_order(n, seed, epoch):
    """Permutation of range(n) depending on (seed, epoch) only."""
    import torch
    g = torch.Generator()
    g.manual_seed((seed * 1000003 + epoch) & 0x7FFFFFFFFFFFFFFF)
    return torch.randperm(n, generator=g)


class Dist:
    """World setup: gloo process group when WORLD_SIZE > 1."""

    def __init__(self):
        import torch.distributed as dist
        self.rank = int(os.environ.get("RANK", "0"))
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.dist = dist if self.world > 1 else None
        if self.dist:
            dist.init_process_group("gloo", rank=self.rank, world_size=self.world)

    def wrap(self, model):
        if not self.dist:
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP
        return DDP(model, gradient_as_bucket_view=True)

    def sum_(self, t):
        if self.dist:
            self.dist.all_reduce(t)
        return t

    def finish(self, code=0):
        """gloo can deadlock at interpreter exit (pytorch#56297): leave hard."""
        sys.stdout.flush()
        sys.stderr.flush()
        if self.dist:
            self.dist.destroy_process_group()
        os._exit(code)


def evaluate(model, xs, ys, eval_batch, d):
    import torch
    import torch.nn.functional as F
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64)
    n = xs.shape[0]
    g = eval_batch * d.world
    with torch.no_grad():
        for start in range(0, n, g):
            b, e = batch_split(min(g, n - start), d.rank, d.world)
            if e <= b:
                continue
            x, y = xs[start + b:start + e], ys[start + b:start + e]
            logits = model(x)
            sums[0] += F.cross_entropy(logits, y, reduction="sum").item()
            sums[1] += (logits.argmax(1) == y).sum().item()
            sums[2] += e - b
    d.sum_(sums)
    model.train()
    return (sums[0] / sums[2]).item(), (sums[1] / sums[2]).item()


def train(model, opt, data, global_batch, args, d):
    """The training loop shared by the peers; writes args.out on rank 0."""
    import torch
    import torch.nn.functional as F
    xtr, ytr, xte, yte = data
    n = xtr.shape[0]
    batches = (n + global_batch - 1) // global_batch
    # A final global batch with fewer samples than ranks would leave a rank
    # with nothing to do inside DDP; drop it (never happens for W <= G).
    if n - (batches - 1) * global_batch < d.world:
        batches -= 1
    if args.steps_per_epoch > 0:
        batches = min(batches, args.steps_per_epoch)
    eval_batch = args.eval_batch or global_batch // d.world
    out = open(args.out, "w") if d.rank == 0 else None
    step = 0
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        perm = sample_order(n, args.seed, epoch)
        loss_sum = torch.zeros((), dtype=torch.float64)
        seen = 0
        for i in range(batches):
            gb = perm[i * global_batch:min((i + 1) * global_batch, n)]
            b, e = batch_split(gb.shape[0], d.rank, d.world)
            idx = gb[b:e]
            x, y = xtr.index_select(0, idx), ytr.index_select(0, idx)
            logits = model(x)
            loss = F.cross_entropy(logits, y, reduction="sum")
            # DDP averages over ranks; * W / global_n makes it the global mean.
            (loss * (d.world / gb.shape[0])).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            loss_sum += loss.detach()
            seen += e - b
            step += 1
        train_time = time.perf_counter() - t0
        sums = d.sum_(torch.tensor([loss_sum.item(), float(seen)], dtype=torch.float64))
        val_loss = val_acc = None
        last = epoch + 1 == args.epochs
        if args.eval_every > 0 and ((epoch + 1) % args.eval_every == 0 or last):
            val_loss, val_acc = evaluate(model, xte, yte, eval_batch, d)
        rec = {
            "epoch": epoch + 1, "step": step,
            "train_loss": (sums[0] / sums[1]).item(),
            "val_loss": val_loss, "val_accuracy": val_acc,
            "lr": args.lr, "samples_per_s": sums[1].item() / train_time,
            "train_time_s": train_time,
            "time_this_iter_s": time.perf_counter() - t0,
            "world_size": d.world,
        }
        if out:
            out.write(json.dumps(rec) + "\n")
            out.flush()
            print("peer epoch %d/%d  train_loss %.4f  val_accuracy %s  %.0f samples/s  %.2f s"
                  % (epoch + 1, args.epochs, rec["train_loss"], val_acc,
                     rec["samples_per_s"], rec["time_this_iter_s"]), flush=True)
    if out:
        out.close()
