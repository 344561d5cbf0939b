r"""Steady-state transfer functions of the forward neurons and the slopes the gate stands for.

A forward neuron driven by a constant current ``I`` per step settles at a firing rate
``a = f(z)`` of its scaled input ``z = I / V`` (``V = 2 V_th``, the reset). For the SPIDE
neuron (docs/method.md M1) ``f`` is the clamp :math:`\sigma(z) = \min(\max(z, 0), 1)`, its
derivative is the 0/1 gate ``m = [0 < z < 1]``, and that gate is what the couples use.

With an absolute refractory period of ``R`` steps (the membrane is held and inputs are lost
for ``R`` steps after each spike; :attr:`SPIDEConfig.refractory_steps`) a neuron that fires
``n`` spikes in ``T`` steps integrates its input on only ``T - R n`` of them, and the reset
removes ``V`` per spike, so over a long window ``n V = (T - R n) I``:

.. math::

    f_R(z) = \frac{\sigma(z)}{1 + R\,\sigma(z)}, \qquad
    f_R'(z) = \frac{[0 < z < 1]}{(1 + R z)^2} = [0 < z < 1]\,(1 - R\,f_R(z))^2 ,

saturating at ``1 / (1 + R)`` spikes per step. The last form gives the slope from the rate
alone, which is all a spiking neuron knows: with the ``'slope'`` gate of
:attr:`SPIDEConfig.gate` the couples' input is scaled by :func:`slope_of_rate`,
``(1 - R a)^2``, and they fire where the 0/1 gate is open. With ``R = 0`` both gates
are the same, ``f_0`` the clamp.

The LIF neuron (``lambda < 1``) keeps its leak-weighted rate and the clamp model of the
method; these functions apply the refractory correction to that model unchanged.
Exponential synapses (:attr:`SPIDEConfig.synapse`) carry the charge of the delta synapse,
so they leave the transfer function as it is (docs/biophysics.md B4).
"""
from __future__ import annotations

import numpy as np

__all__ = ["steady_rate", "slope", "slope_of_rate"]


def steady_rate(z, config):
    r"""The rate :math:`f_R(z) = \sigma(z) / (1 + R \sigma(z))` of scaled input ``z``."""
    clamped = np.clip(np.asarray(z, dtype=np.float64), 0.0, 1.0)
    refractory = float(config.refractory_steps)
    if refractory == 0.0:
        return clamped
    return clamped / (1.0 + refractory * clamped)


def slope(z, config):
    r"""The derivative :math:`f_R'(z) = [0 < z < 1] / (1 + R z)^2` (the exact gate)."""
    z = np.asarray(z, dtype=np.float64)
    inside = ((z > 0) & (z < 1)).astype(np.float64)
    refractory = float(config.refractory_steps)
    if refractory == 0.0:
        return inside
    return inside / (1.0 + refractory * z) ** 2


def slope_of_rate(rate, config):
    r"""The factor that scales the couples' input for forward rate ``rate``.

    ``'slope'`` gate: ``(1 - R a)^2``, the slope :math:`f_R'` at the input that gives rate
    ``a`` (:attr:`SPIDEConfig.slope_refractory` is ``R``); with the couple firing only where
    the 0/1 gate is open, its rate approaches ``m f_R' (W^T beta)``. ``'binary'`` gate:
    exactly 1. The Brian2 model computes the same product, ``b = 1 - R a`` then ``b b``.
    """
    base = 1.0 - config.slope_refractory * np.asarray(rate, dtype=np.float64)
    return base * base
