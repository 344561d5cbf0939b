"""The Brian2 SPIDE model reproduces the numpy reference (``timing='brian'``) exactly.

Runtime (numpy target) tests build small nets for every case; the cpp_standalone tests
compile one program per network structure (two builds in all) and run the IF/LIF and reset
variants through ``run_args``.
"""
import dataclasses
import os

import numpy as np
import pytest
from brian2 import Network, SpikeMonitor, defaultclock, device, prefs, second, set_device

from spide_brian import reference as ref
from spide_brian.brian_backend import BrianTrainer
from spide_brian.config import SPIDEConfig
from spide_brian.devices import capabilities
from spide_brian.network import SPIDENetwork
from spide_brian.parameters import init_parameters
from spide_brian.schedule import SampleTables
from spide_brian.topology import Topology
from spide_brian.training import batch_major

N_INPUTS, N_CLASSES, N_SAMPLES, BATCH = 5, 3, 8, 3   # batches of 3, 3 and 2 samples
#: Runs of whole mini-batches (one padding slot): the SGD step runs on a mini-batch clock
#: where the device allows it. A capacity of N_SAMPLES exercises the per-slot fallback.
CAPACITY = 9

STRUCTURES = {"one_layer": (8,), "chain": (6, 7, 5)}
VARIANTS = [(1.0, "modified"), (1.0, "standard"), (0.9, "modified"), (0.9, "standard")]


def make_case(sizes, leaky, reset):
    config = SPIDEConfig(hidden_sizes=sizes, time_step=10, time_step_back=16,
                         batch_size=BATCH, timing="brian", leaky=leaky, reset=reset,
                         scale_factor=300.0, lr=0.5, feedback_norm=1.5)
    params = init_parameters(config, N_INPUTS, N_CLASSES, seed=1)
    rng = np.random.default_rng(3)
    for layer in Topology.from_config(config, N_INPUTS, N_CLASSES).layers:
        params[layer.bias] = rng.uniform(0.2, 0.6, layer.size)   # keeps every layer active
    x = rng.uniform(0.0, 2.0, (N_SAMPLES, N_INPUTS))
    y = rng.integers(0, N_CLASSES, N_SAMPLES)
    return config, params, x, y


def make_frame_case(sizes, leaky, reset):
    """A case with event frames: every sample has T different frames (counts 0..3, some
    inputs silent at some steps)."""
    config, params, x, y = make_case(sizes, leaky, reset)
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 4, (N_SAMPLES, config.time_step, N_INPUTS)) * 0.5
    frames[:, ::3, 0] = 0.0
    return config, params, frames, y


def reference_training(config, params, x, y, membrane=None, epochs=1):
    """The reference's training of ``x`` in mini-batches, ``epochs`` times in the same order
    with one optimiser (``membrane``: in volts, see :func:`spide_brian.reference.forward`):
    parameters, momenta, forward counts and signed backward counts per sample (of every
    epoch, one after the other)."""
    params = {k: v.copy() for k, v in params.items()}
    optimizer = ref.SGDMomentum(config)
    forward, backward = [], []
    for _ in range(epochs):
        for start in range(0, len(x), config.batch_size):
            stop = start + config.batch_size
            result, _ = ref.train_batch(params, config, optimizer, batch_major(x[start:stop]),
                                        y[start:stop], membrane=membrane)
            forward.append(result.forward.counts)
            backward.append(result.backward.signed_counts)
    layers = range(config.n_layers)
    return (params, optimizer.state_dict(),
            [np.concatenate([f[l] for f in forward]) for l in layers],
            [np.concatenate([b[l] for b in backward]) for l in layers])


def assert_trainers_agree_over_epochs(brian, reference, x, y, epochs=2):
    """``epochs`` shuffled epochs on both trainers: the same spike counts per epoch and the
    same parameters after them, to rounding."""
    for epoch in range(epochs):
        got, want = brian.train_epoch(x, y, epoch), reference.train_epoch(x, y, epoch)
        assert got["forward_spikes"] == want["forward_spikes"]
        assert got["backward_spikes"] == want["backward_spikes"]
    for name, value in reference.params.items():
        np.testing.assert_allclose(brian.params[name], value, rtol=1e-9,
                                   atol=1e-12 * max(1.0, np.abs(value).max(initial=0.0)))


def assert_matches_reference(config, params, x, y, records, trained, buffers):
    ref_params, ref_buffers, ref_forward, ref_backward = reference_training(config, params, x, y)
    for layer in range(config.n_layers):
        assert ref_backward[layer].any(), "the case must exercise the backward stage"
        np.testing.assert_array_equal(records["forward_counts"][layer], ref_forward[layer])
        np.testing.assert_array_equal(records["backward_signed"][layer], ref_backward[layer])
    for name, value in ref_params.items():
        assert not np.allclose(value, params[name]) or name.startswith("bias") or not value.size
        np.testing.assert_allclose(trained[name], value, rtol=1e-9,
                                   atol=1e-12 * np.abs(value).max(initial=0.0))
        np.testing.assert_allclose(buffers[name], ref_buffers[name], rtol=1e-9,
                                   atol=1e-12 * max(1.0, np.abs(ref_buffers[name]).max(initial=0.0)))


def run_runtime(config, params, x, y, extra=(), capacity=CAPACITY, caps=None, one_copy=None):
    """Train ``x`` (static or frames) in one run on the numpy target with the rules of
    ``caps`` (default: the numpy row), under ``caps.step_order`` if it has one."""
    caps = caps or capabilities("numpy")
    prefs.codegen.target = "numpy"
    tables = SampleTables.build(x, y, capacity, config)
    model = SPIDENetwork(config, N_INPUTS, N_CLASSES, capacity, device=caps, tables=tables,
                         frame_input=x.ndim == 3, one_copy=one_copy)
    model.assign(params)
    network = Network(*model.objects, *extra)
    if caps.step_order is not None:
        network.schedule = list(caps.step_order)
    network.run(model.run_duration, namespace={})
    return model


def single_clock_rules():
    """The numpy row with the fallbacks of the capability table (as on brian2genn)."""
    return dataclasses.replace(capabilities("numpy"), slow_clock_summed=False,
                               batch_clock_update=False, event_reads_source=False)


@pytest.mark.parametrize("structure", sorted(STRUCTURES))
@pytest.mark.parametrize("leaky,reset", VARIANTS)
def test_runtime_matches_reference(structure, leaky, reset):
    config, params, x, y = make_case(STRUCTURES[structure], leaky, reset)
    model = run_runtime(config, params, x, y)
    assert model.batch_dt is not None
    trained, buffers = model.read_parameters()
    assert_matches_reference(config, params, x, y, model.per_sample(len(x)), trained, buffers)
    assert all(v == 0.0 for v in model.copy_mismatch().values())


@pytest.mark.parametrize("structure", sorted(STRUCTURES))
def test_runtime_if_couples_under_lif_neurons_match_reference(structure):
    """``couple_neuron='if'``: LIF forward neurons (leak 0.9), couples without leak and beta
    the plain mean of their spikes (which trains other weights than leaky couples)."""
    config, params, x, y = make_case(STRUCTURES[structure], 0.9, "modified")
    config = config.replace(couple_neuron="if")
    model = run_runtime(config, params, x, y)
    trained, buffers = model.read_parameters()
    assert_matches_reference(config, params, x, y, model.per_sample(len(x)), trained, buffers)
    leaky_couples = reference_training(config.replace(couple_neuron="lif"), params, x, y)
    if_couples = reference_training(config, params, x, y)
    assert any(not np.allclose(leaky_couples[0][name], if_couples[0][name], rtol=1e-6)
               for name in if_couples[0])


@pytest.mark.parametrize("structure", sorted(STRUCTURES))
@pytest.mark.parametrize("one_copy", [True, False])
def test_one_copy_and_copies_match_reference(structure, one_copy):
    """Each weight held once (parameter groups read through linked variables) and one
    learning copy per pathway train the same network as the reference."""
    if one_copy and not capabilities("numpy").shared_parameters:
        pytest.skip("this Brian2 links no parameters on the numpy target (capability "
                    "shared_parameters needs Brian2 >= 2.6)")
    config, params, x, y = make_case(STRUCTURES[structure], 0.9, "modified")
    model = run_runtime(config, params, x, y, one_copy=one_copy)
    weights = [c.parameter for c in model.topology.connections]
    if one_copy:
        assert sorted(model.shared) == sorted(weights)
        for copies in model.copies.values():   # views: no weight, gradient or momentum
            assert all("grad" not in c.synapses.variables for c in copies)
    else:
        assert not model.shared
        assert all("grad" in c.synapses.variables for name in weights
                   for c in model.copies[name])
    trained, buffers = model.read_parameters()
    assert_matches_reference(config, params, x, y, model.per_sample(len(x)), trained, buffers)
    assert all(v == 0.0 for v in model.copy_mismatch().values())


def test_one_copy_is_refused_without_linked_parameters():
    config, _, _, _ = make_case((4,), 1.0, "modified")
    with pytest.raises(ValueError, match="shared_parameters"):
        SPIDENetwork(config, N_INPUTS, N_CLASSES, CAPACITY, device="genn", one_copy=True)


@pytest.mark.parametrize("structure", sorted(STRUCTURES))
@pytest.mark.parametrize("leaky,reset", [(0.9, "modified"), (1.0, "standard")])
def test_runtime_frames_match_reference(structure, leaky, reset):
    """Event frames, one per forward step (a per-step TimedArray); F learns from the
    time-mean frame."""
    config, params, frames, y = make_frame_case(STRUCTURES[structure], leaky, reset)
    model = run_runtime(config, params, frames, y)
    assert model.frame_input and "frames" in model.namespace
    # sparse frames travel as input events (no summed F x)
    assert not model.copies["input_weight"][0].synapses.summed_updaters
    trained, buffers = model.read_parameters()
    assert_matches_reference(config, params, frames, y, model.per_sample(len(frames)),
                             trained, buffers)
    # the static input with the mean frame would train differently: the frames matter
    static, _, _, _ = reference_training(config, params, frames.mean(axis=1), y)
    assert not np.allclose(static["input_weight"], trained["input_weight"])


def test_frames_as_summed_input_match_reference():
    """Where events may not read their source (GeNN's row), frames reach layer 0 as a
    summed variable every step instead of input events; the result is the same."""
    config, params, frames, y = make_frame_case(STRUCTURES["chain"], 0.9, "modified")
    model = run_runtime(config, params, frames, y, caps=single_clock_rules())
    assert "input_current_post" in model.copies["input_weight"][0].synapses.summed_updaters
    trained, buffers = model.read_parameters()
    assert_matches_reference(config, params, frames, y, model.per_sample(len(frames)),
                             trained, buffers)


def test_frame_model_rejects_static_tables():
    config, params, frames, y = make_frame_case(STRUCTURES["one_layer"], 1.0, "modified")
    model = SPIDENetwork(config, N_INPUTS, N_CLASSES, CAPACITY, frame_input=True)
    static = SampleTables.build(frames.mean(axis=1), y, CAPACITY)
    with pytest.raises(ValueError, match=r"frame input tables of shape \(9, 10, 5\)"):
        model.table_values(static)
    trainer = BrianTrainer(config, params, device="numpy")
    with pytest.raises(ValueError, match=r"\(n, 10, 5\)"):
        trainer.train_epoch(frames[:, :4], y)
    with pytest.raises(ValueError, match="NaN"):
        trainer.train_epoch(np.full_like(frames, np.nan), y)


def test_single_clock_fallbacks_match_reference():
    """The fallback paths of the capability table (as on brian2genn) on the numpy target:
    every summed variable every step, the SGD step every slot, g as a summed variable."""
    config, params, x, y = make_case(STRUCTURES["chain"], 0.9, "modified")
    model = run_runtime(config, params, x, y, caps=single_clock_rules())
    assert model.batch_dt is None
    trained, buffers = model.read_parameters()
    assert_matches_reference(config, params, x, y, model.per_sample(len(x)), trained, buffers)
    assert all(v == 0.0 for v in model.copy_mismatch().values())


def test_user_network_with_own_monitor():
    """SPIDE learning attached to a user-built Network next to the user's own monitor.

    The capacity is not a multiple of the batch size: the SGD step runs every slot.
    """
    config, params, x, y = make_case(STRUCTURES["one_layer"], 1.0, "modified")
    prefs.codegen.target = "numpy"
    tables = SampleTables.build(x, y, len(x), config)
    model = SPIDENetwork(config, N_INPUTS, N_CLASSES, len(x), tables=tables, name="mine")
    assert model.batch_dt is None
    model.assign(params)
    spikes = SpikeMonitor(model.layers[0], name="users_monitor")
    positive = SpikeMonitor(model.positives[0], name="users_positive_monitor")
    negative = SpikeMonitor(model.negatives[0], name="users_negative_monitor")
    net = Network()
    net.add(model.objects)
    net.add(spikes, positive, negative)
    net.run(model.run_duration, namespace={})
    records = model.per_sample(len(x))
    trained, buffers = model.read_parameters()
    assert_matches_reference(config, params, x, y, records, trained, buffers)
    # forward spikes come from the forward group only, couple spikes from the two halves
    # (the replay route, brian2 < 2.6, adds two replay spikes per neuron and slot)
    replay = 2 * len(model.layers[0]) * len(x) if model.route.name == "replay" else 0
    assert spikes.num_spikes == records["forward_counts"][0].sum() + replay
    assert positive.num_spikes == (records["backward_counts"][0].sum()
                                   + records["backward_signed"][0].sum()) // 2 + replay
    assert negative.num_spikes == replay + (records["backward_counts"][0].sum()
                                   - records["backward_signed"][0].sum()) // 2


def test_trainer_runtime_epochs_and_evaluation():
    """One runtime model serves every run of the trainer (training and evaluation): each
    run starts from the stored state at time 0 with the trainer's parameters loaded; two
    epochs with an evaluation between them equal the reference's two epochs."""
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
    network = trainer._network
    result = trainer.evaluate(x, y)
    logits, _ = ref.predict(trainer.params, config, x)
    np.testing.assert_array_equal(result["predictions"], np.argmax(logits, axis=1))
    assert all(np.array_equal(before[k], trainer.params[k]) for k in before)
    assert trainer._network is network
    trainer.train_epoch(x, y, epoch=1)
    assert trainer._network is network
    ref_params, ref_buffers, _, _ = reference_training(config, params, x, y, epochs=2)
    for name in ref_params:
        np.testing.assert_allclose(trainer.params[name], ref_params[name], rtol=1e-9, atol=1e-14)


def test_trainer_chunks_long_data_into_runs():
    """A capacity below the data size (4, rounded up to 6 = two mini-batches): the epoch
    runs in two chunks (6 samples, then 2 padded to 6) and equals the reference."""
    config, params, x, y = make_case(STRUCTURES["one_layer"], 0.9, "standard")
    trainer = BrianTrainer(config, params, device="numpy", capacity=4)
    stats = trainer.train_epoch(x, y)
    assert trainer.capacity == 6 and stats["samples"] == len(x)
    ref_params, _, _, _ = reference_training(config, params, x, y)
    for name in ref_params:
        np.testing.assert_allclose(trainer.params[name], ref_params[name], rtol=1e-9, atol=1e-14)


#: Neuron and synapse variants run through the same compiled program: (leaky, changes).
MODEL_VARIANTS = [(1.0, dict(refractory_steps=2)), (0.9, dict(refractory_steps=3, gate="slope")),
                  (0.9, dict(synapse="exponential", synapse_leak=0.7, refractory_steps=1)),
                  (0.9, dict(couple_neuron="if"))]


def _check_standalone_variants(model, structure):
    """Run every IF/LIF and reset variant, refractory periods with both gates and exponential
    synapses through the compiled ``model`` with run_args (the variants' constants are
    run_args)."""
    cases = [(make_case(STRUCTURES[structure], leaky, reset), {}) for leaky, reset in VARIANTS]
    cases += [(make_case(STRUCTURES[structure], leaky, "modified"), changes)
              for leaky, changes in MODEL_VARIANTS]
    for (config, params, x, y), changes in cases:
        config = config.replace(**changes)
        tables = SampleTables.build(x, y, CAPACITY, config)
        run_args = dict(model.constant_values(config))
        run_args.update(model.state_values(params))
        run_args.update(model.table_values(tables))
        device.run(run_args=run_args, with_output=False)
        trained, buffers = model.read_parameters()
        assert_matches_reference(config, params, x, y, model.per_sample(len(x)),
                                 trained, buffers)
        assert all(v == 0.0 for v in model.copy_mismatch().values())


@pytest.mark.standalone
def test_standalone_chain_matches_reference(tmp_path):
    """One compiled program of the three-layer chain runs all four variants and the
    refractory and synapse variants."""
    config, _, _, _ = make_case(STRUCTURES["chain"], 1.0, "modified")
    try:
        set_device("cpp_standalone", build_on_run=False)
        device.activate(build_on_run=False)
        model = SPIDENetwork(config, N_INPUTS, N_CLASSES, CAPACITY, device="cpp_standalone")
        Network(*model.objects).run(model.run_duration, namespace={})
        device.build(directory=str(tmp_path / "build"), compile=True, run=False,
                     with_output=False)
        _check_standalone_variants(model, "chain")
    finally:
        device.reinit()
        set_device("runtime")


@pytest.mark.standalone
@pytest.mark.long
def test_standalone_trainer_reuses_program(tmp_path):
    """The trainer compiles once; its program (one feedback layer) then also runs all four
    variants exactly (one build serves both checks). Without SPIDE_RUN_LONG, the frames
    trainer test below checks the reuse and the chain test the variants."""
    config, params, x, y = make_case(STRUCTURES["one_layer"], 1.0, "modified")
    try:
        trainer = BrianTrainer(config, params, device="cpp_standalone",
                               build_dir=str(tmp_path / "build"))
        first = trainer.train_epoch(x, y)
        compile_s = trainer.timings["compile_s"]
        second = trainer.train_epoch(x, y)
        assert trainer.timings["compile_s"] == compile_s     # no second build
        assert first["samples"] == second["samples"] == len(x)
        expected, _, _, _ = reference_training(config, params, x, y, epochs=2)
        for name in expected:
            np.testing.assert_allclose(trainer.params[name], expected[name], rtol=1e-9,
                                       atol=1e-14)
        result = trainer.evaluate(x[:5], y[:5])
        logits, _ = ref.predict(trainer.params, config, x[:5])
        np.testing.assert_array_equal(result["predictions"], np.argmax(logits, axis=1))
        assert trainer.model.copy_mismatch() == {k: 0.0 for k in trainer.model.copies}
        assert trainer.model.capacity == CAPACITY
        _check_standalone_variants(trainer.model, "one_layer")
    finally:
        device.reinit()
        set_device("runtime")


@pytest.mark.standalone
def test_standalone_trainer_frames(tmp_path):
    """Event frames on cpp_standalone, with two integration steps per SPIDE step
    (docs/biophysics.md B9; one compile checks both): training (run_args carry the per-step
    table) and evaluation (the evaluation program of a worker process) equal the reference,
    and the later epochs rerun the program without building it again."""
    config, params, frames, y = make_frame_case(STRUCTURES["one_layer"], 0.9, "modified")
    config = config.replace(integration_steps=2, vth=0.3)
    try:
        trainer = BrianTrainer(config, params, device="cpp_standalone",
                               build_dir=str(tmp_path / "build"))
        stats = trainer.train_epoch(frames, y)
        assert stats["samples"] == len(y) and stats["backward_spikes"] > 0
        _, _, ref_forward, _ = reference_training(config, params, frames, y)
        np.testing.assert_array_equal(trainer.last_records["forward_counts"][0], ref_forward[0])
        assert ref_forward[0].max() > config.time_step     # more than one spike in a step
        compile_s = trainer.timings["compile_s"]
        trainer.train_epoch(frames, y)
        assert trainer.timings["compile_s"] == compile_s   # no second build
        ref_params, _, _, _ = reference_training(config, params, frames, y, epochs=2)
        for name in ref_params:
            np.testing.assert_allclose(trainer.params[name], ref_params[name], rtol=1e-9,
                                       atol=1e-14)
        result = trainer.evaluate(frames, y)
        logits, _ = ref.predict(trainer.params, config, batch_major(frames))
        np.testing.assert_array_equal(result["predictions"], np.argmax(logits, axis=1))
        # the evaluation program: compiled and run by a worker process, in a session of
        # its own; the training program stays built
        assert trainer.shaped_evaluation
        worker = trainer._evaluation._process
        assert trainer.timings["evaluation_compile_s"] > 0
        assert trainer.timings["compile_s"] == compile_s
        assert os.getsid(worker.pid) == worker.pid != os.getsid(0)
        again = trainer.evaluate(frames, y)
        assert trainer._evaluation._process is worker and again["loss_sum"] == result["loss_sum"]
        trainer.train_epoch(frames, y)
        assert trainer.timings["compile_s"] == compile_s
        trainer.close()
        assert worker.poll() == 0       # asked to end, it ended on its own
    finally:
        device.reinit()
        set_device("runtime")


def test_standalone_make_jobs_are_bounded_by_the_cores():
    from spide_brian.devices import bound_make_jobs

    pref = "devices.cpp_standalone.extra_make_args_unix"
    saved = list(prefs[pref])
    try:
        prefs[pref] = ["-j"]
        bound_make_jobs()
        assert prefs[pref] == [f"-j{os.cpu_count() or 1}"]
        prefs[pref] = ["-j3", "-k"]         # the user's own choice stays
        bound_make_jobs()
        assert prefs[pref] == ["-j3", "-k"]
    finally:
        prefs[pref] = saved


def test_a_standalone_model_bounds_the_make_jobs():
    """Building the model for a standalone device bounds Brian2's unbounded ``make -j`` (all
    compilers at once) to one job per core; a runtime model leaves the setting alone."""
    pref = "devices.cpp_standalone.extra_make_args_unix"
    saved = list(prefs[pref])
    config = SPIDEConfig(hidden_sizes=(5,), time_step=4, time_step_back=4)
    try:
        prefs[pref] = ["-j"]
        SPIDENetwork(config, 4, 3, 2, device="numpy")
        assert prefs[pref] == ["-j"]
        set_device("cpp_standalone", build_on_run=False)
        SPIDENetwork(config, 4, 3, 2, device="cpp_standalone")
        assert prefs[pref] == [f"-j{os.cpu_count() or 1}"]
    finally:
        prefs[pref] = saved
        device.reinit()
        set_device("runtime")


def test_model_step_keeps_long_standalone_runs_in_step():
    """cpp_standalone matches clocks to 1e-14 s. With a 0.1 ms step the slot clock of a
    10112-sample run (137-step slots, as F400 on Fashion-MNIST) drifts beyond that; with
    MODEL_DT (a power of two of seconds) every slot time is exact."""
    from brian2 import ms
    from spide_brian.network import MODEL_DT, check_step_duration

    slots = np.arange(10113)
    for dt, drifts in ((float(0.1 * ms), True), (float(MODEL_DT), False)):
        slot_dt = 137 * dt
        gap = np.abs(slots * slot_dt - (slots * 137) * dt)
        assert (gap.max() > 1e-14) == drifts
    with pytest.raises(ValueError, match="power of two"):
        check_step_duration(0.1 * ms, 10112 * 137 * 0.1 * ms)
    check_step_duration(MODEL_DT, 10112 * 137 * MODEL_DT)
    check_step_duration(0.1 * ms, 0.5 * second)
    config, _, _, _ = make_case(STRUCTURES["one_layer"], 1.0, "modified")
    saved = defaultclock.dt
    try:
        defaultclock.dt = 0.1 * ms
        with pytest.raises(ValueError, match="defaultclock.dt"):
            SPIDENetwork(config, N_INPUTS, N_CLASSES, 10000, device="cpp_standalone")
    finally:
        defaultclock.dt = saved
