"""Operation counts, energy and firing statistics against plain loops over recorded spikes."""
import math

import numpy as np
import pytest
from scipy import sparse

from spide_brian import energy, firing
from spide_brian import reference as ref

from conftest import make_network

SIZES = (6, 5, 4)


@pytest.fixture
def recorded():
    """A small feedback net with pruned synapses, zero inputs and spikes in both stages."""
    config, params = make_network(SIZES, seed=3, n_inputs=7, n_classes=3, time_step=12,
                                  time_step_back=20)
    rng = np.random.default_rng(7)
    for name in ("input_weight", "weight_0", "weight_1", "feedback_weight"):
        params[name] = params[name] * (rng.uniform(size=params[name].shape) < 0.6)
    params["bias_0"] += 0.4
    params["bias_1"] += 0.5
    params["bias_2"] += 0.5
    x = rng.uniform(0, 1.5, (4, 7)) * (rng.uniform(size=(4, 7)) < 0.7)
    g = rng.normal(0, 0.4, (4, SIZES[-1]))
    result = ref.forward_backward(params, config, x, g, record=True)
    assert all(s.any() for s in result.forward.spikes)
    assert all((s != 0).any() for s in result.backward.spikes)
    return config, params, x, result


def _connections(n_layers):
    """(weight name, pre layer, post layer) of every spiking connection."""
    connections = [(f"weight_{l}", l, l + 1) for l in range(n_layers - 1)]
    connections.append(("feedback_weight", n_layers - 1, 0))
    return connections


def _loop_forward(params, spikes):
    connections = _connections(len(spikes))
    steps, batch, _ = spikes[0].shape
    ops = np.zeros(batch)
    for name, pre, post in connections:
        weight = params[name]
        for t in range(steps):
            for b in range(batch):
                for j in range(weight.shape[1]):
                    if spikes[pre][t, b, j]:
                        ops[b] += sum(1 for i in range(weight.shape[0]) if weight[i, j] != 0)
    return ops


def _loop_backward(params, spikes):
    connections = _connections(len(spikes))
    steps, batch, _ = spikes[0].shape
    ops = np.zeros(batch)
    for name, pre, post in connections:
        weight = params[name]
        for t in range(steps):
            for b in range(batch):
                for i in range(weight.shape[0]):
                    if spikes[post][t, b, i] != 0:
                        ops[b] += sum(1 for j in range(weight.shape[1]) if weight[i, j] != 0)
    return ops


def _loop_weight_update(params, forward_spikes, backward_spikes, x):
    n_layers = len(forward_spikes)
    batch = x.shape[0]
    fired = [s.any(axis=0) for s in forward_spikes]
    sent = [(s != 0).any(axis=0) for s in backward_spikes]
    ops = np.zeros(batch)
    pairs = [("input_weight", None, 0)] + _connections(n_layers)
    for b in range(batch):
        for name, pre, post in pairs:
            weight = params[name]
            for i in range(weight.shape[0]):
                for j in range(weight.shape[1]):
                    pre_active = x[b, j] != 0 if pre is None else fired[pre][b, j]
                    if weight[i, j] != 0 and sent[post][b, i] and pre_active:
                        ops[b] += 1
        ops[b] += sum(int(sent[layer][b].sum()) for layer in range(n_layers))
        readout = params["readout_weight"]
        ops[b] += sum(1 for i in range(readout.shape[0]) for j in range(readout.shape[1])
                      if readout[i, j] != 0 and fired[-1][b, j]) + readout.shape[0]
    return ops


def test_operation_counts_equal_plain_loops_over_recorded_spikes(recorded):
    config, params, x, result = recorded
    forward_counts = firing.spike_counts(result.forward.spikes)
    backward_counts = firing.spike_counts(result.backward.spikes)
    counts = energy.spike_operations(params, forward_counts, config.time_step, x,
                                     backward_counts, config.time_step_back)
    np.testing.assert_array_equal(counts.accumulates["forward"],
                                  _loop_forward(params, result.forward.spikes))
    np.testing.assert_array_equal(counts.accumulates["backward"],
                                  _loop_backward(params, result.backward.spikes))
    np.testing.assert_array_equal(
        counts.multiply_accumulates["weight_update"],
        _loop_weight_update(params, result.forward.spikes, result.backward.spikes, x))
    input_loop = [sum(1 for i in range(6) for j in range(7)
                      if params["input_weight"][i, j] != 0 and x[b, j] != 0) for b in range(4)]
    np.testing.assert_array_equal(counts.multiply_accumulates["input"], input_loop)
    np.testing.assert_array_equal(counts.multiply_accumulates["readout"], [2 * 3 * 4] * 4)
    np.testing.assert_array_equal(counts.neuron_updates["forward"], [12 * 15] * 4)
    np.testing.assert_array_equal(counts.neuron_updates["backward"], [20 * 15] * 4)


def test_spike_counts_of_records_equal_reference_counts(recorded):
    _, _, _, result = recorded
    for mine, theirs in zip(firing.spike_counts(result.forward.spikes), result.forward.counts):
        np.testing.assert_array_equal(mine, theirs)
    for mine, theirs in zip(firing.spike_counts(result.backward.spikes),
                            result.backward.spike_counts):
        np.testing.assert_array_equal(mine, theirs)


def test_sparse_weights_count_like_dense(recorded):
    config, params, x, result = recorded
    as_sparse = {k: sparse.csr_matrix(v) if v.ndim == 2 else v for k, v in params.items()}
    args = (result.forward.counts, config.time_step, x, result.backward.spike_counts,
            config.time_step_back)
    dense = energy.spike_operations(params, *args).per_sample()
    assert energy.spike_operations(as_sparse, *args).per_sample() == dense


def test_inference_counts_only_forward_input_and_readout(recorded):
    config, params, x, result = recorded
    counts = energy.spike_operations(params, result.forward.counts, config.time_step, x)
    assert set(counts.accumulates) == {"forward"}
    assert set(counts.multiply_accumulates) == {"input", "readout"}
    assert set(counts.neuron_updates) == {"forward"}
    np.testing.assert_array_equal(counts.multiply_accumulates["readout"], [12] * 4)


def test_binary_frames_are_accumulates_and_counted_every_step():
    weight = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 1.0]])
    frames = np.zeros((3, 2, 3))
    frames[0, 0, 0] = frames[1, 0, 2] = frames[2, 0, 2] = frames[2, 1, 1] = 1.0
    operations, kind = energy.input_operations(frames, weight)
    assert kind == "accumulates"
    np.testing.assert_array_equal(operations, [1 + 2 + 2, 0])
    assert energy.input_operations(frames * 0.5, weight)[1] == "multiply_accumulates"


def test_ann_counts_every_synapse_of_a_dense_network():
    config, params = make_network((8, 6), n_inputs=5, n_classes=3)
    x = np.ones((2, 5))
    counts = energy.ann_operations(params, x, iterations=3)
    hidden = 8 * 6 + 6 * 8
    assert counts.multiply_accumulates["input"].tolist() == [40, 40]
    assert counts.multiply_accumulates["forward"].tolist() == [3 * hidden] * 2
    assert counts.multiply_accumulates["backward"].tolist() == [3 * hidden] * 2
    assert counts.multiply_accumulates["readout"].tolist() == [2 * 18] * 2
    n_params = sum(v.size for v in params.values())
    assert counts.multiply_accumulates["weight_update"].tolist() == [n_params] * 2
    assert counts.neuron_updates["forward"].tolist() == [3 * 14] * 2
    inference = energy.ann_operations(params, x, training=False)
    assert set(inference.multiply_accumulates) == {"input", "forward", "readout"}


def test_energy_weights_each_kind_by_its_cost(recorded):
    config, params, x, result = recorded
    counts = energy.spike_operations(params, result.forward.counts, config.time_step, x,
                                     result.backward.spike_counts, config.time_step_back)
    costs = energy.EnergyCosts(accumulate_pj=1.0, multiply_accumulate_pj=10.0,
                               neuron_update_pj=100.0)
    expected = (counts.total("accumulates") + 10 * counts.total("multiply_accumulates")
                + 100 * counts.total("neuron_updates"))
    np.testing.assert_allclose(counts.energy(costs), expected)
    default = energy.EnergyCosts()
    assert (default.accumulate_pj, default.multiply_accumulate_pj) == (0.9, 4.6)
    summary = counts.per_sample()
    assert summary["energy_pj"] == pytest.approx(float(np.mean(energy.energy(counts))))
    assert summary["accumulates/forward"] == pytest.approx(counts.accumulates["forward"].mean())
    with pytest.raises(ValueError, match="accumulate_pj"):
        energy.EnergyCosts(accumulate_pj=-1.0)


def test_concatenated_batches_keep_per_sample_counts(recorded):
    config, params, x, result = recorded
    whole = energy.spike_operations(params, result.forward.counts, config.time_step, x)
    halves = [energy.spike_operations(params, [c[s] for c in result.forward.counts],
                                      config.time_step, x[s])
              for s in (slice(0, 2), slice(2, 4))]
    joined = energy.OperationCounts.concatenate(halves)
    assert joined.n_samples == 4
    np.testing.assert_array_equal(joined.accumulates["forward"], whole.accumulates["forward"])


def test_firing_statistics_equal_loops(recorded):
    config, _, _, result = recorded
    stats = firing.firing_statistics(result.forward.counts, config.time_step,
                                     result.backward.spike_counts, config.time_step_back)
    for layer, (fwd, bwd) in enumerate(zip(result.forward.spikes, result.backward.spikes)):
        steps, batch, n = fwd.shape
        per_neuron = [int(fwd[:, b, j].sum()) for b in range(batch) for j in range(n)]
        assert stats[layer].forward_rate == pytest.approx(sum(per_neuron) / (steps * batch * n))
        assert stats[layer].backward_rate == pytest.approx(
            np.abs(bwd.astype(int)).sum() / (bwd.shape[0] * batch * n))
        assert stats[layer].silent == pytest.approx(per_neuron.count(0) / len(per_neuron))
        assert stats[layer].saturated == pytest.approx(per_neuron.count(steps) / len(per_neuron))
        assert stats[layer].partial == pytest.approx(
            np.mean(result.forward.masks[layer]))
        assert stats[layer].partial + stats[layer].silent + stats[layer].saturated == \
            pytest.approx(1.0)


def test_firing_accumulator_over_batches_equals_one_pass(recorded):
    config, _, _, result = recorded
    accumulator = firing.FiringAccumulator(config.time_step, config.time_step_back)
    for part in (slice(0, 1), slice(1, 4)):
        accumulator.add([c[part] for c in result.forward.counts],
                        [c[part] for c in result.backward.spike_counts])
    whole = firing.firing_statistics(result.forward.counts, config.time_step,
                                     result.backward.spike_counts, config.time_step_back)
    for mine, theirs in zip(accumulator.result(), whole):
        for name, value in theirs.as_dict().items():
            assert getattr(mine, name) == pytest.approx(value)
    columns = firing.statistics_columns(whole)
    assert set(columns) >= {"forward_rate_2", "backward_rate_0", "saturated_1"}
    assert firing.statistics_from_columns(columns) == whole


def test_forward_only_statistics_have_no_backward_rate(recorded):
    config, _, _, result = recorded
    stats = firing.firing_statistics(result.forward.counts, config.time_step)
    assert all(math.isnan(s.backward_rate) for s in stats)
    assert all(s.forward_rate > 0 for s in stats)


def test_energy_by_category_sums_to_total_energy(recorded):
    config, params, x, result = recorded
    counts = energy.spike_operations(params, result.forward.counts, config.time_step, x,
                                     result.backward.spike_counts, config.time_step_back)
    parts = counts.energy_by_category()
    assert set(parts) == {"input", "forward", "readout", "backward", "weight_update"}
    np.testing.assert_allclose(sum(parts.values()), counts.energy())
    np.testing.assert_allclose(parts["backward"], 0.9 * counts.accumulates["backward"]
                               + 0.9 * counts.neuron_updates["backward"])
