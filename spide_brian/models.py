"""Named networks: convolutional feedback networks of the method's experiments.

``SPIDEConfig(model=NAME)`` (``spide-brian train --model NAME``) replaces the dense chain of
``hidden_sizes`` by the network ``NAME``: a convolution from the input image to layer 0, a
chain of convolutions, one feedback map from the last layer back to the first (a transposed
convolution that upsamples, :class:`~spide_brian.topology.ConvTranspose2d`) and a dense
readout. Every convolution pads by ``(k - 1) // 2``; every spiking layer's bias is one value
per channel. The feedback weight is kept in the Frobenius ball of radius ``feedback_norm``
(the config's), and the inits are the config's ``input_init``, ``hidden_init`` and
``feedback_init``. ``config.feedback = False`` drops the feedback map.

The architectures follow the method's reference scripts (channels, kernels, strides; the
table in docs/method.md M10); each has a ``-small`` variant that fits a laptop, built for
whatever square input it is given (e.g. 8 x 8 digits or 28 x 28 MNIST). This module holds
the descriptions; :meth:`spide_brian.topology.Topology.from_model` builds the network.
"""
from __future__ import annotations

from dataclasses import dataclass, field


__all__ = ["ConvLayer", "NamedModel", "MODELS", "named_model", "ModelError"]


class ModelError(ValueError):
    """An unknown model name, or an input the model cannot take."""


@dataclass(frozen=True)
class ConvLayer:
    """A spiking layer of ``channels`` maps, reached by a ``kernel x kernel`` convolution
    with ``stride`` (and padding ``(kernel - 1) // 2``) from the previous layer (or the
    input, for layer 0)."""

    channels: int
    kernel: int
    stride: int = 1


@dataclass(frozen=True)
class NamedModel:
    """A convolutional feedback network and the recipe its reference script trains it with.

    Parameters
    ----------
    name, description : str
    in_channels : int
        Channels of the input image (its side is the square root of the pixels per channel).
    layers : tuple of ConvLayer
        The spiking layers, layer 0 first.
    feedback : tuple of int or None
        ``(kernel, stride)`` of the convolution from layer 0 to the last layer whose
        transpose is the feedback map; None: no feedback.
    recipe : dict
        Config values of the reference script (lr, epochs, schedule, dropout, T_b, ...).
    source : str
        Where the architecture comes from.
    """

    name: str
    description: str
    in_channels: int
    layers: tuple
    feedback: tuple = None
    recipe: dict = field(default_factory=dict)
    source: str = ""


def _small(name, base, description):
    return NamedModel(name=name, description=description, in_channels=base.in_channels,
                      layers=(ConvLayer(8, 3), ConvLayer(16, 3, 2), ConvLayer(16, 3)),
                      feedback=(3, 2), recipe={**base.recipe, "epochs": 20},
                      source=f"{base.name} scaled down: 8/16/16 channels, 3x3 kernels")


_MNIST_CONV_F = NamedModel(
    name="mnist-conv-f",
    description="MNIST conv-F: [64c5 s2] -> [64c5 s2] -> [64c5], transposed-conv feedback "
                "(k3 s2) from the last layer to the first",
    in_channels=1,
    layers=(ConvLayer(64, 5, 2), ConvLayer(64, 5, 2), ConvLayer(64, 5)),
    feedback=(3, 2),
    recipe={"lr": 0.05, "epochs": 100, "lr_milestones": (30, 60, 90), "dropout": 0.2,
            "time_step": 30, "time_step_back": 100, "scale_factor": 100.0,
            "input_init": "kaiming", "hidden_init": "kaiming", "feedback_norm": 2.0},
    source="the method's MNIST conv-F script (mnist_convnetf.py)")

MODELS = {model.name: model for model in (
    _MNIST_CONV_F,
    _small("mnist-conv-f-small", _MNIST_CONV_F,
           "mnist-conv-f scaled down: [8c3] -> [16c3 s2] -> [16c3], feedback k3 s2; "
           "8x8 digits or 28x28 MNIST"),
)}


def named_model(name):
    """The :class:`NamedModel` called ``name``."""
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(MODELS)} (see "
                         "spide-brian info --models)") from None
