"""Figure 5: spike rasters of one sample: forward neurons and ternary neuron couples.

A three-layer feedback network (quick: 40-30-20 neurons; full: 120-100-80, of which the first
40 of each layer are drawn) sees one digit for ``T = 30`` forward steps; the readout's gradient current ``g = (S/B) W_c^T (p - y)`` then drives
the ternary couples for ``T_b = 100`` steps, whose positive and negative spikes are drawn in two
colours. Couples whose forward neuron is silent or saturated (gate ``m = 0``) never fire.
The network is trained for a few epochs first (quick: 3, full: 10) so the picture is that of
a learning network; the sample shown is the first test digit it misclassifies (a correctly
classified digit with a confident readout sends almost no error spikes), or ``--sample``.

Usage: ``python figures/fig5_rasters.py [--out DIR] [--full] [--sample INDEX]``
"""
import sys

import numpy as np

from spide_brian import plotting
from spide_brian import reference as ref
from spide_brian.config import SPIDEConfig
from spide_brian.datasets import load_dataset
from spide_brian.figures import figure_arguments
from spide_brian.parameters import init_parameters
from spide_brian.training import ReferenceTrainer

NAME = "fig5_rasters"
QUICK = dict(hidden_sizes=(40, 30, 20), epochs=3, batch_size=32)
FULL = dict(hidden_sizes=(120, 100, 80), epochs=10, batch_size=32)
SHOWN_PER_LAYER = 40


def compute(quick=True, sample=None):
    """Spike records of one test sample in both stages (a dict of nested lists).

    ``sample`` None picks the first misclassified test sample (the first sample if none is).
    """
    config = SPIDEConfig(**(QUICK if quick else FULL))
    dataset = load_dataset("digits")
    trainer = ReferenceTrainer(config, init_parameters(config, dataset.n_inputs,
                                                       dataset.n_classes))
    for _ in range(config.epochs):
        trainer.train_epoch(dataset.x_train, dataset.y_train)
    params = trainer.params
    if sample is None:
        wrong = np.flatnonzero(ref.predict(params, config, dataset.x_test)[0].argmax(axis=1)
                               != dataset.y_test)
        sample = int(wrong[0]) if len(wrong) else 0
    x, label = dataset.x_test[sample:sample + 1], dataset.y_test[sample:sample + 1]
    kappa = config.scale_factor / config.batch_size
    holder = {}

    def gradient_current(forward):
        holder["readout"] = ref.readout(params, forward.rates[-1], label, kappa)
        return holder["readout"].gradient_current

    result = ref.forward_backward(params, config, x, gradient_current, record=True)
    shown = [min(n, SHOWN_PER_LAYER) for n in config.hidden_sizes]
    forward = np.concatenate([s[:, 0, :n] for s, n in zip(result.forward.spikes, shown)], axis=1)
    backward = np.concatenate([s[:, 0, :n] for s, n in zip(result.backward.spikes, shown)],
                              axis=1)
    return dict(sizes=shown, layer_sizes=list(config.hidden_sizes), epochs=config.epochs,
                sample=sample,
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
    network = "-".join(map(str, data["layer_sizes"]))
    shown = "" if data["sizes"] == data["layer_sizes"] else \
        f", first {max(data['sizes'])} neurons of each layer"
    figure.suptitle(f"Test digit {data['sample']} (label {data['label']}, predicted "
                    f"{data['predicted']}), {network} network after {data['epochs']} epochs"
                    f"{shown}", fontsize=11)
    return figure


def make_figure(out_dir, quick=True, data=None, sample=None):
    """Compute (unless ``data`` is given), draw and save; returns the PNG path."""
    data = compute(quick, sample) if data is None else data
    return plotting.render_figure(draw, data, f"{out_dir}/{NAME}.png")


def main(argv=None):
    args = figure_arguments(__doc__, argv, lambda parser: parser.add_argument(
        "--sample", type=int, default=None,
        help="index of the test sample (default: the first misclassified one)"))
    print(make_figure(args.out, quick=not args.full, sample=args.sample))
    return 0


if __name__ == "__main__":
    sys.exit(main())
