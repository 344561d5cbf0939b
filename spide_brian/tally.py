"""What every trainer gathers over an epoch: loss, accuracy, spike totals, per-layer firing
statistics and operation counts.

Both trainers (the numpy reference in :mod:`spide_brian.training` and the Brian2 model in
:mod:`spide_brian.brian_backend`) feed each mini-batch or run they simulate into one
:class:`EpochTally`, so their results carry the same keys, computed the same way.
"""
from __future__ import annotations

import numpy as np

from . import energy, firing
from .topology import topology_of

__all__ = ["EpochTally", "batch_major", "cross_entropy_sum"]

#: The totals of a tally, in the order :meth:`EpochTally.load_state` reads them.
_SCALARS = ("loss_sum", "correct", "samples", "forward_spikes", "backward_spikes")


def cross_entropy_sum(probabilities, labels):
    r"""Summed cross-entropy :math:`-\sum_i \log p_{i, y_i}` of class probabilities
    ``(n, classes)`` against integer ``labels`` ``(n,)``."""
    labels = np.asarray(labels)
    return float(-np.sum(np.log(probabilities[np.arange(len(labels)), labels])))


class EpochTally:
    """Totals of one training epoch or one evaluation pass, gathered batch by batch.

    Parameters
    ----------
    config : SPIDEConfig
        Supplies ``T`` and ``T_b`` for the firing statistics and operation counts.
    training : bool
        Whether backward spike counts are recorded (a training epoch) or not (evaluation).

    Notes
    -----
    :meth:`result` returns ``loss_sum`` (summed cross-entropy), ``correct``, ``samples``,
    ``forward_spikes`` and ``operations`` (:class:`spide_brian.energy.OperationCounts`);
    a training epoch adds ``backward_spikes`` and ``firing`` (per-layer statistics of both
    stages), an evaluation adds ``predictions`` (the argmax class of every sample, in order).
    Loss and accuracy of a training sample are those at the weights it saw.
    """

    def __init__(self, config, training=True):
        self.config = config
        self.training = bool(training)
        self.loss_sum = 0.0
        self.correct = 0
        self.samples = 0
        self.forward_spikes = 0
        self.backward_spikes = 0
        self.predictions = []
        self.firing = firing.FiringAccumulator(config.time_step, config.time_step_back,
                                               config.count_max)
        self.operations = []

    def add(self, params, inputs, labels, probabilities, forward_counts, backward_counts=None):
        """Add one batch or run.

        Parameters
        ----------
        params : dict
            Parameters the batch was simulated with (its synapse counts price the events).
        inputs : ndarray
            ``(B, n_in)`` samples or ``(T, B, n_in)`` frames (see :func:`batch_major`).
        labels : ndarray of int, shape (B,)
        probabilities : ndarray, shape (B, classes)
            Readout probabilities.
        forward_counts, backward_counts : list of ndarray ``(B, n_l)``
            Spike counts per layer; ``backward_counts`` when training only.
        """
        if self.training and backward_counts is None:
            raise ValueError("a training tally needs the backward spike counts")
        config = self.config
        labels = np.asarray(labels)
        predicted = np.argmax(probabilities, axis=1)
        self.loss_sum += cross_entropy_sum(probabilities, labels)
        self.correct += int(np.sum(predicted == labels))
        self.samples += len(labels)
        self.forward_spikes += int(sum(c.sum() for c in forward_counts))
        if self.training:
            self.backward_spikes += int(sum(c.sum() for c in backward_counts))
            self.firing.add(forward_counts, backward_counts)
        else:
            self.predictions.append(predicted)
        if config.model:
            # shared kernels and channel biases counted as the synapses they stand for
            params = topology_of(config, params).connectivity(params)
        self.operations.append(energy.spike_operations(
            params, forward_counts, config.forward_steps, inputs,
            backward_counts if self.training else None,
            config.backward_steps if self.training else None))

    def state(self):
        """Everything gathered so far as named numpy arrays (for a mid-epoch checkpoint).

        :meth:`load_state` of a new tally continues from it: the final :meth:`result` equals
        that of one tally fed every batch.
        """
        state = {name: np.asarray(getattr(self, name)) for name in _SCALARS}
        state.update({f"firing/{k}": v for k, v in self.firing.state().items()})
        operations = energy.OperationCounts.concatenate(self.operations)
        for kind in operations.KINDS:
            for category, value in getattr(operations, kind).items():
                state[f"operations/{kind}/{category}"] = np.asarray(value)
        if self.predictions:
            state["predictions"] = np.concatenate(self.predictions)
        return state

    def load_state(self, state):
        """Continue from :meth:`state` (replaces what this tally holds).

        Raises
        ------
        ValueError
            A missing total or malformed arrays.
        """
        missing = [name for name in _SCALARS if name not in state]
        if missing:
            raise ValueError(f"the tally state has no {', '.join(missing)}")
        self.loss_sum = float(state["loss_sum"])
        for name in _SCALARS[1:]:
            setattr(self, name, int(state[name]))
        self.firing.load_state({k[len("firing/"):]: v for k, v in state.items()
                                if k.startswith("firing/")})
        operations = energy.OperationCounts()
        for key, value in state.items():
            if key.startswith("operations/"):
                _, kind, category = key.split("/", 2)
                if kind not in operations.KINDS:
                    raise ValueError(f"unknown operation kind {kind!r} in the tally state")
                getattr(operations, kind)[category] = np.asarray(value)
        self.operations = [operations] if operations.n_samples else []
        self.predictions = [np.asarray(state["predictions"])] if "predictions" in state else []

    def result(self):
        """The epoch's totals as a dict (keys in the class notes)."""
        result = dict(loss_sum=self.loss_sum, correct=self.correct, samples=self.samples,
                      forward_spikes=self.forward_spikes,
                      operations=energy.OperationCounts.concatenate(self.operations))
        if self.training:
            result["backward_spikes"] = self.backward_spikes
            result["firing"] = self.firing.result()
        else:
            result["predictions"] = (np.concatenate(self.predictions) if self.predictions
                                     else np.zeros(0, dtype=int))
        return result


def batch_major(x):
    """Samples ``(B, n_in)`` stay as they are; frames ``(B, T, n_in)`` become ``(T, B, n_in)``."""
    return np.swapaxes(x, 0, 1) if x.ndim == 3 else x
