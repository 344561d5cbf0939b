"""Train a few hundred digits samples on genn and on cpp_standalone; compare and time them.

Run by ``benchmarks/gpu_check.sh`` in a brian2 2.5.4 + brian2genn environment::

    python benchmarks/gpu_check.py --samples 300 [--cpu-only] [--cuda] [--no-genn]

Prints per device: compile seconds, run seconds, samples/s; then whether the forward and
backward spike counts and the trained parameters equal those of cpp_standalone (the exact
reference device). Counts must be identical; parameters equal to rounding, with the
criterion of the test suite (``tests/test_brian_model.py``: relative 1e-9): the devices
compile their arithmetic differently (cpp_standalone with ``-ffast-math -march=native``
throughout, GeNN its neuron and synapse code without), so the last bit of a weight may
differ. The largest difference is printed. Exit status 1 if a comparison fails.
"""
import argparse
import sys
import time

import numpy as np
from sklearn.datasets import load_digits

from spide_brian.brian_backend import BrianTrainer
from spide_brian.config import SPIDEConfig
from spide_brian.parameters import init_parameters


def train(device, config, params, x, y, epochs, **options):
    trainer = BrianTrainer(config, params, device=device, **options)
    start = time.perf_counter()
    counts = []
    for _ in range(epochs):
        trainer.train_epoch(x, y)
        counts.append(trainer.last_records)
    wall = time.perf_counter() - start
    return trainer, counts, wall


def compare(name, reference, other):
    (ref_trainer, ref_counts), (trainer, counts) = reference, other
    ok = True
    for key in ("forward_counts", "backward_signed"):
        for a, b in zip(ref_counts, counts):
            for layer_a, layer_b in zip(a[key], b[key]):
                if not np.array_equal(layer_a, layer_b):
                    ok = False
                    print(f"  {name}: {key} differ in {np.sum(layer_a != layer_b)} entries")
    worst = 0.0
    for parameter, expected in ref_trainer.params.items():
        actual = trainer.params[parameter]
        worst = max(worst, float(np.max(np.abs(expected - actual))))
        if not np.allclose(actual, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max()):
            ok = False
            print(f"  {name}: {parameter} differs beyond rounding")
    print(f"  {name}: largest parameter difference to cpp_standalone {worst:.3g}")
    return ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--cpu-only", action="store_true", help="GeNN's CPU-only backend")
    parser.add_argument("--cuda", action="store_true", help="also brian2cuda")
    parser.add_argument("--cuda-compute-capability", type=float, default=None,
                        help="GPU architecture for brian2cuda (default: spide_brian.devices.cuda's)")
    parser.add_argument("--no-genn", action="store_true", help="leave GeNN out")
    parser.add_argument("--genn-path", default=None)
    args = parser.parse_args(argv)
    digits = load_digits()
    x = (digits.data[:args.samples] / 16.0).astype(np.float64)
    y = digits.target[:args.samples]
    config = SPIDEConfig(hidden_sizes=(args.hidden,), time_step=30, time_step_back=50,
                         batch_size=32, leaky=1.0, reset="modified", timing="brian")
    params = init_parameters(config, x.shape[1], 10, seed=0)
    runs = {}
    devices = [("cpp_standalone", {})]
    if not args.no_genn:
        devices.append(("genn", dict(use_gpu=not args.cpu_only, genn_path=args.genn_path)))
    if args.cuda:
        devices.append(("cuda_standalone",
                        dict(compute_capability=args.cuda_compute_capability)))
    ok = True
    for device, options in devices:
        try:
            trainer, counts, wall = train(device, config, params, x, y, args.epochs, **options)
        except Exception as error:  # report and go on with the other devices
            print(f"{device}: FAILED: {type(error).__name__}: {error}")
            ok = False
            continue
        n = args.samples * args.epochs
        timings = trainer.timings
        print(f"{device}: compile {timings['compile_s']:.1f} s, run {timings['run_s']:.1f} s, "
              f"wall {wall:.1f} s, {n / max(timings['run_s'], 1e-9):.0f} samples/s "
              f"(run only), {n / wall:.1f} samples/s (wall)")
        runs[device] = (trainer, counts)
    for device in runs:
        if device != "cpp_standalone" and "cpp_standalone" in runs:
            equal = compare(device, runs["cpp_standalone"], runs[device])
            print(f"{device}: {'EQUAL' if equal else 'DIFFERENT'} to cpp_standalone")
            ok = ok and equal
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
