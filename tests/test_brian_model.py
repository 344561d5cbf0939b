"""The Brian2 SPIDE model reproduces the numpy reference (``timing='brian'``) exactly.

Runtime (numpy target) tests build small nets for every case; the cpp_standalone tests
compile one program per network structure and run the IF/LIF and reset variants through
``run_args``.
"""
import numpy as np
import pytest
from brian2 import Network, SpikeMonitor, device, prefs, set_device

from spide_brian import reference as ref
from spide_brian.brian_backend import BrianTrainer
from spide_brian.config import SPIDEConfig
from spide_brian.network import SPIDENetwork
from spide_brian.parameters import init_parameters
from spide_brian.schedule import SampleTables

N_INPUTS, N_CLASSES, N_SAMPLES, BATCH = 5, 3, 8, 3   # batches of 3, 3 and 2 samples

STRUCTURES = {"one_layer": (8,), "chain": (6, 7, 5)}
VARIANTS = [(1.0, "modified"), (1.0, "standard"), (0.9, "modified"), (0.9, "standard")]


def make_case(sizes, leaky, reset):
    config = SPIDEConfig(hidden_sizes=sizes, time_step=10, time_step_back=16,
                         batch_size=BATCH, timing="brian", leaky=leaky, reset=reset,
                         scale_factor=300.0, lr=0.5, feedback_norm=1.5)
    params = init_parameters(config, N_INPUTS, N_CLASSES, seed=1)
    rng = np.random.default_rng(3)
    for layer, size in enumerate(sizes):   # positive biases keep every layer active
        params[f"bias_{layer}"] = rng.uniform(0.2, 0.6, size)
    x = rng.uniform(0.0, 2.0, (N_SAMPLES, N_INPUTS))
    y = rng.integers(0, N_CLASSES, N_SAMPLES)
    return config, params, x, y


def reference_training(config, params, x, y):
    params = {k: v.copy() for k, v in params.items()}
    optimizer = ref.SGDMomentum(config)
    forward, backward = [], []
    for start in range(0, len(x), config.batch_size):
        stop = start + config.batch_size
        result, _ = ref.train_batch(params, config, optimizer, x[start:stop], y[start:stop])
        forward.append(result.forward.counts)
        backward.append(result.backward.signed_counts)
    layers = range(config.n_layers)
    return (params, optimizer.state_dict(),
            [np.concatenate([f[l] for f in forward]) for l in layers],
            [np.concatenate([b[l] for b in backward]) for l in layers])


def assert_matches_reference(config, params, x, y, records, trained, buffers):
    ref_params, ref_buffers, ref_forward, ref_backward = reference_training(config, params, x, y)
    for layer in range(config.n_layers):
        assert ref_backward[layer].any(), "the case must exercise the backward stage"
        np.testing.assert_array_equal(records["forward_counts"][layer], ref_forward[layer])
        np.testing.assert_array_equal(records["backward_signed"][layer], ref_backward[layer])
    for name, value in ref_params.items():
        assert not np.allclose(value, params[name]) or name.startswith("bias")
        np.testing.assert_allclose(trained[name], value, rtol=1e-9, atol=1e-12 * np.abs(value).max())
        np.testing.assert_allclose(buffers[name], ref_buffers[name], rtol=1e-9,
                                   atol=1e-12 * max(1.0, np.abs(ref_buffers[name]).max()))


def run_runtime(config, params, x, y, extra=()):
    prefs.codegen.target = "numpy"
    tables = SampleTables.build(x, y, len(x), batch_size=config.batch_size,
                                scale_factor=config.scale_factor)
    model = SPIDENetwork(config, N_INPUTS, N_CLASSES, len(x), tables=tables)
    model.assign(params)
    Network(*model.objects, *extra).run(model.run_duration, namespace={})
    return model


@pytest.mark.parametrize("structure", sorted(STRUCTURES))
@pytest.mark.parametrize("leaky,reset", VARIANTS)
def test_runtime_matches_reference(structure, leaky, reset):
    config, params, x, y = make_case(STRUCTURES[structure], leaky, reset)
    model = run_runtime(config, params, x, y)
    trained, buffers = model.read_parameters()
    assert_matches_reference(config, params, x, y, model.per_sample(len(x)), trained, buffers)
    assert all(v == 0.0 for v in model.copy_mismatch().values())


def test_user_network_with_own_monitor():
    """SPIDE learning attached to a user-built Network next to the user's own monitor."""
    config, params, x, y = make_case(STRUCTURES["one_layer"], 1.0, "modified")
    prefs.codegen.target = "numpy"
    tables = SampleTables.build(x, y, len(x), batch_size=config.batch_size,
                                scale_factor=config.scale_factor)
    model = SPIDENetwork(config, N_INPUTS, N_CLASSES, len(x), tables=tables, name="mine")
    model.assign(params)
    spikes = SpikeMonitor(model.layers[0], name="users_monitor")
    negative = SpikeMonitor(model.negatives[0], name="users_negative_monitor")
    net = Network()
    net.add(model.objects)
    net.add(spikes, negative)
    net.run(model.run_duration, namespace={})
    records = model.per_sample(len(x))
    _, _, ref_forward, _ = reference_training(config, params, x, y)
    # the forward group emits the forward spikes and the positive couple spikes
    positive = (records["backward_counts"][0].sum() + records["backward_signed"][0].sum()) // 2
    assert spikes.num_spikes == records["forward_counts"][0].sum() + positive
    assert negative.num_spikes == (records["backward_counts"][0].sum()
                                   - records["backward_signed"][0].sum()) // 2
    np.testing.assert_array_equal(records["forward_counts"][0], ref_forward[0])


def test_trainer_runtime_epochs_and_evaluation():
    config, params, x, y = make_case(STRUCTURES["one_layer"], 1.0, "modified")
    trainer = BrianTrainer(config, params, device="numpy")
    stats = trainer.train_epoch(x, y)
    assert stats["samples"] == len(x) and stats["backward_spikes"] > 0
    ref_params, ref_buffers, _, _ = reference_training(config, params, x, y)
    for name in ref_params:
        np.testing.assert_allclose(trainer.params[name], ref_params[name], rtol=1e-9, atol=1e-14)
        np.testing.assert_allclose(trainer.optimizer_state()[name], ref_buffers[name],
                                   rtol=1e-9, atol=1e-14)
    before = {k: v.copy() for k, v in trainer.params.items()}
    result = trainer.evaluate(x, y)
    logits, _ = ref.predict(trainer.params, config, x)
    np.testing.assert_array_equal(result["predictions"], np.argmax(logits, axis=1))
    assert all(np.array_equal(before[k], trainer.params[k]) for k in before)


@pytest.fixture(scope="module")
def standalone_models(tmp_path_factory):
    """One compiled program per network structure, reused for every variant."""
    return {}


def _standalone_model(cache, tmp_path_factory, structure):
    if structure in cache:
        return cache[structure]
    config, params, x, y = make_case(STRUCTURES[structure], 1.0, "modified")
    if cache:
        device.reinit()
    set_device("cpp_standalone", build_on_run=False)
    device.activate(build_on_run=False)
    model = SPIDENetwork(config, N_INPUTS, N_CLASSES, len(x), device="cpp_standalone")
    Network(*model.objects).run(model.run_duration, namespace={})
    directory = str(tmp_path_factory.mktemp(f"standalone_{structure}"))
    device.build(directory=directory, compile=True, run=False, with_output=False)
    cache.clear()
    cache[structure] = model
    return model


@pytest.mark.standalone
@pytest.mark.parametrize("structure", sorted(STRUCTURES))
def test_standalone_matches_reference(structure, standalone_models, tmp_path_factory):
    try:
        model = _standalone_model(standalone_models, tmp_path_factory, structure)
        for leaky, reset in VARIANTS:
            config, params, x, y = make_case(STRUCTURES[structure], leaky, reset)
            tables = SampleTables.build(x, y, len(x), batch_size=config.batch_size,
                                        scale_factor=config.scale_factor)
            run_args = dict(model.constant_values(config))
            run_args.update(model.state_values(params))
            run_args.update(model.table_values(tables))
            device.run(run_args=run_args, with_output=False)
            trained, buffers = model.read_parameters()
            assert_matches_reference(config, params, x, y, model.per_sample(len(x)),
                                     trained, buffers)
            assert all(v == 0.0 for v in model.copy_mismatch().values())
    finally:
        device.reinit()
        set_device("runtime")


@pytest.mark.standalone
def test_standalone_trainer_reuses_program(tmp_path):
    config, params, x, y = make_case(STRUCTURES["one_layer"], 1.0, "modified")
    try:
        trainer = BrianTrainer(config, params, device="cpp_standalone",
                               build_dir=str(tmp_path / "build"))
        first = trainer.train_epoch(x, y)
        compile_s = trainer.timings["compile_s"]
        second = trainer.train_epoch(x, y)
        assert trainer.timings["compile_s"] == compile_s     # no second build
        assert first["samples"] == second["samples"] == len(x)
        expected = {k: v.copy() for k, v in params.items()}
        optimizer = ref.SGDMomentum(config)
        for _ in range(2):
            for start in range(0, len(x), BATCH):
                ref.train_batch(expected, config, optimizer, x[start:start + BATCH],
                                y[start:start + BATCH])
        for name in expected:
            np.testing.assert_allclose(trainer.params[name], expected[name], rtol=1e-9,
                                       atol=1e-14)
        result = trainer.evaluate(x[:5], y[:5])
        logits, _ = ref.predict(trainer.params, config, x[:5])
        np.testing.assert_array_equal(result["predictions"], np.argmax(logits, axis=1))
        assert trainer.model.copy_mismatch() == {k: 0.0 for k in trainer.model.copies}
    finally:
        device.reinit()
        set_device("runtime")
