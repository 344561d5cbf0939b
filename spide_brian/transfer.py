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

With ``K`` integration steps per SPIDE step (:attr:`SPIDEConfig.integration_steps`,
docs/biophysics.md B9) a neuron can fire up to ``K`` spikes per SPIDE step: the clamp
becomes :math:`\sigma_K(z) = \min(\max(z, 0), K)` (:attr:`SPIDEConfig.rate_ceiling`), its
gate ``[0 < z < K]``, and the conductance model's cap ``K``; ``R`` stays in SPIDE steps.
Exponential synapses (:attr:`SPIDEConfig.synapse`) carry the charge of the delta synapse,
so they leave the transfer function as it is (docs/biophysics.md B4).

Conductance synapses (docs/biophysics.md B5) make the input depend on the membrane: with
steady conductances the membrane obeys ``v <- v + G - H v`` per step, ``G`` the current at
rest (signed weights times rates, plus bias and input) and ``H = g_e / E_e - g_i / E_i >= 0``
the conductance load. Between a reset at ``-V_th`` and the threshold ``V_th`` the membrane
relaxes towards ``G / H``; in continuous time the crossing takes
``(2 / H) artanh(H V_th / G)`` steps, so with ``z = G / V`` and ``x = H / (2 z)``

.. math::

    f_c(z, H) = z\,\frac{x}{\operatorname{artanh}(x)} \quad (0 \le x < 1), \qquad
    0 \quad (z \le H / 2),

capped at one spike per step (``K`` with integration steps). ``H = 0`` gives the clamp; a
load lowers the rate (the membrane spends its time near the threshold, where the driving
force is smallest) and
silences a neuron whose resting drive ``G / H`` stays below ``V_th``. Near that boundary
the period diverges, slower than the forward window can resolve; :func:`conductance_rate`
bridges it linearly and returns the rate with its two partial derivatives; a refractory
period then applies :func:`steady_rate`'s correction.
"""
from __future__ import annotations

import numpy as np

__all__ = ["steady_rate", "slope", "slope_of_rate", "conductance_rate"]


def steady_rate(z, config):
    r"""The rate :math:`f_R(z) = \sigma(z) / (1 + R \sigma(z))` of scaled input ``z``."""
    clamped = np.clip(np.asarray(z, dtype=np.float64), 0.0, config.rate_ceiling)
    refractory = float(config.refractory_steps)
    if refractory == 0.0:
        return clamped
    return clamped / (1.0 + refractory * clamped)


def slope(z, config):
    r"""The derivative :math:`f_R'(z) = [0 < z < 1] / (1 + R z)^2` (the exact gate)."""
    z = np.asarray(z, dtype=np.float64)
    inside = ((z > 0) & (z < config.rate_ceiling)).astype(np.float64)
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


#: Below this ``x = H / (2 z)`` the ratio ``x / artanh(x)`` and its derivative are taken from
#: their series (the closed forms cancel catastrophically there).
_SERIES_BELOW = 1e-3


def _load_ratio(x):
    """``q(x) = x / artanh(x)`` and ``q'(x)`` for ``0 <= x < 1``."""
    small = x < _SERIES_BELOW
    safe = np.where(small, 0.5, x)
    inverse = np.arctanh(safe)
    ratio = np.where(small, 1.0 - x * x / 3.0 - 4.0 * x ** 4 / 45.0, safe / inverse)
    derivative = np.where(small, -2.0 * x / 3.0 - 16.0 * x ** 3 / 45.0,
                          1.0 / inverse - safe / (inverse * inverse * (1.0 - safe * safe)))
    return ratio, derivative


def _window_edge(load, steps):
    """The input ``z_T = H / (2 tanh(H T / 2))`` at which the steady period is ``T`` steps,
    and ``dz_T / dH``; at ``H = 0`` it is ``1 / T``."""
    u = load * steps / 2.0
    small = u < _SERIES_BELOW
    safe = np.where(small, 1.0, u)
    ratio = np.where(small, 1.0 + u * u / 3.0 - u ** 4 / 45.0, safe / np.tanh(safe))
    decay = np.exp(-2.0 * safe)  # u / sinh(u)^2 = 4 u e^(-2u) / (1 - e^(-2u))^2
    derivative = np.where(small, 2.0 * u / 3.0 - 4.0 * u ** 3 / 45.0,
                          1.0 / np.tanh(safe) - 4.0 * safe * decay / (1.0 - decay) ** 2)
    return ratio / steps, derivative / 2.0


def conductance_rate(z, load, config):
    r"""Steady rate of a neuron with conductance synapses and its partial derivatives.

    Above ``z_T`` (one spike per forward window of ``T`` steps, :func:`_window_edge`) the
    rate is :math:`f_c(z, H)` of the module docstring. Between the silence boundary
    ``H / 2`` and ``z_T`` it rises linearly from 0 to ``1 / T``: the window cannot resolve
    slower firing, and the steady model's slope grows without bound there (the period
    diverges logarithmically). With ``H = 0`` both pieces are the clamp.

    Parameters
    ----------
    z : array_like
        Scaled current at rest, ``G / V``.
    load : array_like
        Conductance load ``H`` per step (same shape as ``z``), ``>= 0``.
    config : SPIDEConfig
        Supplies ``T`` (``time_step``) and the refractory period ``R``.

    Returns
    -------
    rate, rate_by_z, rate_by_load : ndarray
        :math:`a = f_R(f_c(z, H))`, :math:`\partial a / \partial z` and
        :math:`\partial a / \partial H`; both derivatives are 0 where the neuron is silent
        (``z <= H/2``) or saturated (``f_c >= 1``), as the clamp's gate is.
    """
    z = np.asarray(z, dtype=np.float64)
    load = np.asarray(load, dtype=np.float64)
    steps = float(config.time_step)
    silent_edge = load / 2.0
    edge, edge_by_load = _window_edge(load, steps)
    steady = z >= edge
    ramp = (z > silent_edge) & ~steady
    # the bridge narrows as e^(-H T) with the load: where it underflows, no z lies on it
    span = np.where(ramp, edge - silent_edge, 1.0)
    x = np.where(steady, load / (2.0 * np.where(steady, z, 1.0)), 0.0)
    ratio, derivative = _load_ratio(x)
    above = z - silent_edge
    raw = np.where(steady, z * ratio, np.where(ramp, above / (steps * span), 0.0))
    ceiling = config.rate_ceiling
    inside = (steady | ramp) & (raw < ceiling)
    by_z = np.where(steady, ratio - x * derivative, 1.0 / (steps * span))
    by_load = np.where(steady, derivative / 2.0,
                       -0.5 / (steps * span) - above * (edge_by_load - 0.5) / (steps * span ** 2))
    by_z = np.where(inside, by_z, 0.0)
    by_load = np.where(inside, by_load, 0.0)
    clamped = np.minimum(raw, ceiling)
    refractory = float(config.refractory_steps)
    if refractory == 0.0:
        return clamped, by_z, by_load
    chain = 1.0 / (1.0 + refractory * clamped) ** 2
    return clamped / (1.0 + refractory * clamped), by_z * chain, by_load * chain
