"""Physical units of the neuron model: the mapping to the discrete model, dimension checks,
and the command-line flags that set the leak and the step counts from times."""
import json
import math

import numpy as np
import pytest
from brian2.units import mV, ms, second, volt

from spide_brian.biophysics import NeuronUnits, UnitError, parse_quantity
from spide_brian.checkpoint import load_checkpoint
from spide_brian.cli import main
from spide_brian.config import SPIDEConfig

SMALL = ["--backend", "reference", "--limit", "96", "--hidden-sizes", "20", "--batch-size", "16",
         "--epochs", "2", "--quiet"]


def test_leak_and_steps_follow_from_time_constant_and_durations():
    units = NeuronUnits(dt=0.5 * ms, tau_m=20 * ms)
    assert units.leak == math.exp(-0.5 / 20)
    config = units.discrete(SPIDEConfig(), forward_duration=15 * ms, backward_duration=50 * ms)
    assert (config.leaky, config.time_step, config.time_step_back) == (units.leak, 30, 100)
    assert NeuronUnits().leak == 1.0                     # tau_m = inf: the IF neuron
    assert NeuronUnits().discrete(SPIDEConfig(leaky=0.9)).leaky == 1.0


def test_units_of_a_config_invert_the_mapping():
    config = SPIDEConfig(leaky=0.95, time_step=30, time_step_back=100)
    units = NeuronUnits.of(config, dt=0.1 * ms)
    assert float(units.tau_m / ms) == pytest.approx(-0.1 / math.log(0.95), rel=1e-12)
    assert units.leak == pytest.approx(0.95, rel=1e-14)
    forward, backward = units.durations(config)
    assert float(forward / ms) == pytest.approx(3.0) and float(backward / ms) == pytest.approx(10.0)
    assert math.isinf(float(NeuronUnits.of(SPIDEConfig()).tau_m))


def test_model_membrane_values_stand_for_potentials():
    units = NeuronUnits(v_rest=-70 * mV, v_threshold=-54 * mV)
    config = SPIDEConfig(vth=2.0)
    assert float(units.potential(0.0, config) / mV) == pytest.approx(-70)
    assert float(units.potential(config.vth, config) / mV) == pytest.approx(-54)
    # the modified reset subtracts 2 V_th, i.e. twice the threshold's distance from rest
    assert float(2 * config.vth * units.voltage_scale(config) / mV) == pytest.approx(32)


@pytest.mark.parametrize("text,name,parsed", [
    ("20ms", "tau_m", 20 * ms), ("0.1 ms", "dt", 0.1 * ms), ("-65*mV", "v_rest", -65 * mV),
    ("1e-3 second", "dt", 1 * ms), ("inf", "tau_m", math.inf * second),
])
def test_quantities_parse_with_their_units(text, name, parsed):
    value = parse_quantity(text, name)
    assert value.dim == parsed.dim and float(value) == pytest.approx(float(parsed))


@pytest.mark.parametrize("make,message", [
    (lambda: NeuronUnits(tau_m=20 * mV), "tau_m must be a time (e.g. 20ms), got 20. mV, a voltage"),
    (lambda: NeuronUnits(dt=1.0), "dt must be a time with its unit (e.g. 1ms)"),
    (lambda: NeuronUnits(v_rest=-65 * ms), "v_rest must be a voltage (e.g. -65mV)"),
    (lambda: NeuronUnits(v_threshold=-70 * mV), "must lie above v_rest"),
    (lambda: NeuronUnits(dt=-1 * ms), "dt must be > 0"),
    (lambda: NeuronUnits().steps(2.5 * ms), "not a whole number of steps"),
    (lambda: NeuronUnits().steps(3 * volt), "forward_duration must be a time"),
    (lambda: parse_quantity("20", "dt"), "not a number with a unit"),
    (lambda: parse_quantity("20 parsec", "dt"), "'parsec' in '20 parsec' is not a Brian2 unit"),
    (lambda: parse_quantity("5 mV", "dt", "--dt"), "--dt must be a time"),
])
def test_wrong_dimensions_and_values_name_the_parameter_and_unit(make, message):
    with pytest.raises(UnitError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("*", r"\*").replace(".", r"\.")):
        make()


@pytest.mark.parametrize("flags,message", [
    (["--membrane-tau", "20mV"], "--membrane-tau must be a time (e.g. 20ms), got 20. mV"),
    (["--membrane-tau", "20ms", "--leaky", "0.9"], "--membrane-tau sets --leaky"),
    (["--forward-duration", "30ms", "--time-step", "30"], "--forward-duration sets --time-step"),
    (["--backward-duration", "25ms", "--dt", "10ms"], "not a whole number of steps"),
    (["--dt", "1ms"], "--dt applies with"),
    (["--dt", "1mV", "--membrane-tau", "20ms"], "--dt must be a time"),
])
def test_cli_unit_errors_are_one_line(capsys, flags, message):
    assert main(["train", *SMALL, *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2


def test_training_in_units_is_the_discrete_run(tmp_path):
    """--membrane-tau / --dt / durations give the same run, bit for bit, as the leak and
    step counts they stand for."""
    in_units, discrete = tmp_path / "units", tmp_path / "discrete"
    assert main(["train", *SMALL, "--out", str(in_units), "--dt", "0.5ms",
                 "--membrane-tau", "10ms", "--forward-duration", "6ms",
                 "--backward-duration", "10ms"]) == 0
    assert main(["train", *SMALL, "--out", str(discrete), "--leaky", repr(math.exp(-0.05)),
                 "--time-step", "12", "--time-step-back", "20"]) == 0
    a, b = load_checkpoint(in_units), load_checkpoint(discrete)
    assert a["config"] == b["config"]
    assert (a["config"].leaky, a["config"].time_step, a["config"].time_step_back) == \
        (math.exp(-0.05), 12, 20)
    for name in a["params"]:
        assert np.array_equal(a["params"][name], b["params"][name])
    timing = ("seconds", "samples_per_second", "compile_seconds")

    def measured(history):
        return [{k: v for k, v in row.items() if k not in timing} for row in history]

    assert measured(a["history"]) == measured(b["history"])
    assert json.loads((in_units / "checkpoint.json").read_text())["config"]["leaky"] == \
        math.exp(-0.05)


def test_refractory_period_and_synaptic_time_constant_map_to_the_config():
    # Brian2's refractory period counts the spike's step: 1.5 ms = 3 steps, 2 held
    units = NeuronUnits(dt=0.5 * ms, tau_m=20 * ms, refractory=1.5 * ms, tau_syn=5 * ms)
    config = units.discrete(SPIDEConfig())
    assert config.refractory_steps == 2 and config.synapse == "exponential"
    assert config.synapse_leak == math.exp(-0.5 / 5)
    back = NeuronUnits.of(config, dt=0.5 * ms)
    assert float(back.refractory / ms) == pytest.approx(1.5)
    assert float(back.tau_syn / ms) == pytest.approx(5.0, rel=1e-12)
    assert NeuronUnits.of(SPIDEConfig()).tau_syn is None
    plain = NeuronUnits().discrete(config)             # delta synapses, no refractory period
    assert (plain.synapse, plain.synapse_leak, plain.refractory_steps) == ("delta", 0.0, 0)
    # a period of one step holds nothing (a neuron fires at most once per step anyway)
    assert NeuronUnits(dt=0.5 * ms, refractory=0.5 * ms).discrete().refractory_steps == 0
    assert float(NeuronUnits.of(plain).refractory) == 0.0
    with pytest.raises(UnitError, match="refractory 1.2 ms is not a whole number of steps"):
        NeuronUnits(dt=0.5 * ms, refractory=1.2 * ms).discrete()
    with pytest.raises(UnitError, match="tau_syn must be a time"):
        NeuronUnits(tau_syn=5 * mV)
