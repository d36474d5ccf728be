"""Transfer learning (seed 002 §3.2.5): features learnt on Fashion-MNIST, reused for MNIST.

Pretrain the seed-000 CNN on Fashion-MNIST; then, on only 1,000 labelled MNIST digits, train
(a) the pretrained model with its convolutional features frozen and a new 10-class head, and
(b) the same architecture from scratch on the same 1,000 labels and the same batch order.
Both are tested on the full 10,000-image MNIST test set.

    SHENJING_DATA=../shared/data python examples/transfer_fashion_to_mnist.py --seed 0
"""

import argparse
import time

import numpy as np

import shenjing as sj
from shenjing import models, optim
from shenjing.data.datasets import load_idx_arrays
from shenjing.nn import functional as F


def images(name, train):
    x, y = load_idx_arrays(name, train=train)
    return (x.astype(np.float32) / 255.0)[:, None], y


def accuracy(model, x, y):
    model.eval()
    with sj.no_grad():
        pred = np.concatenate([model(sj.from_numpy(x[i:i + 1000])).numpy().argmax(1)
                               for i in range(0, len(x), 1000)])
    return float((pred == y).mean())


def train(model, x, y, epochs, seed, batch_size=64, lr=1e-3):
    """Adam over the trainable parameters; `partial_fit` passes with a seeded batch order."""
    opt = optim.Adam(models.trainable_parameters(model), lr=lr)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        models.partial_fit(model, opt, F.cross_entropy, x, y, batch_size=batch_size, rng=rng)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pretrain-epochs", type=int, default=2)
    parser.add_argument("--pretrain-images", type=int, default=60000,
                        help="Fashion-MNIST training images used for pretraining")
    parser.add_argument("--labels", type=int, default=1000, help="labelled MNIST digits")
    parser.add_argument("--epochs", type=int, default=15, help="epochs over those labels")
    args = parser.parse_args()

    t0 = time.perf_counter()
    fx, fy = images("fashion-mnist", True)
    keep = np.random.default_rng(args.seed).permutation(len(fx))[:args.pretrain_images]
    fx, fy = fx[keep], fy[keep]
    fxt, fyt = images("fashion-mnist", False)
    sj.manual_seed(args.seed)
    pretrained = train(models.seed000_cnn(), fx, fy, args.pretrain_epochs, args.seed)
    fashion_acc = accuracy(pretrained, fxt, fyt)

    mx, my = images("mnist", True)
    mxt, myt = images("mnist", False)
    pick = np.random.default_rng(args.seed).permutation(len(mx))[:args.labels]
    x, y = mx[pick], my[pick]

    models.freeze(pretrained, ["0", "3"])  # both convolutions; only the head learns
    sj.manual_seed(args.seed + 100)
    models.replace_head(pretrained, 10)
    frozen_acc = accuracy(train(pretrained, x, y, args.epochs, args.seed + 1), mxt, myt)

    sj.manual_seed(args.seed + 100)
    scratch_acc = accuracy(train(models.seed000_cnn(), x, y, args.epochs, args.seed + 1), mxt,
                           myt)
    print(f"seed {args.seed}: pretrained on {len(fx)} Fashion-MNIST images for "
          f"{args.pretrain_epochs} epoch(s), its test accuracy {fashion_acc:.4f}; "
          f"MNIST with {args.labels} labels: frozen pretrained features {frozen_acc:.4f}, "
          f"from scratch {scratch_acc:.4f} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
