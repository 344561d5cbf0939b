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

i.e. ``beta = (I - J^T)^{-1} g``, and the loss gradients are SPIDE_SPEC 3.1 with the exact
``a``, ``m`` and ``beta``. The signed rates of the ternary couples approach this ``beta``
for every backward spike magnitude ``M = 2 V_th^b`` that exceeds ``|beta|``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .reference import readout, spike_gradients

__all__ = ["Equilibrium", "equilibrium", "adjoint", "equilibrium_loss", "implicit_gradients"]


@dataclass
class Equilibrium:
    """Fixed point of the rate map: per layer ``(B, n_l)`` rates and derivative masks."""

    rates: list
    masks: list
    iterations: int


def _layer_inputs(params, config, x, last_rates):
    """Pre-activations ``z_l`` (divided by nothing) given the last layer's rates."""
    scale = config.reset_amount
    z0 = x @ params["input_weight"].T + params["bias_0"]
    if config.feedback:
        z0 = z0 + last_rates @ params["feedback_weight"].T
    pre = [z0]
    rates = [np.clip(z0 / scale, 0.0, 1.0)]
    for layer in range(1, config.n_layers):
        z = rates[-1] @ params[f"weight_{layer - 1}"].T + params[f"bias_{layer}"]
        pre.append(z)
        rates.append(np.clip(z / scale, 0.0, 1.0))
    return pre, rates


def equilibrium(params, config, x, tolerance=1e-13, max_iterations=100000):
    """Solve the clamp fixed point by iteration from zero rates.

    Converges when the feedback loop is contractive (``||W_fb||_F`` times the feed-forward
    gains below ``V``); raises ``RuntimeError`` otherwise.
    """
    x = np.asarray(x, dtype=np.float64)
    last = np.zeros((x.shape[0], config.hidden_sizes[-1]))
    for iteration in range(1, max_iterations + 1):
        pre, rates = _layer_inputs(params, config, x, last)
        change = np.max(np.abs(rates[-1] - last))
        last = rates[-1]
        if change <= tolerance or not config.feedback:
            masks = [(z > 0) & (z < config.reset_amount) for z in pre]
            return Equilibrium(rates=rates, masks=masks, iterations=iteration)
    raise RuntimeError(f"equilibrium did not converge in {max_iterations} iterations "
                       f"(last change {change:.3g}); reduce the feedback norm")


def adjoint(params, config, masks, g):
    """Solve the adjoint system exactly for every sample; returns gated ``beta * m`` per layer.

    Parameters
    ----------
    masks : list of ndarray
        ``m_l`` of shape ``(B, n_l)`` (exact masks or a spiking network's own masks).
    g : ndarray
        ``(B, n_{N-1})``.
    """
    scale = config.reset_amount
    n_layers = config.n_layers
    g = np.asarray(g, dtype=np.float64)
    betas = [np.zeros(m.shape) for m in masks]
    for b in range(g.shape[0]):
        # chain maps beta_{N-1} -> beta_l for l = N-1 .. 0
        maps = [np.eye(config.hidden_sizes[-1])]
        for layer in range(n_layers - 2, -1, -1):
            step = params[f"weight_{layer}"].T * masks[layer + 1][b] / scale
            maps.insert(0, step @ maps[0])
        system = np.eye(config.hidden_sizes[-1])
        if config.feedback:
            system = system - params["feedback_weight"].T * masks[0][b] / scale @ maps[0]
        last = np.linalg.solve(system, g[b])
        for layer in range(n_layers):
            betas[layer][b] = (maps[layer] @ last) * masks[layer][b]
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
    beta = adjoint(params, config, eq.masks, out.gradient_current)
    grads = spike_gradients(config, x, eq.rates, beta)
    grads.update(out.gradients)
    grads["_equilibrium"] = eq
    grads["_beta"] = beta
    return grads
