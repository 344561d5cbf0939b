"""Speed of the Brian2 SPIDE model against the numpy reference on F400-digits.

F400-digits: 64 inputs -> 400 IF neurons with 400 x 400 feedback, T = 30, T_b = 100,
B = 128 (the SPIDEConfig defaults). Prints the standalone compile seconds, the run seconds
of each epoch and samples per second, next to the reference (``ReferenceTrainer`` on the
same samples), then the median epoch and its ratio to the reference (the
machine is shared: compare ratios measured in one run).

Usage: ``python benchmarks/bench_brian.py [--device cpp_standalone] [--epochs 2]
[--samples 1437] [--build-dir DIR]``.
"""
import argparse
import time

import numpy as np

from spide_brian.brian_backend import BrianTrainer
from spide_brian.config import SPIDEConfig
from spide_brian.datasets import load_dataset
from spide_brian.parameters import init_parameters
from spide_brian.training import ReferenceTrainer


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpp_standalone")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=1437)
    parser.add_argument("--build-dir", default=None)
    args = parser.parse_args()
    dataset = load_dataset("digits")
    x, y = dataset.x_train[:args.samples], dataset.y_train[:args.samples]
    config = SPIDEConfig(timing="brian")
    params = init_parameters(config, x.shape[1], dataset.n_classes)

    reference = ReferenceTrainer(config, params)
    start = time.perf_counter()
    reference.train_epoch(x, y)
    reference_s = time.perf_counter() - start
    reference_params = reference.params
    print(f"reference: {reference_s:.2f} s per epoch, {len(x) / reference_s:.0f} samples/s")

    trainer = BrianTrainer(config, params, device=args.device, build_dir=args.build_dir)
    walls = []
    for epoch in range(args.epochs):
        before = trainer.timings["run_s"]
        start = time.perf_counter()
        stats = trainer.train_epoch(x, y)
        wall = time.perf_counter() - start - (trainer.timings["compile_s"] if epoch == 0 else 0)
        run_s = trainer.timings["run_s"] - before
        walls.append(wall)
        print(f"brian {args.device} epoch {epoch + 1}: compile {trainer.timings['compile_s']:.1f} s"
              f" (first epoch only), run {run_s:.2f} s, wall {wall:.2f} s, "
              f"{len(x) / wall:.0f} samples/s, train accuracy {stats['correct'] / len(x):.3f}")
    median = float(np.median(walls))
    print(f"brian {args.device} median over {len(walls)} epochs: {median:.2f} s per epoch, "
          f"{len(x) / median:.0f} samples/s, {reference_s / median:.2f} x the reference")
    if args.epochs == 1:
        worst = max(np.max(np.abs(trainer.params[k] - reference_params[k]))
                    / np.max(np.abs(reference_params[k])) for k in params)
        print(f"largest relative difference to the reference after one epoch: {worst:.2e}")


if __name__ == "__main__":
    main()
