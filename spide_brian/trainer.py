"""What a trainer is: the interface both backends implement and the training driver uses.

A trainer owns the parameters and the optimiser state and runs one epoch on samples in the
order it is given; :func:`spide_brian.training.train` shuffles, evaluates, logs and
checkpoints. :class:`spide_brian.training.ReferenceTrainer` (numpy) and
:class:`spide_brian.brian_backend.BrianTrainer` (the Brian2 model) implement it.
"""
from __future__ import annotations

from typing import Callable, Optional, Protocol, runtime_checkable

__all__ = ["Trainer", "epoch_start"]


def epoch_start(start, batch_size, n_samples):
    """Check the first sample ``start`` of a resumed epoch: a whole number of mini-batches
    within the epoch's ``n_samples``; returns it as an int."""
    start = int(start)
    if start < 0 or start > n_samples or start % int(batch_size):
        raise ValueError(f"an epoch resumes at a mini-batch boundary within its {n_samples} "
                         f"samples (a multiple of the batch size {batch_size}), not at "
                         f"sample {start}")
    return start


@runtime_checkable
class Trainer(Protocol):
    """The interface of a SPIDE trainer.

    Attributes
    ----------
    params : dict of str -> ndarray
        The current parameters.
    progress : callable or None
        ``progress(n)``: ``n`` more samples trained, called during :meth:`train_epoch`.
    """

    params: dict
    progress: Optional[Callable[[int], None]]

    def train_epoch(self, x, y, epoch=0, start=0, tally=None, after_part=None) -> dict:
        """Train on ``x, y`` in the given order, as epoch ``epoch`` (0 first) of the
        learning-rate schedule (:meth:`spide_brian.config.SPIDEConfig.learning_rate`).

        ``start`` (a multiple of the mini-batch size) skips the samples before it, which a
        mid-epoch checkpoint has already trained, and ``tally`` (an
        :class:`spide_brian.tally.EpochTally`) holds their totals; the epoch then continues
        exactly as an uninterrupted one. ``after_part(done, tally)`` is called after each
        part the trainer simulates in one go (a mini-batch of the reference, a run of the
        Brian2 model) with the samples done so far, when the parameters and optimiser state
        are those after sample ``done``.

        Returns :meth:`spide_brian.tally.EpochTally.result` of a training tally:
        ``loss_sum``, ``correct``, ``samples``, ``forward_spikes``, ``backward_spikes``,
        ``operations`` and ``firing`` (and ``compile_seconds``, the part of the call spent
        compiling, where the backend compiles).
        """

    def evaluate(self, x, y) -> dict:
        """Forward stage and readout only; the parameters do not change.

        Returns :meth:`spide_brian.tally.EpochTally.result` of an evaluation tally:
        ``loss_sum``, ``correct``, ``samples``, ``forward_spikes``, ``predictions`` and
        ``operations``."""

    def optimizer_state(self) -> dict:
        """Momentum buffers by parameter name."""

    def load_optimizer_state(self, state) -> None:
        """Restore what :meth:`optimizer_state` returned."""
