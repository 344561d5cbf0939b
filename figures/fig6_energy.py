"""Figure 6: operations and energy per sample of SPIDE against the equivalent ANN.

A feedback network (quick: 100 IF neurons, trained 3 epochs; full: the default F400 network,
trained 20 epochs) is run on the digits test set. The spiking network's operations are counted
from its actual spikes (:func:`spide_brian.energy.spike_operations`): accumulates for every
forward spike times its fan-out and every ternary spike times its fan-out in the transposed
path, multiply-accumulates for the input current, the readout and the local weight update,
and one update per neuron per step. The equivalent ANN (:func:`spide_brian.energy.ann_operations`)
has the same layers and synapses with real-valued activations and one pass through the
feedback loop (a lower bound: reaching the equilibrium takes several). Energy uses 0.9 pJ per
accumulate and 4.6 pJ per multiply-accumulate (45 nm, Horowitz, ISSCC 2014).

Usage: ``python figures/fig6_energy.py [--out DIR] [--full] [--ann-iterations K]``
"""
import sys

import numpy as np

from spide_brian import energy, plotting
from spide_brian import reference as ref
from spide_brian.config import SPIDEConfig
from spide_brian.datasets import load_dataset
from spide_brian.figures import figure_arguments
from spide_brian.parameters import init_parameters
from spide_brian.training import ReferenceTrainer

NAME = "fig6_energy"
QUICK = dict(hidden_sizes=(100,), epochs=3, batch_size=32)
FULL = dict(epochs=20)
SETUPS = ("SNN inference", "ANN inference", "SNN training", "ANN training")
KINDS = {"accumulates": "accumulates (AC)", "multiply_accumulates": "multiply-accumulates (MAC)",
         "neuron_updates": "neuron updates"}
CATEGORIES = {"input": "input current", "forward": "forward", "readout": "readout",
              "backward": "backward", "weight_update": "weight update"}


def _train(config, dataset):
    trainer = ReferenceTrainer(config, init_parameters(config, dataset.n_inputs,
                                                       dataset.n_classes))
    for _ in range(config.epochs):
        trainer.train_epoch(dataset.x_train, dataset.y_train)
    return trainer.params


def compute(quick=True, ann_iterations=1):
    """Per-sample operation counts and energy of the four setups (a dict of dicts)."""
    config = SPIDEConfig(**(QUICK if quick else FULL))
    dataset = load_dataset("digits")
    params = _train(config, dataset)
    x, labels = dataset.x_test, dataset.y_test
    kappa = config.scale_factor / config.batch_size
    result = ref.forward_backward(
        params, config, x,
        lambda forward: ref.readout(params, forward.rates[-1], labels, kappa).gradient_current)
    counts = {
        "SNN inference": energy.spike_operations(params, result.forward.counts,
                                                 config.time_step, x),
        "ANN inference": energy.ann_operations(params, x, ann_iterations, training=False),
        "SNN training": energy.spike_operations(params, result.forward.counts, config.time_step,
                                                x, result.backward.spike_counts,
                                                config.time_step_back),
        "ANN training": energy.ann_operations(params, x, ann_iterations, training=True),
    }
    neurons = sum(config.hidden_sizes)
    return dict(
        sizes=list(config.hidden_sizes), epochs=config.epochs, samples=len(labels),
        time_step=config.time_step, time_step_back=config.time_step_back,
        ann_iterations=ann_iterations, costs=vars(energy.EnergyCosts()),
        forward_rate=float(sum(c.sum() for c in result.forward.counts)
                           / (len(labels) * neurons * config.time_step)),
        backward_rate=float(sum(c.sum() for c in result.backward.spike_counts)
                            / (len(labels) * neurons * config.time_step_back)),
        operations={s: {k: float(np.mean(c.total(k))) for k in KINDS} for s, c in counts.items()},
        operations_by_category={s: c.per_sample() for s, c in counts.items()},
        energy_nj={s: {k: float(np.mean(v)) / 1e3 for k, v in c.energy_by_category().items()}
                   for s, c in counts.items()})


def draw(data):
    """Operations by kind (left) and energy by stage (right), per sample."""
    figure, (left, right) = plotting.new_figure(2, width=5.0, height=3.9)
    labels = [s.replace(" ", "\n") for s in SETUPS]
    plotting.plot_operations(
        labels, {name: [data["operations"][s][kind] / 1e6 for s in SETUPS]
                 for kind, name in KINDS.items()}, ax=left,
        ylabel="operations per sample (millions)", title="Operations")
    plotting.plot_energy(
        labels, {name: [data["energy_nj"][s].get(category, 0.0) for s in SETUPS]
                 for category, name in CATEGORIES.items()}, ax=right, unit="nJ",
        title=f"Energy ({data['costs']['accumulate_pj']} pJ/AC, "
              f"{data['costs']['multiply_accumulate_pj']} pJ/MAC)")
    sizes = "-".join(map(str, data["sizes"]))
    passes = "pass" if data["ann_iterations"] == 1 else "passes"
    figure.suptitle(f"Per digit: {sizes} feedback SNN (T = {data['time_step']}, "
                    f"$T_b$ = {data['time_step_back']}, forward rate "
                    f"{data['forward_rate']:.2f}, backward rate {data['backward_rate']:.2f}) "
                    f"vs ANN ({data['ann_iterations']} {passes})", fontsize=10)
    return figure


def make_figure(out_dir, quick=True, data=None, ann_iterations=1):
    """Compute (unless ``data`` is given), draw and save; returns the PNG path."""
    data = compute(quick, ann_iterations) if data is None else data
    return plotting.render_figure(draw, data, f"{out_dir}/{NAME}.png")


def main(argv=None):
    args = figure_arguments(__doc__, argv, lambda parser: parser.add_argument(
        "--ann-iterations", type=int, default=1,
        help="passes of the ANN through its feedback loop (default: 1, a lower bound)"))
    print(make_figure(args.out, quick=not args.full, ann_iterations=args.ann_iterations))
    return 0


if __name__ == "__main__":
    sys.exit(main())
