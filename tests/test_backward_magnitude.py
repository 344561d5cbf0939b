"""The backward spike magnitude ``M = 2 V_th^b`` and the feedback ball on entry.

* ``beta`` of :func:`spide_brian.reference.backward` solves the adjoint system
  (:func:`spide_brian.exact.adjoint`) for every ``V_th^b``: a couple's spike ``s^b = +-M`` moves
  its membrane by ``M``, is counted into ``beta`` as ``M`` and reaches the previous layer as
  ``M`` through the transposed weights. The forward masks are given to both, so the
  comparison isolates the backward solve.
* The Brian2 model (numpy row and the GeNN replay route on the numpy target) equals the
  reference at ``V_th^b`` other than 0.5.
* A feedback weight outside its Frobenius ball is projected before the first mini-batch by
  both trainers, which then agree.
"""
import numpy as np
import pytest
from brian2 import Network, prefs

from spide_brian import reference as ref
from spide_brian.brian_backend import BrianTrainer
from spide_brian.config import SPIDEConfig
from spide_brian.exact import adjoint
from spide_brian.network import SPIDENetwork
from spide_brian.parameters import init_parameters, prepare_parameters, project_feedback
from spide_brian.schedule import SampleTables
from spide_brian.training import ReferenceTrainer

from test_brian_genn import genn_rules_on_numpy, run_replay_runtime
from test_brian_model import (N_CLASSES, N_INPUTS, STRUCTURES, assert_matches_reference,
                              make_case, reference_training, run_runtime)

#: Strong feedback (spectral radius of W_fb^T / V about 0.5) and a long backward stage.
FEEDBACK_NORM, STEPS_BACK, HIDDEN = 7.0, 1000, 50


def strong_feedback_case(vth_back, leaky, reset):
    """Forward masks and a gradient current of a 50-neuron feedback net; ``|beta*| < 0.32``,
    below the saturation ``|beta| <= M`` of the smallest magnitude tested (``M = 0.5``)."""
    config = SPIDEConfig(hidden_sizes=(HIDDEN,), time_step=30, time_step_back=STEPS_BACK,
                         vth_back=vth_back, leaky=leaky, reset=reset,
                         feedback_norm=FEEDBACK_NORM)
    rng = np.random.default_rng(0)
    params = init_parameters(config, 10, 4, seed=0)
    weight = rng.normal(size=params["feedback_weight"].shape)
    params["feedback_weight"] = weight * (FEEDBACK_NORM / np.linalg.norm(weight))
    masks = ref.forward(params, config, rng.uniform(0.0, 1.0, (8, 10))).masks
    gradient_current = rng.normal(0.0, 0.12, (8, HIDDEN))
    return config, params, masks, gradient_current


# IF, and LIF with lambda = 0.998: the leak-weighted sum of a couple's spikes equals the
# leak-weighted sum of its input minus its last membrane, so beta solves the adjoint system
# up to about M / rate_normaliser (1/432 of M here, T_b = 1000); a shorter leak window
# (e.g. 0.95, a normaliser of 20) leaves an error of several per cent of M, most with the
# standard reset, whose residue keeps the sign of the input.
@pytest.mark.parametrize("reset", ["modified", "standard"])
@pytest.mark.parametrize("leaky", [1.0, 0.998])
@pytest.mark.parametrize("vth_back", [0.25, 0.5, 1.0])
def test_beta_solves_the_adjoint_for_every_magnitude(vth_back, leaky, reset):
    config, params, masks, g = strong_feedback_case(vth_back, leaky, reset)
    beta = ref.backward(params, config, masks, g).beta[0]
    exact = adjoint(params, config, masks, g)[0]
    assert np.abs(exact).max() < 0.7 * config.reset_amount_back
    ratio = np.linalg.norm(beta) / np.linalg.norm(exact)
    cosine = np.sum(beta * exact) / (np.linalg.norm(beta) * np.linalg.norm(exact))
    assert abs(ratio - 1.0) <= 0.05, f"|beta|/|beta*| = {ratio:.3f}"
    assert cosine >= 0.99, f"cos(beta, beta*) = {cosine:.4f}"


def test_counts_stay_unit_counts():
    """Spike counts count spikes, whatever their magnitude: with one layer and no feedback,
    a larger M gives proportionally fewer spikes but the same beta (IF)."""
    config, params, masks, g = strong_feedback_case(0.25, 1.0, "modified")
    config = config.replace(feedback=False)
    params = {k: v for k, v in params.items() if k != "feedback_weight"}
    small = ref.backward(params, config, masks, g, record=True)
    large = ref.backward(params, config.replace(vth_back=1.0), masks, g, record=True)
    for result, magnitude in ((small, 0.5), (large, 2.0)):
        assert set(np.unique(result.spikes[0])) <= {-1, 0, 1}
        np.testing.assert_array_equal(result.signed_counts[0], result.spikes[0].sum(axis=0))
        np.testing.assert_array_equal(result.spike_counts[0],
                                      np.abs(result.spikes[0]).sum(axis=0))
        np.testing.assert_allclose(result.beta[0],
                                   magnitude * result.signed_counts[0] / STEPS_BACK,
                                   rtol=1e-12, atol=1e-15)
    assert small.spike_counts[0].sum() > 3 * large.spike_counts[0].sum()
    np.testing.assert_allclose(small.beta[0], large.beta[0], atol=2.0 / STEPS_BACK)


def test_defaults_unchanged_bitwise():
    """At M = 1 and V = 2 the gain M/V = 0.5 divides by 2 exactly: beta is the mean of the
    unit spikes."""
    config, params, masks, g = strong_feedback_case(0.5, 1.0, "modified")
    result = ref.backward(params, config, masks, g)
    assert ref.backward_gain(config) == 0.5
    np.testing.assert_array_equal(result.beta[0], result.signed_counts[0] / STEPS_BACK)


def _magnitude_case(vth_back):
    """The three-layer chain (IF), two whole mini-batches: the last slot holds a sample."""
    config, params, x, y = make_case(STRUCTURES["chain"], 1.0, "modified")
    samples = 2 * config.batch_size
    return config.replace(vth_back=vth_back), params, x[:samples], y[:samples]


def _assert_beta_has_magnitude(model, config, n_samples):
    """IF: the beta of the last sample (left in the groups) is M times its signed unit count
    over T_b."""
    records = model.per_sample(n_samples)
    spiked = False
    for layer, group in enumerate(model.layers):
        signed = records["backward_signed"][layer][-1]
        spiked = spiked or signed.any()
        np.testing.assert_allclose(
            group.beta[:], config.reset_amount_back * signed / config.time_step_back,
            rtol=1e-12, atol=1e-15)
    assert spiked


@pytest.mark.parametrize("vth_back", [0.25, 1.0])
@pytest.mark.parametrize("route", ["numpy", "genn_rules"])
def test_brian_model_matches_reference_at_other_magnitudes(vth_back, route):
    """Counts identical, weights and buffers to rtol 1e-9, for the numpy row and the GeNN
    replay route (GeNN's capabilities on the numpy target)."""
    config, params, x, y = _magnitude_case(vth_back)
    if route == "numpy":
        model = run_runtime(config, params, x, y, capacity=len(x))
        assert model.batch_dt is not None
    else:
        model = run_replay_runtime(config, params, x, y, genn_rules_on_numpy())
    trained, buffers = model.read_parameters()
    assert_matches_reference(config, params, x, y, model.per_sample(len(x)), trained, buffers)
    assert all(v == 0.0 for v in model.copy_mismatch().values())
    _assert_beta_has_magnitude(model, config, len(x))


def test_constants_of_another_magnitude():
    """A model built for V_th^b = 0.5 runs V_th^b = 1 with the constants of
    ``constant_items`` (as run_args reuse a compiled program): M and M/V reach every group."""
    config, params, x, y = _magnitude_case(1.0)
    prefs.codegen.target = "numpy"
    tables = SampleTables.build(x, y, len(x), config)
    model = SPIDENetwork(config.replace(vth_back=0.5), N_INPUTS, N_CLASSES, len(x),
                         tables=tables)
    model.assign(params)
    constants = model.constant_items(config)
    assert sorted({value for _, name, value in constants if name == "back_gain"}) == [1.0]
    for group, name, value in constants:
        getattr(group, name)[:] = value
    Network(*model.objects).run(model.run_duration, namespace={})
    trained, buffers = model.read_parameters()
    assert_matches_reference(config, params, x, y, model.per_sample(len(x)), trained, buffers)


# -- the feedback weight on entry -------------------------------------------------------------
def _outside_ball_case():
    config, params, x, y = make_case(STRUCTURES["one_layer"], 1.0, "modified")
    params["feedback_weight"] = params["feedback_weight"] * (
        2.5 * config.feedback_norm / np.linalg.norm(params["feedback_weight"]))
    return config, params, x, y


def test_prepare_parameters_projects_the_feedback():
    config, params, _, _ = _outside_ball_case()
    prepared = prepare_parameters(params, config)
    np.testing.assert_array_equal(prepared["feedback_weight"],
                                  project_feedback(params["feedback_weight"],
                                                   config.feedback_norm))
    assert np.linalg.norm(params["feedback_weight"]) > 2 * config.feedback_norm  # a copy
    inside = prepare_parameters(prepared, config)
    np.testing.assert_array_equal(inside["feedback_weight"], prepared["feedback_weight"])
    with pytest.raises(ValueError, match="missing"):
        prepare_parameters({k: v for k, v in params.items() if k != "input_weight"}, config)


def test_trainers_agree_on_a_feedback_weight_outside_the_ball():
    """Both trainers start from the projected weight: identical counts, equal weights."""
    config, params, x, y = _outside_ball_case()
    reference_trainer = ReferenceTrainer(config, params)
    brian_trainer = BrianTrainer(config, params, device="numpy")
    entry = {name: trainer.params["feedback_weight"].copy()
             for name, trainer in (("reference", reference_trainer), ("brian", brian_trainer))}
    reference_stats = reference_trainer.train_epoch(x, y)
    brian_stats = brian_trainer.train_epoch(x, y)
    for key in ("forward_spikes", "backward_spikes"):
        assert brian_stats[key] == reference_stats[key]
    projected = dict(params, feedback_weight=project_feedback(params["feedback_weight"],
                                                              config.feedback_norm))
    _, _, forward, backward = reference_training(config, projected, x, y)
    np.testing.assert_array_equal(brian_trainer.last_records["forward_counts"][0], forward[0])
    np.testing.assert_array_equal(brian_trainer.last_records["backward_signed"][0], backward[0])
    for name, value in reference_trainer.params.items():
        np.testing.assert_allclose(brian_trainer.params[name], value, rtol=1e-9,
                                   atol=1e-12 * np.abs(value).max())
    for weight in entry.values():
        np.testing.assert_array_equal(weight, projected["feedback_weight"])
