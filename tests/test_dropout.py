"""Dropout: per-sample masks of each connection's current, fixed over both stages; the
Brian2 model and the numpy reference compute the same network for the same masks."""
import dataclasses

import numpy as np
import pytest
from brian2 import Network, prefs

from spide_brian import reference as ref
from spide_brian.brian_backend import BrianTrainer
from spide_brian.config import ConfigError, SPIDEConfig
from spide_brian.devices import capabilities
from spide_brian.dropout import bias_connection, dropout_masks, dropped_connections
from spide_brian.network import SPIDENetwork
from spide_brian.schedule import SampleTables
from spide_brian.topology import Topology
from spide_brian.training import ReferenceTrainer, batch_major

from test_brian_model import (CAPACITY, N_CLASSES, N_INPUTS, STRUCTURES,
                              assert_trainers_agree_over_epochs, make_case)

P = 0.3
#: Dropout runs on the direct route only (Brian2 >= 2.6); older Brian2 refuses it.
needs_direct_route = pytest.mark.skipif(
    not capabilities("numpy").synaptic_rr_reads_groups,
    reason="dropout in the Brian2 model needs the direct route (Brian2 >= 2.6)")


def dropout_case(structure, leaky=1.0, reset="modified"):
    config, params, x, y = make_case(STRUCTURES[structure], leaky, reset)
    config = config.replace(dropout=P)
    return config, params, x, y, Topology.from_config(config, N_INPUTS, N_CLASSES)


# -- the masks --------------------------------------------------------------------------------
def test_masks_are_reproducible_per_mini_batch_and_scaled():
    config = SPIDEConfig(hidden_sizes=(30, 20), batch_size=8, dropout=0.25, seed=4)
    topology = Topology.from_config(config, 10, 3)
    whole = dropout_masks(config, topology, 2, 0, 40)
    assert set(whole) == {c.parameter for c in dropped_connections(topology)}
    assert set(whole) == {"input_weight", "weight_0", "feedback_weight"}
    for name, masks in whole.items():
        post = topology.connection(name).post
        assert masks.shape == (40, topology.layers[post].size)
        assert set(np.unique(masks)) == {0.0, 1.0 / 0.75}
        assert abs((masks == 0).mean() - 0.25) < 0.05
    # a run cut anywhere (also inside a mini-batch) sees the same masks
    for start, stop in ((0, 13), (13, 16), (16, 40), (5, 5)):
        part = dropout_masks(config, topology, 2, start, stop)
        for name in whole:
            np.testing.assert_array_equal(part[name], whole[name][start:stop])
    other_epoch = dropout_masks(config, topology, 3, 0, 40)
    other_seed = dropout_masks(config.replace(seed=5), topology, 2, 0, 40)
    assert not np.array_equal(other_epoch["weight_0"], whole["weight_0"])
    assert not np.array_equal(other_seed["weight_0"], whole["weight_0"])
    assert dropout_masks(config.replace(dropout=0.0), topology, 2, 0, 40) is None


@pytest.mark.parametrize("value", [-0.1, 1.0, float("nan")])
def test_dropout_must_be_a_probability_below_one(value):
    with pytest.raises(ConfigError, match="dropout"):
        SPIDEConfig(dropout=value)


def test_bias_joins_the_input_in_layer_zero_and_the_incoming_weights_elsewhere():
    topology = Topology.from_config(SPIDEConfig(hidden_sizes=(4, 3, 2)), 5, 2)
    assert [bias_connection(topology, layer).parameter for layer in range(3)] == \
        ["input_weight", "weight_0", "weight_1"]


# -- the reference ----------------------------------------------------------------------------
def test_masks_of_ones_change_no_bit_of_the_reference():
    config, params, x, _, topology = dropout_case("chain")
    g = np.full((len(x), 5), 0.3)
    ones = {name: np.ones_like(m) for name, m in
            dropout_masks(config, topology, 0, 0, len(x)).items()}
    plain = ref.forward_backward(params, config, x, g)
    masked = ref.forward_backward(params, config, x, g, dropout=ones)
    for name, value in plain.gradients.items():
        np.testing.assert_array_equal(masked.gradients[name], value)


def test_a_dropped_connection_silences_its_neurons_in_both_stages():
    """Layer 1's only input is weight_0 (with its bias): a neuron whose weight_0 mask is 0
    gets no current, never fires, has no backward spikes and no gradient."""
    config, params, x, _, topology = dropout_case("chain")
    masks = {name: np.ones_like(m) for name, m in
             dropout_masks(config, topology, 0, 0, len(x)).items()}
    masks["weight_0"][:, :3] = 0.0
    g = np.full((len(x), 5), 0.3)
    result = ref.forward_backward(params, config, x, g, dropout=masks)
    assert not result.forward.counts[1][:, :3].any()
    assert result.forward.counts[1][:, 3:].any()
    assert not result.backward.spike_counts[1][:, :3].any()
    assert not result.gradients["weight_0"][:3].any()
    assert not result.gradients["bias_1"][:3].any()
    # the kept ones are scaled by 1/(1-p): a mask of 2 doubles the current into layer 1
    doubled = dict(masks, weight_0=np.full_like(masks["weight_0"], 2.0))
    halved = dict(params, weight_0=params["weight_0"] * 2.0, bias_1=params["bias_1"] * 2.0)
    a = ref.forward(params, config, x, dropout=doubled)
    b = ref.forward(halved, config, x, dropout=dict(doubled, weight_0=np.ones_like(masks["weight_0"])))
    np.testing.assert_array_equal(a.counts[1], b.counts[1])


# -- Brian2 against the reference -------------------------------------------------------------
def reference_with_masks(config, params, x, y, topology, epoch=0):
    params = {k: v.copy() for k, v in params.items()}
    optimizer = ref.SGDMomentum(config)
    forward, backward = [], []
    for start in range(0, len(x), config.batch_size):
        stop = min(start + config.batch_size, len(x))
        masks = dropout_masks(config, topology, epoch, start, stop)
        result, _ = ref.train_batch(params, config, optimizer, batch_major(x[start:stop]),
                                    y[start:stop], dropout=masks)
        forward.append(result.forward.counts)
        backward.append(result.backward.signed_counts)
    layers = range(config.n_layers)
    return (params, [np.concatenate([f[l] for f in forward]) for l in layers],
            [np.concatenate([b[l] for b in backward]) for l in layers])


@needs_direct_route
@pytest.mark.parametrize("structure", sorted(STRUCTURES))
@pytest.mark.parametrize("leaky,reset", [(1.0, "modified"), (0.9, "standard")])
def test_runtime_dropout_matches_reference_spike_for_spike(structure, leaky, reset):
    config, params, x, y, topology = dropout_case(structure, leaky, reset)
    prefs.codegen.target = "numpy"
    tables = SampleTables.build(x, y, CAPACITY, config,
                                dropout=dropout_masks(config, topology, 0, 0, len(x)))
    model = SPIDENetwork(config, N_INPUTS, N_CLASSES, CAPACITY, tables=tables)
    model.assign(params)
    Network(*model.objects).run(model.run_duration, namespace={})
    records = model.per_sample(len(x))
    trained, _ = model.read_parameters()
    expected, forward, backward = reference_with_masks(config, params, x, y, topology)
    plain, plain_forward, _ = reference_with_masks(config.replace(dropout=0.0), params, x, y,
                                                   topology)
    for layer in range(config.n_layers):
        assert backward[layer].any()
        np.testing.assert_array_equal(records["forward_counts"][layer], forward[layer])
        np.testing.assert_array_equal(records["backward_signed"][layer], backward[layer])
    assert any(not np.array_equal(f, p) for f, p in zip(forward, plain_forward)), \
        "the masks must change the network"
    for name, value in expected.items():
        np.testing.assert_allclose(trained[name], value, rtol=1e-9,
                                   atol=1e-12 * np.abs(value).max())
        assert not np.allclose(plain[name], value) or name.startswith("bias")
    assert all(v == 0.0 for v in model.copy_mismatch().values())


@needs_direct_route
# capacity 3 (two minutes): runs cut inside mini-batches, also covered for schedules
@pytest.mark.parametrize("capacity", [None, pytest.param(3, marks=pytest.mark.long)])
def test_trainers_agree_over_epochs_and_runs(capacity):
    """Two epochs (new masks each epoch; with capacity 3 each epoch is cut into three runs)
    then an evaluation, which drops nothing."""
    config, params, x, y, _ = dropout_case("chain")
    brian = BrianTrainer(config, params, device="numpy", capacity=capacity)
    reference = ReferenceTrainer(config.replace(timing="brian"), params)
    assert_trainers_agree_over_epochs(brian, reference, x, y)
    evaluated = brian.evaluate(x, y)
    _, fwd = ref.predict(reference.params, reference.config, x)
    assert evaluated["forward_spikes"] == sum(int(c.sum()) for c in fwd.counts)


def test_replay_route_refuses_dropout_with_the_fix():
    config, _, _, _, _ = dropout_case("one_layer")
    replay = dataclasses.replace(capabilities("numpy"), synaptic_rr_reads_groups=False)
    with pytest.raises(ValueError, match="dropout is not available.*--backend reference"):
        SPIDENetwork(config, N_INPUTS, N_CLASSES, CAPACITY, device=replay)


def test_tables_with_masks_need_a_model_with_dropout():
    config, _, x, y, topology = dropout_case("one_layer")
    tables = SampleTables.build(x, y, CAPACITY, config,
                                dropout=dropout_masks(config, topology, 0, 0, len(x)))
    model = SPIDENetwork(config.replace(dropout=0.0), N_INPUTS, N_CLASSES, CAPACITY,
                         record=False)
    with pytest.raises(ValueError, match="built without dropout"):
        model.table_values(tables)
    with pytest.raises(ValueError, match="dropout masks of input_weight"):
        SampleTables.build(x, y, CAPACITY, config, dropout={"input_weight": np.ones((2, 8))})


@needs_direct_route
@pytest.mark.standalone
def test_standalone_dropout_matches_reference(tmp_path):
    """cpp_standalone: one compiled program, two epochs of new masks through run_args (one
    feedback layer, whose input and feedback currents carry masks; the numpy target checks
    the chain)."""
    from brian2 import device

    config, params, x, y, _ = dropout_case("one_layer", 0.9, "modified")
    reference = ReferenceTrainer(config.replace(timing="brian"), params)
    try:
        with BrianTrainer(config, params, device="cpp_standalone",
                          build_dir=str(tmp_path / "build")) as brian:
            for epoch in range(2):
                got = brian.train_epoch(x, y, epoch)
                want = reference.train_epoch(x, y, epoch)
                assert got["forward_spikes"] == want["forward_spikes"]
                assert got["backward_spikes"] == want["backward_spikes"]
            for name, value in reference.params.items():
                np.testing.assert_allclose(brian.params[name], value, rtol=1e-9,
                                           atol=1e-12 * np.abs(value).max())
    finally:
        device.reinit()
