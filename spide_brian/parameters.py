"""Trainable parameters of a SPIDE network and their initialisation.

Parameters are kept in a flat, ordered ``dict`` of float64 arrays so that optimiser state,
checkpoints and the Brian2 synapses all address them by the same names:

``input_weight``        ``F``, shape ``(n_0, n_in)``: input -> layer 0
``bias_l``              constant current into layer ``l``, shape ``(n_l,)``
``weight_l``            ``W_l``, shape ``(n_{l+1}, n_l)``: layer ``l`` -> ``l+1``
``feedback_weight``     ``W_fb``, shape ``(n_0, n_{N-1})``: last layer -> layer 0 (if any)
``readout_weight``      ``W_c``, shape ``(n_classes, n_{N-1})``
``readout_bias``        ``b_c``, shape ``(n_classes,)``

Initialisation follows docs/method.md M6: ``kaiming`` draws ``N(0, 2/fan_in)``;
``unit_row_norm`` draws ``U(-1, 1)`` and scales every row (one post-synaptic neuron) to unit
L2 norm; the readout uses PyTorch's ``nn.Linear`` default ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``;
spiking-layer biases start at 0; the feedback weight is projected onto ``||W_fb||_F <= r``.

Training keeps the feedback weight in that ball: both trainers take their parameters through
:func:`prepare_parameters`, which projects a feedback weight given from outside (e.g. loaded
with a smaller radius) before the first mini-batch, so every backend starts from the same
weights.
"""
from __future__ import annotations

import math

import numpy as np
from brian2.utils.logger import get_logger

from .topology import Topology, dimensions_of

__all__ = ["init_parameters", "project_feedback", "parameter_shapes", "check_parameters",
           "prepare_parameters"]

logger = get_logger(__name__)


def parameter_shapes(config, n_inputs, n_classes):
    """Ordered mapping ``name -> shape`` of every trainable array (see
    :meth:`spide_brian.topology.Topology.parameter_shapes`)."""
    return Topology.from_config(config, n_inputs, n_classes).parameter_shapes()


def _draw(kind, shape, rng, fan_in=None, row_axes=1, live=None):
    """A weight of ``shape`` drawn by ``kind``; ``row_axes`` leading axes index the post
    neurons whose filters ``unit_row_norm`` scales to unit norm; elements outside the
    boolean mask ``live`` are 0."""
    fan_in = shape[1] if fan_in is None else fan_in
    live = np.ones(shape, dtype=bool) if live is None else live
    if kind == "kaiming":
        return np.where(live, rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape), 0.0)
    if kind == "uniform":
        bound = 1.0 / np.sqrt(fan_in)
        return np.where(live, rng.uniform(-bound, bound, size=shape), 0.0)
    weight = np.where(live, rng.uniform(-1.0, 1.0, size=shape), 0.0)
    if len(shape) > 2:
        # a kernel: each output channel's filter to unit norm (a locally connected
        # weight: each post neuron's)
        rows = shape[:row_axes]
        norms = np.linalg.norm(weight.reshape(math.prod(rows), -1), axis=1)
        return weight / norms.reshape(rows + (1,) * (len(shape) - row_axes))
    return weight / np.linalg.norm(weight, axis=1, keepdims=True)


def project_feedback(weight, radius):
    r"""Scale ``weight`` onto the Frobenius ball: :math:`W \leftarrow W \min(1, r/\|W\|_F)`."""
    norm = np.linalg.norm(weight)
    if norm > radius:
        weight = weight * (radius / norm)
    return weight


def init_parameters(config, n_inputs, n_classes, seed=None):
    """Draw initial parameters for ``config``.

    Parameters
    ----------
    config : SPIDEConfig
    n_inputs, n_classes : int
        Input dimension and number of classes of the dataset.
    seed : int, optional
        Defaults to ``config.seed``.

    Returns
    -------
    dict of str -> ndarray
        float64 arrays, ordered as :func:`parameter_shapes`.
    """
    rng = np.random.default_rng(config.seed if seed is None else seed)
    topology = Topology.from_config(config, n_inputs, n_classes)
    readout = topology.readout
    params = {}
    # drawn in the order of the parameters, so that a seed gives the same weights whatever
    # else changes
    for name, shape in topology.parameter_shapes().items():
        if name == topology.readout_bias:      # nn.Linear's bias: the bound of its weight
            bound = 1.0 / np.sqrt(readout.shape[1])
            params[name] = rng.uniform(-bound, bound, size=shape)
            continue
        try:
            connection = topology.connection(name)
        except KeyError:
            params[name] = np.zeros(shape)     # a spiking layer's bias
            continue
        if not math.prod(shape):
            params[name] = np.zeros(shape)     # a fixed connection (pooling): nothing to draw
            continue
        kind = connection.kind
        live = kind.live_weights() if hasattr(kind, "live_weights") else None
        params[name] = _draw(connection.init, shape, rng, fan_in=kind.init_fan_in(shape),
                             row_axes=kind.row_axes, live=live)
        if connection.init_scale != 1.0:
            params[name] = params[name] * connection.init_scale
        if connection.restriction is not None:
            params[name] = project_feedback(params[name], connection.restriction)
    return params


def check_parameters(params, config, n_inputs, n_classes):
    """Raise ``ValueError`` if names, shapes or values of ``params`` do not fit ``config``."""
    expected = parameter_shapes(config, n_inputs, n_classes)
    missing = set(expected) - set(params)
    extra = set(params) - set(expected)
    if missing or extra:
        raise ValueError(f"parameters do not match the network: missing {sorted(missing)}, "
                         f"unexpected {sorted(extra)}")
    for name, shape in expected.items():
        array = np.asarray(params[name])
        if array.shape != shape:
            raise ValueError(f"parameter {name!r} has shape {array.shape}, expected {shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"parameter {name!r} contains NaN or infinite values")


def prepare_parameters(params, config, n_inputs=None, n_classes=None):
    """Checked float64 copies of ``params`` for training, the feedback weight in its ball.

    A feedback weight outside ``||W_fb||_F <= config.feedback_norm`` is projected onto the
    ball here, before any mini-batch runs: the numpy reference would otherwise use it
    unprojected for the first mini-batch while the Brian2 model scales its feedback events
    from the first step.

    Parameters
    ----------
    params : dict of str -> array_like
    config : SPIDEConfig
    n_inputs, n_classes : int, optional
        Default to the shapes of ``input_weight`` and ``readout_weight``.

    Returns
    -------
    dict of str -> ndarray

    Raises
    ------
    ValueError
        As :func:`check_parameters`.
    """
    if n_inputs is None or n_classes is None:
        # a missing array is reported by check_parameters
        inferred = dimensions_of(config, params)
        n_inputs = inferred[0] if n_inputs is None else n_inputs
        n_classes = inferred[1] if n_classes is None else n_classes
    check_parameters(params, config, int(n_inputs), int(n_classes))
    prepared = {name: np.array(value, dtype=np.float64) for name, value in params.items()}
    for connection in Topology.from_config(config, n_inputs, n_classes).restricted:
        weight = prepared[connection.parameter]
        norm = float(np.linalg.norm(weight))
        if norm > connection.restriction:
            if norm > connection.restriction * (1 + 1e-9):   # more than rounding of a projection
                logger.info(f"{connection.parameter} of Frobenius norm {norm:.6g} projected "
                            f"onto the ball of radius {connection.restriction:g} (feedback_norm)")
            prepared[connection.parameter] = project_feedback(weight, connection.restriction)
    return prepared
