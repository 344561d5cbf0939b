"""The two constructions of the Brian2 model on one device: direct against replay.

The direct route accumulates every synapse's gradient in a synaptic ``run_regularly`` that
reads neuron variables; the replay route (the one GeNN and Brian2 < 2.6 use) accumulates the
same products from a two-step window of spike events at the end of each slot
(``spide_brian.routes``). Both train F400-digits from the same parameters on the same
device; the script prints, per route, the compile seconds and the samples per second of each
epoch, the medians, their ratio, and the largest difference of the two routes' weights.
The routes run one after the other (one compiled standalone program exists at a time).

Usage: ``python benchmarks/replay_vs_direct.py [--device cpp_standalone] [--epochs 3]
[--samples 1437]``.
"""
import argparse
import dataclasses
import tempfile
import time

import numpy as np

from spide_brian.brian_backend import BrianTrainer
from spide_brian.config import SPIDEConfig
from spide_brian.datasets import load_dataset
from spide_brian.parameters import init_parameters
from spide_brian.routes import route_for


def _trainer(route, config, params, device, folder):
    trainer = BrianTrainer(config, params, device=device, build_dir=folder)
    if route == "replay":
        # the replay construction on a device that also has the direct one
        trainer.caps = dataclasses.replace(trainer.caps, synaptic_rr_reads_groups=False)
    return trainer


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpp_standalone")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=1437)
    args = parser.parse_args()
    dataset = load_dataset("digits")
    x, y = dataset.x_train[:args.samples], dataset.y_train[:args.samples]
    config = SPIDEConfig(timing="brian")
    params = init_parameters(config, x.shape[1], dataset.n_classes)
    rates = {"direct": [], "replay": []}
    compile_s, final = {}, {}
    with tempfile.TemporaryDirectory() as root:
        for route in rates:
            with _trainer(route, config, params, args.device, f"{root}/{route}") as trainer:
                assert route_for(trainer.caps).name == route
                for epoch in range(args.epochs):
                    before = trainer.timings["compile_s"]
                    start = time.perf_counter()
                    trainer.train_epoch(x, y)
                    compiled = trainer.timings["compile_s"] - before
                    wall = time.perf_counter() - start - compiled
                    compile_s.setdefault(route, compiled)
                    rates[route].append(len(x) / wall)
                    print(f"{route:6s} epoch {epoch + 1}: {len(x) / wall:.0f} samples/s"
                          + (f" (compile {compiled:.1f} s)" if compiled else ""), flush=True)
                final[route] = trainer.params
    medians = {route: float(np.median(values)) for route, values in rates.items()}
    for route, median in medians.items():
        print(f"{route:6s} median {median:.0f} samples/s over {args.epochs} epochs, "
              f"compile {compile_s[route]:.1f} s")
    print(f"replay / direct samples per second: {medians['replay'] / medians['direct']:.3f}")
    largest = max(float(np.max(np.abs(final["replay"][k] - final["direct"][k]))) for k in params)
    print(f"largest weight difference between the routes: {largest:.3g}")


if __name__ == "__main__":
    main()
