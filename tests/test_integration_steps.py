"""Several integration steps per SPIDE step (``integration_steps = K``): the neuron's rate
model (the clamp to [0, K]), the couples' adjoint, the exact implicit gradient, the gradient
alignment, the Brian2 model against the reference, and the refusals."""
import numpy as np
import pytest

from spide_brian import exact, transfer
from spide_brian import reference as ref
from spide_brian.cli import main
from spide_brian.checkpoint import load_checkpoint
from spide_brian.config import ConfigError, SPIDEConfig
from spide_brian.parameters import init_parameters

from conftest import SMALL_TRAIN, make_network
from test_brian_model import (STRUCTURES, assert_matches_reference, make_case,
                              make_frame_case, run_runtime)
from test_reference import check_implicit_gradient, spike_vs_exact_cosine


def _single_neuron(steps, integration_steps, leaky=1.0, refractory=0):
    config = SPIDEConfig(hidden_sizes=(1,), feedback=False, time_step=steps, leaky=leaky,
                         integration_steps=integration_steps, refractory_steps=refractory)
    params = init_parameters(config, n_inputs=1, n_classes=2)
    params["input_weight"][:] = 1.0
    params["bias_0"][:] = 0.0
    return config, params


def test_one_integration_step_is_the_spide_step():
    config = SPIDEConfig(leaky=0.9, synapse="exponential", synapse_leak=0.8,
                         refractory_steps=2)
    assert config.integration_steps == 1
    assert (config.forward_steps, config.backward_steps) == (30, 100)
    assert config.step_leak == 0.9 and config.synapse_step_leak == 0.8
    assert config.current_share == 1.0 and config.held_steps == 2
    assert config.count_max == 10 and config.rate_ceiling == 1.0


def test_integration_steps_divide_the_step():
    config = SPIDEConfig(leaky=0.9, time_step=5, time_step_back=7, integration_steps=4,
                         synapse="exponential", synapse_leak=0.8, refractory_steps=1)
    assert (config.forward_steps, config.backward_steps) == (20, 28)
    assert config.step_leak ** 4 == pytest.approx(0.9, rel=1e-15)
    assert config.synapse_step_leak ** 4 == pytest.approx(0.8, rel=1e-15)
    assert config.synapse_gain == pytest.approx(1.0 - 0.8 ** 0.25)
    assert config.current_share == 0.25 and config.held_steps == 4
    assert config.count_max == 4      # ceil(20 / 5)
    # constant firing of r spikes per integration step reads as a rate of K r per SPIDE step
    weighted = sum(config.step_leak ** k for k in range(20))
    assert weighted / config.rate_norm == pytest.approx(4.0, rel=1e-14)


@pytest.mark.parametrize("integration_steps", [1, 2, 4])
def test_rate_is_the_clamp_to_the_integration_steps(integration_steps):
    """A constant input z V gives z spikes per SPIDE step up to K: the ceiling rises with the
    resolution, the gate closes only at K."""
    config, params = _single_neuron(400, integration_steps)
    z = np.linspace(-0.5, 5.0, 23)
    forward = ref.forward(params, config, (z * config.reset_amount)[:, None])
    rates = forward.rates[0][:, 0]
    np.testing.assert_allclose(rates, np.clip(z, 0, integration_steps), atol=1.0 / 400)
    np.testing.assert_allclose(rates, transfer.steady_rate(z, config), atol=1.0 / 400)
    assert forward.counts[0].max() == config.count_max == 400 * integration_steps
    np.testing.assert_array_equal(forward.masks[0][:, 0], (z > 0) & (z < integration_steps))


def test_spikes_within_a_step_follow_the_current():
    """IF, input 1.5 V per SPIDE step, K = 2: each integration step deposits 0.75 V; the
    threshold V_th = V/2 is crossed at every integration step (v: 0.75 -> fire -> -0.5 ->
    0.25 -> ...), so the neuron fires several times in one SPIDE step, which one step of
    the SPIDE map cannot."""
    config, params = _single_neuron(4, 2)
    forward = ref.forward(params, config, np.array([[1.5 * config.reset_amount]]), record=True)
    spikes = forward.spikes[0][:, 0, 0]
    assert spikes.shape == (8,)
    per_step = spikes.reshape(4, 2).sum(axis=1)
    assert per_step.max() == 2 and spikes.sum() == forward.counts[0][0, 0]
    one_step = ref.forward(params, config.replace(integration_steps=1),
                           np.array([[1.5 * config.reset_amount]]), record=True)
    assert one_step.spikes[0][:, 0, 0].sum() <= 4


def test_leaky_rate_keeps_the_clamp_model():
    """LIF 0.95 per SPIDE step at K = 5: the leak-weighted rate approaches the clamp to
    [0, K] as at K = 1 (the model of the method), to the resolution of the window."""
    config, params = _single_neuron(200, 5, leaky=0.95)
    z = np.array([0.3, 0.9, 1.7, 3.2, 6.0])
    rates = ref.forward(params, config, (z * config.reset_amount)[:, None]).rates[0][:, 0]
    np.testing.assert_allclose(rates, np.clip(z, 0, 5), atol=0.06)


def test_rates_approach_the_equilibrium_with_saturation_above_one(rng):
    config, params = make_network((40,), time_step=300, integration_steps=3)
    params["bias_0"] += 1.0
    x = rng.uniform(0, 1, (6, 50))
    forward = ref.forward(params, config, x)
    equilibrium = exact.equilibrium(params, config, x)
    assert np.any(equilibrium.rates[0] > 1.0), "the case must use the room above 1"
    assert np.max(np.abs(forward.rates[0] - equilibrium.rates[0])) < 0.05


def test_couples_solve_the_adjoint(rng):
    config, params = make_network((40,), time_step=200, time_step_back=400,
                                  integration_steps=3)
    params["bias_0"] += 1.0
    x = rng.uniform(0, 1, (4, 50))
    g = rng.normal(0, 0.1, (4, 40))
    forward = ref.forward(params, config, x)
    assert np.any(forward.rates[0] > 1.0) and np.any(forward.masks[0])
    solution = exact.adjoint(params, config, forward.masks, g)[0]
    beta = ref.backward(params, config, forward.masks, g).beta[0]
    assert np.max(np.abs(beta - solution)) < 3.0 / config.time_step_back


def test_implicit_gradient_with_integration_steps_passes_finite_difference_check():
    """With K = 3 the rate model saturates at 3: the exact gradient's masks open on [0, 3]."""
    grads = check_implicit_gradient(entries=6, integration_steps=3, vth=0.1)
    assert any(np.any(r > 1.0) for r in grads["_equilibrium"].rates)


def test_spike_gradient_aligns_with_the_exact_gradient():
    cosine = spike_vs_exact_cosine((100,), 0, time_step=30, time_step_back=250,
                                   integration_steps=4)
    print(f"cosine to the exact gradient, K = 4: {cosine:.4f}")
    assert cosine > 0.97


def test_event_frames_spread_over_the_integration_steps(rng):
    """Frame k drives the K integration steps of SPIDE step k, 1/K of it in each: the same
    spikes as K copies of each frame, each divided by K, at K = 1 with the leak per
    integration step (the bias is 0, so both compute the same currents)."""
    config, params = make_network((20,), time_step=6, integration_steps=3, leaky=0.9)
    params["bias_0"][:] = 0.0
    frames = rng.integers(0, 3, (6, 5, 50)).astype(float)
    spread = ref.forward(params, config, frames, record=True)
    fine = config.replace(integration_steps=1, time_step=18, leaky=config.step_leak)
    copies = ref.forward(params, fine, np.repeat(frames, 3, axis=0) * (1.0 / 3), record=True)
    np.testing.assert_array_equal(spread.spikes[0], copies.spikes[0])
    assert spread.counts[0].sum() > 0


#: The neuron and synapse variants of the runtime check (leak, config changes).
RUNTIME_VARIANTS = {"IF": (1.0, {}), "LIF": (0.9, {}),
                    "exponential": (0.9, dict(synapse="exponential", synapse_leak=0.6)),
                    "refractory-slope": (1.0, dict(refractory_steps=1, gate="slope")),
                    "conductance": (1.0, dict(synapse="conductance", synapse_leak=0.5))}


@pytest.mark.parametrize("variant", sorted(RUNTIME_VARIANTS))
def test_runtime_with_integration_steps_matches_reference(variant):
    """The Brian2 model (numpy target), three layers with feedback, K = 3 integration steps
    per SPIDE step: the same forward and signed backward counts per sample and the same
    weights as the reference (IF, LIF, exponential synapses, refractoriness with the slope
    gate, conductances)."""
    leaky, changes = RUNTIME_VARIANTS[variant]
    config, params, x, y = make_case(STRUCTURES["chain"], leaky, "modified")
    config = config.replace(integration_steps=3, time_step=6, time_step_back=10, vth=0.3,
                            **changes)
    model = run_runtime(config, params, x, y)
    trained, buffers = model.read_parameters()
    records = model.per_sample(len(x))
    assert_matches_reference(config, params, x, y, records, trained, buffers)
    most = max(int(c.max()) for c in records["forward_counts"])
    if config.refractory_steps:
        # held for R K = 3 integration steps: at most ceil(T K / (R K + 1)) = 5 spikes
        assert most == config.count_max == 5
    else:
        # several spikes within one SPIDE step: counts above T
        assert most > config.time_step


def test_runtime_event_frames_with_integration_steps_match_reference():
    """Event frames with K = 3: the Brian2 model loads frame k at the 3 integration steps of
    SPIDE step k, and the gradient of F uses the frames' time mean, as the reference."""
    config, params, frames, y = make_frame_case(STRUCTURES["chain"], 0.9, "modified")
    config = config.replace(integration_steps=3, vth=0.3)
    model = run_runtime(config, params, frames, y)
    trained, buffers = model.read_parameters()
    assert_matches_reference(config, params, frames, y, model.per_sample(len(frames)),
                             trained, buffers)


@pytest.mark.parametrize("value", [0, -1])
def test_invalid_integration_steps_are_refused(value):
    with pytest.raises(ConfigError, match="integration_steps must be >= 1"):
        SPIDEConfig(integration_steps=value)


def test_integration_steps_flag(tmp_path):
    out = tmp_path / "run"
    assert main(["train", *SMALL_TRAIN, "--out", str(out), "--integration-steps", "3",
                 "--membrane-tau", "20ms"]) == 0
    config = load_checkpoint(out)["config"]
    assert config.integration_steps == 3
    assert config.leaky == pytest.approx(np.exp(-1 / 20))


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-v"]))
