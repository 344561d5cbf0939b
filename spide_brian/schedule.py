"""The in-simulation training timeline: one fixed slot of time steps per sample.

A run of the model processes ``capacity`` samples, one slot of ``slot_length`` steps each,
plus one final commit step (see ``equations/schedule.eq``)::

    step 0                      commit (gradients of the previous sample, mini-batch update)
    1 .. forward_start-1        settle (feedback norm of the new weights)
    forward_start .. +T-1       forward phase
    +T .. +T+2                  rates, readout, softmax, error, gradient current g
    backward_start .. +T_b-1    backward phase
    backward_start + T_b        beta fixed (last step of the slot)

A step of the model (one step of SPIDE's discrete dynamics) lasts ``substeps`` device steps:
one on the devices that follow Brian2's schedule, more where the synaptic events of a spike
reach the state only after the next step's ``run_regularly`` operations (GeNN; capability
``event_delivery_steps``). Every update and threshold of a model step happens at its first
device step; the further device steps only deliver the events of its spikes.

Inputs, labels, the per-sample gradient scale ``kappa = S / B_actual`` (0 for padding and
evaluation) and the per-slot update flag come from ``TimedArray`` tables built here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SlotSchedule", "ReplaySlotSchedule", "SampleTables"]

#: Settle steps between the commit and the forward phase: the feedback Frobenius scale of the
#: updated weights passes two summed-variable hops and one neuron update.
SETTLE_STEPS = 2
#: Steps between the end of the forward phase and the backward phase: exp(logits) and its sum,
#: the copy of the sum back to the output group, the error and g.
READOUT_STEPS = 3


@dataclass(frozen=True)
class SlotSchedule:
    """Step numbers of the phases within one sample slot.

    Parameters
    ----------
    forward_steps, backward_steps : int
        ``T`` and ``T_b`` in steps of the model: ``T K`` and ``T_b K`` with ``K``
        integration steps per SPIDE step (:attr:`SPIDEConfig.integration_steps`).
    substeps : int
        Device steps per model step (``1 + event_delivery_steps`` of the device).
    """

    forward_steps: int
    backward_steps: int
    substeps: int = 1

    @classmethod
    def from_config(cls, config, substeps=1):
        return cls(int(config.forward_steps), int(config.backward_steps), int(substeps))

    @property
    def forward_start(self) -> int:
        return 1 + SETTLE_STEPS

    @property
    def backward_start(self) -> int:
        return self.forward_start + self.forward_steps + READOUT_STEPS

    @property
    def slot_length(self) -> int:
        """Steps per sample: ``T + T_b + 7``."""
        return self.backward_start + self.backward_steps + 1

    def namespace(self) -> dict:
        """Integer namespace constants used by ``schedule.eq``."""
        return {"slot_length": self.slot_length, "forward_start": self.forward_start,
                "forward_steps": self.forward_steps, "backward_start": self.backward_start,
                "backward_steps": self.backward_steps, "substeps": self.substeps}

    def run_steps(self, capacity: int) -> int:
        """Model steps of a run over ``capacity`` slots, including the final commit step."""
        return capacity * self.slot_length + 1


@dataclass(frozen=True)
class ReplaySlotSchedule(SlotSchedule):
    """:class:`SlotSchedule` with the replay window of the replay route
    (``equations/replay.eq``): two more steps after the step at which beta is fixed."""

    @property
    def replay_start(self) -> int:
        """Slot step of the first replay spikes (the step at which beta is fixed)."""
        return self.backward_start + self.backward_steps

    @property
    def slot_length(self) -> int:
        return self.replay_start + 2

    def namespace(self) -> dict:
        return dict(super().namespace(), slot_length=self.slot_length,
                    replay_start=self.replay_start)


@dataclass
class SampleTables:
    """Values of the model's ``TimedArray`` tables for one run.

    Attributes
    ----------
    stimulus : ndarray, shape (capacity, n_inputs) or (capacity, T, n_inputs)
        Static inputs or event frames (one per forward step), zero for padding.
    label : ndarray, shape (capacity,)
    kappa : ndarray, shape (capacity,)
        ``S / B_actual`` for a training sample, 0 for evaluation or padding.
    update : ndarray, shape (capacity + 1,)
        1 at the commit step that ends a mini-batch (slot index after its last sample).
    rate : ndarray, shape (capacity + 1,)
        SGD rate ``lr0 / S`` of that mini-batch at its commit step, 0 elsewhere.
    n_samples : int
        Real samples (the rest is padding).
    dropout : dict or None
        Dropout masks ``{connection parameter: (capacity, n_post)}`` of the training samples
        (ones in padding slots); None without dropout (evaluation, or ``dropout = 0``).
    """

    stimulus: np.ndarray
    label: np.ndarray
    kappa: np.ndarray
    update: np.ndarray
    rate: np.ndarray
    n_samples: int
    dropout: dict = None

    @classmethod
    def build(cls, x, y, capacity, config=None, learning_rates=None, dropout=None):
        """Tables for ``len(x) <= capacity`` samples; training with ``config``'s mini-batches
        if a config is given, evaluation otherwise.

        Mini-batches are consecutive groups of ``B = config.batch_size`` samples; each sample
        gets ``kappa = config.kappa(len(batch))`` (``S / B``; a shorter last batch divides by
        its own length, as the reference). The update of a mini-batch is
        flagged at the commit step of the slot after its last sample, except for a short last
        one: its update waits until the end of its padded range of ``batch_size`` slots (or
        the end of the run), so that every update falls on a multiple of ``batch_size`` slots
        when the capacity is one. Padding slots have ``kappa = 0``: they add exactly nothing
        to any gradient, so the later update gives the same weights.

        ``learning_rates`` gives the SGD rate of each mini-batch in order (from
        :meth:`SPIDEConfig.sgd_learning_rates`); by default every mini-batch uses
        ``config.sgd_lr``. ``dropout`` holds the samples' masks
        (:func:`spide_brian.dropout.dropout_masks`, ``(n, n_post)`` per connection).
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y)
        if x.ndim not in (2, 3):
            raise ValueError(f"inputs must have shape (n, n_in) or, as frames, (n, T, n_in); "
                             f"got {x.shape}")
        n = len(x)
        if n > capacity:
            raise ValueError(f"{n} samples do not fit a run of capacity {capacity}")
        if len(y) != n:
            raise ValueError(f"{n} inputs but {len(y)} labels")
        stimulus = np.zeros((capacity,) + x.shape[1:])
        stimulus[:n] = x
        label = np.zeros(capacity)
        label[:n] = y
        kappa = np.zeros(capacity)
        update = np.zeros(capacity + 1)
        rate = np.zeros(capacity + 1)
        if config is not None:
            batch_size = int(config.batch_size)
            n_batches = -(-n // batch_size)
            if learning_rates is None:
                learning_rates = [config.sgd_lr] * n_batches
            if len(learning_rates) != n_batches:
                raise ValueError(f"{len(learning_rates)} learning rates for {n_batches} "
                                 "mini-batches")
            for index, start in enumerate(range(0, n, batch_size)):
                stop = min(start + batch_size, n)
                kappa[start:stop] = config.kappa(stop - start)
                padded_stop = min(start + batch_size, capacity)
                update[padded_stop] = 1.0
                rate[padded_stop] = learning_rates[index]
        padded = None
        if dropout is not None:
            padded = {}
            for name, masks in dropout.items():
                masks = np.asarray(masks, dtype=np.float64)
                if masks.ndim != 2 or len(masks) != n:
                    raise ValueError(f"dropout masks of {name} must have shape (n={n}, n_post); "
                                     f"got {masks.shape}")
                padded[name] = np.ones((capacity, masks.shape[1]))
                padded[name][:n] = masks
        return cls(stimulus, label, kappa, update, rate, n, padded)
