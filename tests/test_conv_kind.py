"""The convolution kind (one kernel shared by every position): its four operations against a
naive loop over positions, its synapses against its dense Jacobian, and the sharing map."""
import numpy as np
import pytest

from spide_brian.config import SPIDEConfig
from spide_brian.parameters import init_parameters
from spide_brian.topology import (AvgPool2d, Conv2d, ConvTranspose2d, Dense,
                                  LocallyConnected2d, Topology)

KINDS = [
    Conv2d(in_channels=1, out_channels=2, in_size=(5, 5), kernel=(3, 3)),
    Conv2d(in_channels=2, out_channels=3, in_size=(6, 5), kernel=(3, 2), stride=2, padding=1),
    Conv2d(in_channels=3, out_channels=1, in_size=(4, 4), kernel=(1, 1)),
    Conv2d(in_channels=2, out_channels=2, in_size=(7, 7), kernel=(5, 5), padding=2),
]


def naive_jacobian(kind, kernel):
    """``J[post, pre]`` by looping over every post neuron and kernel element."""
    (height, width), (oh, ow) = kind.in_size, kind.out_size
    (kh, kw), s, p = kind.kernel, kind.stride, kind.padding
    jacobian = np.zeros((kind.n_post, kind.n_pre))
    for o in range(kind.out_channels):
        for y in range(oh):
            for x in range(ow):
                for c in range(kind.in_channels):
                    for i in range(kh):
                        for j in range(kw):
                            row, column = s * y + i - p, s * x + j - p
                            if 0 <= row < height and 0 <= column < width:
                                post = (o * oh + y) * ow + x
                                pre = (c * height + row) * width + column
                                jacobian[post, pre] += kernel[o, c, i, j]
    return jacobian


@pytest.fixture(params=range(len(KINDS)), ids=lambda i: f"kind{i}")
def case(request):
    kind = KINDS[request.param]
    rng = np.random.default_rng(request.param)
    kernel = rng.standard_normal(kind.parameter_shape(kind.n_pre, kind.n_post))
    return kind, kernel, rng


def test_propagate_and_transpose_are_the_jacobian_and_its_transpose(case):
    kind, kernel, rng = case
    jacobian = naive_jacobian(kind, kernel)
    pre = rng.standard_normal((4, kind.n_pre))
    post = rng.standard_normal((4, kind.n_post))
    np.testing.assert_allclose(kind.propagate(kernel, pre), pre @ jacobian.T, rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(kind.transpose(kernel, post), post @ jacobian, rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(kind.jacobian(kernel), jacobian, rtol=1e-12, atol=1e-12)


def test_gradient_sums_over_positions_and_batch(case):
    """The interaction <post, J(K) pre> is linear in K: its derivative by K[o,c,i,j] is its
    value for the kernel with a single 1 there."""
    kind, kernel, rng = case
    pre = rng.standard_normal((3, kind.n_pre))
    post = rng.standard_normal((3, kind.n_post))
    expected = np.zeros(kernel.shape)
    for index in np.ndindex(kernel.shape):
        unit = np.zeros(kernel.shape)
        unit[index] = 1.0
        expected[index] = np.sum(post * (pre @ naive_jacobian(kind, unit).T))
    np.testing.assert_allclose(kind.gradient(post, pre), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("transposed", [False, True])
def test_synapses_rebuild_the_jacobian_and_share_kernel_elements(case, transposed):
    kind, kernel, _ = case
    i, j = kind.synapse_indices(kernel.shape, transposed)
    values = kind.flatten(kernel, transposed)
    pre, post = (j, i) if transposed else (i, j)
    rebuilt = np.zeros((kind.n_post, kind.n_pre))
    np.add.at(rebuilt, (post, pre), values)
    np.testing.assert_allclose(rebuilt, naive_jacobian(kind, kernel), rtol=1e-12, atol=1e-12)
    # one synapse per (pre, post, kernel element); the order is source-major
    assert np.all(np.diff(i) >= 0)
    elements = kind.kernel_elements(transposed)
    assert np.array_equal(values, kernel.ravel()[elements])
    np.testing.assert_array_equal(kind.unflatten(values, kernel.shape, transposed), kernel)
    broken = values.copy()
    shared = np.flatnonzero(elements == elements[0])
    if len(shared) > 1:
        broken[shared[-1]] += 1.0
        with pytest.raises(ValueError, match="share a kernel element"):
            kind.unflatten(broken, kernel.shape, transposed)


def test_fan_counts_follow_the_synapses(case):
    kind, kernel, _ = case
    kernel = kernel.copy()
    kernel.ravel()[0] = 0.0                       # a zero element makes no synapse count
    jacobian_mask = naive_jacobian(kind, np.where(kernel != 0, 1.0, 0.0))
    pre, post, element = kind._synapses()
    used = kernel.ravel()[element] != 0
    assert kind.fan_in(kernel).sum() == kind.fan_out(kernel).sum() == used.sum()
    # each synapse is one entry of the Jacobian of the 0/1 kernel
    np.testing.assert_array_equal(kind.fan_in(kernel), np.bincount(post[used],
                                                                   minlength=kind.n_post))
    assert jacobian_mask.sum() == used.sum()


@pytest.mark.parametrize("arguments,message", [
    (dict(in_channels=0, out_channels=1, in_size=(4, 4)), "in_channels must be an integer"),
    (dict(in_channels=1, out_channels=1, in_size=(2, 2), kernel=(3, 3)), "does not fit"),
    (dict(in_channels=1, out_channels=1, in_size=(4, 4), padding=-1), "padding must be"),
    (dict(in_channels=1, out_channels=1, in_size=(4, 4), stride=1.5), "stride must be"),
])
def test_invalid_shapes_are_named(arguments, message):
    with pytest.raises(ValueError, match=message):
        Conv2d(**arguments)


def test_layer_sizes_must_match_the_maps():
    kind = Conv2d(in_channels=1, out_channels=2, in_size=(5, 5))
    with pytest.raises(ValueError, match="maps 25 pre neurons"):
        kind.parameter_shape(24, kind.n_post)


# -- average pooling ------------------------------------------------------------------------
POOLS = [AvgPool2d(2, (4, 4), 2), AvgPool2d(3, (5, 7), 2), AvgPool2d(1, (6, 6), 3)]


@pytest.mark.parametrize("pool", POOLS, ids=lambda p: f"{p.channels}x{p.in_size}k{p.kernel}")
def test_pooling_is_a_fixed_map_of_block_means(pool):
    rng = np.random.default_rng(3)
    empty = np.zeros(pool.parameter_shape(pool.n_pre, pool.n_post))
    assert empty.shape == (0,)
    pre = rng.normal(size=(2, pool.n_pre))
    maps = pre.reshape(2, pool.channels, *pool.in_size)
    (oh, ow), k = pool.out_size, pool.kernel
    expected = np.array([[[[maps[b, c, k * y:k * y + k, k * x:k * x + k].mean()
                            for x in range(ow)] for y in range(oh)]
                          for c in range(pool.channels)] for b in range(2)])
    np.testing.assert_allclose(pool.propagate(empty, pre), expected.reshape(2, -1), rtol=1e-14)
    post = rng.normal(size=(2, pool.n_post))
    np.testing.assert_allclose(pool.transpose(empty, post), post @ pool.jacobian(empty),
                               rtol=1e-14, atol=1e-15)
    assert pool.gradient(post, pre).shape == (0,)
    for transposed in (False, True):
        i, j = pool.synapse_indices(empty.shape, transposed)
        pre_i, post_j = (j, i) if transposed else (i, j)
        matrix = np.zeros((pool.n_post, pool.n_pre))
        matrix[post_j, pre_i] = pool.flatten(empty, transposed)
        np.testing.assert_array_equal(matrix, pool.jacobian(empty))
        assert pool.unflatten(pool.flatten(empty, transposed), empty.shape,
                              transposed).shape == (0,)
    assert pool.fan_in(empty).tolist() == [k * k] * pool.n_post


def test_pooling_refuses_maps_it_cannot_pool():
    with pytest.raises(ValueError, match="does not fit"):
        AvgPool2d(1, (1, 3), 2)
    with pytest.raises(ValueError, match="every synapse holds 0.25"):
        AvgPool2d(1, (2, 2), 2).unflatten(np.ones(4), (0,), False)


# -- locally connected ----------------------------------------------------------------------
LOCALS = [
    LocallyConnected2d(in_channels=1, out_channels=2, in_size=(5, 5), kernel=(3, 3)),
    LocallyConnected2d(in_channels=2, out_channels=3, in_size=(6, 5), kernel=(3, 2), stride=2,
                       padding=1),
]


def naive_local_jacobian(kind, weight):
    """``J[post, pre]`` of a locally connected weight ``W[o, y, x, c, i, j]`` by loops."""
    (height, width), (oh, ow) = kind.in_size, kind.out_size
    s, p = kind.stride, kind.padding
    jacobian = np.zeros((kind.n_post, kind.n_pre))
    for o, y, x, c, i, j in np.ndindex(weight.shape):
        row, column = s * y + i - p, s * x + j - p
        if 0 <= row < height and 0 <= column < width:
            jacobian[(o * oh + y) * ow + x, (c * height + row) * width + column] += \
                weight[o, y, x, c, i, j]
    return jacobian


@pytest.fixture(params=range(len(LOCALS)), ids=lambda i: f"local{i}")
def local(request):
    kind = LOCALS[request.param]
    rng = np.random.default_rng(10 + request.param)
    weight = rng.standard_normal(kind.parameter_shape(kind.n_pre, kind.n_post))
    return kind, np.where(kind.live_weights(), weight, 0.0), rng


def test_locally_connected_operations_are_its_jacobian(local):
    kind, weight, rng = local
    assert weight.shape == (kind.out_channels, *kind.out_size, kind.in_channels, *kind.kernel)
    jacobian = naive_local_jacobian(kind, weight)
    pre = rng.standard_normal((3, kind.n_pre))
    post = rng.standard_normal((3, kind.n_post))
    np.testing.assert_allclose(kind.propagate(weight, pre), pre @ jacobian.T, atol=1e-12)
    np.testing.assert_allclose(kind.transpose(weight, post), post @ jacobian, atol=1e-12)
    # no sum over positions: the gradient of W[o,y,x,c,i,j] is post[o,y,x] times its input
    expected = np.zeros(weight.shape)
    for index in np.ndindex(weight.shape):
        unit = np.zeros(weight.shape)
        unit[index] = 1.0
        expected[index] = np.sum(post * (pre @ naive_local_jacobian(kind, unit).T))
    np.testing.assert_allclose(kind.gradient(post, pre), expected, atol=1e-12)
    # the dead elements (inputs in the padding) never get a gradient
    assert np.all(kind.gradient(post, pre)[~kind.live_weights()] == 0)


@pytest.mark.parametrize("transposed", [False, True])
def test_locally_connected_synapses_each_hold_their_own_weight(local, transposed):
    kind, weight, _ = local
    i, j = kind.synapse_indices(weight.shape, transposed)
    values = kind.flatten(weight, transposed)
    pre, post = (j, i) if transposed else (i, j)
    rebuilt = np.zeros((kind.n_post, kind.n_pre))
    np.add.at(rebuilt, (post, pre), values)
    np.testing.assert_allclose(rebuilt, naive_local_jacobian(kind, weight), atol=1e-12)
    elements = kind.kernel_elements(transposed)
    assert len(np.unique(elements)) == len(elements) == kind.live_weights().sum()
    np.testing.assert_array_equal(kind.unflatten(values, weight.shape, transposed), weight)


@pytest.mark.parametrize("kind", KINDS + LOCALS + POOLS
                         + [ConvTranspose2d(KINDS[1]), ConvTranspose2d(LOCALS[1])],
                         ids=lambda k: f"{k.name}")
def test_synapse_count_is_the_number_of_synapses_listed(kind):
    shape = kind.parameter_shape(kind.n_pre, kind.n_post)
    i, j = kind.synapse_indices(shape, False)
    assert kind.synapse_count(shape) == len(i) == len(j)
    assert Dense().synapse_count((3, 7)) == 21


def test_locally_connected_init_zeroes_dead_weights_and_normalises_each_neuron():
    config = SPIDEConfig(model="mnist-local-f-small", input_init="unit_row_norm",
                         hidden_init="unit_row_norm", feedback_init="unit_row_norm")
    params = init_parameters(config, 64, 10, seed=3)
    topology = Topology.from_config(config, 64, 10)
    for connection in topology.spiking + (topology.input,):
        weight = params[connection.parameter]
        assert np.all(weight[~connection.kind.live_weights()] == 0)
    first = params["input_weight"]                            # (8, 8, 8, 1, 3, 3)
    norms = np.linalg.norm(first.reshape(8 * 8 * 8, -1), axis=1)
    np.testing.assert_allclose(norms, 1.0)


@pytest.mark.parametrize("model", ["mnist-conv-f-small", "mnist-lenet-small",
                                   "mnist-local-f-small"])
def test_sparse_backward_steps_equal_the_dense_transposed_maps(model, monkeypatch):
    """The reference's backward stage through sparse synapse matrices (every step) and
    through the kinds' dense transposed maps (no step) agrees to rounding, spike for spike."""
    from spide_brian import models, reference
    from spide_brian.topology import Topology

    config = SPIDEConfig(model=model, time_step=12, time_step_back=40, dropout=0.2)
    n_inputs = models.MODELS[model].in_channels * 8 * 8
    params = init_parameters(config, n_inputs, 10, seed=2)
    topology = Topology.from_config(config, n_inputs, 10)
    rng = np.random.default_rng(5)
    x = rng.uniform(0.0, 1.0, (6, n_inputs))
    from spide_brian.dropout import dropout_masks

    masks = dropout_masks(config, topology, 0, 0, len(x))
    forward = reference.forward(params, config, x, topology=topology, dropout=masks)
    g = rng.normal(0.0, 0.5, (len(x), topology.layers[topology.readout.pre].size))
    results = {}
    for density in (0.0, 1.0):
        monkeypatch.setattr(reference, "SPARSE_BACKWARD_DENSITY", density)
        results[density] = reference.backward(params, config, forward.masks, g,
                                              topology=topology, dropout=masks)
    dense, sparse = results[0.0], results[1.0]
    assert sum(int(c.sum()) for c in dense.spike_counts) > 0
    for a, b in zip(dense.spike_counts, sparse.spike_counts):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(dense.signed_counts, sparse.signed_counts):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(dense.beta, sparse.beta):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
