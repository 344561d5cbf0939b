"""A model shaped for evaluation: the forward stage of the trained network in short slots.

A test pass needs the forward stage and the readout of each sample only, but the training
program's slots also hold the ``T_b`` steps of the backward stage (``T + T_b + 7`` steps a
slot, :class:`~spide_brian.schedule.SlotSchedule`), and its runs hold as many samples as the
training runs. The model of :func:`evaluation_config` is the same network with a backward
stage of one step and no dropout, so a slot lasts ``T + 8`` steps (38 instead of 137 for
``T = 30, T_b = 100``), and its runs are sized for the test set. It is built forward-only
(``learning=False``): without the ternary couples, the transposed weight copies, the
readout's gradient copy and the per-sample gradient accumulations, which a test pass would
run for nothing. The forward stage of a sample does not depend on the backward stage (every
slot starts from the reset state, and nothing learns in a test pass), so both models give
the same spikes and probabilities; the tests check it sample for sample.

On a runtime target (numpy, Cython) the evaluation model is a second network in the same
process (:class:`LocalEvaluation`). A compiled program that reruns (cpp_standalone) is
another matter: Brian2 holds one standalone project per process, so the evaluation program
is built and rerun by a worker process of its own (:class:`WorkerEvaluation`), which
compiles beside the training program and lives as long as the trainer.
"""
from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import traceback
from multiprocessing.connection import Connection

import numpy as np

__all__ = ["evaluation_config", "LocalEvaluation", "WorkerEvaluation", "EvaluationFailed"]

#: Backward steps of the evaluation model: the fewest the slot schedule allows.
EVALUATION_BACKWARD_STEPS = 1


def evaluation_config(config):
    """``config`` for the evaluation model: a backward stage of
    :data:`EVALUATION_BACKWARD_STEPS` step and no dropout (a test pass neither learns nor
    drops). The forward stage and the readout are those of ``config``."""
    return config.replace(time_step_back=EVALUATION_BACKWARD_STEPS, dropout=0.0)


class EvaluationFailed(RuntimeError):
    """The evaluation model could not be built or run; the message carries the reason."""


class LocalEvaluation:
    """The evaluation model as a second trainer in this process (runtime targets).

    Parameters
    ----------
    settings : dict
        ``trainer_class`` (:class:`~spide_brian.brian_backend.BrianTrainer` or a subclass;
        it pickles by name for the worker), its keyword arguments for the evaluation model
        (``config`` already :func:`evaluation_config`, ``capacity``, ...) and
        ``frame_input``.
    """

    def __init__(self, settings):
        self.settings = dict(settings)
        self.compile_seconds = 0.0
        self._trainer = None

    def start(self):
        """Nothing to start ahead: the runtime network is made at the first run."""

    def ready(self):
        """Make the evaluation trainer (its network is made at the first run)."""
        if self._trainer is None:
            self._trainer = _evaluation_trainer(self.settings)

    def records(self, params, xs, ys):
        """Per-sample records (:meth:`~spide_brian.network.SPIDENetwork.per_sample`) of a
        test run of ``xs``, ``ys`` (at most the capacity) with ``params``."""
        self.ready()
        return _run_test(self._trainer, params, xs, ys)

    def close(self):
        if self._trainer is not None:
            self._trainer.close()
            self._trainer = None


class WorkerEvaluation:
    """The evaluation program of a rerunnable standalone device, built and rerun by a worker
    process (Brian2 holds one standalone project per process: the training program's).

    :meth:`start` starts the worker, which builds at once, so the evaluation program
    compiles while the training program compiles or trains; :meth:`records` waits for it.
    The worker is a Python process of its own (``python -c``, so a user's script is not
    imported again) in a session of its own (a terminal's Ctrl+C reaches this process only,
    which then ends the worker); it ends when this process closes it or ends, and cleans up
    its build folder on the way out.

    Parameters
    ----------
    settings : dict
        As for :class:`LocalEvaluation`.
    notify : callable, optional
        ``notify(message)`` for one-line messages (the compile starts and ends).
    """

    def __init__(self, settings, notify=None):
        self.settings = dict(settings)
        self.notify = notify
        self.compile_seconds = 0.0
        self._process = None
        self._connection = None
        self._ready = False

    def start(self):
        """Start the worker (and its build) if it is not running."""
        if self._process is not None:
            return
        from brian2 import prefs

        from .devices.processes import tied_command, unguarded_commands

        here, there = socket.socketpair()
        # the worker imports this package from where this process found it
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            [package_root] + [p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p])
        command = [sys.executable, "-c", f"from {__name__} import _serve; _serve({there.fileno()})"]
        # a session of its own (a terminal's Ctrl+C does not reach it), and SIGTERM when
        # this process ends
        self._process = subprocess.Popen(tied_command(command, signal.SIGTERM),
                                         pass_fds=[there.fileno()], env=environment,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        there.close()
        self._connection = Connection(here.detach())
        self._connection.send((self.settings, prefs.as_file, unguarded_commands()))
        self._say(f"compiling the evaluation program ({self.settings['capacity']} samples "
                  "a run, no backward stage) in a worker process")

    def ready(self):
        """Start the worker if needed and wait until its program is compiled."""
        self.start()
        if not self._ready:
            with self._ended_on_failure():
                self.compile_seconds = float(self._receive("ready"))
            self._ready = True
            self._say(f"compiled the evaluation program in {self.compile_seconds:.1f} s")

    def records(self, params, xs, ys):
        """As :meth:`LocalEvaluation.records`, run by the worker."""
        self.ready()
        with self._ended_on_failure():
            self._connection.send(("run", params, xs, ys))
            return self._receive("records")

    @contextlib.contextmanager
    def _ended_on_failure(self):
        """An interrupt or a failure leaves the worker in an unknown state: end it."""
        try:
            yield
        except BaseException:
            self.close(now=True)
            raise

    def close(self, now=False):
        """End the worker (it removes a temporary build folder): ask it to when it is idle,
        else (``now``, or while it compiles) stop it and its compiler or program with
        SIGTERM. A later :meth:`records` starts and compiles a new one."""
        process, connection = self._process, self._connection
        now = now or not self._ready      # still compiling: nothing to finish
        self._process = self._connection = None
        self._ready = False
        if process is None:
            return
        if now:
            # the worker leads its own process group: its compiler or program ends with it
            # (a Python handler would wait for the compiler to finish)
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except OSError:
                process.terminate()
        else:
            try:
                connection.send(("close",))
            except (OSError, ValueError):
                pass
        connection.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(timeout=10)

    def _receive(self, expected):
        try:
            kind, payload = self._connection.recv()
        except EOFError:
            code = self._process.poll() if self._process is not None else None
            raise EvaluationFailed(f"the evaluation worker process ended (exit code {code}) "
                                   "without an answer") from None
        if kind == "error":
            raise EvaluationFailed(f"the evaluation program failed in its worker process:\n"
                                   f"{payload}")
        if kind != expected:
            raise EvaluationFailed(f"the evaluation worker answered {kind!r}, not {expected!r}")
        return payload

    def _say(self, message):
        if self.notify is not None:
            self.notify(message)


def _evaluation_trainer(settings):
    settings = dict(settings)
    frame_input = settings.pop("frame_input")
    trainer_class = settings.pop("trainer_class")
    trainer = trainer_class(shaped_evaluation=False, **settings)
    trainer.frame_input = bool(frame_input)
    return trainer


def _run_test(trainer, params, xs, ys):
    from .schedule import SampleTables

    trainer.params = {name: np.array(value, dtype=np.float64) for name, value in params.items()}
    return trainer._run(SampleTables.build(xs, ys, trainer.capacity), learn=False)


def _quiet(message):
    """Messages of the worker's trainer: dropped (see :meth:`WorkerEvaluation._say`)."""


def _serve(fd):
    """The worker (started by :meth:`WorkerEvaluation.start` with the socket ``fd``): read
    the settings, build the evaluation program at once, then answer ``("run", params, xs,
    ys)`` with its records until ``("close",)`` or until the other end is gone. SIGTERM ends
    it through its clean-up (its build folder)."""
    def _leave(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _leave)
    connection = Connection(fd)
    trainer = None
    try:
        settings, prefs_text, commands = connection.recv()
        from brian2 import prefs

        from .devices.processes import restore_unguarded_commands

        prefs.read_preference_file(io.StringIO(prefs_text))
        restore_unguarded_commands(commands)
        trainer = _evaluation_trainer(settings)
        trainer.notify = _quiet       # the trainer that owns the worker speaks for it
        trainer._standalone_model()
        connection.send(("ready", trainer.compile_seconds))
        while True:
            message = connection.recv()
            if message[0] != "run":
                return
            _, params, xs, ys = message
            connection.send(("records", _run_test(trainer, params, xs, ys)))
    except (SystemExit, EOFError):
        return
    except BaseException:
        try:
            connection.send(("error", traceback.format_exc()))
        except (OSError, ValueError):
            pass
    finally:
        if trainer is not None:
            trainer.close()
