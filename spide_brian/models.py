"""Named networks: the convolutional feedback networks of the method's experiments.

``SPIDEConfig(model=NAME)`` (``spide-brian train --model NAME``) replaces the dense chain of
``hidden_sizes`` by the network ``NAME``: a convolution from the input image to layer 0, a
chain of spiking layers (convolutions, average pooling, dense layers), at most one feedback
map from the last layer back to the first (a transposed convolution that upsamples,
:class:`~spide_brian.topology.ConvTranspose2d`, or a convolution between maps of one size)
and a dense readout. Every convolution pads by ``(k - 1) // 2``; a layer of maps reached by a
convolution has one bias per channel, a pooling layer none. The feedback weight is kept in
the Frobenius ball of radius ``feedback_norm`` (the config's), and the inits are the config's
``input_init``, ``hidden_init`` and ``feedback_init``. ``config.feedback = False`` drops the
feedback map.

The architectures follow the method's reference scripts (channels, kernels, strides; the
table in docs/method.md M10) and each carries the recipe its script trains it with
(``NamedModel.recipe``: the learning rate, schedule, dropout, T, T_b, ...), the base of
``spide-brian train --model NAME``. Each has a ``-small`` variant that fits a laptop, built
for whatever square input it is given (e.g. 8 x 8 digits or 28 x 28 MNIST). This module holds
the descriptions; :meth:`spide_brian.topology.Topology.from_model` builds the network.
"""
from __future__ import annotations

from dataclasses import dataclass, field


__all__ = ["ConvLayer", "LocalLayer", "PoolLayer", "DenseLayer", "Feedback", "NamedModel", "MODELS",
           "named_model", "ModelError"]


class ModelError(ValueError):
    """An unknown model name, or an input the model cannot take."""


@dataclass(frozen=True)
class ConvLayer:
    """A spiking layer of ``channels`` maps, reached by a ``kernel x kernel`` convolution
    with ``stride`` (and padding ``(kernel - 1) // 2``) from the previous layer (or the
    input, for layer 0); one bias per channel."""

    channels: int
    kernel: int
    stride: int = 1


@dataclass(frozen=True)
class LocalLayer:
    """A spiking layer of ``channels`` maps, reached by ``kernel x kernel`` receptive fields
    with ``stride`` (padding ``(kernel - 1) // 2``) as a :class:`ConvLayer`, but each post
    neuron with a filter of its own (a locally connected layer); one bias per channel."""

    channels: int
    kernel: int
    stride: int = 1


@dataclass(frozen=True)
class PoolLayer:
    """A spiking layer of the previous layer's maps, each averaged over ``kernel x kernel``
    blocks (stride ``kernel``): a fixed connection of weight ``1 / kernel^2``, no bias."""

    kernel: int = 2


@dataclass(frozen=True)
class DenseLayer:
    """A spiking layer of ``size`` neurons, all-to-all from the previous layer's neurons;
    ``dropout`` (if set) is the drop probability of its incoming current whatever the
    config's ``dropout`` says (the reference script fixes it)."""

    size: int
    dropout: float = None


@dataclass(frozen=True)
class Feedback:
    """The feedback map from the last layer to layer 0.

    ``transposed``: the adjoint of a ``kernel x kernel`` convolution with ``stride`` from
    layer 0's maps to the last layer's (a map that upsamples); otherwise a convolution from
    the last layer's maps to layer 0's (``stride`` 1 between maps of one size). ``init_scale``
    multiplies the drawn weight before the Frobenius restriction (the reference scripts
    scale a transposed-convolution feedback by 0.1). ``local``: the receptive fields of that
    map with a filter per neuron (locally connected) instead of one shared kernel.
    """

    kernel: int
    stride: int = 1
    transposed: bool = True
    init_scale: float = 1.0
    local: bool = False


@dataclass(frozen=True)
class NamedModel:
    """A convolutional feedback network and the recipe its reference script trains it with.

    Parameters
    ----------
    name, description : str
    in_channels : int
        Channels of the input image (its side is the square root of the pixels per channel).
    layers : tuple of ConvLayer, LocalLayer, PoolLayer or DenseLayer
        The spiking layers, layer 0 first (layer 0 is a :class:`ConvLayer` or a
        :class:`LocalLayer`).
    feedback : Feedback or None
        The feedback map; None: a feed-forward network.
    recipe : dict
        Config values of the reference script (lr, epochs, schedule, dropout, T_b, ...).
    source : str
        Where the architecture comes from.
    input_side : int
        Side of the square input of the model's dataset (``spide-brian info --model``).
    """

    name: str
    description: str
    in_channels: int
    layers: tuple
    feedback: Feedback = None
    recipe: dict = field(default_factory=dict)
    source: str = ""
    input_side: int = 28


#: Optimiser settings shared by every reference script.
_COMMON = {"momentum": 0.9, "weight_decay": 5e-4, "batch_size": 128, "time_step": 30}


#: Epochs of the ``-small`` variants' recipes.
SMALL_EPOCHS = 20


def _small(base, layers, feedback, description, input_hint, input_side=None, changes=None):
    """The ``<base>-small`` variant: the same kinds of layer with a few channels, trained
    for :data:`SMALL_EPOCHS` with the milestones scaled to them (``changes``: recipe values
    of its own)."""
    scale = SMALL_EPOCHS / base.recipe["epochs"]
    milestones = tuple(round(epoch * scale) for epoch in base.recipe.get("lr_milestones", ()))
    return NamedModel(name=f"{base.name}-small", description=f"{description}; {input_hint}",
                      in_channels=base.in_channels, layers=layers, feedback=feedback,
                      recipe={**base.recipe, "epochs": SMALL_EPOCHS,
                              "lr_milestones": milestones, **(changes or {})},
                      source=f"{base.name} scaled down",
                      input_side=input_side or base.input_side)


_MNIST_LENET = NamedModel(
    name="mnist-lenet",
    description="MNIST LeNet: [15c5] -> [avg pool 2] -> [40c5] -> [avg pool 2] -> [FC 300, "
                "dropout 0.5]; no feedback",
    in_channels=1,
    layers=(ConvLayer(15, 5), PoolLayer(2), ConvLayer(40, 5), PoolLayer(2),
            DenseLayer(300, dropout=0.5)),
    feedback=None,
    recipe={**_COMMON, "lr": 0.1, "epochs": 60, "lr_milestones": (20, 40), "dropout": 0.0,
            "time_step_back": 100, "scale_factor": 100.0, "input_init": "kaiming",
            "hidden_init": "kaiming"},
    source="the method's MNIST LeNet script (mnist_lenet.py)")

_MNIST_CONV_F = NamedModel(
    name="mnist-conv-f",
    description="MNIST conv-F: [64c5 s2] -> [64c5 s2] -> [64c5], transposed-conv feedback "
                "(k3 s2) from the last layer to the first",
    in_channels=1,
    layers=(ConvLayer(64, 5, 2), ConvLayer(64, 5, 2), ConvLayer(64, 5)),
    feedback=Feedback(3, 2, transposed=True, init_scale=0.1),
    recipe={**_COMMON, "lr": 0.05, "epochs": 100, "lr_milestones": (30, 60, 90),
            "dropout": 0.2, "time_step_back": 100, "scale_factor": 100.0,
            "input_init": "kaiming", "hidden_init": "kaiming", "feedback_norm": 2.0},
    source="the method's MNIST conv-F script (mnist_convnetf.py)")

_CIFAR_RECIPE = {**_COMMON, "lr": 0.05, "epochs": 100, "lr_milestones": (50, 75),
                 "warmup_iterations": 400, "time_step_back": 250, "input_init": "unit_row_norm",
                 "hidden_init": "unit_row_norm", "feedback_init": "unit_row_norm",
                 "feedback_norm": 2.0}

_ALEXNET_F = NamedModel(
    name="alexnet-f",
    description="CIFAR AlexNet-F: [96c3 s2] -> [256c3] -> [384c3 s2] -> [384c3] -> [256c3], "
                "transposed-conv feedback (k3 s2) from the last layer to the first",
    in_channels=3,
    layers=(ConvLayer(96, 3, 2), ConvLayer(256, 3), ConvLayer(384, 3, 2), ConvLayer(384, 3),
            ConvLayer(256, 3)),
    feedback=Feedback(3, 2, transposed=True, init_scale=0.1),
    recipe={**_CIFAR_RECIPE, "dropout": 0.2, "scale_factor": 400.0},
    source="the method's CIFAR AlexNet-F script (cifar_alexnetf.py)", input_side=32)

_CIFARNET_F = NamedModel(
    name="cifarnet-f",
    description="CIFAR CIFARNet-F: [128c3 s2] -> [256c3] -> [512c3 s2] -> [1024c3] -> "
                "[512c3], transposed-conv feedback (k3 s2) from the last layer to the first",
    in_channels=3,
    layers=(ConvLayer(128, 3, 2), ConvLayer(256, 3), ConvLayer(512, 3, 2),
            ConvLayer(1024, 3), ConvLayer(512, 3)),
    feedback=Feedback(3, 2, transposed=True, init_scale=0.1),
    recipe={**_CIFAR_RECIPE, "dropout": 0.25, "scale_factor": 500.0},
    source="the method's CIFAR CIFARNet-F script (cifar_cifarnetf.py)", input_side=32)

_DVS_CONV_F = NamedModel(
    name="dvs-conv-f",
    description="CIFAR10-DVS conv-F: one layer [512c9 s2] on 2-channel event frames, "
                "convolutional feedback (k5) from the layer to itself",
    in_channels=2,
    layers=(ConvLayer(512, 9, 2),),
    feedback=Feedback(5, 1, transposed=False),
    recipe={**_COMMON, "lr": 0.05, "epochs": 70, "lr_milestones": (50,), "dropout": 0.0,
            "time_step_back": 250, "scale_factor": 400.0, "input_init": "kaiming",
            "hidden_init": "kaiming", "feedback_init": "kaiming", "feedback_norm": 10.0},
    source="the method's CIFAR10-DVS script (dvs_cifar_convnetf.py)", input_side=48)

_MNIST_CONV_F_SMALL = _small(
    _MNIST_CONV_F, (ConvLayer(8, 3), ConvLayer(16, 3, 2), ConvLayer(16, 3)),
    Feedback(3, 2, transposed=True, init_scale=0.1),
    "mnist-conv-f scaled down: [8c3] -> [16c3 s2] -> [16c3], feedback k3 s2",
    "8x8 digits or 28x28 MNIST", input_side=8)

MODELS = {model.name: model for model in (
    _MNIST_LENET,
    _small(_MNIST_LENET, (ConvLayer(4, 3), PoolLayer(2), ConvLayer(8, 3), PoolLayer(2),
                          DenseLayer(64, dropout=0.5)), None,
           "mnist-lenet scaled down: [4c3] -> [avg pool 2] -> [8c3] -> [avg pool 2] -> "
           "[FC 64], threshold 0.5 (two pools of few channels leave too little drive for "
           "V_th = 1 on 8x8 input)", "8x8 digits or 28x28 MNIST", input_side=8,
           changes={"vth": 0.5}),
    _MNIST_CONV_F,
    _MNIST_CONV_F_SMALL,
    _ALEXNET_F,
    _small(_ALEXNET_F, (ConvLayer(8, 3, 2), ConvLayer(16, 3), ConvLayer(16, 3, 2)),
           Feedback(3, 2, transposed=True, init_scale=0.1),
           "alexnet-f scaled down: [8c3 s2] -> [16c3] -> [16c3 s2], feedback k3 s2",
           "32x32 CIFAR or any square input with a side divisible by 4"),
    _CIFARNET_F,
    _small(_CIFARNET_F, (ConvLayer(8, 3, 2), ConvLayer(16, 3), ConvLayer(16, 3, 2),
                         ConvLayer(16, 3)),
           Feedback(3, 2, transposed=True, init_scale=0.1),
           "cifarnet-f scaled down: [8c3 s2] -> [16c3] -> [16c3 s2] -> [16c3], feedback k3 "
           "s2", "32x32 CIFAR or any square input with a side divisible by 4"),
    NamedModel(
        name="mnist-local-f-small",
        description="mnist-conv-f-small with locally connected layers and feedback (a "
                    "filter per neuron, no shared kernel: a purely local rule): [8lc3] -> "
                    "[16lc3 s2] -> [16lc3], feedback k3 s2; 8x8 digits or 28x28 MNIST",
        in_channels=1,
        layers=(LocalLayer(8, 3), LocalLayer(16, 3, 2), LocalLayer(16, 3)),
        feedback=Feedback(3, 2, transposed=True, init_scale=0.1, local=True),
        recipe=_MNIST_CONV_F_SMALL.recipe,
        source="mnist-conv-f scaled down, locally connected", input_side=8),
    _DVS_CONV_F,
    _small(_DVS_CONV_F, (ConvLayer(16, 5, 2),), Feedback(3, 1, transposed=False),
           "dvs-conv-f scaled down: one layer [16c5 s2], convolutional feedback k3",
           "2-channel event frames of any square size"),
)}


def named_model(name):
    """The :class:`NamedModel` called ``name``."""
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(MODELS)} (see "
                         "spide-brian info --models)") from None
