"""The refractory period and the slope gate: the reference neuron and its rate model, the exact
implicit gradient with the refractory transfer function, the couples' slope-scaled input,
the Brian2 model against the reference, and the command-line flags."""
import json
import sys

import numpy as np
import pytest

from spide_brian import exact, transfer
from spide_brian import reference as ref
from spide_brian.checkpoint import load_checkpoint
from spide_brian.cli import main
from spide_brian.config import ConfigError, SPIDEConfig
from spide_brian.parameters import init_parameters

from conftest import SMALL_TRAIN, assert_train_refused, make_network
from test_brian_model import STRUCTURES, assert_matches_reference, make_case, run_runtime
from test_reference import check_implicit_gradient, spike_vs_exact_cosine

SMALL = SMALL_TRAIN


def _single_neuron(refractory, steps=3000):
    config = SPIDEConfig(hidden_sizes=(1,), feedback=False, time_step=steps,
                         refractory_steps=refractory)
    params = init_parameters(config, n_inputs=1, n_classes=2)
    params["input_weight"][:] = 1.0
    params["bias_0"][:] = 0.0
    return config, params


@pytest.mark.parametrize("refractory", [0, 1, 2, 5])
def test_rate_follows_the_refractory_transfer_function(refractory):
    """A constant input z V gives the rate sigma(z) / (1 + R sigma(z)) to within 1/T."""
    config, params = _single_neuron(refractory)
    z = np.linspace(0.0, 1.6, 17)
    forward = ref.forward(params, config, (z * config.reset_amount)[:, None])
    rates = forward.rates[0][:, 0]
    np.testing.assert_allclose(rates, transfer.steady_rate(z, config), atol=2.0 / config.time_step)
    assert forward.counts[0].max() == config.count_max
    # saturated neurons (z >= 1) sit at the most spikes and the gate closes there
    np.testing.assert_array_equal(forward.masks[0][:, 0], (z > 0) & (z < 1))


def test_refractory_neuron_holds_its_membrane_and_loses_its_input():
    """R = 2 with a large input: spikes at steps 0, 3, 6, ...; the held steps add nothing, so
    the membrane after each spike is the same."""
    config, params = _single_neuron(2, steps=10)
    forward = ref.forward(params, config, np.array([[5.0]]), record=True)
    np.testing.assert_array_equal(np.flatnonzero(forward.spikes[0][:, 0, 0]), [0, 3, 6, 9])
    assert config.count_max == 4 and forward.counts[0][0, 0] == 4


def test_no_refractory_period_and_binary_gate_leave_the_model_unchanged(rng):
    config, params = make_network((30, 20))
    x = rng.uniform(0, 1, (6, 50))
    g = rng.normal(0, 0.1, (6, 20))
    plain = ref.forward_backward(params, config, x, g)
    # the slope gate with R = 0 scales the couples' input by exactly 1
    sloped = ref.forward_backward(params, config.replace(gate="slope"), x, g)
    assert all(np.all(s == 1.0) for s in sloped.forward.slopes)
    for a, b in zip(plain.backward.beta, sloped.backward.beta):
        np.testing.assert_array_equal(a, b)
    refractory = ref.forward_backward(params, config.replace(refractory_steps=1), x, g)
    assert any(not np.array_equal(a, b) for a, b in
               zip(plain.forward.counts, refractory.forward.counts))


def test_implicit_gradient_with_refractory_passes_finite_difference_check():
    equilibrium = check_implicit_gradient(refractory_steps=2)["_equilibrium"]
    assert any(np.any((s > 0) & (s < 1)) for s in equilibrium.slopes)


def test_slope_gate_couples_solve_the_adjoint_of_the_refractory_network(rng):
    """With the slope gate, beta approaches the adjoint with m = gate (1 - R a)^2 of the
    network's own rates (to the spike resolution of T_b)."""
    config, params = make_network((40,), refractory_steps=2, gate="slope", time_step=60,
                                  time_step_back=800)
    x = rng.uniform(0, 1, (4, 50))
    g = rng.normal(0, 0.1, (4, 40))
    forward = ref.forward(params, config, x)
    slopes = [m * s for m, s in zip(forward.masks, forward.slopes)]
    assert np.any((slopes[0] > 0) & (slopes[0] < 1))
    solution = exact.adjoint(params, config, slopes, g)[0]
    beta = ref.backward(params, config, forward.masks, g, slopes=forward.slopes).beta[0]
    assert np.max(np.abs(beta - solution)) < 3.0 / config.time_step_back
    binary = ref.backward(params, config.replace(gate="binary"), forward.masks, g).beta[0]
    assert np.linalg.norm(binary - solution) > 5 * np.linalg.norm(beta - solution)


def test_backward_with_the_slope_gate_needs_the_slopes(rng):
    config, params = make_network((10,), refractory_steps=1, gate="slope")
    with pytest.raises(ValueError, match="pass slopes=ForwardResult.slopes"):
        ref.backward(params, config, [np.ones((2, 10), bool)], np.zeros((2, 10)))


def test_slope_gate_restores_the_gradient_alignment_under_refractoriness():
    """The measured effect (docs/biophysics.md B3): with R = 2 the binary gate's spike
    gradient drifts from the exact implicit gradient; the slope gate brings it back."""
    cosines = {gate: spike_vs_exact_cosine((100,), 0, time_step=60, time_step_back=250,
                                           refractory_steps=2, gate=gate)
               for gate in ("binary", "slope")}
    print(f"cosine to the exact gradient, R = 2: {cosines}")
    assert cosines["slope"] > 0.95 and cosines["slope"] > cosines["binary"] + 0.03


@pytest.mark.parametrize("structure", sorted(STRUCTURES))
@pytest.mark.parametrize("leaky,gate", [(1.0, "binary"), (0.9, "slope")])
def test_runtime_refractory_matches_reference(structure, leaky, gate):
    config, params, x, y = make_case(STRUCTURES[structure], leaky, "modified")
    config = config.replace(refractory_steps=2, gate=gate)
    model = run_runtime(config, params, x, y)
    trained, buffers = model.read_parameters()
    records = model.per_sample(len(x))
    assert_matches_reference(config, params, x, y, records, trained, buffers)
    # the case reaches the refractory cap, which the plain neuron would exceed
    assert max(int(c.max()) for c in records["forward_counts"]) == config.count_max < \
        config.time_step


@pytest.mark.parametrize("given,message", [
    (dict(refractory_steps=-1), "refractory_steps must lie in [0, time_step)"),
    (dict(refractory_steps=30), "refractory_steps must lie in [0, time_step) = [0, 30)"),
    (dict(gate="smooth"), "gate must be one of binary, slope"),
])
def test_invalid_refractory_and_gate_settings_are_refused(given, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")):
        SPIDEConfig(**given)


# Brian2's convention: the period counts the spike's step, R = refractory/dt - 1
@pytest.mark.parametrize("flags,steps", [(["--refractory", "3ms"], 2),
                                         (["--refractory", "1.5ms", "--dt", "0.5ms"], 2),
                                         (["--refractory", "1ms"], 0),
                                         (["--refractory", "0ms"], 0),
                                         (["--refractory-steps", "3"], 3)])
def test_refractory_flag_sets_the_steps(tmp_path, flags, steps):
    out = tmp_path / "run"
    summary = tmp_path / "summary.json"
    assert main(["train", *SMALL, "--out", str(out), "--json", str(summary), "--gate", "slope",
                 *flags]) == 0
    checkpoint = load_checkpoint(out)
    assert checkpoint["config"].refractory_steps == steps
    assert checkpoint["config"].gate == "slope"
    assert json.loads(summary.read_text())["config"]["refractory_steps"] == steps


@pytest.mark.parametrize("flags,message", [
    (["--refractory", "1.5ms"], "--refractory 1.5 ms is not a whole number of steps"),
    (["--refractory", "2mV"], "--refractory must be a time"),
    (["--refractory", "2ms", "--refractory-steps", "2"], "--refractory sets --refractory-steps"),
    (["--refractory", "41ms"], "--refractory-steps must lie in [0, time_step) = [0, 30)"),
])
def test_bad_refractory_flags_are_one_line_errors(tmp_path, capsys, flags, message):
    assert_train_refused(tmp_path, capsys, [*SMALL, *flags], message)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
