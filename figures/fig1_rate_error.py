"""Figure 1: rate approximation error against the number of time steps, modified vs standard reset.

Forward: mean absolute difference between the spiking rates ``a = (#spikes)/T`` and the exact
clamp equilibrium ``a*`` of a single-layer feedback network on digits. Backward: relative L2
error of ``beta`` from ternary spikes against the exact adjoint ``(I - J^T)^-1 g``, both with the
network's own forward masks, for the readout's gradient current ``g = (S/B) W_c^T (p - y)``.
The modified reset (threshold ``V_th``, subtract ``2 V_th``) rounds where the standard reset
floors, so it halves the error (docs/method.md M1).

Usage: ``python figures/fig1_rate_error.py [--out DIR] [--full]``
"""
import sys

import numpy as np

from spide_brian import exact, plotting
from spide_brian import reference as ref
from spide_brian.config import SPIDEConfig
from spide_brian.datasets import load_dataset
from spide_brian.figures import figure_arguments
from spide_brian.parameters import init_parameters

NAME = "fig1_rate_error"
QUICK = dict(neurons=200, samples=100, steps=[5, 10, 20, 30, 50, 100, 200],
             steps_back=[25, 50, 100, 200, 400])
FULL = dict(neurons=400, samples=360, steps=[5, 10, 20, 30, 50, 100, 200, 300, 500],
            steps_back=[25, 50, 100, 200, 400, 800])
RESETS = ("modified", "standard")


def compute(quick=True, seed=0):
    """Forward and backward errors per reset and number of steps (a dict of lists)."""
    size = QUICK if quick else FULL
    dataset = load_dataset("digits")
    x, labels = dataset.x_test[:size["samples"]], dataset.y_test[:size["samples"]]
    config = SPIDEConfig(hidden_sizes=(size["neurons"],), seed=seed)
    params = init_parameters(config, dataset.n_inputs, dataset.n_classes)
    fixed_point = exact.equilibrium(params, config, x).rates[0]
    forward = ref.forward(params, config, x)
    kappa = config.scale_factor / config.batch_size
    g = ref.readout(params, forward.rates[-1], labels, kappa).gradient_current
    adjoint = exact.adjoint(params, config, forward.masks, g)[0]
    data = dict(steps=size["steps"], steps_back=size["steps_back"], neurons=size["neurons"],
                samples=size["samples"], kappa=kappa, forward={}, backward={})
    for reset in RESETS:
        variant = config.replace(reset=reset)
        data["forward"][reset] = [
            float(np.abs(ref.forward(params, variant.replace(time_step=steps), x).rates[0]
                         - fixed_point).mean()) for steps in size["steps"]]
        data["backward"][reset] = [
            float(np.linalg.norm(ref.backward(params, variant.replace(time_step_back=steps),
                                              forward.masks, g).beta[0] - adjoint)
                  / np.linalg.norm(adjoint)) for steps in size["steps_back"]]
    return data


def draw(data):
    """The two panels: forward and backward error against the number of steps."""
    figure, (left, right) = plotting.new_figure(2)
    steps = np.asarray(data["steps"], dtype=float)
    plotting.plot_error_vs_steps(
        steps, {f"{reset} reset": data["forward"][reset] for reset in RESETS}, ax=left,
        xlabel="forward time steps T", ylabel=r"mean $|a_T - a^*|$ (spikes / step)",
        title="Forward rates vs equilibrium", bound=("rounding bound 1/(2T)", 1 / (2 * steps)))
    plotting.plot_error_vs_steps(
        data["steps_back"], {f"{reset} reset": data["backward"][reset] for reset in RESETS},
        ax=right, xlabel=r"backward time steps $T_b$",
        ylabel=r"$\|\beta - \beta^*\|_2 / \|\beta^*\|_2$",
        title="Backward ternary rates vs adjoint")
    figure.suptitle(f"Rate approximation error, {data['neurons']} IF neurons with feedback, "
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
