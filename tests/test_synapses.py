"""Exponential current synapses: the synaptic current's dynamics, the unchanged equilibrium,
the Brian2 model against the reference (with refractoriness and dropout), and the flags."""
import math
import sys

import numpy as np
import pytest

from spide_brian import exact
from spide_brian import reference as ref
from spide_brian.brian_backend import BrianTrainer
from spide_brian.checkpoint import load_checkpoint
from spide_brian.cli import main
from spide_brian.config import ConfigError, SPIDEConfig
from spide_brian.training import ReferenceTrainer

from conftest import make_network
from test_brian_model import (STRUCTURES, assert_matches_reference,
                              assert_trainers_agree_over_epochs, make_case, run_runtime)
from test_dropout import dropout_case, needs_direct_route

SMALL = ["--backend", "reference", "--limit", "96", "--hidden-sizes", "20", "--batch-size", "16",
         "--epochs", "1", "--quiet"]


def test_one_spike_becomes_a_decaying_current_of_unit_charge():
    """Layer 0 fires once (at step 0, then is silenced); layer 1 receives the current
    w (1 - lambda_s) lambda_s^k from the next step on, summing to w."""
    config = SPIDEConfig(hidden_sizes=(1, 1), feedback=False, time_step=60, timing="brian",
                         synapse="exponential", synapse_leak=0.8, vth=1e9)
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


@pytest.mark.parametrize("given,message", [
    (dict(synapse="exponential"), "synapse_leak must lie in (0, 1) for exponential synapses"),
    (dict(synapse="exponential", synapse_leak=1.0), "synapse_leak must lie in (0, 1)"),
    (dict(synapse_leak=0.5), "synapse_leak 0.5 needs synapse 'exponential'"),
    (dict(synapse="alpha"), "synapse must be one of delta, exponential"),
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
    assert main(["train", *SMALL, "--out", str(tmp_path / "run"), *flags]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
