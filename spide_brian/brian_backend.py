"""Training and evaluation with the Brian2 model: one simulation run per epoch (or chunk).

:class:`BrianTrainer` keeps the current parameters and momentum buffers in Python and hands
them, with the epoch's data, to a :class:`~spide_brian.network.SPIDENetwork` run. On
``cpp_standalone`` the program is compiled once (at the first call) for runs of
``capacity`` samples and rerun with ``device.run(run_args=...)`` for every later epoch,
chunk and evaluation; runtime devices (numpy, cython) build the objects for each run.
Devices without reruns build one program per run: ``genn`` (brian2genn allows one ``run()``
per build: one build per epoch chunk and per evaluation, each with the current weights and
the data compiled in), ``cuda_standalone`` (brian2cuda 1.0a3 exists for brian2 2.5.4 only)
and ``cpp_standalone`` on brian2 < 2.6 (no ``run_args``).

Inputs are static samples ``(n, n_in)`` or event frames ``(n, T, n_in)`` (one frame per forward
step, read from a per-step ``TimedArray``); the first call fixes which, like the capacity.

A run covers whole mini-batches: ``capacity`` is a multiple of ``B``; shorter data is padded
with samples of ``kappa = 0`` (no gradient, no update). Evaluation uses the same model with
``kappa = 0`` and no update flags, so the backward stage stays silent and weights fixed.
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np
from brian2 import Network, defaultclock, device, prefs, set_device
from brian2.utils.logger import get_logger

from .cuda import DEFAULT_COMPUTE_CAPABILITY, configure_brian2cuda, run_on_cuda
from .devices import bound_make_jobs, capabilities, default_device
from .network import MODEL_DT
from .replay import network_class, run_on_genn
from .parameters import prepare_parameters
from .schedule import SampleTables
from .training import SpikeTally, batch_major

__all__ = ["BrianTrainer", "DEFAULT_MAX_CAPACITY"]

logger = get_logger(__name__)

_STANDALONE_OWNER = {"trainer": None}

#: Largest default number of samples per run: longer data runs in chunks, which bounds the
#: memory of the input tables and per-sample records, and the padding of a test set.
DEFAULT_MAX_CAPACITY = 10000


class BrianTrainer:
    """SPIDE training loop inside Brian2.

    Parameters
    ----------
    config : SPIDEConfig
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
        Longer data runs in several chunks; shorter data (e.g. a test set) is padded, so a
        capacity far above the test set size wastes time in evaluation.
    use_gpu : bool
        ``genn`` only: GeNN's CUDA backend (default) or, if false, its single-threaded
        CPU-only backend (brian2genn's ``use_GPU``).
    genn_path : str, optional
        ``genn`` only: a GeNN 4.x tree (``prefs.devices.genn.path``); defaults to the
        ``GENN_PATH`` environment variable.
    compute_capability : float, optional
        ``cuda_standalone`` only: the GPU architecture nvcc compiles for (default
        :data:`spide_brian.cuda.DEFAULT_COMPUTE_CAPABILITY`); see :mod:`spide_brian.cuda`.

    Attributes
    ----------
    params : dict of ndarray
        Current parameters.
    timings : dict
        ``compile_s`` (standalone build) and ``run_s`` (all runs so far).
    """

    def __init__(self, config, params, device="cpp_standalone", n_inputs=None, n_classes=None,
                 build_dir=None, capacity=None, use_gpu=True, genn_path=None,
                 compute_capability=None):
        self.config = config
        self.device_name = device or default_device()
        self.caps = capabilities(self.device_name)
        self.use_gpu = bool(use_gpu)
        self.genn_path = genn_path
        self.compute_capability = float(compute_capability or DEFAULT_COMPUTE_CAPABILITY)
        if self.device_name == "cuda_standalone":
            configure_brian2cuda(self.compute_capability)   # missing pieces fail here
        if self.device_name == "genn":
            try:
                import brian2genn  # noqa: F401  (registers the genn device)
            except ImportError as error:
                raise NotImplementedError(
                    "device 'genn' needs brian2genn and brian2 2.5.x: install the genn "
                    "extra in its own environment (pip install 'spide-brian[genn]')") from error
        shapes_from = params["input_weight"].shape, params["readout_weight"].shape
        self.n_inputs = int(n_inputs if n_inputs is not None else shapes_from[0][1])
        self.n_classes = int(n_classes if n_classes is not None else shapes_from[1][0])
        self.params = prepare_parameters(params, config, self.n_inputs, self.n_classes)
        self.buffers = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.build_dir = build_dir
        self.capacity = capacity
        #: Whether the model takes event frames; fixed by the first data seen.
        self.frame_input = None
        self.model = None
        self._network = None
        self.timings = {"compile_s": 0.0, "run_s": 0.0}
        self.last_records = None

    # -- optimiser state ----------------------------------------------------------------------
    def optimizer_state(self):
        """Momentum buffers by parameter name (copies)."""
        return {k: v.copy() for k, v in self.buffers.items()}

    def load_optimizer_state(self, state):
        """Set momentum buffers; missing names start at zero."""
        self.buffers = {k: np.array(state.get(k, np.zeros_like(v)), dtype=np.float64)
                        for k, v in self.params.items()}

    # -- public API ----------------------------------------------------------------------------
    def train_epoch(self, x, y):
        """Train on ``x`` (n, n_in), or frames (n, T, n_in), with labels ``y`` in the given
        order.

        Returns
        -------
        dict
            ``loss_sum``, ``correct``, ``samples``, ``forward_spikes``, ``backward_spikes``
            (totals over the epoch; loss and accuracy of each sample at the weights it saw),
            ``firing`` (per-layer statistics of both stages) and ``operations``
            (:class:`spide_brian.energy.OperationCounts` from the recorded spike counts).
        """
        x, y = self._check_data(x, y)
        batch = int(self.config.batch_size)
        self._choose_capacity(len(x))
        totals = dict(loss_sum=0.0, correct=0, samples=0, forward_spikes=0, backward_spikes=0)
        tally = SpikeTally(self.config)
        for start in range(0, len(x), self.capacity):
            xs, ys = x[start:start + self.capacity], y[start:start + self.capacity]
            tables = SampleTables.build(xs, ys, self.capacity, batch_size=batch,
                                        scale_factor=self.config.scale_factor)
            records = self._run(tables, learn=True)
            self._add_totals(totals, records, ys)
            tally.add(self.params, batch_major(xs), records["forward_counts"],
                      records["backward_counts"])
        totals.update(tally.summary())
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
        self._choose_capacity(len(x))
        totals = dict(loss_sum=0.0, correct=0, samples=0, forward_spikes=0, backward_spikes=0)
        predictions, tally = [], SpikeTally(self.config)
        for start in range(0, len(x), self.capacity):
            xs, ys = x[start:start + self.capacity], y[start:start + self.capacity]
            records = self._run(SampleTables.build(xs, ys, self.capacity), learn=False)
            self._add_totals(totals, records, ys)
            predictions.append(np.argmax(records["prob"], axis=1))
            tally.add(self.params, batch_major(xs), records["forward_counts"])
        totals.pop("backward_spikes")
        totals.update(tally.summary(with_firing=False))
        totals["predictions"] = np.concatenate(predictions) if predictions else np.zeros(0, int)
        return totals

    # -- internals -----------------------------------------------------------------------------
    def _choose_capacity(self, n_samples):
        """Fix the samples per run at the first call: ``n_samples`` (at most
        :data:`DEFAULT_MAX_CAPACITY`) or the given capacity, in whole mini-batches."""
        batch = int(self.config.batch_size)
        if self.capacity is None:
            n_samples = min(n_samples, DEFAULT_MAX_CAPACITY)
            self.capacity = int(np.ceil(n_samples / batch)) * batch
        elif self.capacity % batch:
            self.capacity = int(np.ceil(self.capacity / batch)) * batch

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

    @staticmethod
    def _add_totals(totals, records, labels):
        n = len(labels)
        prob = records["prob"]
        totals["samples"] += n
        totals["correct"] += int(np.sum(np.argmax(prob, axis=1) == labels))
        totals["loss_sum"] += float(-np.sum(np.log(prob[np.arange(n), labels])))
        totals["forward_spikes"] += int(sum(c.sum() for c in records["forward_counts"]))
        totals["backward_spikes"] += int(sum(c.sum() for c in records["backward_counts"]))

    @property
    def reruns(self):
        """Whether a compiled program is rerun with ``run_args`` (else one build per run)."""
        return self.caps.rerun_without_build and _device_run_has_run_args()

    def _run(self, tables, learn):
        if self.caps.standalone and not self.reruns:
            model = self._build_and_run(tables)
            start = None
        elif self.caps.standalone:
            model = self._standalone_model()
            start = time.perf_counter()
            run_args = dict(model.constant_values(self.config))
            run_args.update(model.state_values(self.params, self.buffers))
            run_args.update(model.table_values(tables))
            device.run(run_args=run_args, with_output=False)
        else:
            start = time.perf_counter()
            prefs.codegen.target = self.caps.codegen_target
            model = self._make_model(tables)
            model.assign(self.params, self.buffers)
            Network(*model.objects).run(model.run_duration, namespace={})
        self.model = model
        if start is not None:
            self.timings["run_s"] += time.perf_counter() - start
        records = model.per_sample(tables.n_samples)
        if learn:
            self.params, self.buffers = model.read_parameters()
        self.last_records = records
        return records

    def _make_model(self, tables=None):
        """The model of this trainer's device for one run (or one compiled program), on a
        step of :data:`~spide_brian.network.MODEL_DT` (exact clock times)."""
        defaultclock.dt = MODEL_DT
        return network_class(self.caps)(self.config, self.n_inputs, self.n_classes,
                                        self.capacity, device=self.caps, tables=tables,
                                        frame_input=self.frame_input)

    def _build_and_run(self, tables):
        """One program for this run (genn, cuda_standalone; cpp_standalone without
        run_args): build it with the current parameters and ``tables``, run it once.
        Compile time goes to ``compile_s``, the rest to ``run_s`` (brian2genn reports no
        split: all of a genn run counts as ``compile_s`` except the simulation time it
        logs)."""
        start = time.perf_counter()
        if _STANDALONE_OWNER["trainer"] is not None or self.model is not None:
            device.reinit()
        _STANDALONE_OWNER["trainer"] = self
        directory = self.build_dir or tempfile.mkdtemp(prefix="spide_brian_build_")
        os.makedirs(directory, exist_ok=True)
        self.build_dir = directory
        run = self._select_build_device(directory)
        model = self._make_model(tables)
        model.assign(self.params, self.buffers)
        run(Network(*model.objects), model.run_duration, directory)
        elapsed = time.perf_counter() - start
        simulated = _last_run_seconds()
        self.timings["compile_s"] += elapsed - simulated
        self.timings["run_s"] += simulated
        self.model = model
        return model

    def _select_build_device(self, directory):
        """``set_device`` with this device's options for a build in ``directory``; returns
        ``run(network, duration, directory)``, which turns the device's known failures into
        one-line errors."""
        if self.device_name == "genn":
            if self.genn_path:
                prefs.devices.genn.path = self.genn_path
            set_device("genn", use_GPU=self.use_gpu, directory=directory)
            return run_on_genn
        if self.device_name == "cuda_standalone":
            configure_brian2cuda(self.compute_capability)
            set_device("cuda_standalone", directory=directory, with_output=False)
            return run_on_cuda
        bound_make_jobs()
        set_device(self.device_name, directory=directory)
        return lambda network, duration, _: network.run(duration, namespace={})

    def _standalone_model(self):
        if self.model is not None and _STANDALONE_OWNER["trainer"] is self:
            return self.model
        if _STANDALONE_OWNER["trainer"] is not None:
            logger.info("a new standalone trainer replaces the previous one's compiled program")
        start = time.perf_counter()
        if _STANDALONE_OWNER["trainer"] is not None:
            device.reinit()
        bound_make_jobs()
        set_device("cpp_standalone", build_on_run=False)
        device.activate(build_on_run=False)
        model = self._make_model()
        Network(*model.objects).run(model.run_duration, namespace={})
        directory = self.build_dir or tempfile.mkdtemp(prefix="spide_brian_build_")
        os.makedirs(directory, exist_ok=True)
        device.build(directory=directory, compile=True, run=False, with_output=False)
        self.build_dir = directory
        self.timings["compile_s"] = time.perf_counter() - start
        logger.info(f"compiled the SPIDE model in {directory} "
                    f"({self.timings['compile_s']:.1f} s)")
        _STANDALONE_OWNER["trainer"] = self
        self.model = model
        return model


def _device_run_has_run_args():
    """Whether this brian2's standalone ``device.run`` sets values with ``run_args``
    (brian2 >= 2.6; 2.5 has a ``run_args`` list of plain command-line arguments only)."""
    import brian2
    major, minor = (int(part) for part in brian2.__version__.split(".")[:2])
    return (major, minor) >= (2, 6)


def _last_run_seconds():
    """Simulated wall time of the last standalone run as the device measured it (0 if
    unknown)."""
    try:
        return float(device._last_run_time or 0.0)
    except (AttributeError, TypeError):
        return 0.0
