"""Exponential current synapses and conductance synapses: their dynamics, the unchanged
equilibrium of the former, the Brian2 model against the reference (with refractoriness and
dropout), the device refusal of conductances on GeNN, and the flags."""
import math
import sys

import numpy as np
import pytest

from spide_brian import exact, transfer
from spide_brian import reference as ref
from spide_brian.brian_backend import BrianTrainer
from spide_brian.checkpoint import load_checkpoint
from spide_brian.cli import main
from spide_brian.config import ConfigError, SPIDEConfig
from spide_brian.devices import capabilities
from spide_brian.network import SPIDENetwork
from spide_brian.topology import Topology
from spide_brian.training import ReferenceTrainer

from conftest import SMALL_TRAIN, assert_train_refused, make_network
from test_brian_model import (STRUCTURES, assert_matches_reference,
                              assert_trainers_agree_over_epochs, make_case, run_runtime)
from test_dropout import dropout_case, needs_direct_route
from test_reference import check_implicit_gradient

SMALL = SMALL_TRAIN


def test_one_spike_becomes_a_decaying_current_of_unit_charge():
    """A summed input of 2 at one step becomes the currents 2 (1 - lambda_s) lambda_s^k,
    summing to 2."""
    config = SPIDEConfig(synapse="exponential", synapse_leak=0.8)
    synapse = ref.ExponentialSynapse(config)
    currents = [synapse(2.0)] + [synapse(0.0) for _ in range(200)]
    np.testing.assert_allclose(currents[:4], 2.0 * 0.2 * 0.8 ** np.arange(4), rtol=1e-15)
    assert sum(currents) == pytest.approx(2.0, rel=1e-12)


def test_delta_and_exponential_synapses_share_the_equilibrium():
    """The synapse filters the currents but keeps their charge: over a long forward phase
    the rates of a feedback network approach the same exact fixed point."""
    config, params = make_network((30, 20), time_step=3000, timing="brian")
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (5, 50))
    truth = exact.equilibrium(params, config, x).rates
    for synapse, leak in (("delta", 0.0), ("exponential", 0.9)):
        rates = ref.forward(params, config.replace(synapse=synapse, synapse_leak=leak), x).rates
        error = max(float(np.max(np.abs(a - b))) for a, b in zip(rates, truth))
        assert error < 0.02, synapse


def test_exponential_synapses_slow_the_settling_and_change_the_spikes(rng):
    config, params = make_network((30, 20), timing="brian")
    x = rng.uniform(0, 1, (6, 50))
    g = rng.normal(0, 0.1, (6, 20))
    delta = ref.forward_backward(params, config, x, g)
    slow = ref.forward_backward(params, config.replace(synapse="exponential",
                                                       synapse_leak=0.8), x, g)
    assert any(not np.array_equal(a, b) for a, b in
               zip(delta.forward.counts, slow.forward.counts))
    assert any(not np.array_equal(a, b) for a, b in
               zip(delta.backward.signed_counts, slow.backward.signed_counts))


@pytest.mark.parametrize("structure", sorted(STRUCTURES))
@pytest.mark.parametrize("leaky,refractory", [(1.0, 0), (0.9, 2)])
def test_runtime_exponential_synapses_match_reference(structure, leaky, refractory):
    config, params, x, y = make_case(STRUCTURES[structure], leaky, "modified")
    config = config.replace(synapse="exponential", synapse_leak=0.7,
                            refractory_steps=refractory)
    model = run_runtime(config, params, x, y)
    trained, buffers = model.read_parameters()
    assert_matches_reference(config, params, x, y, model.per_sample(len(x)), trained, buffers)


@needs_direct_route
def test_trainers_agree_with_exponential_synapses_and_dropout():
    config, params, x, y, _ = dropout_case("chain")
    config = config.replace(synapse="exponential", synapse_leak=0.6)
    brian = BrianTrainer(config, params, device="numpy")
    reference = ReferenceTrainer(config.replace(timing="brian"), params)
    assert_trainers_agree_over_epochs(brian, reference, x, y)


# -- conductances -------------------------------------------------------------------------------
def _conductance_layer(weights, leak=0.0):
    config = SPIDEConfig(hidden_sizes=(2,), feedback=False, synapse="conductance",
                         synapse_leak=leak, reversal_exc=4.0, reversal_inh=-1.0)
    topology = Topology.from_config(config, 2, 2)
    connection = topology.input   # any connection kind: only its propagate() is used
    synapse = ref.ConductanceSynapse(config)
    params = {connection.parameter: np.asarray(weights, dtype=float)}
    return synapse, params, connection


def test_conductances_split_the_weights_by_sign_and_feel_the_driving_force():
    weights = [[1.0, -0.5], [-2.0, 0.25]]
    synapse, params, connection = _conductance_layer(weights)
    spikes = np.array([[1.0, 1.0]])
    # at rest the current is the current-based one, W s
    at_rest = synapse.current(params, [connection], lambda c: spikes)
    np.testing.assert_allclose(at_rest, spikes @ np.array(weights).T, rtol=1e-15)
    np.testing.assert_array_equal(synapse.excitatory, [[1.0, 0.25]])
    np.testing.assert_array_equal(synapse.inhibitory, [[0.5, 2.0]])
    # near threshold (v = 2): excitation weakens by 1 - 2/4, inhibition grows by 1 + 2/1
    synapse, params, connection = _conductance_layer(weights)
    synapse.membrane = np.array([[2.0, 2.0]])
    current = synapse.current(params, [connection], lambda c: spikes)
    np.testing.assert_allclose(current, [[1.0 * 0.5 - 0.5 * 3.0, 0.25 * 0.5 - 2.0 * 3.0]])
    # a weight that changes sign moves to the other conductance
    synapse, params, connection = _conductance_layer([[-1.0, -0.5], [-2.0, 0.25]])
    synapse.current(params, [connection], lambda c: spikes)
    np.testing.assert_array_equal(synapse.excitatory, [[0.0, 0.25]])
    np.testing.assert_array_equal(synapse.inhibitory, [[1.5, 2.0]])


def test_conductances_change_the_forward_rates_and_leave_the_couples_delta(rng):
    config, params = make_network((30, 20), timing="brian")
    x = rng.uniform(0, 1, (6, 50))
    delta = ref.forward(params, config, x)
    conductance = config.replace(synapse="conductance")
    changed = ref.forward(params, conductance, x)
    assert not np.array_equal(delta.counts[1], changed.counts[1])
    # the backward stage of the same masks is the delta model's
    g = rng.normal(0, 0.1, (6, 20))
    for a, b in zip(ref.backward(params, config, changed.masks, g).beta,
                    ref.backward(params, conductance, changed.masks, g).beta):
        np.testing.assert_array_equal(a, b)


def test_conductance_rate_model_is_the_clamp_without_load_and_has_its_derivatives():
    config = SPIDEConfig(time_step=30, refractory_steps=0)
    z = np.linspace(-0.5, 1.5, 41)
    rate, by_z, by_load = transfer.conductance_rate(z, np.zeros_like(z), config)
    np.testing.assert_array_equal(rate, transfer.steady_rate(z, config))
    np.testing.assert_array_equal(by_z, transfer.slope(z, config))
    # a load lowers the rate and silences the neuron below H/2; the derivatives match
    # central differences on both pieces (bridge below one spike per window, steady above)
    z = np.array([0.012, 0.02, 0.1, 0.25, 0.5, 0.8, 0.16, 0.3])
    load = np.array([0.01, 0.02, 0.15, 0.2, 0.3, 0.1, 0.3, 0.7])
    for refractory in (0, 2):
        config = config.replace(refractory_steps=refractory)
        rate, by_z, by_load = transfer.conductance_rate(z, load, config)
        clamp = transfer.steady_rate(z, config)
        assert np.all(rate < clamp) and rate[-1] == 0.0 and np.all(rate[:-1] > 0)
        step = 1e-7
        for derivative, dz, dh in ((by_z, step, 0.0), (by_load, 0.0, step)):
            numeric = (transfer.conductance_rate(z + dz, load + dh, config)[0]
                       - transfer.conductance_rate(z - dz, load - dh, config)[0]) / (2 * step)
            np.testing.assert_allclose(derivative, numeric, rtol=1e-5, atol=1e-7)


def test_implicit_gradient_with_conductances_passes_finite_difference_check():
    grads = check_implicit_gradient(entries=6, synapse="conductance")
    assert all(np.any(h > 0) for h in grads["_equilibrium"].loads)


@pytest.mark.parametrize("sizes", [(100,), (60, 50, 40)])
def test_conductance_rate_model_predicts_the_rates_of_filtered_conductances(sizes, rng):
    """Steady conductances (tau_syn of a few steps): the rate model's equilibrium is closer
    to the simulated rates than the clamp's (docs/biophysics.md B5)."""
    config, params = make_network(sizes, synapse="conductance", synapse_leak=0.8,
                                  time_step=3000)
    x = rng.uniform(0, 1, (16, 50))
    simulated = ref.forward(params, config, x).rates
    model = exact.equilibrium(params, config, x).rates
    clamp = exact.equilibrium(params, config.replace(synapse="delta", synapse_leak=0.0),
                              x).rates
    model_error = np.mean([np.mean(np.abs(a - b)) for a, b in zip(model, simulated)])
    clamp_error = np.mean([np.mean(np.abs(a - b)) for a, b in zip(clamp, simulated)])
    print(f"mean |rate - simulated|: conductance model {model_error:.4f}, clamp {clamp_error:.4f}")
    assert model_error < 0.01 and model_error < clamp_error


@pytest.mark.parametrize("structure", sorted(STRUCTURES))
@pytest.mark.parametrize("leaky,refractory,leak", [(1.0, 0, 0.0), (0.9, 2, 0.6)])
def test_runtime_conductances_match_reference(structure, leaky, refractory, leak):
    config, params, x, y = make_case(STRUCTURES[structure], leaky, "modified")
    config = config.replace(synapse="conductance", synapse_leak=leak,
                            refractory_steps=refractory)
    model = run_runtime(config, params, x, y)
    trained, buffers = model.read_parameters()
    assert_matches_reference(config, params, x, y, model.per_sample(len(x)), trained, buffers)


def test_genn_refuses_conductances_in_one_line():
    config, _, _, _ = make_case(STRUCTURES["one_layer"], 1.0, "modified")
    with pytest.raises(ValueError, match="capability event_writes_two_targets"):
        SPIDENetwork(config.replace(synapse="conductance"), 5, 3, 9,
                     device=capabilities("genn"))


@pytest.mark.standalone
def test_standalone_trainer_with_conductances_matches_reference(tmp_path):
    config, params, x, y = make_case(STRUCTURES["one_layer"], 0.9, "modified")
    config = config.replace(synapse="conductance", synapse_leak=0.5, refractory_steps=1)
    with BrianTrainer(config, params, device="cpp_standalone",
                      build_dir=str(tmp_path / "build")) as brian:
        assert_trainers_agree_over_epochs(brian, ReferenceTrainer(config, params), x, y)


@pytest.mark.parametrize("given,message", [
    (dict(synapse="exponential"), "synapse_leak must lie in (0, 1) for exponential synapses"),
    (dict(synapse="exponential", synapse_leak=1.0), "synapse_leak must lie in (0, 1)"),
    (dict(synapse_leak=0.5), "synapse_leak 0.5 needs synapse 'exponential'"),
    (dict(synapse="alpha"), "synapse must be one of delta, exponential, conductance"),
    (dict(synapse="conductance", synapse_leak=1.0), "synapse_leak must lie in [0, 1) for "
                                                    "conductances"),
    (dict(reversal_exc=0.5), "reversal_exc must lie above the threshold 1.0"),
    (dict(reversal_inh=0.5), "reversal_inh must lie below rest (0)"),
])
def test_invalid_synapse_settings_are_refused(given, message):
    with pytest.raises(ConfigError) as error:
        SPIDEConfig(**given)
    assert message in str(error.value)


@pytest.mark.parametrize("flags,leak", [
    (["--tau-syn", "5ms"], math.exp(-1 / 5)),
    (["--tau-syn", "5ms", "--dt", "0.5ms"], math.exp(-0.5 / 5)),
    (["--synapse-leak", "0.75"], 0.75),
])
def test_tau_syn_flag_sets_the_synapse_leak(tmp_path, flags, leak):
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--out", str(out), "--synapse", "exponential", *flags]) == 0
    config = load_checkpoint(out)["config"]
    assert config.synapse == "exponential" and config.synapse_leak == leak


@pytest.mark.parametrize("flags,message", [
    (["--tau-syn", "5ms"], "--synapse-leak 0.8187307530779818 needs synapse 'exponential'"),
    (["--synapse", "exponential"],
     "synapse_leak must lie in (0, 1) for exponential synapses (exp(-dt/tau_syn), e.g. "
     "--tau-syn 5ms)"),
    (["--synapse", "exponential", "--tau-syn", "5mV"], "--tau-syn must be a time"),
    (["--synapse", "exponential", "--tau-syn=-5ms"], "--tau-syn must be a finite positive"),
])
def test_bad_synapse_flags_are_one_line_errors(tmp_path, capsys, flags, message):
    assert_train_refused(tmp_path, capsys, [*SMALL, *flags], message)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
