"""Figure 5: spike rasters of one sample: forward neurons and ternary neuron couples.

A three-layer feedback network (quick: 40-30-20 neurons; full: 120-100-80) sees one digit for
``T = 30`` forward steps; the readout's gradient current ``g = (S/B) W_c^T (p - y)`` then drives
the ternary couples for ``T_b = 100`` steps, whose positive and negative spikes are drawn in two
colours. Couples whose forward neuron is silent or saturated (gate ``m = 0``) never fire.
The network is trained for a few epochs first (quick: 3, full: 10) so the picture is that of
a learning network.

Usage: ``python figures/fig5_rasters.py [--out DIR] [--full] [--sample INDEX]``
"""
import sys

import numpy as np

from spide_brian import plotting
from spide_brian import reference as ref
from spide_brian.config import SPIDEConfig
from spide_brian.data import load_dataset
from spide_brian.figures import figure_arguments
from spide_brian.parameters import init_parameters

NAME = "fig5_rasters"
QUICK = dict(hidden_sizes=(40, 30, 20), epochs=3, batch_size=32)
FULL = dict(hidden_sizes=(120, 100, 80), epochs=10, batch_size=32)


def compute(quick=True, sample=0):
    """Spike records of one test sample in both stages (a dict of nested lists)."""
    config = SPIDEConfig(**(QUICK if quick else FULL))
    dataset = load_dataset("digits")
    params = init_parameters(config, dataset.n_inputs, dataset.n_classes)
    optimizer = ref.SGDMomentum(config)
    for epoch in range(config.epochs):
        for start in range(0, len(dataset.y_train), config.batch_size):
            batch = slice(start, start + config.batch_size)
            ref.train_batch(params, config, optimizer, dataset.x_train[batch],
                            dataset.y_train[batch])
    x, label = dataset.x_test[sample:sample + 1], dataset.y_test[sample:sample + 1]
    kappa = config.scale_factor / config.batch_size
    holder = {}

    def gradient_current(forward):
        holder["readout"] = ref.readout(params, forward.rates[-1], label, kappa)
        return holder["readout"].gradient_current

    result = ref.forward_backward(params, config, x, gradient_current, record=True)
    forward = np.concatenate([s[:, 0, :] for s in result.forward.spikes], axis=1)
    backward = np.concatenate([s[:, 0, :] for s in result.backward.spikes], axis=1)
    return dict(sizes=list(config.hidden_sizes), epochs=config.epochs, sample=sample,
                label=int(label[0]),
                predicted=int(holder["readout"].probabilities[0].argmax()),
                forward=forward.astype(int).tolist(), backward=backward.astype(int).tolist(),
                time_step=config.time_step, time_step_back=config.time_step_back)


def draw(data):
    """Forward raster (left) and ternary raster (right), layers stacked."""
    figure, (left, right) = plotting.new_figure(2, width=4.6, height=4.2,
                                                gridspec_kw=dict(width_ratios=[1, 1.6]))
    plotting.plot_raster(np.asarray(data["forward"], dtype=bool), ax=left,
                         layer_sizes=data["sizes"],
                         title=f"Forward spikes (T = {data['time_step']})")
    plotting.plot_ternary_raster(np.asarray(data["backward"]), ax=right,
                                 layer_sizes=data["sizes"],
                                 title=f"Ternary couples ($T_b$ = {data['time_step_back']})")
    figure.suptitle(f"One digit (test sample {data['sample']}, label {data['label']}, "
                    f"predicted {data['predicted']}) after {data['epochs']} training epochs",
                    fontsize=11)
    return figure


def make_figure(out_dir, quick=True, data=None, sample=0):
    """Compute (unless ``data`` is given), draw and save; returns the PNG path."""
    data = compute(quick, sample) if data is None else data
    with plotting.figure_style():
        return plotting.save_figure(draw(data), f"{out_dir}/{NAME}.png", data)


def main(argv=None):
    args = figure_arguments(__doc__, argv, lambda parser: parser.add_argument(
        "--sample", type=int, default=0, help="index of the test sample (default: 0)"))
    print(make_figure(args.out, quick=not args.full, sample=args.sample))
    return 0


if __name__ == "__main__":
    sys.exit(main())
