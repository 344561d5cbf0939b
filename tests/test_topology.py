"""The network's structure as data: the chain built from a config, the dense kind's synapse
layout, and a topology with a second feedback connection run by the oracle and the exact
solver without new code."""
import dataclasses

import numpy as np
import pytest

from spide_brian import exact
from spide_brian import reference as ref
from spide_brian.config import SPIDEConfig
from spide_brian.parameters import init_parameters, parameter_shapes
from spide_brian.topology import INPUT, READOUT, Connection, Dense, Topology


def test_chain_from_config():
    config = SPIDEConfig(hidden_sizes=(7, 5, 3))
    topology = Topology.from_config(config, n_inputs=11, n_classes=4)
    assert [layer.size for layer in topology.layers] == [7, 5, 3]
    assert [(c.parameter, c.pre, c.post, c.shape) for c in topology.connections] == [
        ("input_weight", INPUT, 0, (7, 11)), ("weight_0", 0, 1, (5, 7)),
        ("weight_1", 1, 2, (3, 5)), ("feedback_weight", 2, 0, (7, 3)),
        ("readout_weight", 2, READOUT, (4, 3))]
    assert [c.parameter for c in topology.spiking if c.is_feedback] == ["feedback_weight"]
    assert [c.restriction for c in topology.restricted] == [config.feedback_norm]
    assert list(topology.parameter_shapes()) == [
        "input_weight", "bias_0", "bias_1", "bias_2", "weight_0", "weight_1",
        "feedback_weight", "readout_weight", "readout_bias"]
    assert [c.parameter for c in topology.incoming(0)] == ["feedback_weight"]
    assert [c.parameter for c in topology.outgoing(2)] == ["feedback_weight"]
    plain = Topology.from_config(config.replace(feedback=False), 11, 4)
    assert not plain.restricted and "feedback_weight" not in plain.parameter_shapes()


@pytest.mark.parametrize("feedback", [True, False])
def test_topology_from_parameters_inverts_the_shapes(feedback):
    config = SPIDEConfig(hidden_sizes=(6, 4), feedback=feedback)
    params = init_parameters(config, 9, 3)
    assert Topology.from_parameters(params) == Topology.from_config(config, 9, 3)
    with pytest.raises(ValueError, match="bias_0"):
        Topology.from_parameters({"input_weight": np.zeros((2, 2))})


@pytest.mark.parametrize("transposed", [False, True])
def test_dense_synapses_hold_the_matrix_entries(transposed):
    """Synapse k of a copy connects (i[k], j[k]) and holds the weight of that pair."""
    dense = Dense()
    weight = np.arange(12.0).reshape(3, 4)          # (n_post, n_pre)
    i, j = dense.synapse_indices(weight.shape, transposed)
    values = dense.flatten(weight, transposed)
    post, pre = (i, j) if transposed else (j, i)
    np.testing.assert_array_equal(values, weight[post, pre])
    np.testing.assert_array_equal(dense.unflatten(values, weight.shape, transposed), weight)
    assert len(set(zip(i, j))) == weight.size


def _with_lateral_feedback(config, n_inputs, n_classes):
    """The chain of ``config`` plus a restricted feedback connection of the last layer onto
    itself."""
    chain = Topology.from_config(config, n_inputs, n_classes)
    last = chain.layers[-1].index
    size = chain.layers[-1].size
    lateral = Connection("lateral_weight", last, last, (size, size), Dense(), "unit_row_norm",
                         restriction=0.8)
    connections = chain.spiking + (lateral,)
    return dataclasses.replace(chain, connections=(chain.input,) + connections
                               + (chain.readout,))


def test_a_second_feedback_connection_needs_no_new_code():
    """Reference and exact solver iterate the topology: with a lateral feedback added, the
    spiking rates approach the exact equilibrium and beta the exact adjoint, and the extra
    connection changes both (so it is really used)."""
    config = SPIDEConfig(hidden_sizes=(12, 9), time_step=3000, time_step_back=3000,
                         feedback_norm=0.8)
    topology = _with_lateral_feedback(config, 6, 3)
    params = init_parameters(config, 6, 3, seed=2)
    rng = np.random.default_rng(4)
    params["lateral_weight"] = rng.uniform(-1, 1, (9, 9))
    params["lateral_weight"] *= 0.8 / np.linalg.norm(params["lateral_weight"])
    params["bias_0"] = rng.uniform(0.2, 0.8, 12)
    params["bias_1"] = rng.uniform(0.2, 0.8, 9)
    assert set(params) == set(topology.parameter_shapes())
    x = rng.uniform(0.0, 1.0, (5, 6))
    g = rng.normal(0.0, 0.05, (5, 9))

    fwd = ref.forward(params, config, x, topology=topology)
    eq = exact.equilibrium(params, config, x, topology=topology)
    for spiking, rates in zip(fwd.rates, eq.rates):
        assert np.max(np.abs(spiking - rates)) < 0.01
    chain_eq = exact.equilibrium(params, config, x)
    assert np.max(np.abs(chain_eq.rates[1] - eq.rates[1])) > 0.01

    beta = ref.backward(params, config, fwd.masks, g, topology=topology).beta
    truth = exact.adjoint(params, config, fwd.masks, g, topology=topology)
    spikes, solved = np.concatenate(beta, axis=1), np.concatenate(truth, axis=1)
    assert abs(np.linalg.norm(spikes) / np.linalg.norm(solved) - 1) < 0.05
    cosine = np.sum(spikes * solved) / np.linalg.norm(spikes) / np.linalg.norm(solved)
    assert cosine > 0.99
    chain_truth = np.concatenate(exact.adjoint(params, config, fwd.masks, g), axis=1)
    assert np.linalg.norm(chain_truth - solved) > 0.05 * np.linalg.norm(solved)

    grads = ref.spike_gradients(config, x, fwd.rates, beta, topology=topology)
    np.testing.assert_allclose(grads["lateral_weight"], beta[1].T @ fwd.rates[1] / 2.0)
    optimizer = ref.SGDMomentum(config, topology)
    params["lateral_weight"] *= 10.0
    optimizer.step(params, {"lateral_weight": np.zeros((9, 9))}, lr=0.0)
    assert np.isclose(np.linalg.norm(params["lateral_weight"]), 0.8)


def test_parameter_shapes_come_from_the_topology():
    config = SPIDEConfig(hidden_sizes=(5, 4))
    assert parameter_shapes(config, 3, 2) == Topology.from_config(config, 3, 2).parameter_shapes()
