"""Train a named dataset with the numpy reference or the Brian2 model: test accuracy and
seconds per epoch.

Usage::

    python benchmarks/train_dataset.py fashion-mnist --epochs 3
    python benchmarks/train_dataset.py fashion-mnist --epochs 3 --backend brian
    python benchmarks/train_dataset.py dvs-digits --epochs 10 --backend brian --device cpp_standalone
    python benchmarks/train_dataset.py mnist --limit 5000 --hidden-sizes 400

The network is the default :class:`~spide_brian.config.SPIDEConfig` (F400: one feedback layer
of 400 IF neurons) unless flags change it; the input size follows the dataset. Prints one row
per epoch (loss, train and test accuracy, training seconds without compilation, samples per
second, evaluation seconds), then the loading time, the compile time (brian) and the median
seconds per epoch. Both backends start from the same parameters and see the same order.
"""
import argparse
import time

import numpy as np

from spide_brian.config import SPIDEConfig
from spide_brian.datasets import available_datasets, load_dataset
from spide_brian.parameters import init_parameters
from spide_brian.training import make_trainer, train


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
    parser.add_argument("--backend", choices=("reference", "brian"), default="reference")
    parser.add_argument("--device", default=None, help="Brian2 device (default: fastest)")
    parser.add_argument("--samples-per-run", type=int, default=None,
                        help="brian: samples per simulation run (default: up to 10000)")
    parser.add_argument("--build-dir", default=None, help="brian: standalone project folder")
    args = parser.parse_args()

    started = time.perf_counter()
    dataset = load_dataset(args.dataset, data_dir=args.data_dir, limit=args.limit)
    loading = time.perf_counter() - started
    config = SPIDEConfig(epochs=args.epochs, seed=args.seed, lr=args.lr,
                         hidden_sizes=tuple(args.hidden_sizes), batch_size=args.batch_size)
    print(f"# {dataset.name}: {len(dataset.y_train)} train, {len(dataset.y_test)} test, "
          f"{dataset.n_inputs} inputs, {dataset.frames or 'static'} frames; "
          f"loaded in {loading:.1f} s")
    params = init_parameters(config, dataset.n_inputs, dataset.n_classes)
    options = {}
    if args.backend == "brian":
        options = dict(device=args.device, capacity=args.samples_per_run,
                       build_dir=args.build_dir)
    trainer = make_trainer(args.backend, config, params, n_inputs=dataset.n_inputs,
                           n_classes=dataset.n_classes, **options)
    print(f"# backend {args.backend}" + (f" on {trainer.device_name}" if options else ""))
    print("epoch\tloss\ttrain_accuracy\ttest_accuracy\tseconds\tsamples_per_second\t"
          "eval_seconds")
    seconds, compiled = [], [0.0]
    marks = {}
    evaluate = trainer.evaluate

    def timed_evaluate(x, y):
        marks["eval_start"] = time.perf_counter()
        return evaluate(x, y)

    trainer.evaluate = timed_evaluate

    def report(record, _):
        now = time.perf_counter()
        run_s = record.seconds   # the epoch's compile is in record.compile_seconds
        compiled[0] += record.compile_seconds
        seconds.append(run_s)
        print(f"{record.epoch}\t{record.loss:.4f}\t{record.train_accuracy:.4f}\t"
              f"{record.test_accuracy:.4f}\t{run_s:.1f}\t"
              f"{len(dataset.y_train) / run_s:.0f}\t{now - marks['eval_start']:.1f}",
              flush=True)

    train(config, dataset, trainer=trainer, on_epoch=report)
    if options:
        print(f"compile seconds: {compiled[0]:.1f}")
    print(f"median seconds per epoch: {np.median(seconds):.1f}")


if __name__ == "__main__":
    main()
