r"""Exact equilibrium, adjoint and implicit gradient of a feedback network (no spikes).

These are what SPIDE's spikes approximate, used as ground truth in tests and figures.

The equilibrium of the rates is the fixed point of the layered clamp map

.. math::

    a_0 = \sigma\big((F x + b_0 + W_{fb} a_{N-1}) / V\big), \qquad
    a_l = \sigma\big((W_{l-1} a_{l-1} + b_l) / V\big), \qquad \sigma(z) = \min(\max(z, 0), 1)

and its derivative is ``m = [0 < z/V < 1]``. The adjoint (implicit differentiation) solves

.. math::

    \beta_{N-1} = g + W_{fb}^\top (m_0 \odot \beta_0) / V, \qquad
    \beta_l = W_l^\top (m_{l+1} \odot \beta_{l+1}) / V,

i.e. ``beta = (I - J^T)^{-1} g``, and the loss gradients are those of docs/method.md M4 with the exact
``a``, ``m`` and ``beta``. The signed rates of the ternary couples approach this ``beta``
for every backward spike magnitude ``M = 2 V_th^b`` that exceeds ``|beta|``.

A neuron variant whose steady-state transfer function ``f`` is not the clamp
(:mod:`spide_brian.transfer`: a refractory period) has the fixed point
``a_l = f(z_l / V)`` and the adjoint with ``m = f'(z / V)``, its slope, in place of the
0/1 mask; :attr:`Equilibrium.slopes` holds it and :func:`implicit_gradients` uses it.

Conductance synapses (docs/biophysics.md B5) make the rate a function of two inputs, the
current at rest ``G_l`` (the clamp's ``z_l``) and the conductance load

.. math::

    H_l = \sum_{k \to l} \big([W_k]_+ / E_e - [-W_k]_+ / E_i\big)\, a_k ,

``a_l = f_c(G_l / V, H_l)`` (:func:`spide_brian.transfer.conductance_rate`). A connection's
Jacobian is then ``diag(f_z / V) W + diag(f_H) W_H`` with ``W_H = [W]_+ / E_e - [-W]_+ / E_i``:
the adjoint carries both terms (:attr:`Equilibrium.load_slopes` holds ``f_H``), and a
weight's gradient gains ``(lambda_post f_H a_pre) dW_H/dW`` with ``dW_H/dW = 1/E_e`` for
``W > 0`` and ``1/E_i`` for ``W < 0``, ``lambda`` the ungated adjoint.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .reference import input_currents, layer_current, readout, spike_gradients
from .topology import topology_of
from .transfer import conductance_rate, slope, steady_rate

__all__ = ["Equilibrium", "equilibrium", "adjoint", "adjoint_solution", "equilibrium_loss",
           "implicit_gradients", "conductance_weights"]


@dataclass
class Equilibrium:
    """Fixed point of the rate map: per layer ``(B, n_l)`` rates, the 0/1 masks
    ``[0 < z/V < 1]`` and the transfer function's slopes ``f'(z/V)`` (equal to the masks
    for the clamp). With conductance synapses the masks are ``[f_z > 0]``, the slopes
    ``f_z = da/d(G/V)``, and ``loads`` and ``load_slopes`` hold ``H`` and ``f_H = da/dH``
    (None for current synapses)."""

    rates: list
    masks: list
    iterations: int
    slopes: list = None
    loads: list = None
    load_slopes: list = None


#: Step of the damped fixed-point iteration with conductance synapses.
_CONDUCTANCE_DAMPING = 0.5


def conductance_weights(weight, config):
    """The load weight ``W_H = [W]_+ / E_e - [-W]_+ / E_i`` of a conductance connection's
    weight array and its elementwise derivative ``dW_H/dW`` (0 where ``W = 0``)."""
    weight = np.asarray(weight, dtype=np.float64)
    inverse_exc, inverse_inh = 1.0 / config.reversal_exc, 1.0 / config.reversal_inh
    load = np.maximum(weight, 0.0) * inverse_exc - np.maximum(-weight, 0.0) * inverse_inh
    derivative = np.where(weight > 0, inverse_exc, np.where(weight < 0, inverse_inh, 0.0))
    return load, derivative


def _load_operator(connection, params, config):
    """``W_H`` of a connection as the kind propagates it, and the factor of that propagation:
    a fixed connection (pooling, positive weights) loads excitatory conductances only."""
    weight = params[connection.parameter]
    if connection.kind.learns:
        return conductance_weights(weight, config)[0], 1.0
    return weight, 1.0 / config.reversal_exc


def _load(load_operators, topology, layer, delivered):
    """Conductance load ``H`` of ``layer`` from the rates its spiking connections deliver
    (``load_operators``: :func:`_load_operator` by parameter name)."""
    terms = []
    for c in topology.incoming(layer):
        weight, factor = load_operators[c.parameter]
        terms.append(c.kind.propagate(weight, delivered(c)) * factor)
    return sum(terms[1:], terms[0]) if terms else None


def _layer_inputs(params, config, topology, x, rates, load_operators=None):
    """Pre-activations ``z_l``, conductance loads ``H_l`` (zeros for current synapses) and
    rates, layer by layer, given the previous rates (feedback connections read the previous
    iteration's rates, feed-forward ones this iteration's, so a feed-forward chain is solved
    in one sweep). ``load_operators`` (:func:`_load_operator` by parameter) is needed with
    conductances."""
    scale = config.reset_amount
    current = input_currents(params, topology, x, 1)
    pre, loads, new = [], [], []

    def delivered(connection):
        return (rates if connection.is_feedback else new)[connection.pre]

    for layer in topology.layers:
        z = layer_current(params, topology, layer.index, delivered, lambda: current(0))
        load = _load(load_operators, topology, layer.index, delivered) \
            if config.conductances else None
        load = np.zeros_like(z) if load is None else load
        pre.append(z)
        loads.append(load)
        new.append(conductance_rate(z / scale, load, config)[0] if config.conductances
                   else steady_rate(z / scale, config))
    return pre, loads, new


def equilibrium(params, config, x, tolerance=1e-13, max_iterations=100000, topology=None):
    """Solve the fixed point of the rate map by iteration from zero rates.

    Converges when the feedback loop is contractive (``||W_fb||_F`` times the feed-forward
    gains below ``V``); raises ``RuntimeError`` otherwise. With conductance synapses the
    iteration turns damped, ``a <- a + (f(a) - a) / 2`` (the same fixed point), once a step
    fails to shrink the change: the rate falls steeply to zero where the resting drive
    ``G / H`` meets the threshold, and the undamped map can oscillate there.
    """
    x = np.asarray(x, dtype=np.float64)
    topology = topology or topology_of(config, params)
    rates = [np.zeros((x.shape[0], layer.size)) for layer in topology.layers]
    recurrent = any(c.is_feedback for c in topology.spiking)
    step, last_change = 1.0, np.inf
    load_operators = {c.parameter: _load_operator(c, params, config)
                    for c in topology.spiking} if config.conductances else None
    for iteration in range(1, max_iterations + 1):
        pre, loads, new = _layer_inputs(params, config, topology, x, rates, load_operators)
        change = max(float(np.max(np.abs(a - b))) for a, b in zip(new, rates))
        if change <= tolerance or not recurrent:
            return _fixed_point(config, pre, loads, new, iteration)
        if config.conductances and change >= last_change:
            step = _CONDUCTANCE_DAMPING
        rates = new if step == 1.0 else [a + step * (b - a) for a, b in zip(rates, new)]
        last_change = change
    raise RuntimeError(f"equilibrium did not converge in {max_iterations} iterations "
                       f"(last change {change:.3g}); reduce the feedback norm")


def _fixed_point(config, pre, loads, rates, iteration):
    scale = config.reset_amount
    if not config.conductances:
        top = scale * config.rate_ceiling
        return Equilibrium(rates=rates, masks=[(z > 0) & (z < top) for z in pre],
                           iterations=iteration, slopes=[slope(z / scale, config) for z in pre])
    derivatives = [conductance_rate(z / scale, load, config)[1:] for z, load in zip(pre, loads)]
    slopes = [by_z for by_z, _ in derivatives]
    return Equilibrium(rates=rates, masks=[s > 0 for s in slopes], iterations=iteration,
                       slopes=slopes, loads=loads,
                       load_slopes=[by_load for _, by_load in derivatives])


def adjoint(params, config, masks, g, topology=None, load_slopes=None):
    r"""Solve the adjoint system exactly for every sample; returns gated ``beta * m`` per layer.

    With all layers stacked, the ungated ``z`` solves ``z = g_ext + A z`` where the block of
    ``A`` for a connection ``pre -> post`` is ``W^T diag(m_post) / V`` (row block ``pre``,
    column block ``post``) and ``g_ext`` holds ``g`` at the readout's layer; ``beta = z m``.

    Parameters
    ----------
    masks : list of ndarray
        ``m_l`` of shape ``(B, n_l)`` (exact masks or slopes, or a spiking network's own
        masks).
    g : ndarray
        ``(B, n_{N-1})``.
    load_slopes : list of ndarray, optional
        ``f_H`` per layer (conductance synapses, :attr:`Equilibrium.load_slopes`): each
        connection's block gains ``W_H^T diag(f_H)``.

    Returns
    -------
    list of ndarray
        ``beta_l * m_l`` per layer; :func:`adjoint_solution` gives the ungated ``beta``.
    """
    solution = adjoint_solution(params, config, masks, g, topology, load_slopes)
    return [z * m for z, m in zip(solution, masks)]


def adjoint_solution(params, config, masks, g, topology=None, load_slopes=None):
    """The ungated adjoint ``z`` of :func:`adjoint` (per layer ``(B, n_l)``)."""
    topology = topology or topology_of(config, params)
    scale = config.reset_amount
    g = np.asarray(g, dtype=np.float64)
    sizes = [layer.size for layer in topology.layers]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    blocks = [slice(offsets[k], offsets[k + 1]) for k in range(len(sizes))]
    total = int(offsets[-1])
    readout_block = blocks[topology.readout.pre]
    jacobians = [connection.kind.jacobian(params[connection.parameter]).T
                 for connection in topology.spiking]
    load_jacobians = None if load_slopes is None else [
        connection.kind.jacobian(weight).T * factor for connection, (weight, factor) in
        ((c, _load_operator(c, params, config)) for c in topology.spiking)]
    solutions = [np.zeros(m.shape) for m in masks]
    for b in range(g.shape[0]):
        system = np.eye(total)
        for k, connection in enumerate(topology.spiking):
            block = system[blocks[connection.pre], blocks[connection.post]]
            block -= jacobians[k] * masks[connection.post][b] / scale
            if load_jacobians is not None:
                block -= load_jacobians[k] * load_slopes[connection.post][b]
        driven = np.zeros(total)
        driven[readout_block] = g[b]
        solution = np.linalg.solve(system, driven)
        for layer, block in enumerate(blocks):
            solutions[layer][b] = solution[block]
    return solutions


def equilibrium_loss(params, config, x, labels):
    """Mean softmax cross-entropy of the readout at the exact equilibrium."""
    eq = equilibrium(params, config, x)
    return readout(params, eq.rates[-1], labels, 1.0 / len(labels)).loss


def implicit_gradients(params, config, x, labels):
    """Exact gradient of :func:`equilibrium_loss` by implicit differentiation.

    Returns
    -------
    dict
        Gradients of every parameter (the batch-mean loss), plus ``'_equilibrium'`` and
        ``'_beta'`` entries for inspection.
    """
    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(labels)
    eq = equilibrium(params, config, x)
    # with kappa = 1/B the readout's current and gradients are those of the batch-mean loss
    out = readout(params, eq.rates[-1], labels, 1.0 / len(labels))
    topology = topology_of(config, params)
    solution = adjoint_solution(params, config, eq.slopes, out.gradient_current, topology,
                                eq.load_slopes)
    beta = [z * m for z, m in zip(solution, eq.slopes)]
    grads = spike_gradients(config, x, eq.rates, beta)
    if eq.load_slopes is not None:
        for connection in topology.spiking:
            through_load = connection.kind.gradient(
                solution[connection.post] * eq.load_slopes[connection.post],
                eq.rates[connection.pre])
            derivative = conductance_weights(params[connection.parameter], config)[1]
            grads[connection.parameter] = grads[connection.parameter] + through_load * derivative
    grads.update(out.gradients)
    grads["_equilibrium"] = eq
    grads["_beta"] = beta
    return grads
