"""Runs report honest progress and timings, and leave no processes or folders behind."""
import gc
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from spide_brian import cli
from spide_brian.brian_backend import (BrianTrainer, BuildFolderBusy, BuildFolderLock,
                                       _compile_message, _store_compile_seconds)
from spide_brian.datasets import load_dataset
from spide_brian.training import train

from conftest import make_network

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_case(n_samples=16):
    data = load_dataset("digits", limit=n_samples)
    config, params = make_network((12,), n_inputs=64, n_classes=10, batch_size=8,
                                  time_step=8, time_step_back=16, epochs=1, timing="brian")
    return config, params, data


def _child(code, *args):
    """A Python process running ``code`` with this checkout importable."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _gone(pid, timeout=10.0):
    """Whether process ``pid`` ends (or is a zombie) within ``timeout`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except (FileNotFoundError, ProcessLookupError):
            return True
        time.sleep(0.05)
    return False


def _wait_for_file(path, process, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline and not (os.path.exists(path) and open(path).read().strip()):
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    return int(open(path).read().split()[0])


# -- 1: child processes end with the run; a busy build folder is refused ---------------------
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("stage", ["make", "run"])
def test_compiler_and_program_die_with_a_killed_run(tmp_path, stage):
    """Brian2 starts make with os.system and the program with subprocess.call, using the
    command preferences; after SIGKILL of the Python process neither may live on."""
    pid_file = tmp_path / "child.pid"
    command = f"echo $$ > {pid_file}; exec sleep 120"
    process = _child("""
        import os, subprocess, sys
        from brian2 import prefs
        from spide_brian.devices import tie_children_to_this_process
        stage, command = sys.argv[1], sys.argv[2]
        if stage == "make":
            prefs["devices.cpp_standalone.make_cmd_unix"] = "sh -c " + repr(command)
            tie_children_to_this_process()
            os.system(prefs["devices.cpp_standalone.make_cmd_unix"] + " -j2")
        else:
            prefs["devices.cpp_standalone.run_cmd_unix"] = ["sh", "-c", command]
            tie_children_to_this_process()
            subprocess.call(prefs["devices.cpp_standalone.run_cmd_unix"] + ["--results_dir", "x"])
        """, stage, command)
    try:
        child = _wait_for_file(pid_file, process)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert _gone(child), f"the {stage} stage outlived its killed run"
    finally:
        if process.poll() is None:
            process.kill()
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass


def test_a_build_folder_used_by_a_live_process_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(BuildFolderLock, "DEFAULT_WAIT", 0.3)
    folder = tmp_path / "build"
    ready = tmp_path / "ready"
    holder = _child("""
        import sys, time
        from spide_brian.brian_backend import BuildFolderLock
        BuildFolderLock(sys.argv[1]).acquire()
        open(sys.argv[2], "w").write("1")
        time.sleep(120)
        """, folder, ready)
    try:
        _wait_for_file(ready, holder)
        lock = BuildFolderLock(folder, wait=0.3)
        with pytest.raises(BuildFolderBusy, match=rf"in use by process {holder.pid} .*--out"):
            lock.acquire()
        trainer = BrianTrainer(*make_network((4,), n_inputs=5, n_classes=3)[:2],
                               device="cpp_standalone", build_dir=str(folder))
        with pytest.raises(BuildFolderBusy):   # before anything is compiled
            trainer.train_epoch(np.ones((3, 5)), np.zeros(3, int))
        holder.kill()
        holder.wait()
        lock.acquire()   # the kernel freed the lock of the dead holder
        assert lock.held
        lock.release()
    finally:
        if holder.poll() is None:
            holder.kill()


def test_a_stale_lock_file_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / BuildFolderLock.FILE_NAME).write_text(f"{dead.pid} python spide-brian\n")
    lock = BuildFolderLock(tmp_path, wait=0)
    lock.acquire()
    assert (tmp_path / BuildFolderLock.FILE_NAME).read_text().split()[0] == str(os.getpid())
    lock.release()


def test_two_trainers_in_one_folder_refuse_each_other(tmp_path, monkeypatch):
    monkeypatch.setattr(BuildFolderLock, "DEFAULT_WAIT", 0.0)
    config, params = make_network((4,), n_inputs=5, n_classes=3)
    first = BrianTrainer(config, params, device="numpy", build_dir=str(tmp_path))
    second = BrianTrainer(config, params, device="numpy", build_dir=str(tmp_path))
    first._build_directory()
    with pytest.raises(BuildFolderBusy, match=f"process {os.getpid()}"):
        second._build_directory()
    first.close()
    second._build_directory()   # free again after close()
    second.close()
    assert tmp_path.exists()    # a given folder is kept


# -- 2: no temporary build folder is left behind ------------------------------------------
def test_temporary_build_folder_is_removed_by_close_and_collection():
    config, params = make_network((4,), n_inputs=5, n_classes=3)
    with BrianTrainer(config, params, device="numpy") as trainer:
        folder = trainer._build_directory()
        assert os.path.isdir(folder)
    assert not os.path.exists(folder) and trainer.build_dir is None
    trainer = BrianTrainer(config, params, device="numpy")
    folder = trainer._build_directory()
    del trainer
    gc.collect()
    assert not os.path.exists(folder)


def test_temporary_build_folder_is_removed_when_the_interpreter_ends(tmp_path):
    process = _child("""
        from spide_brian.brian_backend import BrianTrainer
        from spide_brian.parameters import init_parameters
        from spide_brian.config import SPIDEConfig
        import spide_brian.brian_backend as backend
        config = SPIDEConfig(hidden_sizes=(4,))
        trainer = BrianTrainer(config, init_parameters(config, 5, 3), device="numpy")
        backend.STANDALONE_PROGRAM.trainer = trainer   # as after a compile: kept alive
        print(trainer._build_directory())
        """)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    folder = out.decode().strip().splitlines()[-1]
    assert "spide_brian_build_" in folder and not os.path.exists(folder)


# -- 3: the progress bar advances during a Brian2 run ---------------------------------------
def test_numpy_run_reports_progress_while_it_runs():
    config, params, data = small_case(16)
    trainer = BrianTrainer(config, params, device="numpy")
    trainer.progress_period = 0.01
    calls = []
    trainer.progress = calls.append
    result = trainer.train_epoch(data.x_train, data.y_train)
    assert len(calls) >= 3, calls
    assert all(isinstance(n, int) and n > 0 for n in calls)
    assert sum(calls) == result["samples"] == len(data.y_train)
    calls.clear()
    trainer.evaluate(data.x_test, data.y_test)
    assert calls == []   # evaluation is not training progress


def test_driver_passes_progress_to_the_brian_trainer():
    config, params, data = small_case(16)
    trainer = BrianTrainer(config, params, device="numpy")
    trainer.progress_period = 0.01
    bars = []

    class Bar:
        def __init__(self, total, description):
            self.total, self.updates = total, []
            bars.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            pass

        def update(self, n):
            self.updates.append(n)

    train(config, data, trainer=trainer, progress_factory=Bar)
    assert len(bars[0].updates) >= 3 and sum(bars[0].updates) == bars[0].total
    assert trainer.progress is None


# -- 4: the compile is announced, with the last compile's duration ----------------------------
def test_compile_message_names_the_last_compile_time(tmp_path):
    assert "no earlier compile" in _compile_message("cpp_standalone", str(tmp_path))
    _store_compile_seconds(str(tmp_path), 42.4)
    message = _compile_message("cpp_standalone", str(tmp_path))
    assert message.startswith("compiling the SPIDE model for cpp_standalone")
    assert "last compile in this folder took 42 s" in message


# -- 5: no bar when stderr is not a terminal ----------------------------------------------
class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_no_progress_bar_unless_stderr_is_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Stream(False))
    assert cli._progress_factory(quiet=False) is None
    monkeypatch.setattr(sys, "stderr", _Stream(True))
    factory = cli._progress_factory(quiet=False)
    assert factory is not None
    with factory(10, "epoch 1/1") as bar:
        bar.update(10)
    assert cli._progress_factory(quiet=True) is None


# -- 6: compile time is kept out of the epoch's seconds and rate -----------------------------
def test_numpy_epoch_reports_no_compile_time():
    config, params, data = small_case(16)
    record = train(config, data, trainer=BrianTrainer(config, params, device="numpy"))[0]
    assert record.compile_seconds == 0.0
    assert record.samples_per_second == pytest.approx(16 / record.seconds)
    assert "compile_seconds" in record.as_dict()


class CompilingTrainer:
    """A trainer whose first epoch spends ``compile_s`` of its time compiling."""

    def __init__(self, params, compile_s=0.3, run_s=0.1):
        self.params, self.compile_s, self.run_s = params, compile_s, run_s
        self.device_name = "fake"
        self.progress = None
        self.notify = None
        self.epochs = 0

    def train_epoch(self, x, y, epoch=0):
        compile_s = self.compile_s if self.epochs == 0 else 0.0
        if compile_s and self.notify:
            self.notify("compiling")
        time.sleep(compile_s + self.run_s)
        self.epochs += 1
        return dict(loss_sum=float(len(y)), correct=0, samples=len(y), forward_spikes=0,
                    backward_spikes=0, compile_seconds=compile_s)

    def evaluate(self, x, y):
        return dict(correct=0, samples=len(y), forward_spikes=0,
                    predictions=np.zeros(len(y), int))

    def optimizer_state(self):
        return {}

    def load_optimizer_state(self, state):
        pass


def test_compile_time_is_reported_apart_from_the_epoch():
    config, params, data = small_case(16)
    config = config.replace(epochs=2)
    messages = []
    records = train(config, data, trainer=CompilingTrainer(params), notify=messages.append)
    first, second = records
    assert messages == ["compiling"]
    assert first.compile_seconds == 0.3 and second.compile_seconds == 0.0
    assert 0.1 <= first.seconds < 0.25 and 0.1 <= second.seconds < 0.25
    assert first.samples_per_second == pytest.approx(16 / first.seconds)
    assert first.samples_per_second > 16 / 0.3


def test_cli_summary_and_log_separate_compile_seconds(tmp_path, monkeypatch, capsys):
    import spide_brian.training as training

    made = []

    def fake_make_trainer(backend, config, params, **options):
        made.append(CompilingTrainer(params))
        return made[-1]

    monkeypatch.setattr(training, "make_trainer", fake_make_trainer)
    summary = tmp_path / "summary.json"
    assert cli.main(["train", "--backend", "brian", "--dataset", "digits", "--limit", "16",
                     "--hidden-sizes", "12",
                     "--time-step", "8", "--time-step-back", "16", "--batch-size", "8",
                     "--epochs", "2", "--out", str(tmp_path / "run"), "--json",
                     str(summary), "--quiet"]) == 0
    data = json.loads(summary.read_text())
    history = data["history"]
    assert data["compile_seconds"] == pytest.approx(0.3)
    assert data["train_seconds"] == pytest.approx(sum(r["seconds"] for r in history))
    assert data["train_seconds"] < 0.5
    assert data["samples_per_second"] == pytest.approx(32 / data["train_seconds"])
    header, first = (tmp_path / "run" / "log.tsv").read_text().splitlines()[:2]
    assert float(dict(zip(header.split("\t"), first.split("\t")))["compile_seconds"]) == 0.3
    out = capsys.readouterr()
    assert "(+0.3 s compile)" in out.out
    assert "compiling" in out.err


# -- a real cpp_standalone epoch: progress, compile message and stored compile time ----------
@pytest.mark.standalone
@pytest.mark.long
def test_standalone_epoch_reports_progress_and_compile(tmp_path):
    from brian2 import device, set_device

    import spide_brian.brian_backend as backend

    held = backend.STANDALONE_PROGRAM.trainer
    if held is not None:          # an earlier test's trainer: close it so no takeover is told
        held.close()
    config, params, data = small_case(64)
    messages, calls = [], []
    try:
        with BrianTrainer(config, params, device="cpp_standalone",
                          build_dir=str(tmp_path / "build")) as trainer:
            trainer.notify = messages.append
            trainer.progress = calls.append
            trainer.progress_period = 0.05
            result = trainer.train_epoch(data.x_train, data.y_train)
            assert result["compile_seconds"] > 0
            # the program printed its progress as it ran: every few slots, in order
            with open(os.path.join(device.results_dir, "stdout.txt")) as handle:
                fractions = [float(line.split()[1]) for line in handle
                             if line.startswith(backend._PROGRESS_MARKER)]
            assert len(fractions) >= 4
            assert fractions == sorted(fractions) and 0.0 <= fractions[0] < fractions[-1] < 1.0
            assert trainer.train_epoch(data.x_train, data.y_train)["compile_seconds"] == 0.0
        assert "no earlier compile" in messages[0]
        assert sum(calls) == 2 * len(data.y_train) and all(n > 0 for n in calls)
        with BrianTrainer(config, params, device="cpp_standalone",
                          build_dir=str(tmp_path / "build")) as again:
            again.notify = messages.append
            again.train_epoch(data.x_train[:8], data.y_train[:8])
        assert "the last compile in this folder took" in messages[-2]
        assert (tmp_path / "build").is_dir()
    finally:
        device.reinit()
        set_device("runtime")


# -- 4: Ctrl+C during a Brian2 run -------------------------------------------------------------
def test_a_run_stopped_by_ctrl_c_is_discarded_not_learnt_from():
    """On runtime devices Brian2 answers Ctrl+C by ending the run after the current step
    (its SIGINT handler sets ``Network._globally_stopped``); the trainer must not read that
    partial run: it raises KeyboardInterrupt and keeps the parameters from before it."""
    from brian2 import Network

    config, params, data = small_case(16)
    trainer = BrianTrainer(config, params, device="numpy")
    before = {name: np.array(value) for name, value in trainer.params.items()}
    trainer.progress_period = 0.01

    def ctrl_c(samples):
        Network._globally_stopped = True    # what Brian2's SIGINT handler does in a run

    trainer.progress = ctrl_c
    with pytest.raises(KeyboardInterrupt, match="Ctrl.C during a Brian2 run: its results were"):
        trainer.train_epoch(data.x_train, data.y_train)
    for name, value in before.items():
        np.testing.assert_array_equal(trainer.params[name], value, err_msg=name)
    # the next run is whole again (Brian2 clears the stop flag when a run starts)
    trainer.progress = None
    result = trainer.train_epoch(data.x_train, data.y_train)
    assert result["samples"] == len(data.y_train)


def test_an_interrupted_compiled_program_is_an_interrupt_not_a_failure():
    """A compiled program gets Ctrl+C with its process group and dies; Brian2 then raises a
    RuntimeError ('Project run failed'), and its handler has set the stop flag: that is an
    interrupt (exit 130), a failure without the flag stays a failure, a program that ran
    to its end while Ctrl+C was pressed is discarded too, and a flag left from an earlier
    run does not discard the next one."""
    from brian2 import Network
    from spide_brian.brian_backend import _discarded_if_interrupted

    def program(interrupted, fails):
        if interrupted:
            Network._globally_stopped = True
        if fails:
            raise RuntimeError("Project run failed")

    with pytest.raises(KeyboardInterrupt, match="interrupted"):
        with _discarded_if_interrupted():
            program(interrupted=True, fails=True)
    with pytest.raises(KeyboardInterrupt, match="discarded"):
        with _discarded_if_interrupted():
            program(interrupted=True, fails=False)
    with pytest.raises(RuntimeError, match="Project run failed"):
        with _discarded_if_interrupted():
            program(interrupted=False, fails=True)
    Network._globally_stopped = True
    with _discarded_if_interrupted():
        program(interrupted=False, fails=False)
    assert not Network._globally_stopped


@pytest.mark.parametrize("ignored", [True, False])
def test_sigint_ignored_at_start_stays_ignored(ignored):
    """A background job starts with SIGINT ignored. Brian2's import replaces that handler
    with one that fails (TypeError) on the next SIGINT; the command line (here ``info``)
    restores the ignoring. With Python's usual handler, SIGINT still interrupts (KeyboardInterrupt)."""
    code = """
        import contextlib, io, os, signal, sys, time
        if sys.argv[1] == "1":
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        from spide_brian import cli
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli.main(["info", "--models"]) == 0
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
            print("still running")
        except KeyboardInterrupt:
            print("interrupted")
    """
    child = _child(code, int(ignored))
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err.decode()
    assert out.decode().strip() == ("still running" if ignored else "interrupted")
    assert b"Traceback" not in err
