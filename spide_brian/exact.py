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
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .reference import input_currents, layer_current, readout, spike_gradients
from .topology import topology_of
from .transfer import slope, steady_rate

__all__ = ["Equilibrium", "equilibrium", "adjoint", "equilibrium_loss", "implicit_gradients"]


@dataclass
class Equilibrium:
    """Fixed point of the rate map: per layer ``(B, n_l)`` rates, the 0/1 masks
    ``[0 < z/V < 1]`` and the transfer function's slopes ``f'(z/V)`` (equal to the masks
    for the clamp)."""

    rates: list
    masks: list
    iterations: int
    slopes: list = None


def _layer_inputs(params, config, topology, x, rates):
    """Pre-activations ``z_l`` and clamped rates, layer by layer, given the previous rates
    (feedback connections read the previous iteration's rates, feed-forward ones this
    iteration's, so a feed-forward chain is solved in one sweep)."""
    scale = config.reset_amount
    current = input_currents(params, topology, x, 1)
    pre, new = [], []

    def delivered(connection):
        return (rates if connection.is_feedback else new)[connection.pre]

    for layer in topology.layers:
        z = layer_current(params, topology, layer.index, delivered, lambda: current(0))
        pre.append(z)
        new.append(steady_rate(z / scale, config))
    return pre, new


def equilibrium(params, config, x, tolerance=1e-13, max_iterations=100000, topology=None):
    """Solve the clamp fixed point by iteration from zero rates.

    Converges when the feedback loop is contractive (``||W_fb||_F`` times the feed-forward
    gains below ``V``); raises ``RuntimeError`` otherwise.
    """
    if config.synapse == "conductance":
        raise NotImplementedError(
            "the equilibrium of conductance synapses (rate model of dv/dt = G - H v, "
            "docs/biophysics.md B5) is not solved here yet; current synapses (delta or "
            "exponential) share the clamp model")
    x = np.asarray(x, dtype=np.float64)
    topology = topology or topology_of(config, params)
    rates = [np.zeros((x.shape[0], layer.size)) for layer in topology.layers]
    recurrent = any(c.is_feedback for c in topology.spiking)
    for iteration in range(1, max_iterations + 1):
        pre, new = _layer_inputs(params, config, topology, x, rates)
        change = max(float(np.max(np.abs(a - b))) for a, b in zip(new, rates))
        rates = new
        if change <= tolerance or not recurrent:
            masks = [(z > 0) & (z < config.reset_amount) for z in pre]
            slopes = [slope(z / config.reset_amount, config) for z in pre]
            return Equilibrium(rates=rates, masks=masks, iterations=iteration, slopes=slopes)
    raise RuntimeError(f"equilibrium did not converge in {max_iterations} iterations "
                       f"(last change {change:.3g}); reduce the feedback norm")


def adjoint(params, config, masks, g, topology=None):
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
    """
    topology = topology or topology_of(config, params)
    scale = config.reset_amount
    g = np.asarray(g, dtype=np.float64)
    sizes = [layer.size for layer in topology.layers]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    blocks = [slice(offsets[k], offsets[k + 1]) for k in range(len(sizes))]
    total = int(offsets[-1])
    readout_block = blocks[topology.readout.pre]
    betas = [np.zeros(m.shape) for m in masks]
    for b in range(g.shape[0]):
        system = np.eye(total)
        for connection in topology.spiking:
            jacobian = connection.kind.jacobian(params[connection.parameter])
            system[blocks[connection.pre], blocks[connection.post]] -= (
                jacobian.T * masks[connection.post][b] / scale)
        driven = np.zeros(total)
        driven[readout_block] = g[b]
        solution = np.linalg.solve(system, driven)
        for layer, block in enumerate(blocks):
            betas[layer][b] = solution[block] * masks[layer][b]
    return betas


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
    beta = adjoint(params, config, eq.slopes, out.gradient_current)
    grads = spike_gradients(config, x, eq.rates, beta)
    grads.update(out.gradients)
    grads["_equilibrium"] = eq
    grads["_beta"] = beta
    return grads
