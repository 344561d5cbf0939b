"""The command line never loses a saved run, and reports every failure as a failure.

Reference backend and tiny networks, so each run takes a fraction of a second.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from spide_brian.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from spide_brian.cli import main
from spide_brian.config import SPIDEConfig
from spide_brian.parameters import init_parameters

TINY = ["--backend", "reference", "--limit", "100", "--hidden-sizes", "20", "--quiet"]
REPOSITORY = Path(__file__).resolve().parents[1]


def train(out, epochs, *extra):
    return main(["train", *TINY, "--epochs", str(epochs), "--out", str(out), *extra])


def log_rows(out):
    return (Path(out) / "log.tsv").read_text().splitlines()[1:]


def one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Brian 2" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("spide-brian")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- nothing saved is lost ---------------------------------------------------------------------

def test_resume_without_checkpoint_refuses_and_keeps_the_files(tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    kept = folder / "checkpoint-epoch0003.npz"
    kept.write_bytes(b"arrays the user keeps")
    assert train(folder, 2, "--resume") == 2
    one_line_error(capsys, "no checkpoint", "drop --resume")
    assert kept.read_bytes() == b"arrays the user keeps"
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint-epoch0003.npz"]
    assert train(tmp_path / "typo", 2, "--resume") == 2
    one_line_error(capsys, "does not exist")
    assert not (tmp_path / "typo").exists()


def test_out_holding_another_run_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out, 2) == 0
    foreign = out / "checkpoint-epoch0042.npz"
    foreign.write_bytes(b"arrays of an unrelated run")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert train(out, 1, "--seed", "5") == 2
    one_line_error(capsys, "holds another run", "--resume", "--overwrite")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert train(out, 1, "--seed", "5", "--overwrite") == 0
    saved = load_checkpoint(out)
    assert saved["epoch"] == 1 and saved["config"].seed == 5 and len(log_rows(out)) == 1
    assert foreign.read_bytes() == b"arrays of an unrelated run"
    assert sorted(p.name for p in out.glob("*.npz")) == [
        "checkpoint-epoch0001.npz", "checkpoint-epoch0042.npz"]
    assert train(out, 2, "--resume", "--overwrite") == 2


def test_log_and_summary_are_replaced_not_rewritten_in_place(tmp_path):
    """A reader holding the old file (here: a hard link) keeps its complete old content."""
    out, summary = tmp_path / "run", tmp_path / "summary.json"
    assert train(out, 2, "--json", str(summary)) == 0
    old_log, old_summary = (out / "log.tsv").read_text(), summary.read_text()
    os.link(out / "log.tsv", tmp_path / "reader.tsv")
    os.link(summary, tmp_path / "reader.json")
    assert train(out, 3, "--resume", "--json", str(summary)) == 0
    assert len(log_rows(out)) == 3 and json.loads(summary.read_text())["epochs"] == 3
    assert (tmp_path / "reader.tsv").read_text() == old_log
    assert (tmp_path / "reader.json").read_text() == old_summary


def _run_dying(tmp_path, out, epochs, dying_code):
    """Run ``spide-brian train`` in a process that SIGKILLs itself where ``dying_code`` says."""
    argv = ["train", *TINY, "--epochs", str(epochs), "--out", str(out)]
    script = "\n".join([
        "import os, signal, sys",
        "import numpy as np",
        "calls = []",
        "def die():",
        "    os.kill(os.getpid(), signal.SIGKILL)",
        textwrap.dedent(dying_code),
        "from spide_brian.cli import main",
        f"sys.exit(main({argv!r}))"])
    environment = dict(os.environ, PYTHONPATH=str(REPOSITORY))
    process = subprocess.run([sys.executable, "-c", script], env=environment, cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
    assert process.returncode == -9, process.stderr


def test_sigkill_while_writing_the_arrays(tmp_path):
    """Killed halfway through the second checkpoint's arrays: the first checkpoint and its log
    stay; the resumed run cleans the temporary file and rewrites the log from the checkpoint."""
    out = tmp_path / "run"
    _run_dying(tmp_path, out, 3, """
        real_savez = np.savez
        def savez(stream, **arrays):
            calls.append(1)
            if len(calls) == 2:
                stream.write(b"half of the arrays")
                stream.flush()
                die()
            return real_savez(stream, **arrays)
        np.savez = savez
    """)
    saved = load_checkpoint(out)
    assert saved["epoch"] == 1
    assert len(log_rows(out)) == 1          # the log never runs ahead of the checkpoint
    assert [p.name.startswith(".checkpoint-epoch0002.npz.") for p in out.glob(".*.tmp")] == [True]
    assert main(["train", *TINY, "--epochs", "3", "--out", str(out), "--resume"]) == 0
    resumed = load_checkpoint(out)
    assert resumed["epoch"] == 3 and resumed["history"][:1] == saved["history"]
    assert list(out.glob(".*.tmp")) == []
    assert [p.name for p in out.glob("*.npz")] == ["checkpoint-epoch0003.npz"]
    rows = log_rows(out)
    assert [int(row.split("\t")[0]) for row in rows] == [1, 2, 3]


def test_sigkill_between_arrays_and_metadata(tmp_path):
    """Killed after the second checkpoint's arrays are in place but before its metadata: the
    unnamed arrays are the run's own leftover, removed on resume; the log matches epoch 1."""
    out = tmp_path / "run"
    _run_dying(tmp_path, out, 3, """
        real_replace = os.replace
        def replace(source, destination):
            if str(destination).endswith("checkpoint.json"):
                calls.append(1)
                if len(calls) == 2:
                    die()
            return real_replace(source, destination)
        os.replace = replace
    """)
    assert load_checkpoint(out)["epoch"] == 1 and len(log_rows(out)) == 1
    assert (out / "checkpoint-epoch0002.npz").exists()
    (out / "log.tsv").write_text("a log that lost its rows\n")
    # resuming to the epoch already reached trains nothing, but tidies the folder
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out), "--resume"]) == 0
    assert [p.name for p in out.glob("*.npz")] == ["checkpoint-epoch0001.npz"]
    assert list(out.glob(".*.tmp")) == [] and len(log_rows(out)) == 1
    assert load_checkpoint(out)["epoch"] == 1


def test_sigkill_between_metadata_and_removing_the_old_arrays(tmp_path):
    """Killed after the second checkpoint's metadata is in place but before the first
    checkpoint's arrays are deleted: those are superseded and go on resume, and the run
    continues from epoch 2."""
    out = tmp_path / "run"
    _run_dying(tmp_path, out, 3, """
        from pathlib import Path
        real_unlink = Path.unlink
        def unlink(self, *args, **kwargs):
            if self.name == "checkpoint-epoch0001.npz":
                die()
            return real_unlink(self, *args, **kwargs)
        Path.unlink = unlink
    """)
    saved = load_checkpoint(out)
    assert saved["epoch"] == 2
    assert sorted(p.name for p in out.glob("*.npz")) == ["checkpoint-epoch0001.npz",
                                                       "checkpoint-epoch0002.npz"]
    assert main(["train", *TINY, "--epochs", "3", "--out", str(out), "--resume"]) == 0
    assert load_checkpoint(out)["history"][:2] == saved["history"]
    assert [p.name for p in out.glob("*.npz")] == ["checkpoint-epoch0003.npz"]


@pytest.mark.parametrize("change,message", [
    (dict(epoch=None), "no 'epoch' field"),
    (dict(history=None), "no 'history' field"),
    (dict(dataset=None), "no 'dataset' field"),
    (dict(epoch="2"), "'epoch' must be an integer"),
    (dict(epoch=1.5), "'epoch' must be an integer"),
    (dict(epoch=True), "'epoch' must be an integer"),
    (dict(history="epoch 1"), "'history' must be a list"),
    (dict(dataset=7), "'dataset' must be a dataset name"),
    (dict(arrays="../elsewhere.npz"), "'arrays' must be the file name"),
    (dict(config=[1]), "'config' must be an object"),
    (dict(backend="tpu"), "'backend' must be"),
])
def test_checkpoint_fields_are_validated(tmp_path, capsys, change, message):
    config = SPIDEConfig(hidden_sizes=(5,))
    save_checkpoint(tmp_path, config=config, params=init_parameters(config, 64, 10),
                    optimizer_state={}, epoch=1, backend="reference", device="numpy",
                    dataset="digits", history=[{"epoch": 1}])
    path = tmp_path / "checkpoint.json"
    metadata = json.loads(path.read_text())
    for key, value in change.items():
        if value is None:
            del metadata[key]
        else:
            metadata[key] = value
    path.write_text(json.dumps(metadata))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path)
    assert main(["train", *TINY, "--epochs", "2", "--out", str(tmp_path), "--resume"]) == 2
    one_line_error(capsys, message)


# -- failures are failures ---------------------------------------------------------------------

def test_a_diverging_loss_exits_1_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    summary = tmp_path / "summary.json"
    code = main(["train", "--backend", "reference", "--limit", "200", "--hidden-sizes", "20",
                 "--epochs", "4", "--lr", "1000", "--quiet", "--out", str(out),
                 "--json", str(summary)])
    assert code == 1
    one_line_error(capsys, "diverged in epoch 2", "loss inf", "smaller --lr")
    saved = load_checkpoint(out)
    assert saved["epoch"] == 1 and len(log_rows(out)) == 1
    assert all(np.isfinite(value).all() for value in saved["params"].values())
    assert not summary.exists()


def test_non_finite_parameters_exit_1_and_save_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--backend", "reference", "--limit", "200", "--hidden-sizes", "20",
                 "--epochs", "4", "--momentum", "389.7", "--batch-size", "1",
                 "--weight-decay", "5", "--quiet", "--out", str(out)])
    assert code == 1
    one_line_error(capsys, "diverged in epoch 1", "non-finite", "smaller --lr")
    assert not (out / "checkpoint.json").exists() and list(out.glob("*.npz")) == []


@pytest.mark.parametrize("make,flags,message", [
    (lambda tmp: (tmp / "file").write_text("x"), ["--out", "{tmp}/file"], "is a file"),
    (lambda tmp: (tmp / "dir").mkdir(), ["--json", "{tmp}/dir"], "is a folder"),
    (lambda tmp: (tmp / "file").write_text("x"), ["--json", "{tmp}/file/summary.json"],
     "is a file, not a folder"),
    (lambda tmp: (tmp / "file").write_text("x"), ["--out", "{tmp}/file/run"],
     "is a file, not a folder"),
])
def test_unusable_output_paths_are_refused_before_training(tmp_path, capsys, make, flags,
                                                           message):
    make(tmp_path)
    flags = [flag.format(tmp=tmp_path) for flag in flags]
    assert main(["train", *TINY, "--epochs", "1", *flags]) == 2
    one_line_error(capsys, message)
    assert "epoch" not in capsys.readouterr().out


def test_a_failed_write_is_one_line(tmp_path, capsys, monkeypatch):
    import spide_brian.checkpoint

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "run"))

    monkeypatch.setattr(spide_brian.checkpoint, "save_checkpoint", full_disk)
    assert train(tmp_path / "run", 1) == 1
    one_line_error(capsys, "No space left on device")


@pytest.mark.parametrize("flags,message", [
    (["--backend", "reference", "--device", "numpy"], "--device applies to --backend brian"),
    (["--backend", "reference", "--device", "genn", "--genn-cpu-only"],
     "--device applies to --backend brian"),
    (["--backend", "reference", "--genn-path", "/opt/genn"], "--genn-path applies"),
    (["--backend", "reference", "--build-dir", "build"], "--build-dir applies"),
    (["--backend", "reference", "--cuda-compute-capability", "8.0"],
     "--cuda-compute-capability applies"),
    (["--backend", "brian", "--device", "numpy", "--timing", "reference"],
     "--timing reference applies to --backend reference only"),
])
def test_flags_that_do_not_apply_are_refused(tmp_path, capsys, flags, message):
    argv = ["train", "--limit", "20", "--hidden-sizes", "5", "--epochs", "1", "--quiet", *flags]
    assert main(argv) == 2
    one_line_error(capsys, message)


def test_config_errors_name_the_flag(capsys):
    assert main(["train", *TINY, "--seed", "-1"]) == 2
    one_line_error(capsys, "--seed must be >= 0, got -1")


def test_brian_run_records_timing_brian(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--backend", "brian", "--device", "numpy", "--limit", "16",
                 "--hidden-sizes", "6", "4", "--batch-size", "8", "--time-step", "6",
                 "--time-step-back", "8", "--epochs", "1", "--quiet", "--out", str(out)]) == 0
    saved = load_checkpoint(out)
    assert saved["backend"] == "brian" and saved["config"].timing == "brian"


def _two_layer_checkpoint(folder, backend, timing):
    config = SPIDEConfig(hidden_sizes=(12, 8), time_step=8, time_step_back=10, timing=timing)
    save_checkpoint(folder, config=config, params=init_parameters(config, 64, 10, seed=3),
                    optimizer_state={}, epoch=1, backend=backend, device="numpy",
                    dataset="digits")
    return config


def test_reference_evaluation_of_a_brian_checkpoint_computes_the_brian_network(tmp_path):
    """A Brian2 checkpoint of an earlier version stored timing 'reference'; evaluating it with
    the reference must compute the Brian2 model's network (timing 'brian')."""
    from spide_brian.datasets import load_dataset
    from spide_brian.training import ReferenceTrainer

    config = _two_layer_checkpoint(tmp_path, "brian", "reference")
    saved = load_checkpoint(tmp_path)
    data = load_dataset("digits", limit=40)
    rates = {}
    for timing in ("brian", "reference"):
        trainer = ReferenceTrainer(config.replace(timing=timing), saved["params"])
        rates[timing] = trainer.evaluate(data.x_test, data.y_test)["forward_spikes"]
    assert rates["brian"] != rates["reference"]    # the two timings are different networks
    summary = tmp_path / "eval.json"
    assert main(["evaluate", str(tmp_path), "--backend", "reference", "--limit", "40",
                 "--json", str(summary)]) == 0
    spikes = json.loads(summary.read_text())["forward_rate"] * 40 * 20 * 8
    assert spikes == pytest.approx(rates["brian"])


def test_brian_evaluation_of_a_reference_timing_network_is_refused(tmp_path, capsys):
    _two_layer_checkpoint(tmp_path, "reference", "reference")
    assert main(["evaluate", str(tmp_path), "--backend", "brian", "--device", "numpy"]) == 2
    one_line_error(capsys, "timing 'reference'", "use --backend reference")
