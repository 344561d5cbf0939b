"""Figure 4: firing rates per layer in both stages over training.

Per epoch and layer: the forward rate (spikes per neuron per step), the backward rate
(ternary spikes of either sign per couple per step) and the shares of neurons whose rate is
strictly between 0 and 1 (the gate through which errors flow), silent or saturated, summed
over all training samples of the epoch (:mod:`spide_brian.firing`). With ``--log`` it reads
these from a training log that has the per-layer columns (``forward_rate_0`` ...); otherwise
it trains a three-layer feedback network on digits with the numpy reference
(quick: 64-48-32 neurons, 10 epochs; full: 400-200-100, 30 epochs).

Usage: ``python figures/fig4_firing_rates.py [--out DIR] [--full] [--log PATH/log.tsv]``
"""
import sys
from pathlib import Path

import numpy as np

from spide_brian import firing, plotting
from spide_brian.config import SPIDEConfig
from spide_brian.datasets import load_dataset
from spide_brian.figures import figure_arguments, read_log
from spide_brian.parameters import init_parameters
from spide_brian.training import ReferenceTrainer, epoch_order

NAME = "fig4_firing_rates"
QUICK = dict(hidden_sizes=(64, 48, 32), epochs=10, batch_size=32)
FULL = dict(hidden_sizes=(400, 200, 100), epochs=30, batch_size=128)


def train_statistics(config, dataset):
    """Train with the reference and return one row of per-layer statistics per epoch."""
    trainer = ReferenceTrainer(config, init_parameters(config, dataset.n_inputs,
                                                       dataset.n_classes))
    rows = []
    for epoch in range(config.epochs):
        order = epoch_order(config.seed, epoch, len(dataset.y_train))
        stats = trainer.train_epoch(dataset.x_train[order], dataset.y_train[order])
        rows.append(dict(epoch=epoch + 1, train_accuracy=stats["correct"] / stats["samples"],
                         **firing.statistics_columns(stats["firing"])))
    return rows


def compute(quick=True, log=None):
    """Per-epoch, per-layer statistics as arrays ``(E, L)`` (a dict of nested lists)."""
    if log is not None:
        columns = read_log(log)
        rows = [{name: values[i] for name, values in columns.items()}
                for i in range(len(columns["epoch"]))]
        source = f"log {Path(log).parent.name}/{Path(log).name}"
        if not firing.statistics_from_columns(rows[0]):
            raise ValueError(f"{log} has no per-layer firing columns (forward_rate_0 ...); "
                             f"run without --log to train and measure them")
    else:
        config = SPIDEConfig(**(QUICK if quick else FULL))
        rows = train_statistics(config, load_dataset("digits"))
        source = f"reference training of {'-'.join(map(str, config.hidden_sizes))} on digits"
    layers = [firing.statistics_from_columns(row) for row in rows]
    data = {"epoch": [row["epoch"] for row in rows], "source": source,
            "train_accuracy": [row.get("train_accuracy") for row in rows]}
    for name in ("forward_rate", "backward_rate", "partial", "silent", "saturated"):
        data[name] = np.array([[getattr(s, name) for s in epoch] for epoch in layers]).tolist()
    return data


def draw(data):
    """Rates of both stages and accuracy (top row); neuron states of each layer (bottom row)."""
    n_layers = len(data["forward_rate"][0])
    columns = max(3, n_layers)
    figure, axes = plotting.new_figure(columns, 2, width=3.6, height=3.0)
    plotting.plot_layer_rates(data["epoch"], data["forward_rate"], ax=axes[0],
                              title="Forward stage")
    plotting.plot_layer_rates(data["epoch"], data["backward_rate"], ax=axes[1],
                              ylabel="ternary rate (spikes / couple / step)",
                              title="Backward stage (either sign)")
    if None not in data["train_accuracy"]:
        plotting.plot_accuracy(data["epoch"], {"train": data["train_accuracy"]}, ax=axes[2],
                               title="Training accuracy")
    else:
        axes[2].set_visible(False)
    shares = np.asarray([data["partial"], data["silent"], data["saturated"]])
    for layer in range(n_layers):
        plotting.plot_neuron_shares(data["epoch"], *shares[:, :, layer], ax=axes[columns + layer],
                                    legend=layer == 0, title=f"Layer {layer}: neuron states")
    for unused in [*axes[3:columns], *axes[columns + n_layers:]]:
        unused.set_visible(False)
    figure.suptitle(f"Firing over training ({data['source']})", fontsize=11)
    return figure


def make_figure(out_dir, quick=True, data=None, log=None):
    """Compute (unless ``data`` is given), draw and save; returns the PNG path."""
    data = compute(quick, log) if data is None else data
    return plotting.render_figure(draw, data, f"{out_dir}/{NAME}.png")


def main(argv=None):
    args = figure_arguments(__doc__, argv, lambda parser: parser.add_argument(
        "--log", default=None, help="log.tsv with per-layer firing columns"))
    print(make_figure(args.out, quick=not args.full, log=args.log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
