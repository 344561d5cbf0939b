"""Train a named dataset with the numpy reference: test accuracy and seconds per epoch.

Usage::

    python benchmarks/train_dataset.py fashion-mnist --epochs 3
    python benchmarks/train_dataset.py dvs-digits --epochs 10 --data-dir ~/data
    python benchmarks/train_dataset.py mnist --limit 5000 --hidden-sizes 400

The network is the default :class:`~spide_brian.config.SPIDEConfig` (F400: one feedback layer
of 400 IF neurons) unless flags change it; the input size follows the dataset. Prints one row
per epoch (loss, train and test accuracy, training seconds, samples per second), then the
loading time and the median seconds per epoch.
"""
import argparse
import time

import numpy as np

from spide_brian.config import SPIDEConfig
from spide_brian.data import available_datasets, load_dataset
from spide_brian.training import train


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=available_datasets())
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--limit", type=int, default=None,
                        help="keep only the first N training and test samples")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden-sizes", type=int, nargs="+", default=[400])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()

    started = time.perf_counter()
    dataset = load_dataset(args.dataset, data_dir=args.data_dir, limit=args.limit)
    loading = time.perf_counter() - started
    config = SPIDEConfig(epochs=args.epochs, seed=args.seed, lr=args.lr,
                         hidden_sizes=tuple(args.hidden_sizes), batch_size=args.batch_size)
    print(f"# {dataset.name}: {len(dataset.y_train)} train, {len(dataset.y_test)} test, "
          f"{dataset.n_inputs} inputs, {dataset.frames or 'static'} frames; "
          f"loaded in {loading:.1f} s")
    print("epoch\tloss\ttrain_accuracy\ttest_accuracy\tseconds\tsamples_per_second")
    records = train(config, dataset, backend="reference",
                    on_epoch=lambda r, _: print(
                        f"{r.epoch}\t{r.loss:.4f}\t{r.train_accuracy:.4f}\t"
                        f"{r.test_accuracy:.4f}\t{r.seconds:.1f}\t{r.samples_per_second:.0f}",
                        flush=True))
    print(f"median seconds per epoch: {np.median([r.seconds for r in records]):.1f}")


if __name__ == "__main__":
    main()
