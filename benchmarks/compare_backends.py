"""Train one configuration with the numpy reference and with the Brian2 model, side by side.

Usage: ``python benchmarks/compare_backends.py [--recipe NAME] [--dataset digits] [--epochs 20]
[--seed 0] [--device cpp_standalone] [--limit N] [--lr LR] [--batch-size B]
[--couple-neuron if] [--samples-per-run N]``. ``--recipe`` starts from a named recipe's
values (its schedule and dropout included; the dataset stays ``--dataset``).
Both start from the same initial weights and see the samples in the same order. Prints the
test accuracy of both per epoch, their difference, and seconds per epoch (for the Brian2
model, the first epoch includes compilation; the compile seconds are printed separately).
"""
import argparse

import numpy as np

from spide_brian.config import SPIDEConfig
from spide_brian.datasets import load_dataset
from spide_brian.parameters import init_parameters
from spide_brian.recipes import get_recipe
from spide_brian.training import make_trainer, train


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default=None)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpp_standalone")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--couple-neuron", default=None, help="'lif' or 'if'")
    parser.add_argument("--samples-per-run", type=int, default=None)
    args = parser.parse_args()
    dataset = load_dataset(args.dataset, data_dir=args.data_dir, limit=args.limit)
    changes = {k: v for k, v in (("lr", args.lr), ("batch_size", args.batch_size),
                                 ("couple_neuron", args.couple_neuron)) if v is not None}
    # the Brian2 model's timing: every synaptic hop one step late
    base = get_recipe(args.recipe).config() if args.recipe else SPIDEConfig()
    config = base.replace(epochs=args.epochs, seed=args.seed, timing="brian", **changes)
    params = init_parameters(config, dataset.n_inputs, dataset.n_classes)
    results = {}
    for backend in ("reference", "brian"):
        options = dict(device=args.device, capacity=args.samples_per_run) \
            if backend == "brian" else {}
        trainer = make_trainer(backend, config, params, n_inputs=dataset.n_inputs,
                               n_classes=dataset.n_classes, **options)
        results[backend] = (train(config, dataset, trainer=trainer), trainer)
    print("epoch\treference\tbrian\tdifference\tsame_rates\tref_s\tbrian_s")
    for ref, brian in zip(results["reference"][0], results["brian"][0]):
        same = (ref.forward_rate, ref.backward_rate, ref.train_accuracy, ref.lr) == \
            (brian.forward_rate, brian.backward_rate, brian.train_accuracy, brian.lr)
        print(f"{ref.epoch}\t{ref.test_accuracy:.4f}\t{brian.test_accuracy:.4f}\t"
              f"{brian.test_accuracy - ref.test_accuracy:+.4f}\t{same}\t{ref.seconds:.2f}\t"
              f"{brian.seconds:.2f}")
    timings = getattr(results["brian"][1], "timings", {})
    print(f"brian compile seconds: {timings.get('compile_s', float('nan')):.1f}")
    ref_final = results["reference"][0][-1].test_accuracy
    brian_final = results["brian"][0][-1].test_accuracy
    print(f"final test accuracy: reference {ref_final:.4f}, brian {brian_final:.4f}, "
          f"difference {brian_final - ref_final:+.4f}")
    ref_params, brian_params = results["reference"][1].params, results["brian"][1].params
    worst = max(np.max(np.abs(brian_params[k] - ref_params[k]))
                / max(np.max(np.abs(ref_params[k])), 1e-300) for k in params)
    print(f"largest weight difference relative to the largest weight: {worst:.3g}")


if __name__ == "__main__":
    main()
