#!/usr/bin/python3
"""PyTorch peer of examples/fashion_mnist_resnet18.cfg for bench/run.

FashionMNIST, torchvision ResNet18 (num_classes 10) with conv1 replaced by a
1-channel Conv2d(1, 64, 7, stride 2, padding 3, bias False), inputs
normalised with mean 0.28604 / std 0.32025, cross-entropy, Adam (lr 1e-3),
128 samples per rank per step (global batch 128 * W). DDP over gloo when
WORLD_SIZE > 1. See common.py for the data order, loss scaling and the JSON
lines written to --out.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

common.set_threads_early(sys.argv)


def main():
    p = common.common_args(__doc__.splitlines()[0],
                           "samples per rank per step; default 128")
    p.add_argument("--channels-last", action="store_true",
                   help="use the channels_last memory format (not faster on this CPU build)")
    args = p.parse_args()
    import torch
    import torchvision
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    args.lr = args.lr if args.lr is not None else 1e-3
    d = common.Dist()
    data = common.load_fashion(args.data_dir, mean=0.28604, std=0.32025)
    torch.manual_seed(args.seed)
    model = torchvision.models.resnet18(num_classes=10)
    model.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        data = tuple(t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t
                     for t in data)
    model = d.wrap(model)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    common.train(model, opt, data, (args.batch or 128) * d.world, args, d)
    d.finish(0)


if __name__ == "__main__":
    main()
