"""Convolutional feedback networks in the Brian2 model: kernels and channel biases shared by
many synapses (one parameter group per kernel), pooling, locally connected layers.

The Brian2 model reproduces the numpy reference (``timing='brian'``) on small conv feedback
nets: identical forward and signed backward spike counts per neuron and sample, weights
within 1e-9 relative after three mini-batches, on the numpy target and cpp_standalone.
"""
import dataclasses

import numpy as np
import pytest
from brian2 import Network, device, prefs, set_device

from spide_brian import models, reference
from spide_brian.brian_backend import BrianTrainer
from spide_brian.config import SPIDEConfig
from spide_brian.devices import capabilities
from spide_brian.dropout import dropout_masks
from spide_brian.models import ConvLayer, DenseLayer, Feedback, LocalLayer, NamedModel, PoolLayer
from spide_brian.network import SPIDENetwork
from spide_brian.parameters import init_parameters
from spide_brian.schedule import SampleTables
from spide_brian.topology import Topology
from spide_brian.training import ReferenceTrainer

from test_brian_model import (CAPACITY, assert_matches_reference,
                              assert_trainers_agree_over_epochs)

N_CLASSES, N_SAMPLES, BATCH = 3, 8, 3

#: Small networks with every construct of the named models: stride 2 and padding, a
#: transposed-convolution feedback, channel biases (conv); a pool without bias into a dense
#: layer (pool); locally connected layers with a locally connected feedback (local); one
#: layer with a convolutional feedback on 2-channel input (dvs, event frames).
CASES = {
    "conv": (NamedModel("test-conv", "stride-2 convolutions, transposed feedback", 1,
                        (ConvLayer(2, 3, 2), ConvLayer(2, 3, 2), ConvLayer(2, 3)),
                        Feedback(3, 2, transposed=True, init_scale=0.1)), 8),
    "pool": (NamedModel("test-pool", "convolution, pool, dense", 1,
                        (ConvLayer(2, 3), PoolLayer(2), DenseLayer(6))), 6),
    "local": (NamedModel("test-local", "locally connected with local feedback", 1,
                         (LocalLayer(2, 3), LocalLayer(2, 3, 2)),
                         Feedback(3, 2, transposed=True, init_scale=0.1, local=True)), 6),
    "dvs": (NamedModel("test-dvs", "one layer, convolutional feedback", 2,
                       (ConvLayer(3, 3, 2),), Feedback(3, 1, transposed=False)), 6),
}

needs_shared_parameters = pytest.mark.skipif(
    not capabilities("numpy").shared_parameters,
    reason="shared kernels in the Brian2 model need linked variables and the direct route "
           "(Brian2 >= 2.6)")
pytestmark = needs_shared_parameters


@pytest.fixture(autouse=True)
def test_models(monkeypatch):
    for model, _ in CASES.values():
        monkeypatch.setitem(models.MODELS, model.name, model)


def make_conv_case(case, leaky=1.0, reset="modified", dropout=0.0):
    model, side = CASES[case]
    n_inputs = model.in_channels * side * side
    config = SPIDEConfig(model=model.name, time_step=10, time_step_back=16, batch_size=BATCH,
                         timing="brian", leaky=leaky, reset=reset, scale_factor=300.0, lr=0.5,
                         feedback_norm=1.5, dropout=dropout)
    params = init_parameters(config, n_inputs, N_CLASSES, seed=1)
    rng = np.random.default_rng(3)
    for layer in Topology.from_config(config, n_inputs, N_CLASSES).layers:
        if layer.bias_size:                            # keeps every layer active
            params[layer.bias] = rng.uniform(0.2, 0.6, layer.bias_size)
    if case == "dvs":
        x = rng.integers(0, 3, (N_SAMPLES, config.time_step, n_inputs)) * 0.5
    else:
        x = rng.uniform(0.0, 2.0, (N_SAMPLES, n_inputs))
    y = rng.integers(0, N_CLASSES, N_SAMPLES)
    return config, params, x, y


def run_numpy(config, params, x, y, masks=None):
    prefs.codegen.target = "numpy"
    n_inputs = x.shape[-1]
    tables = SampleTables.build(x, y, CAPACITY, config, dropout=masks)
    model = SPIDENetwork(config, n_inputs, N_CLASSES, CAPACITY, tables=tables,
                         frame_input=x.ndim == 3)
    model.assign(params)
    Network(*model.objects).run(model.run_duration, namespace={})
    return model


@pytest.mark.parametrize("case", sorted(CASES))
def test_runtime_conv_matches_reference(case):
    config, params, x, y = make_conv_case(case)
    model = run_numpy(config, params, x, y)
    trained, buffers = model.read_parameters()
    assert_matches_reference(config, params, x, y, model.per_sample(len(x)), trained, buffers)
    shared = set(model.shared)
    kinds = {c.parameter: c.kind for c in model.topology.connections}
    # the kernels, the channel biases and (one copy of each weight) the dense weights are
    # held once; locally connected weights keep their copies
    assert {p for p, kind in kinds.items() if kind.shares_weights or kind.name == "dense"} \
        <= shared
    assert not {p for p, kind in kinds.items() if kind.name == "locally_connected2d"} & shared
    for name, parameter in model.shared.items():
        assert len(parameter.group) == np.prod(params[name].shape)


@pytest.mark.parametrize("case", sorted(CASES))
def test_runtime_conv_matches_the_sparse_backward_of_the_reference(case, monkeypatch):
    """The reference sending every backward step through its sparse synapse matrices (the
    path it takes for sparse steps of large convolutions) is the Brian2 model's network."""
    monkeypatch.setattr(reference, "SPARSE_BACKWARD_DENSITY", 1.0)
    config, params, x, y = make_conv_case(case)
    model = run_numpy(config, params, x, y)
    trained, buffers = model.read_parameters()
    assert_matches_reference(config, params, x, y, model.per_sample(len(x)), trained, buffers)


@pytest.mark.parametrize("case", ["conv", "pool"])
def test_runtime_conv_with_conductances_matches_reference(case):
    """Conductance synapses through shared kernels (the sign of a kernel element picks the
    conductance of all its synapses) and through a pooling connection (excitatory)."""
    config, params, x, y = make_conv_case(case)
    config = config.replace(synapse="conductance", synapse_leak=0.5)
    model = run_numpy(config, params, x, y)
    trained, buffers = model.read_parameters()
    assert_matches_reference(config, params, x, y, model.per_sample(len(x)), trained, buffers)


def test_shared_kernel_synapses_hold_their_element():
    """Every synapse of every copy of a kernel reads its element, before and after
    training."""
    config, params, x, y = make_conv_case("conv")
    model = run_numpy(config, params, x, y)
    trained, _ = model.read_parameters()
    for name, copies in model.copies.items():
        if name not in model.shared:
            continue
        shared = model.shared[name]
        value = np.asarray(shared.group.w[:])    # unprojected, in the group's order
        for copy in copies:
            flat = copy.connection.kind.kernel_elements(copy.transposed, copy.shape)
            np.testing.assert_array_equal(copy.synapses.w[:], value[shared.elements(flat)])
            assert len(copy.synapses) == copy.connection.kind.synapse_count(copy.shape)
    assert not np.allclose(trained["weight_0"], params["weight_0"])


@pytest.mark.parametrize("case", ["conv", "pool"])
def test_runtime_conv_dropout_matches_reference(case):
    """Dropout with the masks of the reference (one per sample, both stages); the pool case's
    dense layer drops its current as LeNet's does, the others use the config's rate."""
    config, params, x, y = make_conv_case(case, dropout=0.3)
    topology = Topology.from_config(config, x.shape[-1], N_CLASSES)
    masks = dropout_masks(config, topology, 0, 0, len(x))
    model = run_numpy(config, params, x, y, masks)
    trainer = ReferenceTrainer(config, params)
    stats = trainer.train_epoch(x, y, 0)
    records = model.per_sample(len(x))
    trained, _ = model.read_parameters()
    assert sum(int(c.sum()) for c in records["forward_counts"]) == stats["forward_spikes"]
    for name, value in trainer.params.items():
        np.testing.assert_allclose(trained[name], value, rtol=1e-9,
                                   atol=1e-12 * max(1.0, np.abs(value).max(initial=0.0)))


def test_devices_without_linked_parameters_refuse_with_the_fix():
    config, params, _, _ = make_conv_case("conv")
    genn_rules = dataclasses.replace(capabilities("numpy"), shared_parameters=False)
    with pytest.raises(ValueError, match="shares parameters.*weight_0.*--backend reference"):
        SPIDENetwork(config, 64, N_CLASSES, CAPACITY, device=genn_rules)
    with pytest.raises(ValueError, match="shared_parameters"):
        BrianTrainer(config, params, device="genn")
    # a locally connected network shares nothing but its channel biases
    config, params, _, _ = make_conv_case("local")
    with pytest.raises(ValueError, match="bias_0"):
        SPIDENetwork(config, 36, N_CLASSES, CAPACITY, device=genn_rules)


def test_trainer_conv_epochs_agree_with_reference():
    """The trainer on a named model: two shuffled epochs, then an evaluation."""
    config, params, x, y = make_conv_case("conv", dropout=0.2)
    brian = BrianTrainer(config, params, device="numpy")
    reference = ReferenceTrainer(config, params)
    assert brian.n_inputs == 64
    assert_trainers_agree_over_epochs(brian, reference, x, y)
    got, want = brian.evaluate(x, y), reference.evaluate(x, y)
    assert got["forward_spikes"] == want["forward_spikes"] and got["correct"] == want["correct"]


@pytest.mark.standalone
def test_standalone_conv_matches_reference(tmp_path):
    """One compiled program of the conv case runs IF and LIF with both resets."""
    config, _, _, _ = make_conv_case("conv")
    try:
        set_device("cpp_standalone", build_on_run=False)
        device.activate(build_on_run=False)
        model = SPIDENetwork(config, 64, N_CLASSES, CAPACITY, device="cpp_standalone")
        Network(*model.objects).run(model.run_duration, namespace={})
        device.build(directory=str(tmp_path / "build"), compile=True, run=False,
                     with_output=False)
        for leaky, reset in [(1.0, "modified"), (0.9, "standard")]:
            config, params, x, y = make_conv_case("conv", leaky, reset)
            run_args = dict(model.constant_values(config))
            run_args.update(model.state_values(params))
            run_args.update(model.table_values(SampleTables.build(x, y, CAPACITY, config)))
            device.run(run_args=run_args, with_output=False)
            trained, buffers = model.read_parameters()
            assert_matches_reference(config, params, x, y, model.per_sample(len(x)), trained,
                                     buffers)
    finally:
        device.reinit()
        set_device("runtime")
