"""Training and evaluation with the Brian2 model: one simulation run per epoch (or chunk).

:class:`BrianTrainer` keeps the current parameters and momentum buffers in Python and hands
them, with the epoch's data, to a :class:`~spide_brian.network.SPIDENetwork` run. A device
whose capability row has ``rerun_without_build`` compiles its program once (at the first
call) for runs of ``capacity`` samples and reruns it with ``device.run(run_args=...)`` for
every later epoch, chunk and evaluation; runtime devices (numpy, cython) build the objects
for each run; the other standalone devices build one program per run (one per epoch chunk
and per evaluation, each with the current weights and the data compiled in). Which device
has which row, and why, is in ``docs/devices.md``.

Build folders: without ``build_dir`` the trainer compiles in a temporary folder that it
removes when it is closed (:meth:`BrianTrainer.close`, the end of a ``with`` block, garbage
collection or the end of the interpreter); a given ``build_dir`` is kept and reused (an
unchanged model then compiles nothing). While a trainer uses a build folder it holds a lock
file in it (:class:`BuildFolderLock`): a second run in the same folder, or one started while
a compiler or program of a killed run still works there, is refused with a message naming
the holder. On Linux that compiler and program also end with the Python process that started
them (:func:`spide_brian.devices.processes.tie_children_to_this_process`).

Progress and timings: ``trainer.progress``, when set (the training driver sets it to its
progress bar's ``update``), receives the number of samples trained as the simulation
advances: on runtime devices from Brian2's progress report (every
:attr:`BrianTrainer.progress_period` seconds of wall time); on cpp_standalone the compiled
program prints its completed fraction every few slots (at most
:data:`_PROGRESS_REPORTS_PER_RUN` lines a run) and the trainer reads it every
``progress_period`` seconds.
``trainer.notify``, when set, receives one-line messages meant for the user (a compile
starts, and how long the last compile in that folder took); they also go to the log.
Compile time is kept apart from simulation time (``timings``, and ``compile_seconds`` of
:meth:`BrianTrainer.train_epoch`).

Inputs are static samples ``(n, n_in)`` or event frames ``(n, T, n_in)`` (one frame per forward
step, read from a per-step ``TimedArray``); the first call fixes which, like the capacity.

A run covers whole mini-batches: ``capacity`` is a multiple of ``B``; shorter data is padded
with samples of ``kappa = 0`` (no gradient, no update). Evaluation uses the same model with
``kappa = 0`` and no update flags, so the backward stage stays silent and weights fixed.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
import threading
import time
import weakref

import numpy as np
from brian2 import (Network, NeuronGroup, check_units, defaultclock, device, implementation,
                    second, set_device)
from brian2.utils.logger import get_logger

from .devices import (adapter_for, brian2_at_least, check_membrane, check_synapses,
                      default_device)
from .dropout import dropout_masks, drops_any
from .evaluation import LocalEvaluation, WorkerEvaluation, evaluation_config
from .network import MODEL_DT, SPIDENetwork
from .parameters import prepare_parameters
from .routes import check_dropout
from .sharing import check_shared_parameters
from .schedule import SampleTables
from .tally import EpochTally, batch_major
from .topology import Topology, dimensions_of
from .trainer import epoch_start

__all__ = ["BrianTrainer", "DEFAULT_MAX_CAPACITY", "BuildFolderLock", "BuildFolderBusy",
           "DEFAULT_PROGRESS_PERIOD", "evaluates_apart", "run_shapes", "samples_per_run"]

logger = get_logger(__name__)



class StandaloneProgram:
    """Which trainer's program Brian2's standalone device holds.

    Brian2 keeps one standalone device per process, so one compiled program (or one
    brian2genn / brian2cuda build) at a time. A trainer that builds while another open
    trainer's program is held takes the device over: the other trainer's program is
    discarded, that trainer is told so (its ``notify``) and it compiles again when it is
    next used; nothing it trained is lost (parameters and momentum live in Python). Close
    trainers you are done with (:meth:`BrianTrainer.close`, or a ``with`` block) to avoid
    the recompile.
    """

    def __init__(self):
        self.trainer = None

    def held_by(self, trainer):
        """Whether ``trainer``'s program is the one the device holds."""
        return self.trainer is trainer

    def take(self, trainer):
        """Give the device to ``trainer``: reset it (a fresh program is about to be
        declared), after closing another trainer whose program it held."""
        previous = self.trainer
        if previous is not None and previous is not trainer:
            previous._say("Brian2 holds one standalone program per process: another "
                          "trainer builds now, so this trainer's program is discarded and "
                          "compiles again when it is next used")
            trainer._say("another open trainer's standalone program is discarded (one "
                         "program per process); close trainers you are done with")
            previous.close()
        if previous is not None or trainer.model is not None:
            device.reinit()
        self.trainer = trainer

    def leave_for_runtime(self, trainer):
        """``trainer`` runs on a runtime target (numpy, cython): a standalone program that
        another trainer holds is discarded (that trainer is told so, and compiles again when
        it is next used) and Brian2's runtime device is selected again."""
        previous = self.trainer
        if previous is not None and previous is not trainer:
            previous._say("Brian2 holds one device per process: a trainer on a runtime "
                          "target runs now, so this trainer's standalone program is discarded "
                          "and compiles again when it is next used")
            previous.close()

    def release(self, trainer):
        """``trainer`` is closed: reset the device if it held it."""
        if self.trainer is trainer:
            device.reinit()
            set_device("runtime")
            self.trainer = None


#: Name under which a runtime network stores its state at time 0.
_RUN_START = "spide_run_start"

#: The one standalone device of this process and the trainer whose program it holds.
STANDALONE_PROGRAM = StandaloneProgram()

#: Largest default number of samples per run: longer data runs in chunks, which bounds the
#: memory of the input tables and per-sample records, and the padding of a test set.
DEFAULT_MAX_CAPACITY = 10000

#: Cost of one more run (starting the program, loading weights and tables, reading the
#: records), in slots of simulation: :func:`samples_per_run` weighs it against padding.
#: Measured on cpp_standalone, F400-digits: about 0.2 s a run, the time of 44 slots.
RUN_OVERHEAD_SLOTS = 48


def samples_per_run(n_train, n_test, batch_size, max_capacity=DEFAULT_MAX_CAPACITY,
                    run_overhead=RUN_OVERHEAD_SLOTS):
    """Samples per run (a whole number of mini-batches) for an epoch of ``n_train`` samples
    and a test pass of ``n_test``: the capacity that simulates the fewest slots.

    Every run simulates all its ``c`` slots, so a test set shorter than the training run is
    padded; the slots of an epoch and a test pass are

    .. math::

        (\lceil n_{train}/c \rceil + \lceil n_{test}/c \rceil)\,(c + R)

    with ``R`` = ``run_overhead`` slots for each run. Ties go to the larger capacity.

    >>> samples_per_run(1437, 360, 128)     # 4 + 1 runs of 384 slots, not 2 of 1536
    384
    """
    batch = int(batch_size)
    longest = min(max(int(n_train), int(n_test), 1), int(max_capacity))
    best = None
    for batches in range(1, -(-longest // batch) + 1):
        capacity = batches * batch
        runs = -(-int(n_train) // capacity) + -(-int(n_test) // capacity)
        cost = (runs * (capacity + run_overhead), -capacity)
        if best is None or cost < best:
            best = cost
    return -best[1]


#: Seconds of wall time between two progress reports of a simulation run.
DEFAULT_PROGRESS_PERIOD = 0.5

#: Name of the file, in a build folder, that holds the last compile's duration in seconds.
COMPILE_SECONDS_FILE = ".spide_brian_compile_seconds"

#: Marker of the progress lines that the compiled program prints to its output file.
_PROGRESS_MARKER = "spide_brian_progress"
#: Most progress lines a compiled run prints (one every whole number of slots).
_PROGRESS_REPORTS_PER_RUN = 256


@implementation("cpp", f"""
double spide_progress(double fraction)
{{
    std::cout << "{_PROGRESS_MARKER} " << fraction << std::endl << std::flush;
    return fraction;
}}""")
@check_units(fraction=1, result=1)
def spide_progress(fraction):
    """Print the completed ``fraction`` of the run as a progress line (the compiled
    program's output goes to its output file, which the trainer reads while it runs)."""
    return fraction


@contextlib.contextmanager
def _discarded_if_interrupted():
    """Raise :class:`KeyboardInterrupt` for a Brian2 run during which Ctrl+C was pressed.

    Brian2 does not interrupt a run on Ctrl+C (SIGINT): its handler sets
    ``Network._globally_stopped`` (``prefs.core.stop_on_keyboard_interrupt``), on the
    runtime devices the run ends after the current time step, and a compiled program, which
    gets the signal with its process group, dies, after which Brian2 raises a generic
    ``RuntimeError``. Either way the run's records and weights cover part of its samples
    at most, so none of it may be read: the trainer stops here as a Ctrl+C outside a run
    would stop it, before its parameters, momentum or any checkpoint take anything from the
    run (they stay those from before it). A compiled program that finished although Ctrl+C
    was pressed (the signal reached only Python) is discarded the same way.
    """
    Network._globally_stopped = False
    try:
        yield
    except RuntimeError:
        if Network._globally_stopped:
            raise KeyboardInterrupt("the Brian2 program was interrupted (Ctrl+C); nothing of "
                                    "its run was kept") from None
        raise
    if Network._globally_stopped:
        raise KeyboardInterrupt("Ctrl+C during a Brian2 run: its results were discarded")


def _progress_reporter(model):
    """Objects that make a compiled run print its completed fraction every few slots.

    Brian2's own ``report`` makes the compiled program read the processor clock (a system
    call) before every code object of every step, which costs a third of a SPIDE run; a
    ``run_regularly`` on a clock of whole slots prints at most
    :data:`_PROGRESS_REPORTS_PER_RUN` lines a run and costs nothing in between.
    """
    slots = int(round(float(model.run_duration / model.slot_dt)))
    every = max(1, -(-slots // _PROGRESS_REPORTS_PER_RUN))
    group = NeuronGroup(1, "reported : 1", name=f"{model.name}_progress",
                        namespace={"spide_progress": spide_progress,
                                   "run_duration": model.run_duration})
    operation = group.run_regularly("reported = spide_progress(t/run_duration)",
                                    dt=every * model.slot_dt,
                                    name=f"{model.name}_progress_run_regularly_report")
    return [group, operation]


class BrianTrainer:
    """SPIDE training loop inside Brian2.

    Parameters
    ----------
    config : SPIDEConfig
        Kept with ``timing='brian'``, the only timing the Brian2 model computes (every
        synaptic hop one step late). With one spiking layer both timings are the same
        network; a deeper config with ``timing='reference'`` is refused (that network exists
        in the numpy reference only).
    params : dict of ndarray
        Initial parameters (names and shapes of :mod:`spide_brian.parameters`); copied.
    device : str
        ``'cpp_standalone'`` (default), ``'cython'``, ``'numpy'`` / ``'runtime'``, or
        ``None`` for :func:`spide_brian.devices.default_device`.
    n_inputs, n_classes : int
    build_dir : str, optional
        Folder of the standalone project (a temporary folder if omitted).
    capacity : int, optional
        Samples per run, rounded up to whole mini-batches; defaults to the first data's size
        in whole mini-batches, at most :data:`DEFAULT_MAX_CAPACITY` (about that many).
        Longer data runs in several chunks; shorter data is padded.
    evaluation_capacity : int, optional
        Samples per run of the evaluation model (see ``shaped_evaluation``), e.g. the test
        set's size; defaults to the first evaluated data's size, at most
        :data:`DEFAULT_MAX_CAPACITY`, in whole mini-batches. Given, the evaluation program
        of a compiled device starts compiling with the first training run.
    shaped_evaluation : bool, optional
        Evaluate with a model shaped for it (:mod:`spide_brian.evaluation`: a backward stage
        of one step, runs sized by ``evaluation_capacity``; on cpp_standalone a second
        program, built and rerun by a worker process) instead of the training program with
        learning off. Both give the same results. Default: on runtime targets and on devices
        that rerun a compiled program; devices that build once per run (genn,
        cuda_standalone) evaluate with the training model.
    learning : bool
        False: a trainer that only evaluates, on the forward-only model
        (:class:`~spide_brian.network.SPIDENetwork` with ``learning=False``); the model of
        a shaped evaluation. :meth:`train_epoch` is then refused.
    **device_options
        Options of the device's adapter (:mod:`spide_brian.devices.adapters`): for ``genn``
        ``use_gpu`` (GeNN's CUDA backend, the default, or if false its single-threaded CPU
        backend) and ``genn_path`` (a GeNN 4.x tree; default: the ``GENN_PATH`` variable);
        for ``cuda_standalone`` ``compute_capability`` (the GPU architecture nvcc compiles
        for, default :data:`spide_brian.devices.cuda.DEFAULT_COMPUTE_CAPABILITY`). Options
        of another device are refused.

    Attributes
    ----------
    params : dict of ndarray
        Current parameters.
    timings : dict
        ``compile_s`` (all standalone builds of the training model so far), ``run_s`` (all
        runs so far, test runs included, as wall time of the request for a worker's) and
        ``evaluation_compile_s`` (the worker's build of the evaluation program, which runs
        beside the training program's).
    progress : callable or None
        ``progress(n)``: ``n`` more samples trained (during :meth:`train_epoch` only).
    progress_period : float
        Seconds of wall time between progress reports on runtime devices; on cpp_standalone
        how often the trainer reads the program's reports (the program prints one every
        few slots).
    notify : callable or None
        ``notify(message)`` for one-line messages to the user (a compile starts).

    The trainer is a context manager; :meth:`close` releases its build folder.
    """

    def __init__(self, config, params, device=None, n_inputs=None, n_classes=None,
                 build_dir=None, capacity=None, evaluation_capacity=None,
                 shaped_evaluation=None, learning=True, **device_options):
        if config.timing != "brian" and config.n_layers > 1:
            raise ValueError(
                f"the Brian2 model computes timing 'brian' (every synaptic hop one step late), "
                f"not this config's timing {config.timing!r}, which for {config.n_layers} "
                "layers is another network: pass config.replace(timing='brian') or train "
                "with the reference backend")
        self.config = config.replace(timing="brian")
        self.adapter = adapter_for(device or default_device(), **device_options)
        self._device_options = dict(device_options)
        self.device_name = self.adapter.name
        self.caps = self.adapter.caps
        known_inputs, known_classes = dimensions_of(self.config, params)
        self.n_inputs = int(n_inputs if n_inputs is not None else known_inputs)
        self.n_classes = int(n_classes if n_classes is not None else known_classes)
        #: Layers and connections of the network (:class:`~spide_brian.topology.Topology`).
        self.topology = Topology.from_config(self.config, self.n_inputs, self.n_classes)
        check_shared_parameters(self.caps, self.topology)
        check_synapses(self.caps, self.config)
        check_membrane(self.caps, self.config.membrane)
        if drops_any(self.config, self.topology):
            check_dropout(self.caps)
        self.adapter.check_installed()
        self.params = prepare_parameters(params, config, self.n_inputs, self.n_classes)
        self.buffers = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.build_dir = build_dir
        self.capacity = capacity
        #: Whether the model takes event frames; fixed by the first data seen.
        self.frame_input = None
        self.model = None
        #: The runtime network of ``model`` (:meth:`_runtime_model`).
        self._network = None
        self.timings = {"compile_s": 0.0, "run_s": 0.0, "evaluation_compile_s": 0.0}
        self.evaluation_capacity = evaluation_capacity
        #: Whether the model learns (False: forward-only, for test passes).
        self.learning = bool(learning)
        self.shaped_evaluation = (evaluates_apart(self.caps) if shaped_evaluation is None
                                  else bool(shaped_evaluation))
        #: The evaluation model (:mod:`spide_brian.evaluation`); None until needed.
        self._evaluation = None
        self.last_records = None
        self.progress = None
        self.progress_period = DEFAULT_PROGRESS_PERIOD
        self.notify = None
        #: Releases the build folder's lock (and removes a temporary folder); None until a
        #: build folder is in use.
        self._release_build = None

    @property
    def compile_seconds(self):
        """Seconds this trainer has spent building programs so far."""
        return float(self.timings["compile_s"])

    # -- resources -----------------------------------------------------------------------------
    def close(self):
        """Release the build folder: unlock it and, if the trainer made it (no
        ``build_dir`` given), remove it. A later run compiles again in a new folder."""
        if self._evaluation is not None:
            self._evaluation.close()
            self._evaluation = None
        STANDALONE_PROGRAM.release(self)
        self.model = None
        self._network = None
        if self._release_build is not None:
            temporary = self._release_build()
            self._release_build = None
            if temporary:
                self.build_dir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _build_directory(self):
        """The build folder, locked for this trainer (made in the temporary folder if none
        was given); removed or unlocked by :meth:`close`, or when the trainer is collected
        or the interpreter ends."""
        if self._release_build is None:
            temporary = self.build_dir is None
            directory = tempfile.mkdtemp(prefix="spide_brian_build_") if temporary \
                else self.build_dir
            lock = BuildFolderLock(directory)
            try:
                lock.acquire()
            except BaseException:
                if temporary:
                    shutil.rmtree(directory, ignore_errors=True)
                raise
            self.build_dir = directory
            self._release_build = weakref.finalize(self, _release_build_folder, lock,
                                                   directory if temporary else None)
        return self.build_dir

    def _say(self, message):
        """A message for the user: to ``notify`` if set (and the debug log), else the log."""
        if self.notify is not None:
            logger.debug(message)
            self.notify(message)
        else:
            logger.info(message)

    # -- optimiser state ----------------------------------------------------------------------
    def optimizer_state(self):
        """Momentum buffers by parameter name (copies)."""
        return {k: v.copy() for k, v in self.buffers.items()}

    def load_optimizer_state(self, state):
        """Set momentum buffers; missing names start at zero."""
        self.buffers = {k: np.array(state.get(k, np.zeros_like(v)), dtype=np.float64)
                        for k, v in self.params.items()}

    # -- public API ----------------------------------------------------------------------------
    def train_epoch(self, x, y, epoch=0, start=0, tally=None, after_part=None):
        """Train on ``x`` (n, n_in), or frames (n, T, n_in), with labels ``y`` in the given
        order, as epoch ``epoch`` (0 first) of the learning-rate schedule: each mini-batch's
        rate reaches the model through the ``sgd_rate`` table, so it changes inside a run.
        ``start``, ``tally`` and ``after_part`` resume an epoch at a mini-batch boundary and
        report each run (see :meth:`spide_brian.trainer.Trainer.train_epoch`).

        Returns
        -------
        dict
            ``loss_sum``, ``correct``, ``samples``, ``forward_spikes``, ``backward_spikes``
            (totals over the epoch; loss and accuracy of each sample at the weights it saw),
            ``firing`` (per-layer statistics of both stages) and ``operations``
            (:class:`spide_brian.energy.OperationCounts` from the recorded spike counts) and
            ``compile_seconds`` (seconds of this call spent building programs; 0 when the
            program was already built or the device compiles nothing).
        """
        x, y = self._check_data(x, y)
        if not self.learning:
            raise RuntimeError("this trainer's model is forward-only (learning=False): it "
                               "evaluates but cannot train; make a trainer with "
                               "learning=True")
        self._choose_capacity(len(x))
        if self.shaped_evaluation and self.evaluation_capacity is not None:
            self._evaluation_model().start()     # compiles beside the training program
        compiled_before = self.timings["compile_s"]
        tally = EpochTally(self.config) if tally is None else tally
        rates = self.config.sgd_learning_rates(epoch, len(y))
        batch = int(self.config.batch_size)
        for start in range(epoch_start(start, batch, len(y)), len(x), self.capacity):
            xs, ys = x[start:start + self.capacity], y[start:start + self.capacity]
            first = start // batch     # the capacity is a whole number of mini-batches
            masks = dropout_masks(self.config, self.topology, epoch, start, start + len(ys))
            tables = SampleTables.build(xs, ys, self.capacity, self.config,
                                        rates[first:first + -(-len(ys) // batch)], masks)
            records = self._run(tables, learn=True)
            tally.add(self.params, batch_major(xs), ys, records["prob"],
                      records["forward_counts"], records["backward_counts"])
            if after_part is not None:
                after_part(start + len(ys), tally)
        totals = tally.result()
        totals["compile_seconds"] = self.timings["compile_s"] - compiled_before
        return totals

    def evaluate(self, x, y):
        """Forward stage and readout only (weights unchanged).

        Returns
        -------
        dict
            ``correct``, ``samples``, ``forward_spikes``, ``predictions`` (int array),
            ``loss_sum``, ``operations``.
        """
        x, y = self._check_data(x, y)
        tally = EpochTally(self.config, training=False)
        if self.shaped_evaluation:
            evaluation = self._evaluation_model(len(x))
            evaluation.ready()      # a compile in progress is not simulation time
            self.timings["evaluation_compile_s"] = evaluation.compile_seconds
            capacity = int(self.evaluation_capacity)
        else:
            self._choose_capacity(len(x))
            capacity = self.capacity
        for start in range(0, len(x), capacity):
            xs, ys = x[start:start + capacity], y[start:start + capacity]
            if self.shaped_evaluation:
                began = time.perf_counter()
                records = evaluation.records(self.params, xs, ys)
                self.timings["run_s"] += time.perf_counter() - began
                self.last_records = records
            else:
                records = self._run(SampleTables.build(xs, ys, capacity), learn=False)
            tally.add(self.params, batch_major(xs), ys, records["prob"],
                      records["forward_counts"])
        return tally.result()

    # -- internals -----------------------------------------------------------------------------
    def _evaluation_model(self, n_samples=None):
        """The evaluation model (made at the first call): in this process on a runtime
        target, else in a worker process. Its capacity is ``evaluation_capacity`` or
        ``n_samples`` (at most :data:`DEFAULT_MAX_CAPACITY`), in whole mini-batches."""
        if self._evaluation is None:
            wanted = self.evaluation_capacity
            if wanted is None:
                wanted = min(int(n_samples), DEFAULT_MAX_CAPACITY)
            self.evaluation_capacity = _whole_batches(max(int(wanted), 1),
                                                      self.config.batch_size)
            settings = dict(
                trainer_class=type(self), config=evaluation_config(self.config),
                params=self.params, learning=False,
                device=self.device_name, n_inputs=self.n_inputs, n_classes=self.n_classes,
                capacity=self.evaluation_capacity, frame_input=self.frame_input,
                build_dir=(os.path.join(self.build_dir, "evaluation")
                           if self.build_dir is not None else None),
                **self._device_options)
            self._evaluation = (WorkerEvaluation(settings, notify=self._say)
                                if self.caps.standalone else LocalEvaluation(settings))
        return self._evaluation

    def _choose_capacity(self, n_samples):
        """Fix the samples per run at the first call: ``n_samples`` (at most
        :data:`DEFAULT_MAX_CAPACITY`) or the given capacity, in whole mini-batches."""
        wanted = min(n_samples, DEFAULT_MAX_CAPACITY) if self.capacity is None else self.capacity
        self.capacity = _whole_batches(wanted, self.config.batch_size)

    def _check_data(self, x, y):
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y).astype(np.int64)
        steps = int(self.config.time_step)
        static = x.ndim == 2 and x.shape[1] == self.n_inputs
        frames = x.ndim == 3 and x.shape[1:] == (steps, self.n_inputs)
        if not (static or frames):
            raise ValueError(f"inputs must have shape (n, {self.n_inputs}) or, as event frames "
                             f"(one per forward step), (n, {steps}, {self.n_inputs}); "
                             f"got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("inputs contain NaN or infinite values")
        if self.frame_input is None:
            self.frame_input = frames
        elif self.frame_input != frames:
            kind = "event frames" if self.frame_input else "static inputs"
            raise ValueError(f"this trainer's model was built for {kind}; got "
                             f"{'frames' if frames else 'static inputs'} of shape {x.shape}")
        if len(y) != len(x) or (len(y) and (y.min() < 0 or y.max() >= self.n_classes)):
            raise ValueError(f"labels must be {len(x)} integers in [0, {self.n_classes})")
        return x, y

    @property
    def reruns(self):
        """Whether a compiled program is rerun with ``run_args`` (else one build per run)."""
        return _reruns(self.caps)

    def _run(self, tables, learn):
        progress = self.progress if learn else None
        if self.caps.standalone and not self.reruns:
            # one build per run (genn, cuda_standalone): no report while it runs
            with _discarded_if_interrupted():
                model = self._build_and_run(tables)
            start = None
            counter = _SampleCounter(progress, tables.n_samples, model)
        elif self.caps.standalone:
            model = self._standalone_model()
            start = time.perf_counter()
            run_args = dict(model.constant_values(self.config))
            run_args.update(model.state_values(self.params, self.buffers))
            run_args.update(model.table_values(tables))
            counter = _SampleCounter(progress, tables.n_samples, model)
            with _StandaloneProgressReader(counter, self.progress_period), \
                    _discarded_if_interrupted():
                self.adapter.rerun(run_args)
        else:
            start = time.perf_counter()
            STANDALONE_PROGRAM.leave_for_runtime(self)
            self.adapter.prepare_runtime()
            model, network = self._runtime_model()
            model.load(tables, self.params, self.buffers, self.config)
            counter = _SampleCounter(progress, tables.n_samples, model)
            with _discarded_if_interrupted():
                network.run(model.run_duration, namespace={},
                            report=counter.report if progress else None,
                            report_period=self.progress_period * second)
        counter.fraction(1.0)   # the samples after the last report
        self.model = model
        if start is not None:
            self.timings["run_s"] += time.perf_counter() - start
        records = model.per_sample(tables.n_samples)
        if learn:
            self.params, self.buffers = model.read_parameters()
        self.last_records = records
        return records

    def _runtime_model(self):
        """This trainer's model and network on a runtime device (numpy, Cython), built at
        the first run and reused by every later run: each run starts from the state the
        network was stored in when built (time 0, empty monitors), and
        :meth:`SPIDENetwork.load` gives it its parameters and tables (Brian2's runtime
        device keeps the arrays of its objects for as long as they live)."""
        if self._network is None:
            self.model = self._make_model()
            self._network = Network(*self.model.objects)
            self._network.store(_RUN_START)
        else:
            defaultclock.dt = MODEL_DT
            self._network.restore(_RUN_START)
        return self.model, self._network

    def _make_model(self, tables=None):
        """The model of this trainer's device for one run (or one compiled program), on a
        step of :data:`~spide_brian.network.MODEL_DT` (exact clock times)."""
        defaultclock.dt = MODEL_DT
        return SPIDENetwork(self.config, self.n_inputs, self.n_classes, self.capacity,
                            device=self.caps, tables=tables, frame_input=self.frame_input,
                            learning=self.learning)

    def _build_and_run(self, tables):
        """One program for this run (genn, cuda_standalone; cpp_standalone without
        run_args): build it with the current parameters and ``tables``, run it once.
        Compile time goes to ``compile_s``, the rest to ``run_s`` (brian2genn reports no
        split: all of a genn run counts as ``compile_s`` except the simulation time it
        logs)."""
        STANDALONE_PROGRAM.take(self)
        directory = self._build_directory()
        if not self.timings["compile_s"]:
            self._say(_compile_message(self.device_name, directory))
        start = time.perf_counter()
        run = self.adapter.select_build(directory)
        model = self._make_model(tables)
        model.assign(self.params, self.buffers)
        run(Network(*model.objects), model.run_duration, directory)
        elapsed = time.perf_counter() - start
        simulated = _last_run_seconds()
        self.timings["compile_s"] += elapsed - simulated
        self.timings["run_s"] += simulated
        _store_compile_seconds(directory, elapsed - simulated)
        self.model = model
        return model

    def _standalone_model(self):
        if self.model is not None and STANDALONE_PROGRAM.held_by(self):
            return self.model
        STANDALONE_PROGRAM.take(self)
        directory = self._build_directory()
        self._say(_compile_message(self.device_name, directory))
        start = time.perf_counter()
        self.adapter.select_rerunnable()
        model = self._make_model()
        Network(*model.objects, *_progress_reporter(model)).run(model.run_duration,
                                                                namespace={})
        device.build(directory=directory, compile=True, run=False, with_output=False)
        elapsed = time.perf_counter() - start
        self.timings["compile_s"] += elapsed
        _store_compile_seconds(directory, elapsed)
        self._say(f"compiled the SPIDE model in {elapsed:.1f} s")
        self.model = model
        return model


def evaluates_apart(caps):
    """Whether a trainer on the device of ``caps`` evaluates with the model shaped for it
    by default (:mod:`spide_brian.evaluation`): on runtime targets, and where a compiled
    program reruns (the evaluation program is compiled once too); devices that build once
    per run evaluate with the training model. Where it does, the training runs need not be
    shaped for the test set (:func:`samples_per_run` with ``n_test=0``)."""
    return not caps.standalone or _reruns(caps)


def run_shapes(caps, n_train, n_test, batch_size):
    """The trainer's run sizes for an epoch of ``n_train`` samples and a test pass of
    ``n_test`` where a compiled program reruns (an empty dict elsewhere, where each run
    builds its objects anew and one run per epoch stays): ``capacity`` shaped for the epoch
    alone when the test pass runs apart (:func:`evaluates_apart`), then with
    ``evaluation_capacity`` the test set's size, so the evaluation program compiles beside
    the training program's first epoch; else shaped for the epoch and the test pass
    together."""
    if not caps.rerun_without_build:
        return {}
    if not evaluates_apart(caps):
        return {"capacity": samples_per_run(n_train, n_test, batch_size)}
    return {"capacity": samples_per_run(n_train, 0, batch_size),
            "evaluation_capacity": min(int(n_test), DEFAULT_MAX_CAPACITY)}


def _whole_batches(n_samples, batch_size):
    """``n_samples`` rounded up to whole mini-batches."""
    batch = int(batch_size)
    return -(-int(n_samples) // batch) * batch


def _reruns(caps):
    """Whether a compiled program of the device of ``caps`` is rerun with ``run_args``."""
    return caps.rerun_without_build and _device_run_has_run_args()


def _device_run_has_run_args():
    """Whether this brian2's standalone ``device.run`` sets values with ``run_args``
    (brian2 >= 2.6; 2.5 has a ``run_args`` list of plain command-line arguments only)."""
    return brian2_at_least(2, 6)


def _last_run_seconds():
    """Simulated wall time of the last standalone run as the device measured it (0 if
    unknown)."""
    try:
        return float(device._last_run_time or 0.0)
    except (AttributeError, TypeError):
        return 0.0


class BuildFolderBusy(ValueError):
    """Another process uses the build folder (a ``ValueError``: the command line reports it
    as a one-line error)."""


class BuildFolderLock:
    """An exclusive lock on a build folder: ``flock`` on the file ``.spide_brian.lock`` in it,
    which also holds the id and command line of the process that took it.

    The kernel releases the lock when the last process holding the file ends, so the lock of
    a killed run needs no cleanup. The file stays open in the programs that run ``make``
    (``os.system`` passes it on): a compiler still at work after its run was killed keeps the
    folder locked until it ends.

    Parameters
    ----------
    directory : str
        The build folder (created if missing).
    wait : float, optional
        Seconds to wait for a busy folder before giving up (default :attr:`DEFAULT_WAIT`:
        the compilers of a killed run usually end within seconds).
    """

    FILE_NAME = ".spide_brian.lock"
    DEFAULT_WAIT = 5.0

    def __init__(self, directory, wait=None):
        self.directory = str(directory)
        self.path = os.path.join(self.directory, self.FILE_NAME)
        self.wait = float(self.DEFAULT_WAIT if wait is None else wait)
        self._fd = None

    def acquire(self):
        """Take the lock, or raise :class:`BuildFolderBusy` naming the holder."""
        os.makedirs(self.directory, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise
            if time.monotonic() >= deadline:
                holder = self.holder()
                os.close(fd)
                raise BuildFolderBusy(
                    f"the build folder {self.directory} is in use {holder}; wait for that "
                    "run to end (or end it), or use another folder (--out)")
            time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {_command_line(os.getpid())}\n".encode())
        os.set_inheritable(fd, True)
        self._fd = fd

    def release(self):
        """Give the lock up (a no-op if not held)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self):
        return self._fd is not None

    def holder(self):
        """Words naming the lock's holder, from the process id in the lock file."""
        try:
            with open(self.path, encoding="utf-8", errors="replace") as handle:
                pid = int(handle.read().split()[0])
        except (OSError, ValueError, IndexError):
            return "by another process"
        if _process_alive(pid):
            return f"by process {pid} ({_command_line(pid) or 'command unknown'})"
        return (f"by a compiler or simulation program that process {pid} (now ended) "
                "started")


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _command_line(pid, limit=120):
    """The command line of process ``pid`` on one line, shortened to ``limit`` characters
    ("" where unknown)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            words = handle.read().replace(b"\0", b" ").decode(errors="replace").split()
    except OSError:
        return ""
    text = " ".join(words)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _release_build_folder(lock, temporary_directory):
    """Finaliser of a trainer's build folder: unlock it, remove it if temporary. Returns
    whether it removed a folder."""
    lock.release()
    if temporary_directory is not None:
        shutil.rmtree(temporary_directory, ignore_errors=True)
        return True
    return False


def _last_compile_seconds(directory):
    """Duration of the last compile in ``directory`` (None if unknown)."""
    try:
        with open(os.path.join(directory, COMPILE_SECONDS_FILE), encoding="utf-8") as handle:
            return float(handle.read().strip())
    except (OSError, ValueError):
        return None


def _store_compile_seconds(directory, seconds):
    try:
        with open(os.path.join(directory, COMPILE_SECONDS_FILE), "w", encoding="utf-8") as handle:
            handle.write(f"{seconds:.3f}\n")
    except OSError as error:   # a missing record only loses the next run's estimate
        logger.debug(f"could not store the compile time in {directory}: {error}")


def _compile_message(device_name, directory):
    """The message shown before a compile: where, and how long the last one there took."""
    last = _last_compile_seconds(directory)
    known = (f"the last compile in this folder took {last:.0f} s" if last is not None
             else "no earlier compile in this folder")
    return f"compiling the SPIDE model for {device_name} in {directory} ({known})"


class _SampleCounter:
    """Turns the completed fraction of a run into samples done, for ``progress(n)``.

    A run of ``capacity`` slots (and one final step) trains ``n_samples`` samples, one per
    slot; padding slots after them count nothing. Calls ``progress`` with the increase only.
    """

    def __init__(self, progress, n_samples, model):
        self.progress = progress
        self.n_samples = int(n_samples)
        self.slots_per_run = float(model.run_duration / model.slot_dt)
        self.done = 0
        self._lock = threading.Lock()

    def fraction(self, completed):
        if self.progress is None:
            return
        with self._lock:
            samples = min(self.n_samples, int(float(completed) * self.slots_per_run + 1e-9))
            if samples > self.done:
                self.progress(samples - self.done)
                self.done = samples

    def report(self, elapsed, completed, start, duration):
        """Brian2's runtime ``report`` callback."""
        self.fraction(completed)


class _StandaloneProgressReader:
    """While a compiled program runs: read its progress lines (its output goes to
    ``stdout.txt`` of the results folder) every ``period`` seconds in a thread."""

    def __init__(self, counter, period):
        self.counter = counter
        self.period = max(float(period), 0.05)
        self.path = os.path.join(device.results_dir, "stdout.txt")
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        if self.counter.progress is not None:
            try:   # the previous run's lines must not count for this run
                open(self.path, "w").close()
            except OSError:
                pass
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info):
        if self._thread is not None:
            self._stop.set()
            self._thread.join()

    def _watch(self):
        while not self._stop.wait(self.period):
            self.counter.fraction(self._last_fraction())

    def _last_fraction(self):
        try:
            with open(self.path, encoding="utf-8", errors="replace") as handle:
                lines = handle.read().splitlines()
        except OSError:
            return 0.0
        for line in reversed(lines):
            parts = line.split()
            if len(parts) == 2 and parts[0] == _PROGRESS_MARKER:
                try:
                    return float(parts[1])
                except ValueError:
                    continue
        return 0.0
