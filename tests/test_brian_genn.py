"""The GeNN construction of the model (event-driven gradients: the replay route of spide_brian.routes).

* runtime (numpy target) with GeNN's capabilities (single clock, no synaptic run_regularly
  reading pre/post variables, no event reading the source, events applied one step after
  the spike, GeNN's order of operations within a step as the network schedule):
  the replay route reproduces the numpy reference exactly, with the criteria of
  ``test_brian_model.py``;
* ``genn_codegen``: brian2genn generates the GeNN project for training and evaluation of a
  one-layer and a three-layer feedback net (needs the brian2genn stack, not GeNN);
* with ``GENN_PATH``: GeNN's CPU-only backend trains a few mini-batches and reproduces the
  reference exactly.
"""
import dataclasses
import os

import numpy as np
import pytest
from brian2 import Network, prefs

from spide_brian.devices import CAPABILITIES, brian2_at_least, capabilities
from spide_brian.devices.genn import GeNNNotFoundError, run_on_genn
from spide_brian.network import SPIDENetwork
from spide_brian.routes import ROUTES, route_for, replay_factors
from spide_brian.schedule import SampleTables

from test_brian_model import (MODEL_VARIANTS, N_CLASSES, N_INPUTS, STRUCTURES, VARIANTS,
                              assert_matches_reference, make_case, make_frame_case,
                              reference_training, run_runtime)


def genn_rules_on_numpy(**changes):
    """GeNN's column of the capability table on the numpy target: run with GeNN's
    ``step_order`` as the network schedule, the numpy target delivers events one step after
    the spike, after that step's run_regularly operations, as GeNN does."""
    return dataclasses.replace(capabilities("genn"), name="numpy", standalone=False,
                               codegen_target="numpy", **changes)


def run_replay_runtime(config, params, x, y, caps):
    """One run of the replay route on the numpy target, the capacity being the data."""
    model = run_runtime(config, params, x, y, capacity=len(x), caps=caps)
    assert model.route is ROUTES["replay"]
    return model


#: The replay route serves GeNN, and every device on Brian2 < 2.6; GeNN needs the Brian2 2.5
#: stack, where these runtime checks run. On newer Brian2 only an emulation reaches the route:
#: there they run with SPIDE_RUN_LONG=1.
replay_stack = pytest.mark.skipif(
    brian2_at_least(2, 6) and os.environ.get("SPIDE_RUN_LONG") != "1",
    reason="the replay route runs on Brian2 < 2.6 (the GeNN stack); set SPIDE_RUN_LONG=1 to "
           "emulate it here")


def test_capability_table_selects_the_replay_route():
    assert route_for(capabilities("genn")) is ROUTES["replay"]
    assert route_for(CAPABILITIES["cpp_standalone"]) is ROUTES["direct"]
    assert replay_factors("grad = grad + beta_pre*rate_post") == ("beta_pre", "rate_post")
    with pytest.raises(ValueError):
        replay_factors("grad = grad + beta_post*rate_post")


@replay_stack
@pytest.mark.parametrize("structure", sorted(STRUCTURES))
@pytest.mark.parametrize("leaky,reset", VARIANTS)
def test_replay_route_runtime_matches_reference(structure, leaky, reset):
    config, params, x, y = make_case(STRUCTURES[structure], leaky, reset)
    model = run_replay_runtime(config, params, x, y, genn_rules_on_numpy())
    trained, buffers = model.read_parameters()
    assert_matches_reference(config, params, x, y, model.per_sample(len(x)), trained, buffers)
    assert all(v == 0.0 for v in model.copy_mismatch().values())


@replay_stack
@pytest.mark.parametrize("structure", sorted(STRUCTURES))
def test_replay_route_runtime_neuron_and_synapse_variants_match_reference(structure):
    """Refractoriness, the slope gate and exponential synapses are constants of the one
    model text, so GeNN's project (generated from that text) carries them; here the route
    GeNN runs computes them exactly."""
    for leaky, changes in MODEL_VARIANTS:
        config, params, x, y = make_case(STRUCTURES[structure], leaky, "modified")
        config = config.replace(**changes)
        model = run_replay_runtime(config, params, x, y, genn_rules_on_numpy())
        trained, buffers = model.read_parameters()
        assert_matches_reference(config, params, x, y, model.per_sample(len(x)), trained,
                                 buffers)


@replay_stack
def test_replay_route_runtime_in_float32_stays_within_rounding_of_the_reference():
    """GeNN's construction (every weight copy learns) in float_dtype 'float32': the copies
    stay bitwise equal, the spikes those of the float64 reference on this case, the weights
    within float32 rounding of its."""
    config, params, x, y = make_case(STRUCTURES["chain"], 0.9, "modified")
    model = run_replay_runtime(config.replace(float_dtype="float32"), params, x, y,
                               genn_rules_on_numpy())
    trained, _ = model.read_parameters()
    expected, _, forward, backward = reference_training(config, params, x, y)
    records = model.per_sample(len(x))
    for got, want in zip(records["forward_counts"] + records["backward_signed"],
                         forward + backward):
        np.testing.assert_array_equal(got, want)
    for name, value in expected.items():
        assert np.max(np.abs(trained[name] - value)) < 1e-5 * np.max(np.abs(value)), name
    assert all(v == 0.0 for v in model.copy_mismatch().values())
    weights = [copy.synapses.variables["w"].dtype for copies in model.copies.values()
               for copy in copies if copy.connection.kind.learns]
    assert weights and all(np.dtype(dtype) == np.float32 for dtype in weights)


#: Several integration steps per SPIDE step (docs/biophysics.md B9): a model step is an
#: integration step, so GeNN's two device steps per model step carry over unchanged.
INTEGRATION_CHANGES = dict(integration_steps=3, time_step=6, time_step_back=10, vth=0.3,
                           refractory_steps=1)


@replay_stack
def test_replay_route_runtime_with_integration_steps_matches_reference():
    config, params, x, y = make_case(STRUCTURES["chain"], 0.9, "modified")
    config = config.replace(**INTEGRATION_CHANGES)
    model = run_replay_runtime(config, params, x, y, genn_rules_on_numpy())
    trained, buffers = model.read_parameters()
    records = model.per_sample(len(x))
    assert_matches_reference(config, params, x, y, records, trained, buffers)
    assert max(int(c.max()) for c in records["forward_counts"]) == config.count_max


@replay_stack
@pytest.mark.parametrize("structure", sorted(STRUCTURES))
def test_replay_route_runtime_frames_match_reference(structure):
    """Event frames under GeNN's rules: F x summed every device step (no input events)."""
    config, params, frames, y = make_frame_case(STRUCTURES[structure], 0.9, "modified")
    model = run_replay_runtime(config, params, frames, y, genn_rules_on_numpy())
    assert model.copies["input_weight"][0].synapses.summed_updaters
    trained, buffers = model.read_parameters()
    assert_matches_reference(config, params, frames, y, model.per_sample(len(frames)),
                             trained, buffers)


def test_genn_step_order_needs_two_device_steps_per_model_step():
    """The emulation of GeNN's order is not vacuous: with one device step per model step,
    each spike hop takes two model steps and the forward counts leave the reference."""
    config, params, x, y = make_case(STRUCTURES["one_layer"], 1.0, "modified")
    caps = genn_rules_on_numpy(event_delivery_steps=0)
    model = run_replay_runtime(config, params, x, y, caps)
    _, _, reference_forward, _ = reference_training(config, params, x, y)
    assert not np.array_equal(model.per_sample(len(x))["forward_counts"][0],
                              reference_forward[0])


def _genn_model(structure, directory, learn, use_gpu=False, frames=False, leaky=1.0,
                changes=None):
    """Build the replay model under the genn device (one build per run); ``changes`` are
    config fields of a neuron or synapse variant."""
    import brian2genn  # noqa: F401  (registers the genn device)
    from brian2 import set_device
    set_device("genn", use_GPU=use_gpu, directory=str(directory))
    make = make_frame_case if frames else make_case
    config, params, x, y = make(STRUCTURES[structure], leaky, "modified")
    config = config.replace(**(changes or {}))
    tables = SampleTables.build(x, y, len(x), config if learn else None)
    model = SPIDENetwork(config, N_INPUTS, N_CLASSES, len(x), device="genn", tables=tables,
                         frame_input=frames)
    assert model.route is ROUTES["replay"]
    model.assign(params)
    return model, (config, params, x, y)


def _reset_device():
    """Back to the runtime device, with the preferences brian2genn changed (the network
    schedule, loop-invariant optimisations) at their defaults for the tests that follow."""
    from brian2 import device, set_device
    device.reinit()
    set_device("runtime")
    prefs.reset_to_defaults()


@pytest.mark.genn_codegen
@pytest.mark.parametrize("learn", [True, False], ids=["training", "evaluation"])
@pytest.mark.parametrize("structure", sorted(STRUCTURES))
def test_genn_project_is_generated(structure, learn, tmp_path, monkeypatch):
    pytest.importorskip("brian2genn", reason="needs the genn stack (brian2 2.5.x, brian2genn)")
    monkeypatch.delenv("GENN_PATH", raising=False)
    directory = tmp_path / "genn"
    try:
        model, _ = _genn_model(structure, directory, learn)
        with pytest.raises(GeNNNotFoundError, match="GENN_PATH"):
            run_on_genn(Network(*model.objects), model.run_duration, directory)
    finally:
        _reset_device()
    sources = ["magicnetwork_model.cpp", "main.cpp", "engine.cpp"]
    missing = [name for name in sources if not (directory / name).is_file()]
    assert not missing, f"GeNN project in {directory} lacks {missing}"
    model_source = (directory / "magicnetwork_model.cpp").read_text()
    for name in ("spide_layer0", "spide_input_weight_copy0", "spide_readout_weight_copy1",
                 "spide_layer0_positive_coupling_count"):
        assert name in model_source


@pytest.mark.genn_codegen
def test_genn_project_is_generated_in_float32(tmp_path, monkeypatch):
    """float_dtype 'float32': brian2genn declares the weights, gradients and optimiser
    buffers as GeNN ``float`` variables (GeNN's model precision, the type of time, stays
    double)."""
    pytest.importorskip("brian2genn", reason="needs the genn stack (brian2 2.5.x, brian2genn)")
    monkeypatch.delenv("GENN_PATH", raising=False)
    directory = tmp_path / "genn"
    try:
        model, _ = _genn_model("chain", directory, True, changes={"float_dtype": "float32"})
        with pytest.raises(GeNNNotFoundError, match="GENN_PATH"):
            run_on_genn(Network(*model.objects), model.run_duration, directory)
    finally:
        _reset_device()
    model_source = (directory / "magicnetwork_model.cpp").read_text()
    assert '{"w", "float"}' in model_source and '{"grad", "float"}' in model_source
    assert '{"w", "double"}' not in model_source


@pytest.mark.genn_codegen
def test_genn_project_is_generated_with_integration_steps(tmp_path, monkeypatch):
    pytest.importorskip("brian2genn", reason="needs the genn stack (brian2 2.5.x, brian2genn)")
    monkeypatch.delenv("GENN_PATH", raising=False)
    directory = tmp_path / "genn"
    try:
        model, _ = _genn_model("chain", directory, True, leaky=0.9,
                               changes=INTEGRATION_CHANGES)
        assert model.schedule.forward_steps == 18 and model.schedule.substeps == 2
        with pytest.raises(GeNNNotFoundError, match="GENN_PATH"):
            run_on_genn(Network(*model.objects), model.run_duration, directory)
    finally:
        _reset_device()
    assert "spide_layer0" in (directory / "magicnetwork_model.cpp").read_text()


@pytest.mark.genn_codegen
@pytest.mark.parametrize("variant", range(len(MODEL_VARIANTS)))
def test_genn_project_is_generated_for_neuron_and_synapse_variants(variant, tmp_path,
                                                                   monkeypatch):
    """Refractoriness, the slope gate and exponential synapses (each variant the emulation
    tests check exactly) generate a GeNN training project."""
    pytest.importorskip("brian2genn", reason="needs the genn stack (brian2 2.5.x, brian2genn)")
    monkeypatch.delenv("GENN_PATH", raising=False)
    leaky, changes = MODEL_VARIANTS[variant]
    directory = tmp_path / "genn"
    try:
        model, _ = _genn_model("chain", directory, True, leaky=leaky, changes=changes)
        with pytest.raises(GeNNNotFoundError, match="GENN_PATH"):
            run_on_genn(Network(*model.objects), model.run_duration, directory)
    finally:
        _reset_device()
    model_source = (directory / "magicnetwork_model.cpp").read_text()
    assert "spide_layer0" in model_source and "spide_weight_0_copy0" in model_source


@pytest.mark.skipif(not os.environ.get("GENN_PATH"),
                    reason="GENN_PATH is not set (a GeNN 4.x source tree is needed to build)")
@pytest.mark.parametrize("structure,frames", [("one_layer", False), ("chain", False),
                                              ("one_layer", True)],
                         ids=["one_layer", "chain", "one_layer-frames"])
def test_genn_cpu_training_matches_reference(structure, frames, tmp_path):
    try:
        model, (config, params, x, y) = _genn_model(structure, tmp_path / "genn", True,
                                                    frames=frames)
        Network(*model.objects).run(model.run_duration, namespace={})
        trained, buffers = model.read_parameters()
        assert all(v == 0.0 for v in model.copy_mismatch().values())
        assert_matches_reference(config, params, x, y, model.per_sample(len(x)), trained,
                                 buffers)
    finally:
        _reset_device()
