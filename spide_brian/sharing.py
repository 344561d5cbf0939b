r"""A parameter shared by many synapses or neurons: convolution kernels, channel biases.

Brian2 gives every synapse its own weight. A convolution's kernel element, though, is one
parameter used by every position of the map, and a channel's bias one parameter used by
every neuron of the map. :class:`SharedParameter` keeps such a parameter once, in a
*parameter group* (a ``NeuronGroup`` with one neuron per element, ``equations/
shared_weight.eq``); every synapse (or neuron) that uses element :math:`k` reads it through
a linked variable, ``w = w_group[element]``, so all of them hold the same value at all
times and no copy can drift. The gradient of an element is the sum of the local two-stage
products of the synapses that use it,

.. math::

    \frac{\partial L}{\partial K_k} \propto \sum_{(p, q):\ e(p, q) = k} \beta_q\, a_p ,

gathered into the group by a summed variable once per sample; the group then runs the
plasticity text that every weight copy runs (SGD with momentum and weight decay, and the
projection of a restricted kernel). Simulating several samples side by side with replicas
that share all weights is the same construction with the replicas' synapses pointing at
one element each.

The mechanism needs linked variables indexed by a synaptic variable and a per-sample
summed variable ordered before the group's learning: capability ``shared_parameters`` of
:mod:`spide_brian.devices.table` (numpy, cython and cpp_standalone on Brian2 >= 2.6; not
brian2genn, which has no linked variables).
"""
from __future__ import annotations

import numpy as np
from brian2 import Equations

__all__ = ["SharedParameter", "STORED_NAMES", "without", "check_shared_parameters"]

#: Declarations of a weight copy that a view of a shared parameter does not hold (the value,
#: its gradient, momentum buffer and optimiser constants live in the parameter group).
STORED_NAMES = ("w", "grad", "momentum_buffer", "momentum_syn", "weight_decay_syn",
                "reset_amount_syn")


def without(equations, names):
    """``equations`` less the declarations of ``names``."""
    return Equations([single for name, single in equations.items() if name not in names])


def check_shared_parameters(caps, topology):
    """Raise a ``ValueError`` naming the fix where ``topology`` shares parameters (a
    convolution's kernel, a channel bias) and the device ``caps`` cannot link them."""
    shared = [c.parameter for c in topology.connections if c.kind.shares_weights]
    shared += [layer.bias for layer in topology.layers if layer.shares_bias]
    if shared and not caps.shared_parameters:
        raise ValueError(
            f"this network shares parameters among synapses ({', '.join(shared)}: a "
            f"convolution's kernel or a channel bias), which the {caps.name} device cannot "
            "link (capability shared_parameters); use numpy, cython or cpp_standalone "
            "(Brian2 >= 2.6), or --backend reference")


class SharedParameter:
    """One parameter array held once by a parameter group.

    Parameters
    ----------
    name : str
        The parameter's name (``weight_0``, ``bias_1``, ...).
    shape : tuple of int
        Its shape; the group has one neuron per element (C order).
    group : brian2.NeuronGroup
        The parameter group (``equations/shared_weight.eq``, ``[parameter_model]``).

    order : array of int, optional
        Storage order: group element ``e`` holds the flat (C order) element ``order[e]`` of
        the parameter (default: C order). A dense weight held once is stored in its forward
        synapses' order, so that forward events read the group in order.
    """

    def __init__(self, name, shape, group, order=None):
        self.name = name
        self.shape = tuple(int(n) for n in shape)
        self.group = group
        size = int(np.prod(self.shape))
        self.order = np.arange(size) if order is None else np.asarray(order, dtype=np.int64)
        if sorted(self.order.tolist()) != list(range(size)):
            raise ValueError(f"{name}: the storage order must be a permutation of "
                             f"{size} elements")
        self._position = np.empty(size, dtype=np.int64)
        self._position[self.order] = np.arange(size)

    def elements(self, flat):
        """Group elements that hold the parameter's flat (C order) elements ``flat``."""
        return self._position[np.asarray(flat, dtype=np.int64)]

    def state_items(self, value, buffer):
        """``[(group, variable, array)]`` that load ``value`` and its momentum ``buffer``."""
        return [(self.group, "w", self._flat(value, "value")),
                (self.group, "momentum_buffer", self._flat(buffer, "momentum buffer"))]

    def _flat(self, array, what):
        array = np.asarray(array, dtype=np.float64)
        if array.shape != self.shape:
            raise ValueError(f"{self.name}: the {what} must have shape {self.shape}; got "
                             f"{array.shape}")
        return array.ravel()[self.order]

    def _unflat(self, stored):
        flat = np.empty(len(self.order))
        flat[self.order] = np.asarray(stored, dtype=np.float64)
        return flat.reshape(self.shape)

    def read(self):
        """``(value, momentum buffer)`` as arrays of the parameter's shape."""
        return (self._unflat(self.group.w[:]), self._unflat(self.group.momentum_buffer[:]))
