r"""Per-layer firing statistics of both SPIDE stages, from spike counts.

For layer ``l`` with ``n_l`` neurons, ``B`` samples, forward spike counts ``c_{bj}`` over ``T``
steps and ternary spike counts ``c^b_{bj} = \sum_t |s^b_{bj}[t]|`` over ``T_b`` steps:

.. math::

    r_l = \frac{\sum_{bj} c_{bj}}{B\, n_l\, T}, \qquad
    r^b_l = \frac{\sum_{bj} c^b_{bj}}{B\, n_l\, T_b},

and the shares of (sample, neuron) pairs that are *partial* (``0 < c < T``, i.e. the gate
``m = [0 < a < 1]`` is open; also for LIF, whose leak-weighted rate is 0 or 1 exactly when the
count is), *silent* (``c = 0``) and *saturated* (``c = T``). Silent and saturated neurons pass
no error in either stage (docs/method.md M3).

The inputs are plain arrays, so spike records of the numpy reference and of the Brian2 model
give the same statistics. :class:`FiringAccumulator` sums them over the mini-batches of an epoch.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["LayerFiring", "spike_counts", "firing_statistics", "FiringAccumulator",
           "statistics_columns", "statistics_from_columns"]

_FIELDS = ("forward_rate", "backward_rate", "partial", "silent", "saturated")


@dataclass(frozen=True)
class LayerFiring:
    """Firing statistics of one layer.

    Parameters
    ----------
    layer : int
    forward_rate : float
        Forward spikes per neuron per step.
    backward_rate : float
        Ternary spikes (either sign) per couple per step; NaN if the backward stage was not run.
    partial, silent, saturated : float
        Shares of neurons (over samples) with ``0 < a < 1``, ``a = 0`` and ``a = 1``.
    """

    layer: int
    forward_rate: float
    backward_rate: float
    partial: float
    silent: float
    saturated: float

    def as_dict(self):
        return asdict(self)


def spike_counts(records):
    """Per-layer spike counts ``(B, n)`` from spike records ``(T, B, n)``.

    Parameters
    ----------
    records : list of ndarray
        Per layer, boolean forward spikes or signed ternary spikes over time.

    Returns
    -------
    list of ndarray
        ``sum_t |s[t]|`` per layer, int64.
    """
    return [np.abs(np.asarray(r, dtype=np.int64)).sum(axis=0) for r in records]


class FiringAccumulator:
    """Sums of forward and backward spike counts over batches, per layer.

    Parameters
    ----------
    time_step, time_step_back : int
        ``T`` and ``T_b`` (rates are spikes per step of these).
    count_max : int, optional
        The most forward spikes a neuron can fire (:attr:`SPIDEConfig.count_max`; ``T`` by
        default): a neuron that fires it is saturated, its gate closed.

    Examples
    --------
    >>> import numpy as np
    >>> acc = FiringAccumulator(time_step=4, time_step_back=10)
    >>> acc.add([np.array([[0, 2, 4]])], [np.array([[0, 5, 1]])])
    >>> layer = acc.result()[0]
    >>> layer.forward_rate, layer.backward_rate, layer.silent, layer.saturated
    (0.5, 0.2, 0.3333333333333333, 0.3333333333333333)
    """

    def __init__(self, time_step, time_step_back=None, count_max=None):
        self.time_step = int(time_step)
        self.count_max = self.time_step if count_max is None else int(count_max)
        self.time_step_back = None if time_step_back is None else int(time_step_back)
        self._sums = None
        self._neuron_samples = None
        self._backward_samples = None

    def add(self, forward_counts, backward_counts=None):
        """Add one batch: per layer ``(B, n_l)`` forward and (optional) ternary spike counts."""
        forward_counts = [np.asarray(c) for c in forward_counts]
        if self._sums is None:
            self._sums = np.zeros((len(forward_counts), 5))
            self._neuron_samples = np.zeros(len(forward_counts))
            self._backward_samples = np.zeros(len(forward_counts))
        if len(forward_counts) != len(self._sums):
            raise ValueError(f"expected {len(self._sums)} layers, got {len(forward_counts)}")
        for layer, counts in enumerate(forward_counts):
            sums = self._sums[layer]
            sums[0] += counts.sum()
            sums[2] += np.count_nonzero((counts > 0) & (counts < self.count_max))
            sums[3] += np.count_nonzero(counts == 0)
            sums[4] += np.count_nonzero(counts >= self.count_max)
            self._neuron_samples[layer] += counts.size
            if backward_counts is not None:
                if self.time_step_back is None:
                    raise ValueError("time_step_back is needed for backward statistics")
                backward = np.abs(np.asarray(backward_counts[layer]))
                sums[1] += backward.sum()
                self._backward_samples[layer] += backward.size

    def state(self):
        """The sums as named arrays (empty before the first batch), for :meth:`from_state`."""
        if self._sums is None:
            return {}
        return {"sums": self._sums.copy(), "neuron_samples": self._neuron_samples.copy(),
                "backward_samples": self._backward_samples.copy()}

    def load_state(self, state):
        """Continue from sums saved by :meth:`state`."""
        if not state:
            self._sums = self._neuron_samples = self._backward_samples = None
            return
        sums = np.asarray(state["sums"], dtype=np.float64)
        if sums.ndim != 2 or sums.shape[1] != 5:
            raise ValueError(f"firing sums must have shape (layers, 5), got {sums.shape}")
        self._sums = sums.copy()
        self._neuron_samples = np.asarray(state["neuron_samples"], dtype=np.float64).copy()
        self._backward_samples = np.asarray(state["backward_samples"], dtype=np.float64).copy()
        if not (self._neuron_samples.shape == self._backward_samples.shape == (len(sums),)):
            raise ValueError("firing sample counts must have one entry per layer")

    def result(self):
        """Statistics of everything added so far, one :class:`LayerFiring` per layer."""
        if self._sums is None:
            return []
        layers = []
        for layer, sums in enumerate(self._sums):
            units = self._neuron_samples[layer]
            backward_units = self._backward_samples[layer]
            backward = (sums[1] / (backward_units * self.time_step_back) if backward_units
                        else math.nan)
            layers.append(LayerFiring(
                layer=layer, forward_rate=float(sums[0] / (units * self.time_step)),
                backward_rate=float(backward), partial=float(sums[2] / units),
                silent=float(sums[3] / units), saturated=float(sums[4] / units)))
        return layers


def firing_statistics(forward_counts, time_step, backward_counts=None, time_step_back=None):
    """Per-layer firing statistics of one set of samples.

    Parameters
    ----------
    forward_counts : list of ndarray
        Per layer ``(B, n_l)`` forward spike counts over ``time_step`` steps.
    time_step : int
    backward_counts : list of ndarray, optional
        Per layer ``(B, n_l)`` ternary spike counts ``sum_t |s^b[t]|``.
    time_step_back : int, optional

    Returns
    -------
    list of LayerFiring
    """
    accumulator = FiringAccumulator(time_step, time_step_back)
    accumulator.add(forward_counts, backward_counts)
    return accumulator.result()


def statistics_columns(layers):
    """Flat log columns: ``forward_rate_0``, ``backward_rate_0``, ``partial_0`` ... per layer."""
    return {f"{name}_{stats.layer}": getattr(stats, name) for stats in layers for name in _FIELDS}


def statistics_from_columns(row):
    """Inverse of :func:`statistics_columns` for one log row (a mapping of column to value).

    Returns an empty list if the row has no per-layer columns.
    """
    layers = []
    while f"forward_rate_{len(layers)}" in row:
        layer = len(layers)
        layers.append(LayerFiring(layer=layer, **{name: float(row[f"{name}_{layer}"])
                                                  for name in _FIELDS}))
    return layers
