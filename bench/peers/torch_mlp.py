#!/usr/bin/python3
"""PyTorch peer of examples/fashion_mnist_mlp.cfg for bench/run.

FashionMNIST, MLP 784-512-512-10 with a ReLU after every Linear (the last one
included, as in Ray Train's FashionMNIST example), cross-entropy, plain SGD
(lr 1e-3), global batch 64 split across ranks, inputs raw/255 (no
normalisation). DDP over gloo when WORLD_SIZE > 1. See common.py for the data
order, loss scaling and the JSON lines written to --out.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

common.set_threads_early(sys.argv)


def main():
    args = common.common_args(__doc__.splitlines()[0],
                              "global batch (all ranks together); default 64").parse_args()
    import torch
    from torch import nn
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    lr = args.lr if args.lr is not None else 1e-3
    args.lr = lr
    d = common.Dist()
    data = common.load_fashion(args.data_dir)
    torch.manual_seed(args.seed)
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(28 * 28, 512), nn.ReLU(),
        nn.Linear(512, 512), nn.ReLU(),
        nn.Linear(512, 10), nn.ReLU(),
    )
    model = d.wrap(model)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    common.train(model, opt, data, args.batch or 64, args, d)
    d.finish(0)


if __name__ == "__main__":
    main()
