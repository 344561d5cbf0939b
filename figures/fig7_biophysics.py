"""Figure 7: SPIDE's gradients and accuracy when the neurons get biophysical detail.

For each detail swept over a range, two measurements on the embedded digits:

* the cosine between SPIDE's spike-based update of all parameters and the exact implicit
  gradient of that variant's own rate model (:mod:`spide_brian.exact`), at the initial
  weights on a batch of training digits;
* the test accuracy after training a feedback network with ``spide-brian train`` (numpy
  reference).

The details: the absolute refractory period ``R`` (docs/biophysics.md B3), with the 0/1 gate
and with the slope-corrected gate; the time constant ``tau_syn`` of exponential current
synapses (B4; 0 stands for delta synapses), whose rate model is the delta model's; and the
membrane time constant ``tau_m`` at ``dt = 1 ms`` (LIF leak ``exp(-dt/tau_m)``; ``inf`` is
the IF neuron), measured against the clamp model of the method; and conductance synapses
(B5) with pulse conductances (``tau_syn`` 0) and decaying ones, measured against the
conductance model's own rate model; and the number ``K`` of integration steps per SPIDE
step of a LIF neuron with ``tau_m = 20 ms`` (B9; ``K = 1`` is the SPIDE map), measured
against the clamp model to ``[0, K]``. The numbers go to ``fig7_biophysics.json``.

Usage: ``python figures/fig7_biophysics.py [--out DIR] [--full]``
"""
import json
import math
import sys
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np

from spide_brian import cli, exact, plotting
from spide_brian import reference as ref
from spide_brian.biophysics import NeuronUnits, step_decay
from spide_brian.config import SPIDEConfig
from spide_brian.datasets import load_dataset
from spide_brian.figures import figure_arguments
from spide_brian.parameters import init_parameters

from brian2.units import ms

NAME = "fig7_biophysics"
GATES = ("binary", "slope")
QUICK = dict(hidden=100, samples=64, refractory=[0, 1, 2, 4], tau_m=[math.inf, 50.0, 20.0],
             tau_syn=[0.0, 2.0, 5.0], conductance_tau_syn=[0.0, 5.0], trained_refractory=[0, 3],
             integration_steps=[1, 4], epochs=3, time_step=30, time_step_back=100)
FULL = dict(hidden=400, samples=256, refractory=[0, 1, 2, 3, 4, 6, 8],
            tau_m=[math.inf, 100.0, 50.0, 20.0, 10.0], tau_syn=[0.0, 1.0, 2.0, 5.0, 10.0],
            conductance_tau_syn=[0.0, 2.0, 5.0, 10.0], trained_refractory=[0, 1, 2, 4, 8],
            integration_steps=[1, 2, 5, 10], epochs=20, time_step=30, time_step_back=100)
#: Membrane time constant (ms) of the integration-step sweep.
INTEGRATION_TAU_M = 20.0


def _cosine(u, v):
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def gradient_cosine(config, params, x, labels):
    """Cosine between the spike-based update and the exact implicit gradient (all
    parameters, readout included)."""
    truth = exact.implicit_gradients(params, config, x, labels)
    kappa = config.scale_factor / len(labels)
    holder = {}

    def current(fwd):
        holder["readout"] = ref.readout(params, fwd.rates[-1], labels, kappa)
        return holder["readout"].gradient_current

    result = ref.forward_backward(params, config, x, current)
    spikes = dict(result.gradients, **holder["readout"].gradients)
    names = sorted(spikes)
    return _cosine(np.concatenate([spikes[k].ravel() for k in names]),
                   np.concatenate([truth[k].ravel() for k in names]))


def _leak(tau_m):
    return NeuronUnits(dt=1 * ms, tau_m=tau_m * ms).leak


def _synapse(tau_syn, kind="exponential"):
    """Config fields and train flags of ``kind`` synapses with ``tau_syn`` ms (0: delta
    current synapses, or pulse conductances)."""
    if tau_syn == 0:
        return dict(synapse="delta" if kind == "exponential" else kind, synapse_leak=0.0), \
            ([] if kind == "exponential" else ["--synapse", kind])
    return (dict(synapse=kind, synapse_leak=step_decay(tau_syn * ms, 1 * ms)),
            ["--synapse", kind, "--tau-syn", f"{tau_syn:g}ms"])


def train_accuracy(out_dir, flags, size):
    """Final test accuracy of ``spide-brian train`` on digits with extra ``flags``."""
    run = Path(out_dir) / f"{NAME}_runs" / "_".join(f.strip("-") for f in flags)
    run.mkdir(parents=True, exist_ok=True)
    summary = run / "summary.json"
    with open(run / "train.out", "w", encoding="utf-8") as output, redirect_stdout(output):
        status = cli.main(["train", "--dataset", "digits", "--backend", "reference", "--quiet",
                           "--json", str(summary),
                           "--hidden-sizes", str(size["hidden"]), "--batch-size", "32",
                           "--epochs", str(size["epochs"]),
                           "--time-step", str(size["time_step"]),
                           "--time-step-back", str(size["time_step_back"]), *flags])
    if status != 0:
        raise RuntimeError(f"training for {NAME} with {flags} failed with status {status}")
    return json.loads(summary.read_text())["test_accuracy"]


def compute(out_dir, quick=True, seed=0):
    """Cosines and accuracies of every swept point (a dict of lists)."""
    size = QUICK if quick else FULL
    dataset = load_dataset("digits")
    x, labels = dataset.x_train[:size["samples"]], dataset.y_train[:size["samples"]]
    base = SPIDEConfig(hidden_sizes=(size["hidden"],), time_step=size["time_step"],
                       time_step_back=size["time_step_back"], seed=seed)
    params = init_parameters(base, dataset.n_inputs, dataset.n_classes, seed=seed)
    data = dict(hidden=size["hidden"], samples=size["samples"], epochs=size["epochs"],
                time_step=size["time_step"], time_step_back=size["time_step_back"],
                refractory=size["refractory"], trained_refractory=size["trained_refractory"],
                tau_m_ms=["inf" if math.isinf(t) else t for t in size["tau_m"]],
                tau_syn_ms=size["tau_syn"], refractory_cosine={}, refractory_accuracy={},
                tau_m_cosine=[], tau_m_accuracy=[], tau_syn_cosine=[], tau_syn_accuracy=[],
                conductance_tau_syn_ms=size["conductance_tau_syn"], conductance_cosine=[],
                conductance_accuracy=[], integration_steps=size["integration_steps"],
                integration_tau_m_ms=INTEGRATION_TAU_M, integration_cosine=[],
                integration_accuracy=[])
    for gate in GATES:
        data["refractory_cosine"][gate] = [
            gradient_cosine(base.replace(refractory_steps=r, gate=gate), params, x, labels)
            for r in size["refractory"]]
        data["refractory_accuracy"][gate] = [
            train_accuracy(out_dir, ["--refractory-steps", str(r), "--gate", gate], size)
            for r in size["trained_refractory"]]
    for tau in size["tau_m"]:
        data["tau_m_cosine"].append(gradient_cosine(base.replace(leaky=_leak(tau)), params, x,
                                                    labels))
        data["tau_m_accuracy"].append(train_accuracy(
            out_dir, ["--membrane-tau", "inf" if math.isinf(tau) else f"{tau:g}ms"], size))
    for tau in size["tau_syn"]:
        fields, flags = _synapse(tau)
        data["tau_syn_cosine"].append(gradient_cosine(base.replace(**fields), params, x,
                                                      labels))
        data["tau_syn_accuracy"].append(train_accuracy(out_dir, flags or ["--synapse", "delta"],
                                                       size))
    for tau in size["conductance_tau_syn"]:
        fields, flags = _synapse(tau, "conductance")
        data["conductance_cosine"].append(gradient_cosine(base.replace(**fields), params, x,
                                                          labels))
        data["conductance_accuracy"].append(train_accuracy(out_dir, flags, size))
    for steps in size["integration_steps"]:
        data["integration_cosine"].append(gradient_cosine(
            base.replace(leaky=_leak(INTEGRATION_TAU_M), integration_steps=steps), params, x,
            labels))
        data["integration_accuracy"].append(train_accuracy(
            out_dir, ["--membrane-tau", f"{INTEGRATION_TAU_M:g}ms", "--integration-steps",
                      str(steps)], size))
    return data


def _tau_axis(data):
    """Positions of the tau_m points: 1/tau_m in 1/ms (0 for the IF neuron)."""
    return [0.0 if t == "inf" else 1.0 / t for t in data["tau_m_ms"]]


def draw(data):
    """Rows: refractory period (per gate), synaptic time constant, membrane time constant,
    conductances, integration steps; columns: gradient cosine, test accuracy."""
    figure, axes = plotting.new_figure(2, 5, width=4.4, height=3.0)
    plotting.plot_sweep(data["refractory"], data["refractory_cosine"], ax=axes[0],
                        xlabel="refractory period R (steps of dt)",
                        ylabel="cosine to the exact gradient",
                        title="Gradient alignment: refractoriness")
    plotting.plot_sweep(data["trained_refractory"],
                        {gate: 100 * np.array(acc) for gate, acc in
                         data["refractory_accuracy"].items()}, ax=axes[1],
                        xlabel="refractory period R (steps of dt)", ylabel="test accuracy (%)",
                        title="Accuracy: refractoriness")
    plotting.plot_sweep(data["tau_syn_ms"], {"binary": data["tau_syn_cosine"]}, ax=axes[2],
                        xlabel=r"$\tau_{syn}$ (ms), dt = 1 ms (0: delta synapses)",
                        ylabel="cosine to the exact gradient",
                        title="Gradient alignment: exponential synapses")
    plotting.plot_sweep(data["tau_syn_ms"], {"binary": 100 * np.array(data["tau_syn_accuracy"])},
                        ax=axes[3], xlabel=r"$\tau_{syn}$ (ms), dt = 1 ms (0: delta synapses)",
                        ylabel="test accuracy (%)", title="Accuracy: exponential synapses")
    positions = _tau_axis(data)
    plotting.plot_sweep(positions, {"binary": data["tau_m_cosine"]}, ax=axes[4],
                        xlabel=r"$1/\tau_m$ (1/ms), dt = 1 ms (0: IF)",
                        ylabel="cosine to the exact gradient",
                        title="Gradient alignment: membrane leak")
    plotting.plot_sweep(positions, {"binary": 100 * np.array(data["tau_m_accuracy"])},
                        ax=axes[5], xlabel=r"$1/\tau_m$ (1/ms), dt = 1 ms (0: IF)",
                        ylabel="test accuracy (%)", title="Accuracy: membrane leak")
    conductance = r"$\tau_{syn}$ of the conductances (ms), dt = 1 ms (0: pulses)"
    points = len(data["conductance_tau_syn_ms"])
    plotting.plot_sweep(data["conductance_tau_syn_ms"],
                        {"conductance": data["conductance_cosine"],
                         "current (delta)": [data["tau_syn_cosine"][0]] * points}, ax=axes[6],
                        xlabel=conductance, ylabel="cosine to the exact gradient",
                        title="Gradient alignment: conductance synapses")
    plotting.plot_sweep(data["conductance_tau_syn_ms"],
                        {"conductance": 100 * np.array(data["conductance_accuracy"]),
                         "current (delta)": [100 * data["tau_syn_accuracy"][0]] * points},
                        ax=axes[7], xlabel=conductance, ylabel="test accuracy (%)",
                        title="Accuracy: conductance synapses")
    if "integration_steps" in data:
        label = (f"integration steps K per 1 ms step (LIF, "
                 rf"$\tau_m$ = {data['integration_tau_m_ms']:g} ms)")
        plotting.plot_sweep(data["integration_steps"], {"binary": data["integration_cosine"]},
                            ax=axes[8], xlabel=label, ylabel="cosine to the exact gradient",
                            title="Gradient alignment: finer integration")
        plotting.plot_sweep(data["integration_steps"],
                            {"binary": 100 * np.array(data["integration_accuracy"])},
                            ax=axes[9], xlabel=label, ylabel="test accuracy (%)",
                            title="Accuracy: finer integration")
    figure.suptitle(f"SPIDE with biophysical detail (numpy reference; digits, F{data['hidden']}, "
                    f"{data['epochs']} epochs of training)", fontsize=11)
    return figure


def make_figure(out_dir, quick=True, data=None):
    """Compute (unless ``data`` is given), draw and save; returns the PNG path."""
    data = compute(out_dir, quick) if data is None else data
    return plotting.render_figure(draw, data, f"{out_dir}/{NAME}.png")


def main(argv=None):
    args = figure_arguments(__doc__, argv)
    print(make_figure(args.out, quick=not args.full))
    return 0


if __name__ == "__main__":
    sys.exit(main())
