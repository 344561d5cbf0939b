r"""Operation counts and energy estimates of SPIDE training from the actual spikes.

Every count is per sample and is computed from plain arrays: the parameter dictionary (weight
matrices of shape ``(n_post, n_pre)``, dense or ``scipy.sparse``, whose nonzero structure
gives the synapses) and per-layer spike counts of shape ``(B, n_l)``. The numpy reference and
the Brian2 model feed the same functions. Counting conventions (docs/method.md M9):

**Forward synaptic operations** (accumulates). Each forward spike of a presynaptic neuron ``j``
adds one weight to each of its targets:

.. math::

    \mathrm{SOP}_{fwd} = \sum_{W \in \{W_l, W_{fb}\}} \sum_j c_j \, \mathrm{fanout}_W(j),
    \qquad \mathrm{fanout}_W(j) = \#\{i : W_{ij} \ne 0\}

with ``c_j`` the forward spike count of ``j`` over the ``T`` steps (every emitted spike,
including feedback spikes of the last step).

**Backward synaptic operations** (accumulates). A ternary spike (either sign) of the couple of
postsynaptic neuron ``i`` travels through the transposed path to every presynaptic neuron of
``i``; the factor ``1/V`` is folded into the weight:

.. math::

    \mathrm{SOP}_{bwd} = \sum_{W} \sum_i |c^b_i| \, \mathrm{fanin}_W(i),
    \qquad \mathrm{fanin}_W(i) = \#\{j : W_{ij} \ne 0\}

**Input** (static input ``x``): the current ``F x + b`` is computed once, one
multiply-accumulate per nonzero input per target. Event frames ``(T, B, n_in)`` are fed every
step: one operation per nonzero frame entry per target, an accumulate when the frames are
binary and a multiply-accumulate otherwise.

**Readout** (multiply-accumulates): ``y = W_c a`` once per sample, and in training also
``g = kappa W_c^T e`` and the readout gradient ``e a^T`` (``n_c`` per active last-layer neuron).

**Weight update** (multiply-accumulates): the local rule
``dW_{ij} = \beta_i m_i a_j / V`` needs a product only where both stages were active: one per
synapse whose postsynaptic couple emitted a ternary spike and whose presynaptic neuron fired
(``x_j != 0`` for the input weight), plus one per bias whose couple spiked.

**Neuron updates**: one membrane update per neuron per step, ``T sum_l n_l`` forward and
``T_b sum_l n_l`` backward (one signed membrane per couple, docs/method.md M3).

**Equivalent ANN**: the same layers and nonzero weights with real-valued activations, every
product computed (dense). One forward pass costs the input and readout operations of the SNN
plus ``iterations * sum_W nnz(W)`` multiply-accumulates; training adds the adjoint
(``iterations * sum_W nnz(W)`` plus the readout's ``nnz(W_c)``) and every weight and bias
gradient. ``iterations = 1`` is a lower bound: a feedback ANN needs several fixed-point
iterations to reach its equilibrium (IDE uses up to 30 Broyden steps).

Energy in picojoules is ``E = E_AC N_AC + E_MAC N_MAC + E_neuron N_neuron``. The defaults,
``E_AC = 0.9 pJ`` and ``E_MAC = 4.6 pJ`` (32-bit floating-point add and multiply-add, 45 nm
CMOS), are from M. Horowitz, "Computing's energy problem (and what we can do about it)",
ISSCC 2014, pp. 10-14; a neuron update defaults to one accumulate. The paper's own constants
are not restated here: pass :class:`EnergyCosts` to change them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from .topology import Topology

__all__ = ["EnergyCosts", "OperationCounts", "fan_out", "fan_in", "synaptic_operations",
           "transposed_synaptic_operations", "spiking_connections", "input_operations",
           "weight_update_operations", "spike_operations", "ann_operations", "energy"]


@dataclass(frozen=True)
class EnergyCosts:
    """Energy per operation in picojoules.

    Parameters
    ----------
    accumulate_pj : float
        One accumulate (a synaptic event adding a weight), default 0.9 pJ.
    multiply_accumulate_pj : float
        One multiply-accumulate, default 4.6 pJ.
    neuron_update_pj : float
        One membrane update of a neuron per step, default 0.9 pJ (an accumulate; an LIF leak
        is a multiply, so 4.6 pJ is the matching choice there).

    Notes
    -----
    The defaults are 45 nm figures for 32-bit floating point from M. Horowitz, "Computing's
    energy problem (and what we can do about it)", IEEE ISSCC 2014, pp. 10-14.
    """

    accumulate_pj: float = 0.9
    multiply_accumulate_pj: float = 4.6
    neuron_update_pj: float = 0.9

    def __post_init__(self):
        for name in ("accumulate_pj", "multiply_accumulate_pj", "neuron_update_pj"):
            value = float(getattr(self, name))
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")


@dataclass
class OperationCounts:
    """Operation counts per sample, by kind and category.

    Each dictionary maps a category (``'input'``, ``'forward'``, ``'readout'``,
    ``'backward'``, ``'weight_update'``) to an array of shape ``(B,)``: one count per sample.
    """

    accumulates: dict = field(default_factory=dict)
    multiply_accumulates: dict = field(default_factory=dict)
    neuron_updates: dict = field(default_factory=dict)

    KINDS = ("accumulates", "multiply_accumulates", "neuron_updates")

    @property
    def n_samples(self) -> int:
        for kind in self.KINDS:
            for value in getattr(self, kind).values():
                return len(value)
        return 0

    def total(self, kind) -> np.ndarray:
        """Per-sample sum over the categories of one kind, shape ``(B,)``."""
        values = list(getattr(self, kind).values())
        return np.sum(values, axis=0) if values else np.zeros(self.n_samples)

    def energy(self, costs=None) -> np.ndarray:
        """Per-sample energy in picojoules, shape ``(B,)``; see :func:`energy`."""
        return energy(self, costs)

    def energy_by_category(self, costs=None) -> dict:
        """Per-sample energy in picojoules of each category (all kinds together), ``(B,)`` each."""
        costs = costs or EnergyCosts()
        prices = {"accumulates": costs.accumulate_pj,
                  "multiply_accumulates": costs.multiply_accumulate_pj,
                  "neuron_updates": costs.neuron_update_pj}
        by_category = {}
        for kind, price in prices.items():
            for category, value in getattr(self, kind).items():
                by_category[category] = by_category.get(category, 0.0) + price * value
        return by_category

    def per_sample(self, costs=None) -> dict:
        """Means over the samples: ``'<kind>/<category>'`` counts, totals and ``'energy_pj'``."""
        summary = {}
        for kind in self.KINDS:
            for category, value in getattr(self, kind).items():
                summary[f"{kind}/{category}"] = float(np.mean(value))
            summary[kind] = float(np.mean(self.total(kind)))
        summary["energy_pj"] = float(np.mean(self.energy(costs)))
        return summary

    @classmethod
    def concatenate(cls, parts):
        """Join the samples of several counts (e.g. the mini-batches of an epoch)."""
        parts = list(parts)
        joined = cls()
        for kind in cls.KINDS:
            categories = getattr(parts[0], kind) if parts else {}
            setattr(joined, kind, {c: np.concatenate([getattr(p, kind)[c] for p in parts])
                                   for c in categories})
        return joined


def _nonzero(weight):
    """Nonzero structure of a weight matrix as float64 (dense array or CSR matrix)."""
    if sparse.issparse(weight):
        return sparse.csr_matrix((weight != 0).astype(np.float64))
    return (np.asarray(weight) != 0).astype(np.float64)


def fan_out(weight) -> np.ndarray:
    r"""Targets per presynaptic neuron: :math:`\#\{i : W_{ij} \ne 0\}`, shape ``(n_pre,)``."""
    return np.asarray(_nonzero(weight).sum(axis=0)).ravel()


def fan_in(weight) -> np.ndarray:
    r"""Sources per postsynaptic neuron: :math:`\#\{j : W_{ij} \ne 0\}`, shape ``(n_post,)``.

    This is also the fan-out of neuron ``i`` in the transposed (backward) path.
    """
    return np.asarray(_nonzero(weight).sum(axis=1)).ravel()


def _counts(array):
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"spike counts must have shape (B, n), got {array.shape}")
    return np.abs(array)


def synaptic_operations(spike_counts, weight) -> np.ndarray:
    r"""Accumulates caused by presynaptic spikes: :math:`\sum_j c_{bj}\,\mathrm{fanout}(j)`.

    Parameters
    ----------
    spike_counts : ndarray
        ``(B, n_pre)`` spikes per presynaptic neuron and sample.
    weight : ndarray or scipy.sparse matrix
        ``(n_post, n_pre)``; its nonzero entries are the synapses.

    Returns
    -------
    ndarray
        ``(B,)`` operations per sample.
    """
    return _counts(spike_counts) @ fan_out(weight)


def transposed_synaptic_operations(spike_counts, weight) -> np.ndarray:
    r"""Accumulates of ternary spikes sent back through ``W^T``.

    Per sample :math:`\sum_i |c^b_{bi}|\,\mathrm{fanin}(i)`.

    Parameters
    ----------
    spike_counts : ndarray
        ``(B, n_post)`` numbers of ternary spikes of either sign (``sum_t |s^b[t]|``, not the
        signed net count) of the couples of the postsynaptic layer.
    weight : ndarray or scipy.sparse matrix
        ``(n_post, n_pre)`` forward weight of the connection.

    Returns
    -------
    ndarray
        ``(B,)`` operations per sample.
    """
    return _counts(spike_counts) @ fan_in(weight)


def spiking_connections(params):
    """Connections between spiking layers as ``(name, pre_layer, post_layer)``, from the
    network's :class:`~spide_brian.topology.Topology` (:meth:`Topology.from_parameters`)."""
    return [(c.parameter, c.pre, c.post) for c in Topology.from_parameters(params).spiking]


def _is_binary(array):
    return bool(np.all((array == 0) | (array == 1)))


def input_operations(inputs, input_weight):
    """Operations of the input current ``F x`` per sample.

    Parameters
    ----------
    inputs : ndarray
        Static inputs ``(B, n_in)`` or event frames ``(T, B, n_in)``.
    input_weight : ndarray or scipy.sparse matrix
        ``F``, shape ``(n_0, n_in)``.

    Returns
    -------
    tuple
        ``(operations, kind)``: ``(B,)`` counts and ``'accumulates'`` (binary frames) or
        ``'multiply_accumulates'`` (static input, computed once; non-binary frames).
    """
    inputs = np.asarray(inputs)
    targets = fan_out(input_weight)
    if inputs.ndim == 2:
        return (inputs != 0) @ targets, "multiply_accumulates"
    if inputs.ndim != 3:
        raise ValueError(f"inputs must be (B, n_in) or (T, B, n_in), got {inputs.shape}")
    operations = (inputs != 0).sum(axis=0) @ targets
    return operations, ("accumulates" if _is_binary(inputs) else "multiply_accumulates")


def _mean_input(inputs):
    inputs = np.asarray(inputs, dtype=np.float64)
    return inputs.mean(axis=0) if inputs.ndim == 3 else inputs


def _pair_count(post_active, weight, pre_active):
    r"""Per sample :math:`\sum_{ij} p_{bi} [W_{ij} \ne 0] q_{bj}` for 0/1 activity arrays."""
    structure = _nonzero(weight)
    post = np.asarray(post_active, dtype=np.float64)
    reached = np.asarray((structure.T @ post.T).T)  # (B, n_pre): active posts per pre
    return np.sum(reached * np.asarray(pre_active, dtype=np.float64), axis=1)


def weight_update_operations(params, forward_counts, backward_counts, inputs,
                             topology=None) -> np.ndarray:
    """Multiply-accumulates of the local weight update per sample (see the module notes).

    Parameters
    ----------
    params : dict
        Parameters (``input_weight``, ``bias_l``, ``weight_l``, ``feedback_weight``,
        ``readout_weight``, ``readout_bias``).
    forward_counts, backward_counts : list of ndarray
        Per layer ``(B, n_l)`` forward spike counts and ternary spike counts ``|s^b|``.
    inputs : ndarray
        ``(B, n_in)`` or ``(T, B, n_in)``.
    topology : Topology, optional
        Defaults to :meth:`Topology.from_parameters`.

    Returns
    -------
    ndarray
        ``(B,)``.
    """
    topology = topology or Topology.from_parameters(params)
    fired = [_counts(c) > 0 for c in forward_counts]
    sent = [_counts(c) > 0 for c in backward_counts]
    source, readout = topology.input, topology.readout
    operations = _pair_count(sent[source.post], params[source.parameter],
                             _mean_input(inputs) != 0)
    for connection in topology.spiking:
        operations = operations + _pair_count(sent[connection.post],
                                              params[connection.parameter], fired[connection.pre])
    operations = operations + sum(s.sum(axis=1) for s in sent)
    readout_ops = fired[readout.pre] @ fan_out(params[readout.parameter])
    return operations + readout_ops + np.size(params[topology.readout_bias])


def _readout_operations(params, topology, n_samples, training):
    readout = topology.readout
    per_pass = float(fan_out(params[readout.parameter]).sum())
    return np.full(n_samples, per_pass * (2 if training else 1))


def spike_operations(params, forward_counts, time_step, inputs, backward_counts=None,
                     time_step_back=None) -> OperationCounts:
    """Per-sample operation counts of the spiking network from its spike counts.

    Parameters
    ----------
    params : dict
        Parameters (names of :mod:`spide_brian.parameters`), dense or sparse weights.
    forward_counts : list of ndarray
        Per layer ``(B, n_l)`` forward spike counts over ``time_step`` steps.
    time_step : int
        Neuron updates per neuron in the forward stage: ``T``, or ``T K`` with ``K``
        integration steps per SPIDE step (:attr:`SPIDEConfig.forward_steps`).
    inputs : ndarray
        The samples: ``(B, n_in)`` static or ``(T, B, n_in)`` frames.
    backward_counts : list of ndarray, optional
        Per layer ``(B, n_l)`` ternary spike counts ``|s^b|``. Given: a training sample
        (backward stage, readout gradient and weight update are counted); omitted: inference.
    time_step_back : int, optional
        ``T_b`` (``T_b K``); needed with ``backward_counts``.

    Returns
    -------
    OperationCounts
        Categories ``input``, ``forward``, ``readout``, and in training ``backward`` and
        ``weight_update``.

    Examples
    --------
    >>> import numpy as np
    >>> params = {"input_weight": np.ones((2, 3)), "bias_0": np.zeros(2),
    ...           "feedback_weight": np.array([[1.0, 0.0], [1.0, 1.0]]),
    ...           "readout_weight": np.ones((4, 2)), "readout_bias": np.zeros(4)}
    >>> counts = spike_operations(params, [np.array([[3, 1]])], 10, np.array([[1.0, 0, 2]]))
    >>> counts.accumulates["forward"]  # 3 spikes x 2 targets + 1 spike x 1 target
    array([7.])
    """
    sizes = [np.shape(c)[1] for c in forward_counts]
    n_samples = np.shape(forward_counts[0])[0]
    topology = Topology.from_parameters(params)
    counts = OperationCounts()
    input_ops, input_kind = input_operations(inputs, params[topology.input.parameter])
    getattr(counts, input_kind)["input"] = np.asarray(input_ops, dtype=np.float64)
    counts.accumulates["forward"] = sum(
        (synaptic_operations(forward_counts[c.pre], params[c.parameter])
         for c in topology.spiking), np.zeros(n_samples))
    training = backward_counts is not None
    counts.multiply_accumulates["readout"] = _readout_operations(params, topology, n_samples,
                                                                 training)
    counts.neuron_updates["forward"] = np.full(n_samples, float(time_step * sum(sizes)))
    if not training:
        return counts
    if time_step_back is None:
        raise ValueError("time_step_back is needed to count the backward stage")
    counts.accumulates["backward"] = sum(
        (transposed_synaptic_operations(backward_counts[c.post], params[c.parameter])
         for c in topology.spiking), np.zeros(n_samples))
    counts.neuron_updates["backward"] = np.full(n_samples, float(time_step_back * sum(sizes)))
    counts.multiply_accumulates["weight_update"] = weight_update_operations(
        params, forward_counts, backward_counts, inputs, topology)
    return counts


def ann_operations(params, inputs, iterations=1, training=True) -> OperationCounts:
    """Per-sample multiply-accumulates of the equivalent ANN (same layers and synapses).

    Parameters
    ----------
    params : dict
        Parameters of the network.
    inputs : ndarray
        The same samples as the spiking network gets (``(B, n_in)`` or ``(T, B, n_in)``; the
        ANN sees the mean frame).
    iterations : int
        Passes through the spiking-layer connections to reach the equilibrium (and to solve
        the adjoint in training). 1 is a lower bound for a feedback network.
    training : bool
        Also count the backward pass and the weight gradients.

    Returns
    -------
    OperationCounts
        ``multiply_accumulates`` for ``input``, ``forward``, ``readout`` and in training
        ``backward`` and ``weight_update``; ``neuron_updates`` (activations) for ``forward``
        and in training ``backward`` (derivative masks).
    """
    mean = _mean_input(inputs)
    n_samples = mean.shape[0]
    topology = Topology.from_parameters(params)
    hidden_synapses = sum(fan_out(params[c.parameter]).sum() for c in topology.spiking)
    neurons = sum(layer.size for layer in topology.layers)
    counts = OperationCounts()
    input_ops, _ = input_operations(mean, params[topology.input.parameter])
    counts.multiply_accumulates["input"] = np.asarray(input_ops, dtype=np.float64)
    counts.multiply_accumulates["forward"] = np.full(n_samples, float(iterations * hidden_synapses))
    counts.multiply_accumulates["readout"] = _readout_operations(params, topology, n_samples,
                                                                 training)
    counts.neuron_updates["forward"] = np.full(n_samples, float(iterations * neurons))
    if training:
        counts.multiply_accumulates["backward"] = np.full(n_samples,
                                                          float(iterations * hidden_synapses))
        counts.neuron_updates["backward"] = np.full(n_samples, float(iterations * neurons))
        biases = {layer.bias for layer in topology.layers} | {topology.readout_bias}
        weights = sum(float(np.size(params[name])) if name in biases
                      else float(_nonzero(params[name]).sum())
                      for name in topology.parameter_shapes())
        counts.multiply_accumulates["weight_update"] = np.full(n_samples, weights)
    return counts


def energy(counts, costs=None) -> np.ndarray:
    r"""Energy per sample in picojoules.

    .. math:: E = E_{AC} N_{AC} + E_{MAC} N_{MAC} + E_{neuron} N_{neuron}

    Parameters
    ----------
    counts : OperationCounts
    costs : EnergyCosts, optional
        Defaults to ``EnergyCosts()`` (0.9 pJ AC, 4.6 pJ MAC, 0.9 pJ per neuron update).

    Returns
    -------
    ndarray
        ``(B,)`` picojoules.
    """
    costs = costs or EnergyCosts()
    return (costs.accumulate_pj * counts.total("accumulates")
            + costs.multiply_accumulate_pj * counts.total("multiply_accumulates")
            + costs.neuron_update_pj * counts.total("neuron_updates"))
