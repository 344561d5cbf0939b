"""The README's Python example for Brian2 users runs as written and does what it says."""
import re
from pathlib import Path

import numpy as np
import pytest
from brian2 import defaultclock, mV, prefs, volt
from brian2.units.fundamentalunits import have_same_dimensions

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_example(heading):
    """The first ```python block after ``heading`` in the README."""
    text = README.read_text()
    section = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def run_examples(*headings):
    """Run the README's examples under ``headings`` one after the other; their names."""
    target, dt = prefs.codegen.target, defaultclock.dt
    namespace = {}
    try:
        for heading in headings:
            exec(compile(readme_example(heading), str(README), "exec"), namespace)
    finally:
        prefs.codegen.target, defaultclock.dt = target, dt
    return namespace


def test_biophysical_network_example_runs_and_records_in_volts():
    code = readme_example("### Biophysical SPIDE networks in Brian2")
    target, dt = prefs.codegen.target, defaultclock.dt
    namespace = {}
    try:
        exec(compile(code, str(README), "exec"), namespace)
    finally:
        prefs.codegen.target, defaultclock.dt = target, dt
    config, units, model = namespace["config"], namespace["units"], namespace["model"]
    assert config.refractory_steps == 2 and config.synapse == "exponential"
    assert config.time_step == 30 and config.time_step_back == 100
    # the user's monitor sees the model's forward spikes of every sample (and, on the
    # replay route of Brian2 < 2.6, two replay spikes per neuron and sample)
    samples = len(namespace["x"])
    records = model.per_sample(samples)
    replay = 2 * len(model.layers[0]) * samples if model.route.name == "replay" else 0
    assert namespace["spikes"].num_spikes == records["forward_counts"][0].sum() + replay
    assert records["forward_counts"][0].sum() > 0
    potential = namespace["potential"]
    assert have_same_dimensions(potential, volt)
    np.testing.assert_allclose(np.asarray(potential),
                               -0.065 + np.asarray(namespace["membrane"].v) * 0.015)
    # time runs in physical steps of dt, and two mini-batches changed the weights
    assert np.isclose(float(namespace["membrane"].t[1] - namespace["membrane"].t[0]),
                      float(units.dt))
    changed = [name for name, value in namespace["new_params"].items()
               if not np.array_equal(value, namespace["params"][name])]
    assert "input_weight" in changed and "readout_weight" in changed


def test_membrane_in_volts_example_is_the_same_model_in_volts():
    from spide_brian.devices import capabilities
    from spide_brian.routes import route_for

    if route_for(capabilities("numpy")).name != "direct":
        pytest.skip("the membrane in volts needs the direct route (Brian2 >= 2.6)")
    namespace = run_examples("### Biophysical SPIDE networks in Brian2",
                             "#### The membrane in volts")
    monitor = namespace["in_volts"]
    assert have_same_dimensions(monitor.v, volt) and have_same_dimensions(monitor.u_back, volt)
    assert "dv/dt" in str(namespace["volts_model"].layers[0].equations)
    assert float(monitor.v.min() / mV) < -65 < float(monitor.v.max() / mV)
    for name, value in namespace["new_params"].items():
        np.testing.assert_allclose(namespace["same_weights"][name], value, rtol=1e-12,
                                   atol=1e-15)
