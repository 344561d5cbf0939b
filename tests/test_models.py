"""Named convolutional feedback networks in the numpy reference: their structure, exact
implicit gradients of shared kernels and channel biases, spike gradients against them,
checkpoints and the command line."""
import numpy as np
import pytest

from spide_brian import exact
from spide_brian import reference as ref
from spide_brian.checkpoint import load_checkpoint
from spide_brian.cli import main
from spide_brian.config import SPIDEConfig
from spide_brian.devices import capabilities
from spide_brian.dropout import dropout_masks
from spide_brian.models import MODELS, ModelError
from spide_brian.parameters import init_parameters, prepare_parameters
from spide_brian.topology import Conv2d, ConvTranspose2d, Dense, Topology, dimensions_of

SMALL = SPIDEConfig(model="mnist-conv-f-small", batch_size=16)


def _cosine(u, v):
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


@pytest.mark.parametrize("side", [8, 28])
def test_small_model_takes_digits_and_mnist_sized_images(side):
    topology = Topology.from_config(SMALL, side * side, 10)
    half = side // 2
    assert [layer.size for layer in topology.layers] == [8 * side * side, 16 * half * half,
                                                         16 * half * half]
    assert [layer.channels for layer in topology.layers] == [8, 16, 16]
    kinds = {c.parameter: c.kind for c in topology.connections}
    assert isinstance(kinds["input_weight"], Conv2d)
    assert isinstance(kinds["weight_0"], Conv2d) and kinds["weight_0"].stride == 2
    assert isinstance(kinds["feedback_weight"], ConvTranspose2d)
    assert isinstance(kinds["readout_weight"], Dense)
    shapes = topology.parameter_shapes()
    assert shapes["input_weight"] == (8, 1, 3, 3) and shapes["bias_0"] == (8,)
    assert shapes["feedback_weight"] == (16, 8, 3, 3)      # (C_pre, C_post) of the feedback
    assert shapes["readout_weight"] == (10, 16 * half * half)
    params = init_parameters(SMALL, side * side, 10)
    assert dimensions_of(SMALL, params) == (side * side, 10)
    assert np.linalg.norm(params["feedback_weight"]) <= SMALL.feedback_norm + 1e-12


@pytest.mark.parametrize("name,inputs,neurons,parameters", [
    ("mnist-lenet", 784, 24800, 606740),
    ("mnist-conv-f", 784, 18816, 274826),
    ("alexnet-f", 3 * 32 * 32, 155648, 3706762),
    ("cifarnet-f", 3 * 32 * 32, 229376, 11835146),
    ("dvs-conv-f", 2 * 48 * 48, 294912, 9586186),
])
def test_the_paper_networks_have_their_published_sizes(name, inputs, neurons, parameters):
    """Spiking neurons and parameters as counted from the method's scripts (10 classes;
    CIFAR10-DVS frames resized to 48x48)."""
    topology = Topology.from_config(SPIDEConfig(model=name), inputs, 10)
    assert sum(layer.size for layer in topology.layers) == neurons
    assert sum(int(np.prod(s)) for s in topology.parameter_shapes().values()) == parameters


def test_lenet_pools_without_biases_and_drops_only_its_dense_layer():
    config = SPIDEConfig(model="mnist-lenet-small", batch_size=4)
    topology = Topology.from_config(config, 64, 10)
    kinds = [c.kind for c in topology.connections]
    assert [type(k).__name__ for k in kinds] == ["Conv2d", "AvgPool2d", "Conv2d", "AvgPool2d",
                                                 "Dense", "Dense"]
    assert [layer.bias_size for layer in topology.layers] == [4, 0, 8, 0, 64]
    assert topology.restricted == ()                     # no feedback
    masks = dropout_masks(config, topology, 0, 0, 4)
    assert set(np.unique(masks["weight_3"])) <= {0.0, 2.0} and 0.0 in masks["weight_3"]
    for name in ("input_weight", "weight_0", "weight_1", "weight_2"):
        assert np.all(masks[name] == 1.0), name
    wider = dropout_masks(config.replace(dropout=0.5), topology, 0, 0, 4)
    assert 0.0 in wider["input_weight"]                  # the config's p for the others
    assert set(np.unique(wider["weight_3"])) <= {0.0, 2.0}


@pytest.mark.parametrize("side", [28, 32])
def test_the_input_size_is_found_from_a_dense_layer(side):
    config = SPIDEConfig(model="mnist-lenet-small")
    params = init_parameters(config, side * side, 10)
    assert dimensions_of(config, params) == (side * side, 10)


def test_a_transposed_feedback_starts_at_a_tenth_of_its_unit_filters():
    params = init_parameters(SMALL, 64, 10)
    # 16 filters of unit norm, scaled by 0.1, inside the ball of radius 2
    assert np.linalg.norm(params["feedback_weight"]) == pytest.approx(0.4)


@pytest.mark.parametrize("config,inputs,message", [
    (SPIDEConfig(model="nope"), 64, "unknown model 'nope'"),
    (SMALL, 65, "65 inputs are not 1 square maps"),
])
def test_unusable_models_and_inputs_are_named(config, inputs, message):
    with pytest.raises(ModelError, match=message):
        Topology.from_config(config, inputs, 10)


def _small_problem(seed=0, side=6, samples=3, model="mnist-conv-f-small", feedback_gain=5.0):
    config = SMALL.replace(feedback_norm=1.0, seed=seed, model=model)
    inputs = MODELS[model].in_channels * side * side
    params = init_parameters(config, inputs, 4)
    rng = np.random.default_rng(seed)
    for layer in range(len(MODELS[model].layers)):
        bias = params[f"bias_{layer}"]
        params[f"bias_{layer}"] = bias + rng.uniform(0.2, 0.6, bias.size)
    if "feedback_weight" in params:
        params["feedback_weight"] = params["feedback_weight"] * feedback_gain  # one that matters
    x = rng.uniform(0, 1, (samples, inputs))
    return config, params, x, rng.integers(0, 4, samples)


#: Small models whose kinds the gradient tests cover: transposed-conv feedback; pooling,
#: dense layers without feedback; a convolutional feedback of a layer onto itself; locally
#: connected layers and feedback.
GRADIENT_MODELS = ["mnist-conv-f-small", "mnist-lenet-small", "dvs-conv-f-small",
                   "mnist-local-f-small"]


@pytest.mark.parametrize("model,synapse", [(model, "delta") for model in GRADIENT_MODELS]
                         + [("mnist-conv-f-small", "conductance"),
                            ("mnist-lenet-small", "conductance")])
def test_implicit_gradients_of_kernels_and_channel_biases_pass_finite_differences(model,
                                                                                  synapse):
    """Also with conductance synapses through shared kernels, a transposed feedback and a
    pooling connection (whose positive weights load excitatory conductances only)."""
    # conductances steepen the rate near silence: the feedback that keeps the iteration
    # contractive is weaker (x5 oscillates there, x2 converges in about 10 sweeps)
    config, params, x, labels = _small_problem(model=model, side=8 if "lenet" in model else 6,
                                               feedback_gain=5.0 if synapse == "delta" else 2.0)
    config = config.replace(synapse=synapse)
    grads = exact.implicit_gradients(params, config, x, labels)
    if synapse == "conductance":
        assert all(np.any(load > 0) for load in grads["_equilibrium"].loads[1:])
    rng = np.random.default_rng(5)
    step = 1e-6
    for name in params:
        indices = list(np.ndindex(params[name].shape))
        if not indices:                         # a pooling connection: nothing to learn
            assert grads[name].shape == (0,)
            continue
        for pick in rng.choice(len(indices), size=min(4, len(indices)), replace=False):
            index = indices[pick]
            shifted = {k: v.copy() for k, v in params.items()}
            shifted[name][index] += step
            upper = exact.equilibrium_loss(shifted, config, x, labels)
            shifted[name][index] -= 2 * step
            lower = exact.equilibrium_loss(shifted, config, x, labels)
            numeric = (upper - lower) / (2 * step)
            assert grads[name][index] == pytest.approx(numeric, rel=1e-4, abs=1e-8), \
                (name, index)


@pytest.mark.parametrize("model", GRADIENT_MODELS)
def test_spike_gradients_of_a_conv_network_align_with_the_implicit_gradient(model):
    config, params, x, labels = _small_problem(samples=16, model=model,
                                               side=8 if "lenet" in model else 6)
    config = config.replace(time_step=30, time_step_back=250)
    exact_grads = exact.implicit_gradients(params, config, x, labels)
    kappa = config.scale_factor / len(labels)
    result = ref.forward_backward(
        params, config, x,
        lambda fwd: ref.readout(params, fwd.rates[-1], labels, kappa).gradient_current)
    names = sorted(result.gradients)
    cosine = _cosine(np.concatenate([result.gradients[k].ravel() for k in names]),
                     np.concatenate([exact_grads[k].ravel() for k in names]))
    print(f"spike vs exact gradient cosine, {model}: {cosine:.4f}")
    assert cosine >= 0.9


def test_a_train_step_changes_the_kernels_and_keeps_the_feedback_in_its_ball():
    config, params, x, labels = _small_problem(samples=8)
    config = config.replace(feedback_norm=0.05, lr=5.0)
    params = prepare_parameters(params, config)
    before = {k: v.copy() for k, v in params.items()}
    ref.train_batch(params, config, ref.SGDMomentum(config), x, labels)
    assert np.linalg.norm(params["feedback_weight"]) <= config.feedback_norm * (1 + 1e-12)
    for name in ("input_weight", "weight_0", "weight_1", "bias_0", "readout_weight"):
        assert params[name].shape == before[name].shape
        assert not np.array_equal(params[name], before[name]), name


def test_cli_trains_a_named_model_and_resumes_it(tmp_path):
    out = tmp_path / "run"
    flags = ["train", "--backend", "reference", "--model", "mnist-conv-f-small",
             "--limit", "64", "--batch-size", "16", "--time-step-back", "20", "--quiet",
             "--out", str(out)]
    assert main([*flags, "--epochs", "1"]) == 0
    saved = load_checkpoint(out)
    assert saved["config"].model == "mnist-conv-f-small"
    assert saved["params"]["input_weight"].shape == (8, 1, 3, 3)
    assert main([*flags, "--epochs", "2", "--resume"]) == 0
    assert load_checkpoint(out)["epoch"] == 2
    assert main(["evaluate", str(out)]) == 0


def test_a_device_without_shared_parameters_refuses_a_conv_model_in_one_line(capsys):
    assert main(["train", "--backend", "brian", "--device", "genn", "--model",
                 "mnist-conv-f-small", "--limit", "16", "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "shared_parameters" in err and "--backend reference" in err
    assert "Traceback" not in err


@pytest.mark.skipif(not capabilities("numpy").shared_parameters,
                    reason="shared kernels in the Brian2 model need Brian2 >= 2.6")
def test_the_brian_backend_trains_a_conv_model_as_the_reference(tmp_path):
    """The same command on both backends: the same weights, to rounding."""
    runs = {}
    for backend in ("brian", "reference"):
        out = tmp_path / backend
        device = ["--device", "numpy"] if backend == "brian" else ["--timing", "brian"]
        assert main(["train", "--backend", backend, *device, "--model",
                     "mnist-conv-f-small", "--limit", "24", "--batch-size", "8", "--epochs", "1", "--time-step", "5", "--time-step-back", "8", "--quiet",
                     "--out", str(out)]) == 0
        runs[backend] = load_checkpoint(out)
    for name, value in runs["reference"]["params"].items():
        np.testing.assert_allclose(runs["brian"]["params"][name], value, rtol=1e-9,
                                   atol=1e-12 * max(1.0, np.abs(value).max(initial=0.0)))


def test_info_lists_the_models(capsys):
    assert main(["info", "--models"]) == 0
    out = capsys.readouterr().out
    for name in MODELS:
        assert name in out


def test_model_flag_starts_from_its_scripts_recipe_and_flags_override(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--backend", "reference", "--model", "mnist-lenet-small",
                 "--limit", "32", "--batch-size", "16", "--epochs", "1", "--time-step", "5",
                 "--time-step-back", "10", "--quiet", "--out", str(out)]) == 0
    config = load_checkpoint(out)["config"]
    recipe = MODELS["mnist-lenet-small"].recipe
    assert config.lr == recipe["lr"] == 0.1 and config.lr_milestones == (7, 13)
    assert (config.epochs, config.batch_size, config.time_step) == (1, 16, 5)
    # the small LeNet's own recipe value; the full model keeps the script's threshold
    assert config.vth == 0.5 and "vth" not in MODELS["mnist-lenet"].recipe


def test_an_unknown_model_flag_is_one_line(capsys):
    assert main(["train", "--backend", "reference", "--model", "nope", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'nope'" in err and "Traceback" not in err
