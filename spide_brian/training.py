"""The training driver: epochs, shuffling, evaluation, statistics and logs, for any backend.

A backend ("trainer", :class:`spide_brian.trainer.Trainer`) owns the parameters and runs one
epoch on samples in a given order; the driver shuffles, evaluates and reports. The numpy
reference trainer lives here; the Brian2 trainer (:mod:`spide_brian.brian_backend`) has the
same interface:

``trainer.params``                 current parameters (dict of numpy arrays)
``trainer.train_epoch(x, y, e)``   dict: loss_sum, correct, samples, forward_spikes, backward_spikes
                                   (optional: compile_seconds, the part of the call spent
                                   compiling, which the driver keeps out of the epoch's
                                   seconds and rate)
``trainer.progress``               optional ``progress(n)``: n more samples trained
``trainer.notify``                 optional ``notify(message)``: a message for the user
``trainer.evaluate(x, y)``         dict: loss_sum, correct, samples, forward_spikes, predictions
``trainer.optimizer_state()``      momentum buffers by parameter name
``trainer.load_optimizer_state(state)``
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
from brian2.utils.logger import get_logger

from . import firing, reference
from .config import ConfigError
from .dropout import dropout_masks
from .parameters import check_parameters, init_parameters, prepare_parameters
from .tally import EpochTally, batch_major
from .topology import Topology, topology_of
from .trainer import Trainer, epoch_start

__all__ = ["EpochTally", "ReferenceTrainer", "Trainer", "batch_major", "EpochRecord", "train",
           "EpochProgress",
           "epoch_order", "make_trainer", "BACKENDS", "DivergenceError", "auto_backend",
           "spiking_neurons"]

logger = get_logger(__name__)

BACKENDS = ("brian", "reference")


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss or parameter; the epoch's result is discarded.

    Attributes
    ----------
    epoch : int
        The epoch (counted from 1) that diverged.
    """

    def __init__(self, message, epoch):
        super().__init__(message)
        self.epoch = epoch


def _non_finite(loss, params):
    """What is NaN or infinite among the loss and the parameters ('' if nothing)."""
    what = [f"loss {loss:g}"] if not np.isfinite(loss) else []
    bad = sorted(name for name, value in params.items() if not np.all(np.isfinite(value)))
    if bad:
        what.append(f"non-finite {', '.join(bad)}")
    return "; ".join(what)


def _diverged(epoch, what):
    return DivergenceError(f"training diverged in epoch {epoch} ({what}); the learning rate "
                           "(or momentum) is too large for this network: try a smaller --lr",
                           epoch)


class ReferenceTrainer:
    """Mini-batch SPIDE training with the numpy reference (:mod:`spide_brian.reference`)."""

    def __init__(self, config, params, progress=None):
        from .biophysics import reference_membrane
        from .network import MODEL_DT

        if config.float_dtype != "float64":
            raise ConfigError(f"float_dtype {config.float_dtype!r} is a setting of the Brian2 "
                              "model; the numpy reference computes in float64 (it is the "
                              "oracle): train with the Brian2 model (--backend brian) or "
                              "use float_dtype 'float64'")
        self.config = config
        self.params = prepare_parameters(params, config)
        self.optimizer = reference.SGDMomentum(config)
        self.progress = progress
        #: The membrane in volts on the Brian2 trainer's step (None: discrete).
        self.membrane = reference_membrane(config, MODEL_DT)

    def optimizer_state(self):
        return self.optimizer.state_dict()

    def load_optimizer_state(self, state):
        self.optimizer.load_state_dict(state)

    def train_epoch(self, x, y, epoch=0, start=0, tally=None, after_part=None):
        batch = self.config.batch_size
        rates = self.config.sgd_learning_rates(epoch, len(y))
        start = epoch_start(start, batch, len(y))
        tally = EpochTally(self.config) if tally is None else tally
        topology = topology_of(self.config, self.params)
        for start in range(start, len(y), batch):
            index = start // batch
            xb, yb = batch_major(x[start:start + batch]), y[start:start + batch]
            masks = dropout_masks(self.config, topology, epoch, start, start + len(yb))
            result, out = reference.train_batch(self.params, self.config, self.optimizer, xb, yb,
                                                lr=rates[index], dropout=masks,
                                                membrane=self.membrane)
            if _non_finite(0.0, self.params):
                break  # the next batch would fail on non-finite weights; train() reports it
            tally.add(self.params, xb, yb, out.probabilities, result.forward.counts,
                      result.backward.spike_counts)
            if self.progress is not None:
                self.progress(len(yb))
            if after_part is not None:
                after_part(start + len(yb), tally)
        return tally.result()

    def evaluate(self, x, y, batch=500):
        tally = EpochTally(self.config, training=False)
        for start in range(0, len(x), batch):
            xb, yb = batch_major(x[start:start + batch]), y[start:start + batch]
            _, fwd = reference.predict(self.params, self.config, xb, membrane=self.membrane)
            out = reference.readout(self.params, fwd.rates[-1], yb, 0.0)
            tally.add(self.params, xb, yb, out.probabilities, fwd.counts)
        return tally.result()


@dataclass
class EpochRecord:
    """One line of the training log.

    ``lr`` is the learning rate ``lr0`` in force at the epoch's last mini-batch (see
    :meth:`spide_brian.config.SPIDEConfig.learning_rate`). ``seconds`` is the epoch's
    training time without compiling, ``samples_per_second`` the
    rate over that time, ``compile_seconds`` the time the epoch spent compiling (a
    cpp_standalone program is compiled in the first epoch only).
    """

    epoch: int
    lr: float
    loss: float
    train_accuracy: float
    test_accuracy: float
    forward_rate: float
    backward_rate: float
    seconds: float
    samples_per_second: float
    compile_seconds: float = 0.0
    train_energy_pj: float = float("nan")
    test_energy_pj: float = float("nan")
    layers: tuple = ()

    def as_dict(self):
        """Flat log row: the fields, then per-layer columns ``forward_rate_0`` ..."""
        row = asdict(self)
        row.pop("layers")
        row.update(firing.statistics_columns(self.layers))
        return row


@dataclass
class EpochProgress:
    """How far an unfinished epoch got: what a mid-epoch checkpoint holds.

    Attributes
    ----------
    epoch : int
        The epoch in progress, 0 first (as many epochs are finished).
    samples : int
        Samples of it trained (a whole number of mini-batches).
    tally : EpochTally
        Their totals.
    seconds, compile_seconds : float
        Wall seconds spent on it so far, and the part of them spent compiling.
    """

    epoch: int
    samples: int
    tally: EpochTally
    seconds: float = 0.0
    compile_seconds: float = 0.0


def epoch_order(seed, epoch, n_samples):
    """Sample order of ``epoch``: a permutation that depends only on (seed, epoch).

    Deterministic per epoch, so a resumed run sees the same order as an uninterrupted one.
    """
    return np.random.default_rng([seed, epoch]).permutation(n_samples)


def auto_backend(brian_flags=(), config=None):
    """The backend ``spide-brian train --backend auto`` (its default) trains a new run of
    ``config`` with, and why, in one line: ``(backend, reason)``.

    The Brian2 model when a flag that only the Brian2 model takes was given
    (``brian_flags``: ``--device``, a device's own options, ``--samples-per-run``,
    ``--build-dir``) or float32 was asked for; otherwise the numpy reference. Measured on 2
    cores with one BLAS thread: on dense F-nets cpp_standalone trains at 0.26x the reference
    (F400-digits), 0.29x (f1600-784) and 0.15x (f3200-784), and evaluates 10-28x slower. On
    the full-size named models the reference is faster too since its backward stage sends
    sparse steps through sparse synapse matrices: ``mnist-conv-f`` with timing 'brian' on 256
    MNIST images trained in 68.6 s against 200.0 s on cpp_standalone (after a 504 s compile),
    the machine loaded by two other runs, with the same loss, accuracies and rates. Only the
    small variants run faster per epoch on cpp_standalone (``mnist-conv-f-small``: 22-30 s
    against 26-44 s per digits epoch, same load), which a compile of one to eight minutes
    does not pay back in runs of a few epochs; and the Brian2 model computes only timing
    'brian', with which these networks learn worse (``mnist-conv-f-small``: 0.6194 against
    0.7111 test accuracy after 2 digits epochs). The Brian2 model on a GPU (``--device
    genn``, ``--device cuda_standalone``) has not been measured against the reference, so a
    GPU is used only when named. A resumed run keeps its checkpoint's backend (the caller's
    rule, not this function's).
    """
    if brian_flags:
        return "brian", f"{', '.join(brian_flags)} given, an option of the Brian2 model"
    if config is not None and config.float_dtype != "float64":
        return "brian", (f"float_dtype {config.float_dtype} is a setting of the Brian2 model "
                         "(the reference computes in float64)")
    return "reference", ("the numpy reference trains faster than the Brian2 model on CPU "
                         "(spide-brian bench); --backend brian runs the Brian2 model")


def make_trainer(backend, config, params, device=None, n_inputs=None, n_classes=None,
                 progress=None, build_dir=None, **device_options):
    """Construct the trainer of ``backend`` (``'reference'`` or ``'brian'``).

    ``device_options`` go to :class:`spide_brian.brian_backend.BrianTrainer` (e.g.
    ``use_gpu`` and ``genn_path`` for GeNN).
    """
    if backend == "reference":
        return ReferenceTrainer(config, params, progress=progress)
    if backend == "brian":
        from .brian_backend import BrianTrainer

        return BrianTrainer(config, params, device=device, n_inputs=n_inputs,
                            n_classes=n_classes, build_dir=build_dir, **device_options)
    raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def spiking_neurons(config, n_inputs, n_classes):
    """The number of spiking neurons of the network of ``config`` (every layer of a named
    model, not ``config.hidden_sizes``, which only the dense chain uses)."""
    return sum(layer.size for layer in Topology.from_config(config, n_inputs, n_classes).layers)


def _rates(config, stats, samples, neurons):
    """Mean forward and backward spikes per neuron and step over ``samples`` samples."""
    forward = stats["forward_spikes"] / max(1, samples * neurons * config.time_step)
    backward = stats.get("backward_spikes", 0) / max(1, samples * neurons * config.time_step_back)
    return forward, backward


def _part_reporter(on_part, part_samples, trainer, earlier, n_samples, started):
    """The trainer's ``after_part(done, tally)`` for one epoch: calls ``on_part`` with an
    :class:`EpochProgress` each time ``done`` passes another multiple of ``part_samples``
    before the epoch's end; ``earlier`` is the progress the epoch started from (its seconds
    and compile seconds are added), ``started`` the ``perf_counter`` of this session's start."""
    compiled = _compile_seconds(trainer)
    last = [earlier.samples]

    def after_part(done, tally):
        if done < n_samples and done // part_samples > last[0] // part_samples:
            last[0] = done
            on_part(EpochProgress(
                earlier.epoch, done, tally, earlier.seconds + time.perf_counter() - started,
                earlier.compile_seconds + _compile_seconds(trainer) - compiled), trainer)

    return after_part


def _compile_seconds(trainer):
    """Seconds the trainer has spent compiling so far (0 for one that compiles nothing)."""
    return float(getattr(trainer, "compile_seconds", 0.0))


def _energy(stats):
    """Mean energy per sample (pJ) of a trainer's result, NaN if it has no operation counts."""
    if "operations" not in stats or stats["operations"].n_samples == 0:
        return float("nan")
    return stats["operations"].per_sample()["energy_pj"]


def train(config, dataset, trainer=None, backend="reference", device=None, start_epoch=0,
          on_epoch=None, progress_factory=None, augment=None, notify=None, resume=None,
          on_part=None, part_samples=None):
    """Train for ``config.epochs`` epochs and evaluate on the test split after each.

    Parameters
    ----------
    config : SPIDEConfig
    dataset : Dataset
    trainer : object, optional
        An existing trainer (e.g. restored from a checkpoint); made fresh otherwise.
    backend, device : str
        Used when ``trainer`` is None.
    start_epoch : int
        First epoch to run (for resuming); epochs ``start_epoch .. config.epochs - 1`` run.
    on_epoch : callable, optional
        Called as ``on_epoch(record, trainer)`` after every epoch (logging, checkpoints).
    progress_factory : callable, optional
        ``progress_factory(total, description)`` returning a context manager with
        ``update(n)`` (e.g. ``tqdm``); used for per-sample progress.
    augment : callable, optional
        ``augment(x, rng)`` applied to each epoch's shuffled training inputs (e.g.
        ``spide_brian.datasets.CIFAR_AUGMENTATION``,
        ``spide_brian.datasets.frame_augmentation()``); ``rng`` depends only on (seed, epoch),
        so a resumed run augments identically.
    notify : callable, optional
        ``notify(message)`` receives the trainer's messages for the user (e.g. that a
        program is being compiled); set as ``trainer.notify`` where the trainer has one.
    resume : EpochProgress, optional
        Continue the unfinished epoch ``start_epoch`` from a mid-epoch checkpoint (the
        trainer holds the parameters and optimiser state after ``resume.samples``): the
        epoch skips those samples and adds their totals, so its record equals an
        uninterrupted run's (its seconds are those of both sessions).
    on_part : callable, optional
        ``on_part(progress, trainer)`` with an :class:`EpochProgress`, called inside an
        epoch each time another ``part_samples`` samples are done (at the end of the
        trainer's part that reaches them; never at the end of an epoch, where ``on_epoch``
        follows), e.g. to write a mid-epoch checkpoint.
    part_samples : int, optional
        How often ``on_part`` is called, in samples.

    Returns
    -------
    list of EpochRecord

    Raises
    ------
    DivergenceError
        When an epoch ends with a non-finite loss or parameter (before ``on_epoch`` sees it).
    """
    if trainer is None:
        params = init_parameters(config, dataset.n_inputs, dataset.n_classes)
        trainer = make_trainer(backend, config, params, device=device,
                               n_inputs=dataset.n_inputs, n_classes=dataset.n_classes)
    check_parameters(trainer.params, config, dataset.n_inputs, dataset.n_classes)
    neurons = spiking_neurons(config, dataset.n_inputs, dataset.n_classes)
    if notify is not None and hasattr(trainer, "notify"):
        trainer.notify = notify
    if resume is not None and resume.epoch != start_epoch:
        raise ValueError(f"the unfinished epoch to resume is {resume.epoch}, but training "
                         f"starts at epoch {start_epoch}")
    if on_part is not None and (part_samples is None or int(part_samples) < 1):
        raise ValueError("on_part needs part_samples >= 1")
    records = []
    for epoch in range(start_epoch, config.epochs):
        order = epoch_order(config.seed, epoch, len(dataset.y_train))
        x, y = dataset.x_train[order], dataset.y_train[order]
        if augment is not None:
            x = augment(x, np.random.default_rng([config.seed, epoch, 1]))
        earlier = resume if resume is not None and resume.epoch == epoch else \
            EpochProgress(epoch, 0, EpochTally(config))
        started = time.perf_counter()
        after_part = None if on_part is None else _part_reporter(
            on_part, int(part_samples), trainer, earlier, len(y), started)
        mark = earlier.samples    # where this session starts, for the progress bar
        # a plain epoch is asked for as trainers without mid-epoch checkpoints take it
        resuming = {} if not mark and after_part is None else dict(
            start=mark, tally=earlier.tally, after_part=after_part)
        if progress_factory is not None:
            with progress_factory(len(y), f"epoch {epoch + 1}/{config.epochs}") as bar:
                if mark:
                    bar.update(mark)
                trainer.progress = bar.update
                try:
                    stats = trainer.train_epoch(x, y, epoch, **resuming)
                finally:
                    trainer.progress = None   # the bar is closed after this block
        else:
            stats = trainer.train_epoch(x, y, epoch, **resuming)
        compile_seconds = float(stats.get("compile_seconds", 0.0)) + earlier.compile_seconds
        seconds = earlier.seconds + time.perf_counter() - started - compile_seconds
        # checked before on_epoch, so that no checkpoint of a diverged run is written
        what = _non_finite(stats["loss_sum"] / max(1, stats["samples"]), trainer.params)
        if what:
            raise _diverged(epoch + 1, what)
        test = trainer.evaluate(dataset.x_test, dataset.y_test)
        forward_rate, backward_rate = _rates(config, stats, stats["samples"], neurons)
        record = EpochRecord(
            epoch=epoch + 1,
            lr=config.learning_rate(epoch, (epoch + 1) * -(-len(y) // config.batch_size) - 1),
            loss=stats["loss_sum"] / max(1, stats["samples"]),
            train_accuracy=stats["correct"] / max(1, stats["samples"]),
            test_accuracy=test["correct"] / max(1, test["samples"]),
            forward_rate=forward_rate, backward_rate=backward_rate,
            seconds=seconds, samples_per_second=stats["samples"] / max(seconds, 1e-12),
            compile_seconds=compile_seconds,
            train_energy_pj=_energy(stats), test_energy_pj=_energy(test),
            layers=tuple(stats.get("firing", ())))
        records.append(record)
        logger.debug(f"epoch {record.epoch}: loss {record.loss:.4f} "
                    f"test accuracy {record.test_accuracy:.4f}")
        if on_epoch is not None:
            on_epoch(record, trainer)
    return records
