"""Figure 2: beta from ternary spikes against the exact adjoint, and its error against T_b.

A three-layer feedback network (120-100-80 neurons, feedback from the last
layer to the first) runs its forward stage on digits; the readout's gradient current
``g = (S/B) W_c^T (p - y)`` then drives the ternary couples for ``T_b`` steps. Their signed rates
``beta`` are compared with the exact solution of ``beta = g + J^T beta`` for the network's own
forward masks (so that only the backward stage's spike approximation is measured).

Usage: ``python figures/fig2_beta.py [--out DIR] [--full]``
"""
import sys

import numpy as np

from spide_brian import exact, plotting
from spide_brian import reference as ref
from spide_brian.config import SPIDEConfig
from spide_brian.datasets import load_dataset
from spide_brian.figures import figure_arguments
from spide_brian.parameters import init_parameters

NAME = "fig2_beta"
QUICK = dict(sizes=(120, 100, 80), samples=64, steps_back=[25, 50, 100, 200, 400],
             scatter_steps=100, scatter_samples=8)
FULL = dict(sizes=(120, 100, 80), samples=360, steps_back=[25, 50, 100, 200, 400, 800, 1600],
            scatter_steps=250, scatter_samples=32)


def _relative_error(estimate, solution):
    return float(np.linalg.norm(estimate - solution) / np.linalg.norm(solution))


def compute(quick=True, seed=0):
    """Scatter values per layer and relative errors per layer and reset (a dict of lists)."""
    size = QUICK if quick else FULL
    dataset = load_dataset("digits")
    x, labels = dataset.x_test[:size["samples"]], dataset.y_test[:size["samples"]]
    config = SPIDEConfig(hidden_sizes=size["sizes"], seed=seed)
    params = init_parameters(config, dataset.n_inputs, dataset.n_classes)
    forward = ref.forward(params, config, x)
    kappa = config.scale_factor / config.batch_size
    g = ref.readout(params, forward.rates[-1], labels, kappa).gradient_current
    solution = exact.adjoint(params, config, forward.masks, g)
    layers = range(config.n_layers)
    data = dict(sizes=list(size["sizes"]), samples=size["samples"], kappa=kappa,
                steps_back=size["steps_back"], scatter_steps=size["scatter_steps"],
                errors={f"layer {l}": [] for l in layers}, errors_standard=[],
                errors_modified=[])
    for steps in size["steps_back"]:
        for reset in ("modified", "standard"):
            variant = config.replace(time_step_back=steps, reset=reset)
            beta = ref.backward(params, variant, forward.masks, g).beta
            whole = _relative_error(np.concatenate([b.ravel() for b in beta]),
                                    np.concatenate([s.ravel() for s in solution]))
            data[f"errors_{reset}"].append(whole)
            if reset == "modified":
                for layer in layers:
                    data["errors"][f"layer {layer}"].append(
                        _relative_error(beta[layer], solution[layer]))
    variant = config.replace(time_step_back=size["scatter_steps"])
    beta = ref.backward(params, variant, forward.masks, g).beta
    shown = slice(0, size["scatter_samples"])
    open_gate = [forward.masks[l][shown] for l in layers]
    data["scatter_exact"] = [solution[l][shown][open_gate[l]] for l in layers]
    data["scatter_spikes"] = [beta[l][shown][open_gate[l]] for l in layers]
    return data


def draw(data):
    """Left: scatter per layer at one T_b; right: relative error against T_b."""
    figure, (left, right) = plotting.new_figure(2, width=4.4, height=3.8)
    plotting.plot_beta_scatter(data["scatter_exact"], data["scatter_spikes"], ax=left,
                               labels=[f"layer {l}" for l in range(len(data["sizes"]))],
                               title=rf"$\beta$ at $T_b$ = {data['scatter_steps']} "
                                     "(modified reset)")
    errors = {f"{name} (modified)": values for name, values in data["errors"].items()}
    errors["modified reset, all layers"] = data["errors_modified"]
    errors["standard reset, all layers"] = data["errors_standard"]
    plotting.plot_error_vs_steps(data["steps_back"], errors, ax=right,
                                 xlabel=r"backward time steps $T_b$",
                                 ylabel=r"$\|\beta - \beta^*\|_2 / \|\beta^*\|_2$",
                                 title=r"Error of $\beta$ against $T_b$")
    sizes = "-".join(map(str, data["sizes"]))
    figure.suptitle(f"Ternary spikes solve the adjoint: {sizes} feedback network, "
                    f"{data['samples']} digits", fontsize=11)
    return figure


def make_figure(out_dir, quick=True, data=None):
    """Compute (unless ``data`` is given), draw and save; returns the PNG path."""
    data = compute(quick) if data is None else data
    return plotting.render_figure(draw, data, f"{out_dir}/{NAME}.png")


def main(argv=None):
    args = figure_arguments(__doc__, argv)
    print(make_figure(args.out, quick=not args.full))
    return 0


if __name__ == "__main__":
    sys.exit(main())
