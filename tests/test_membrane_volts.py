"""The membrane in volts (docs/biophysics.md B8): Brian2 differential equations with units.

``SPIDENetwork(..., units=NeuronUnits(...))`` gives the forward neurons and the couples a
membrane ``v``, ``u_back`` in volts that Brian2 integrates exactly (``dv/dt = (v_rest -
v)/tau_m``), a Brian2 refractory period, thresholds and resets in volts. It must reproduce
the discrete model (same spike counts, same weights) and the reference's update of the
same membrane in volts, on the numpy target and on cpp_standalone.
"""
import math

import numpy as np
import pytest
from brian2 import (Network, StateMonitor, defaultclock, device, ms, mV, prefs, second,
                    set_device)
from brian2.units.fundamentalunits import get_dimensions

from spide_brian.biophysics import NeuronUnits, UnitError, reference_membrane
from spide_brian.checkpoint import load_checkpoint
from spide_brian.cli import main
from spide_brian.config import SPIDEConfig
from spide_brian.datasets import load_dataset
from spide_brian.devices import capabilities
from spide_brian.network import MODEL_DT
from spide_brian.parameters import init_parameters
from spide_brian.training import ReferenceTrainer
from spide_brian.network import SPIDENetwork
from spide_brian.routes import route_for
from spide_brian.schedule import SampleTables

from test_brian_model import (CAPACITY, N_CLASSES, N_INPUTS, STRUCTURES,
                              assert_matches_reference, make_case, reference_training)

pytestmark = pytest.mark.skipif(
    route_for(capabilities("numpy")).name != "direct",
    reason="the membrane in volts needs the direct route (Brian2 >= 2.6)")

#: (membrane time constant, Brian2 refractory period): IF, LIF, LIF with 2 held steps.
MEMBRANES = {"IF": (math.inf * second, 0 * ms), "LIF": (20 * ms, 0 * ms),
             "LIF-refractory": (20 * ms, 3 * ms)}


def volts_case(structure, membrane, reset="modified", **changes):
    tau_m, refractory = MEMBRANES[membrane]
    units = NeuronUnits(dt=1 * ms, tau_m=tau_m, v_rest=-70 * mV, v_threshold=-52 * mV,
                        refractory=refractory)
    config, params, x, y = make_case(STRUCTURES[structure], 1.0, reset)
    return units, units.discrete(config).replace(**changes), params, x, y


def assert_matches_both(model, config, params, x, y):
    """The Brian2 model in volts against the reference in volts and the discrete reference:
    identical forward and signed backward counts, weights and momenta within 1e-9."""
    records = model.per_sample(len(x))
    trained, buffers = model.read_parameters()
    # the discrete model (the reference of the dimensionless membrane)
    assert_matches_reference(config, params, x, y, records, trained, buffers)
    membrane = dict(model.membrane, dt=float(model.units.integration_dt(config)))
    volts_params, volts_buffers, forward, backward = reference_training(config, params, x, y,
                                                                        membrane)
    for layer in range(config.n_layers):
        np.testing.assert_array_equal(records["forward_counts"][layer], forward[layer])
        np.testing.assert_array_equal(records["backward_signed"][layer], backward[layer])
    for name, value in volts_params.items():
        np.testing.assert_allclose(trained[name], value, rtol=1e-9,
                                   atol=1e-12 * np.abs(value).max(initial=0.0))
        np.testing.assert_allclose(buffers[name], volts_buffers[name], rtol=1e-9,
                                   atol=1e-12 * max(1.0, np.abs(value).max(initial=0.0)))


def run_volts(units, config, params, x, y, monitor=None):
    prefs.codegen.target = "numpy"
    dt = defaultclock.dt
    defaultclock.dt = units.integration_dt(config)
    try:
        tables = SampleTables.build(x, y, CAPACITY, config)
        model = SPIDENetwork(config, N_INPUTS, N_CLASSES, CAPACITY, tables=tables, units=units)
        model.assign(params)
        extra = [monitor(model)] if monitor else []
        Network(*model.objects, *extra).run(model.run_duration, namespace={})
    finally:
        defaultclock.dt = dt
    return model, extra


@pytest.mark.parametrize("membrane", sorted(MEMBRANES))
@pytest.mark.parametrize("structure", sorted(STRUCTURES))
def test_runtime_volts_membrane_matches_discrete_model_and_reference(structure, membrane):
    units, config, params, x, y = volts_case(structure, membrane)
    model, _ = run_volts(units, config, params, x, y)
    assert get_dimensions(model.layers[0].v) == get_dimensions(mV)
    assert model.layers[0].state_updater.method_choice == "exact"
    assert_matches_both(model, config, params, x, y)


def test_runtime_volts_membrane_with_exponential_synapses_and_slope_gate():
    units, config, params, x, y = volts_case("chain", "LIF-refractory",
                                             synapse="exponential", synapse_leak=0.7,
                                             gate="slope")
    model, _ = run_volts(units, config, params, x, y)
    assert_matches_both(model, config, params, x, y)


@pytest.mark.parametrize("structure", sorted(STRUCTURES))
def test_runtime_volts_membrane_with_conductances(structure):
    """Conductances read the membrane before the step's state update (their own code at
    the start of the step), as the discrete model reads it before its leak."""
    units, config, params, x, y = volts_case(structure, "LIF-refractory",
                                             synapse="conductance", synapse_leak=0.6,
                                             reversal_exc=1.1, reversal_inh=-0.3)
    model, _ = run_volts(units, config, params, x, y)
    assert_matches_both(model, config, params, x, y)


@pytest.mark.parametrize("structure", sorted(STRUCTURES))
def test_runtime_volts_membrane_with_integration_steps(structure):
    """Three integration steps of 1/3 ms per 1 ms SPIDE step (docs/biophysics.md B9): Brian2
    integrates at dt / 3, its refractory period is (R K + 1) dt / 3, and the model matches
    the discrete model and the reference in volts."""
    units, config, params, x, y = volts_case(structure, "LIF-refractory", integration_steps=3,
                                             time_step=6, time_step_back=10)
    model, _ = run_volts(units, config, params, x, y)
    assert float(model.dt) == pytest.approx(1e-3 / 3)
    assert model.membrane["refractory"] == pytest.approx(7e-3 / 3)   # R K + 1 = 7 steps
    assert_matches_both(model, config, params, x, y)


def test_recorded_membrane_is_the_discrete_membrane_in_volts():
    """A StateMonitor of ``v`` records volts; during the forward phases they are the
    discrete model's membrane values mapped by ``NeuronUnits.potential``."""
    units, config, params, x, y = volts_case("one_layer", "LIF")

    def monitor(model):
        return StateMonitor(model.layers[0], "v", record=True)

    model, (volts,) = run_volts(units, config, params, x, y, monitor)
    prefs.codegen.target = "numpy"
    dt = defaultclock.dt
    defaultclock.dt = units.dt
    try:
        discrete = SPIDENetwork(config, N_INPUTS, N_CLASSES, CAPACITY,
                                tables=SampleTables.build(x, y, CAPACITY, config))
        discrete.assign(params)
        plain = StateMonitor(discrete.layers[0], "v", record=True)
        Network(*discrete.objects, plain).run(discrete.run_duration, namespace={})
    finally:
        defaultclock.dt = dt
    schedule = model.schedule
    steps = np.arange(volts.v.shape[1]) % schedule.slot_length
    forward = (steps >= schedule.forward_start) & (steps < schedule.forward_start
                                                   + config.time_step)
    assert forward.sum() >= CAPACITY * config.time_step - config.time_step
    recorded = np.asarray(volts.v / mV)[:, forward]
    expected = np.asarray(units.potential(plain.v[:, forward], config) / mV)
    np.testing.assert_allclose(recorded, expected, rtol=0, atol=1e-9)
    assert recorded.min() < -70 and recorded.max() > -60     # below rest after resets


@pytest.mark.parametrize("problem,message", [
    (dict(dt=0.5 * ms), "not the units' integration step dt / 1 = 1. ms; set "
                        "defaultclock.dt to it"),
    (dict(leaky=0.5), "is not exp(-dt/tau_m)"),
    (dict(device=capabilities("genn")), "one device step per model step"),
])
def test_volts_membrane_refuses_what_it_cannot_run(problem, message):
    units, config, params, x, y = volts_case("one_layer", "LIF")
    dt = defaultclock.dt
    defaultclock.dt = problem.pop("dt", units.dt)
    device = problem.pop("device", "numpy")
    try:
        with pytest.raises((ValueError, UnitError), match=message.replace("(", r"\(")
                           .replace(")", r"\)").replace(".", r"\.")):
            SPIDENetwork(config.replace(**problem), N_INPUTS, N_CLASSES, CAPACITY,
                         device=device, units=units)
    finally:
        defaultclock.dt = dt


@pytest.mark.standalone
def test_standalone_volts_membrane_matches_discrete_model_and_reference(tmp_path):
    """cpp_standalone (C++ ``exp`` in the generated state update) with a refractory LIF
    membrane, on one feedback layer (the numpy target checks the chain)."""
    units, config, params, x, y = volts_case("one_layer", "LIF-refractory", reset="standard")
    config = config.replace(refractory_steps=1)
    units = NeuronUnits.of(config, dt=units.dt, v_rest=units.v_rest,
                           v_threshold=units.v_threshold)
    dt = defaultclock.dt
    try:
        set_device("cpp_standalone", build_on_run=False)
        defaultclock.dt = units.dt
        tables = SampleTables.build(x, y, CAPACITY, config)
        model = SPIDENetwork(config, N_INPUTS, N_CLASSES, CAPACITY, device="cpp_standalone",
                             tables=tables, units=units)
        model.assign(params)
        Network(*model.objects).run(model.run_duration, namespace={})
        device.build(directory=str(tmp_path / "build"), compile=True, run=True,
                     with_output=False)
        assert_matches_both(model, config, params, x, y)
    finally:
        device.reinit()
        set_device("runtime")
        defaultclock.dt = dt


#: A two-layer chain with feedback, LIF membranes, a refractory period and exponential
#: synapses, described in units on the command line.
VOLTS_FLAGS = ["--hidden-sizes", "8", "6", "--membrane-tau", "20ms", "--refractory", "2ms",
               "--synapse", "exponential", "--tau-syn", "5ms", "--time-step", "8",
               "--time-step-back", "12", "--limit", "24", "--batch-size", "8", "--epochs",
               "1", "--quiet"]


def test_cli_trains_in_volts_as_the_reference_in_volts(tmp_path):
    """``train --membrane volts`` on the Brian2 model (numpy target) and on the reference,
    whose forward pass then runs Brian2's update of the membrane in volts: the same weights,
    and the checkpoint records the membrane."""
    runs = {}
    for backend, extra in (("brian", ["--device", "numpy"]), ("reference", ["--timing", "brian"])):
        out = tmp_path / backend
        assert main(["train", "--backend", backend, *extra, "--membrane", "volts",
                     *VOLTS_FLAGS, "--out", str(out)]) == 0
        runs[backend] = load_checkpoint(out)
    assert runs["brian"]["config"].membrane == "volts"
    assert runs["brian"]["params"].keys() == runs["reference"]["params"].keys()
    for name, value in runs["reference"]["params"].items():
        np.testing.assert_allclose(runs["brian"]["params"][name], value, rtol=1e-9,
                                   atol=1e-12 * max(1.0, np.abs(value).max(initial=0.0)))
    assert main(["evaluate", str(tmp_path / "brian"), "--backend", "reference"]) == 0


def test_reference_trainer_in_volts_is_the_discrete_model():
    """The reference's membrane in volts differs from the discrete one by rounding only:
    on the digits the spike counts, and so the weights, of an epoch are the same."""
    data = load_dataset("digits")
    x, y = data.x_train[:64], data.y_train[:64]
    config = SPIDEConfig(hidden_sizes=(20,), batch_size=16, leaky=0.95, refractory_steps=1,
                         time_step=10, time_step_back=20)
    params = init_parameters(config, data.n_inputs, data.n_classes)
    trained = {}
    for membrane in ("discrete", "volts"):
        trainer = ReferenceTrainer(config.replace(membrane=membrane), params)
        assert (trainer.membrane is None) == (membrane == "discrete")
        trainer.train_epoch(x, y)
        trained[membrane] = trainer.params
    for name, value in trained["discrete"].items():
        np.testing.assert_array_equal(trained["volts"][name], value)
    volts = reference_membrane(config.replace(membrane="volts"), MODEL_DT)
    assert volts["dt"] == float(MODEL_DT)
    assert math.isclose(math.exp(-volts["dt"] * volts["leak_rate"]), 0.95, rel_tol=1e-12)


@pytest.mark.parametrize("flags, message", [
    (["--backend", "brian", "--device", "genn", "--membrane", "volts"], "membrane_in_volts"),
    (["--membrane", "volt"], "one of discrete, volts"),
])
def test_a_membrane_the_run_cannot_have_is_one_line(flags, message, capsys):
    assert main(["train", *flags, "--limit", "16", "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
