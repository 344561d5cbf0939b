"""Trainable parameters of a SPIDE network and their initialisation.

Parameters are kept in a flat, ordered ``dict`` of float64 arrays so that optimiser state,
checkpoints and the Brian2 synapses all address them by the same names:

``input_weight``        ``F``, shape ``(n_0, n_in)``: input -> layer 0
``bias_l``              constant current into layer ``l``, shape ``(n_l,)``
``weight_l``            ``W_l``, shape ``(n_{l+1}, n_l)``: layer ``l`` -> ``l+1``
``feedback_weight``     ``W_fb``, shape ``(n_0, n_{N-1})``: last layer -> layer 0 (if any)
``readout_weight``      ``W_c``, shape ``(n_classes, n_{N-1})``
``readout_bias``        ``b_c``, shape ``(n_classes,)``

Initialisation follows SPIDE_SPEC section 3.3: ``kaiming`` draws ``N(0, 2/fan_in)``;
``unit_row_norm`` draws ``U(-1, 1)`` and scales every row (one post-synaptic neuron) to unit
L2 norm; the readout uses PyTorch's ``nn.Linear`` default ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``;
spiking-layer biases start at 0; the feedback weight is projected onto ``||W_fb||_F <= r``.

Training keeps the feedback weight in that ball: both trainers take their parameters through
:func:`prepare_parameters`, which projects a feedback weight given from outside (e.g. loaded
with a smaller radius) before the first mini-batch, so every backend starts from the same
weights.
"""
from __future__ import annotations

import numpy as np
from brian2.utils.logger import get_logger

__all__ = ["init_parameters", "project_feedback", "parameter_shapes", "check_parameters",
           "prepare_parameters"]

logger = get_logger(__name__)


def parameter_shapes(config, n_inputs, n_classes):
    """Ordered mapping ``name -> shape`` of every trainable array."""
    sizes = config.hidden_sizes
    shapes = {"input_weight": (sizes[0], n_inputs)}
    for layer, size in enumerate(sizes):
        shapes[f"bias_{layer}"] = (size,)
    for layer in range(len(sizes) - 1):
        shapes[f"weight_{layer}"] = (sizes[layer + 1], sizes[layer])
    if config.feedback:
        shapes["feedback_weight"] = (sizes[0], sizes[-1])
    shapes["readout_weight"] = (n_classes, sizes[-1])
    shapes["readout_bias"] = (n_classes,)
    return shapes


def _draw(kind, shape, rng):
    fan_in = shape[1]
    if kind == "kaiming":
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
    weight = rng.uniform(-1.0, 1.0, size=shape)
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
    params = {}
    for name, shape in parameter_shapes(config, n_inputs, n_classes).items():
        if name == "input_weight":
            params[name] = _draw(config.input_init, shape, rng)
        elif name.startswith("bias_"):
            params[name] = np.zeros(shape)
        elif name.startswith("weight_"):
            params[name] = _draw(config.hidden_init, shape, rng)
        elif name == "feedback_weight":
            params[name] = project_feedback(_draw(config.feedback_init, shape, rng),
                                            config.feedback_norm)
        else:
            bound = 1.0 / np.sqrt(config.hidden_sizes[-1])
            params[name] = rng.uniform(-bound, bound, size=shape)
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
    missing = np.zeros((0, 0))     # a missing array is reported by check_parameters
    if n_inputs is None:
        n_inputs = np.shape(params.get("input_weight", missing))[-1]
    if n_classes is None:
        n_classes = np.shape(params.get("readout_weight", missing))[0]
    check_parameters(params, config, int(n_inputs), int(n_classes))
    prepared = {name: np.array(value, dtype=np.float64) for name, value in params.items()}
    if config.feedback:
        weight = prepared["feedback_weight"]
        norm = float(np.linalg.norm(weight))
        if norm > config.feedback_norm:
            logger.info(f"feedback weight of Frobenius norm {norm:.6g} projected onto the "
                        f"ball of radius feedback_norm = {config.feedback_norm:g}")
            prepared["feedback_weight"] = project_feedback(weight, config.feedback_norm)
    return prepared
