"""F400-digits with the numpy reference: test accuracy per epoch, mean over seeds.

Usage: ``python benchmarks/train_f400_digits.py [--epochs 50] [--seeds 0 1 2]``. Prints one
row per epoch (test accuracy of each seed and their mean), then the means after 20 and 50
epochs and the median seconds per epoch.
"""
import argparse

import numpy as np

from spide_brian.config import SPIDEConfig
from spide_brian.datasets import load_dataset
from spide_brian.training import train


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    dataset = load_dataset("digits")
    runs = []
    for seed in args.seeds:
        config = SPIDEConfig(epochs=args.epochs, seed=seed)
        runs.append(train(config, dataset, backend="reference"))
    accuracy = np.array([[r.test_accuracy for r in run] for run in runs])
    seconds = np.array([[r.seconds for r in run] for run in runs])
    print("epoch\t" + "\t".join(f"seed{s}" for s in args.seeds) + "\tmean")
    for epoch in range(args.epochs):
        row = "\t".join(f"{a:.4f}" for a in accuracy[:, epoch])
        print(f"{epoch + 1}\t{row}\t{accuracy[:, epoch].mean():.4f}")
    for epoch in (20, 50):
        if epoch <= args.epochs:
            print(f"mean test accuracy after {epoch} epochs: {accuracy[:, epoch - 1].mean():.4f}")
    print(f"median seconds per epoch: {np.median(seconds):.3f}")


if __name__ == "__main__":
    main()
