"""What every trainer gathers over an epoch: per-layer firing statistics and operation counts.

Both trainers (the numpy reference in :mod:`spide_brian.training` and the Brian2 model in
:mod:`spide_brian.brian_backend`) feed the spike counts they record into one
:class:`SpikeTally`, so their reports are computed the same way.
"""
from __future__ import annotations

import numpy as np

from . import energy, firing

__all__ = ["SpikeTally", "batch_major"]


class SpikeTally:
    """Per-layer firing statistics and operation counts of an epoch, gathered run by run.

    Both trainers feed it the spike counts they record, so their reports agree.
    """

    def __init__(self, config):
        self.config = config
        self.firing = firing.FiringAccumulator(config.time_step, config.time_step_back)
        self.operations = []

    def add(self, params, inputs, forward_counts, backward_counts=None):
        """Counts ``(B, n_l)`` per layer of one run; ``backward_counts`` only when training."""
        config = self.config
        self.firing.add(forward_counts, backward_counts)
        self.operations.append(energy.spike_operations(
            params, forward_counts, config.time_step, inputs, backward_counts,
            None if backward_counts is None else config.time_step_back))

    def summary(self, with_firing=True):
        """``operations`` (and ``firing`` if asked) entries of a trainer's result dict."""
        result = {"operations": energy.OperationCounts.concatenate(self.operations)}
        if with_firing:
            result["firing"] = self.firing.result()
        return result


def batch_major(x):
    """Samples ``(B, n_in)`` stay as they are; frames ``(B, T, n_in)`` become ``(T, B, n_in)``."""
    return np.swapaxes(x, 0, 1) if x.ndim == 3 else x
