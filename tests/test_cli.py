"""The command line: training, JSON summary, checkpoints, resume after SIGKILL, errors."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from spide_brian.checkpoint import CheckpointError, load_checkpoint
from spide_brian.cli import main
from spide_brian.devices import capabilities, refused_options

SMALL = ["--backend", "reference", "--limit", "120", "--hidden-sizes", "30", "--batch-size", "16",
         "--time-step-back", "40", "--quiet"]
# the Brian2 model on the numpy runtime target (no compilation), a tiny network
TINY_BRIAN = ["--backend", "brian", "--device", "numpy", "--limit", "24", "--hidden-sizes", "10",
              "--batch-size", "8", "--time-step", "10", "--time-step-back", "20", "--quiet"]
BACKENDS = {"reference": SMALL, "brian": TINY_BRIAN}


def test_train_writes_summary_log_and_checkpoint(tmp_path, capsys):
    summary = tmp_path / "summary.json"
    assert main(["train", *SMALL, "--epochs", "2", "--out", str(tmp_path / "run"),
                 "--json", str(summary)]) == 0
    data = json.loads(summary.read_text())
    for key in ("test_accuracy", "epochs", "train_seconds", "samples_per_second",
                "forward_rate", "backward_rate", "device"):
        assert key in data
    assert 0.0 <= data["test_accuracy"] <= 1.0 and data["epochs"] == 2
    log = (tmp_path / "run" / "log.tsv").read_text().splitlines()
    assert log[0].startswith("epoch\tlr\tloss") and len(log) == 3
    checkpoint = load_checkpoint(tmp_path / "run")
    assert checkpoint["epoch"] == 2 and checkpoint["schema_version"] == 1
    assert set(checkpoint["optimizer"]) == set(checkpoint["params"])
    assert "test accuracy" in capsys.readouterr().out
    assert main(["evaluate", str(tmp_path / "run"), "--limit", "120",
                 "--json", str(tmp_path / "eval.json")]) == 0
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    assert evaluation["test_accuracy"] == pytest.approx(data["test_accuracy"])
    assert evaluation["energy_pj_per_sample"] > 0


SCHEDULE = ["--lr-milestones", "2", "--lr-decay", "0.2", "--warmup-iterations", "5"]


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_lr_in_force_is_logged_per_epoch(tmp_path, backend, capsys):
    """Warm-up over 5 mini-batches (the reference's 120 samples in batches of 16 are 8 per
    epoch, the Brian2 case's 24 in batches of 8 are 3), then x0.2 from the third epoch on."""
    summary = tmp_path / "summary.json"
    assert main(["train", *BACKENDS[backend], *SCHEDULE, "--epochs", "3", "--out",
                 str(tmp_path / "run"), "--json", str(summary)]) == 0
    history = json.loads(summary.read_text())["history"]
    per_epoch = 8 if backend == "reference" else 3
    expected = [0.05 * min(1.0, per_epoch * e / 5) for e in (1, 2, 3)]
    expected[2] *= 0.2
    assert [r["lr"] for r in history] == pytest.approx(expected)
    log = (tmp_path / "run" / "log.tsv").read_text().splitlines()
    lrs = [float(line.split("\t")[1]) for line in log[1:]]
    assert lrs == pytest.approx(expected, rel=1e-5)
    assert f"lr {expected[2]:.4g}" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "run")["config"].lr_milestones == (2,)


@pytest.mark.parametrize("schedule,backend", [
    pytest.param((), "reference", id="constant-reference"),
    pytest.param(tuple(SCHEDULE), "reference", id="scheduled-reference"),
    # a minute of compiles; the scheduled case resumes the Brian2 model too
    pytest.param((), "brian", id="constant-brian", marks=pytest.mark.long),
    pytest.param(tuple(SCHEDULE), "brian", id="scheduled-brian"),
])
def test_resume_equals_uninterrupted(tmp_path, backend, schedule):
    flags = BACKENDS[backend] + list(schedule)
    assert main(["train", *flags, "--epochs", "3", "--out", str(tmp_path / "full")]) == 0
    assert main(["train", *flags, "--epochs", "1", "--out", str(tmp_path / "part")]) == 0
    # the resume names neither the dataset nor its folder's dataset: the checkpoint's
    resume_flags = [f for f in flags if f not in ("--dataset", "fashion-mnist")]
    assert main(["train", *resume_flags, "--epochs", "3", "--out", str(tmp_path / "part"),
                 "--resume"]) == 0
    full, part = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "part")
    for name, value in full["params"].items():
        assert (value == part["params"][name]).all(), name
    assert [r["test_accuracy"] for r in full["history"]] == \
        [r["test_accuracy"] for r in part["history"]]


def test_resumed_run_augments_as_it_was_started(tmp_path, capsys):
    """--augment is part of the run: the checkpoint and the summary record it, a resume
    without the flag keeps it (equal to the uninterrupted run), and adding it to a run
    started without it is refused."""
    from test_datasets import make_idx_set

    make_idx_set(tmp_path / "data", n_train=48, n_test=10, gz=False)
    flags = ["--dataset", "fashion-mnist", "--data-dir", str(tmp_path / "data"),
             "--backend", "reference", "--hidden-sizes", "12", "--batch-size", "16",
             "--time-step", "8", "--time-step-back", "16", "--quiet"]
    summary = tmp_path / "full.json"
    assert main(["train", *flags, "--augment", "--epochs", "3", "--out",
                 str(tmp_path / "full"), "--json", str(summary)]) == 0
    assert json.loads(summary.read_text())["augment"] is True
    assert main(["train", *flags, "--augment", "--epochs", "1", "--out",
                 str(tmp_path / "part")]) == 0
    # the resume names neither the dataset nor its folder's dataset: the checkpoint's
    resume_flags = [f for f in flags if f not in ("--dataset", "fashion-mnist")]
    assert main(["train", *resume_flags, "--epochs", "3", "--out", str(tmp_path / "part"),
                 "--resume"]) == 0
    full, part = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "part")
    assert full["augment"] is part["augment"] is True
    for name, value in full["params"].items():
        assert (value == part["params"][name]).all(), name
    # without the augmentation the same run ends elsewhere (so the equality above is its)
    assert main(["train", *flags, "--epochs", "3", "--out", str(tmp_path / "plain")]) == 0
    plain = load_checkpoint(tmp_path / "plain")
    assert plain["augment"] is False
    assert any((full["params"][k] != v).any() for k, v in plain["params"].items())
    capsys.readouterr()
    assert main(["train", *flags, "--augment", "--epochs", "4", "--out",
                 str(tmp_path / "plain"), "--resume"]) != 0
    assert "trained without --augment" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "plain")["epoch"] == 3
    # another dataset named on a resume is refused
    assert main(["train", *flags[2:], "--dataset", "digits", "--epochs", "4", "--out",
                 str(tmp_path / "plain"), "--resume"]) != 0
    assert "trained on 'fashion-mnist', not 'digits'" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "plain")["epoch"] == 3


@pytest.mark.parametrize("backend", [
    # the checkpoint writer is shared by both backends; the Brian2 case adds a minute
    pytest.param("brian", marks=pytest.mark.long), "reference"])
def test_sigkill_mid_run_then_resume(tmp_path, backend):
    flags = BACKENDS[backend]
    out = tmp_path / "run"
    command = [sys.executable, "-m", "spide_brian.cli", "train", *flags, "--epochs", "400",
               "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        try:
            if load_checkpoint(out)["epoch"] >= 3:
                break
        except CheckpointError:
            pass
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    saved = load_checkpoint(out)  # intact after the kill, whatever it was writing
    assert 3 <= saved["epoch"] < 400
    assert len(saved["history"]) == saved["epoch"]
    epochs = saved["epoch"] + 2
    assert main(["train", *flags, "--epochs", str(epochs), "--out", str(out), "--resume"]) == 0
    resumed = load_checkpoint(out)
    assert resumed["epoch"] == epochs
    assert resumed["history"][:saved["epoch"]] == saved["history"]
    assert len(list(out.glob("*.npz"))) == 1


def test_corrupt_and_foreign_checkpoints_get_clear_errors(tmp_path, capsys):
    assert main(["train", *SMALL, "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    npz = next((tmp_path / "run").glob("*.npz"))
    npz.write_bytes(npz.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "run")
    assert main(["evaluate", str(tmp_path / "run")]) == 2
    assert "corrupt" in capsys.readouterr().err
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError, match="not a spide-brian checkpoint"):
        load_checkpoint(foreign)
    (tmp_path / "garbage.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(tmp_path / "garbage.json")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing")


@pytest.mark.parametrize("argv,message", [
    (["train", "--leaky", "1.5"], "leaky"),
    (["train", "--dataset", "nope"], "unknown dataset"),
    (["train", "--resume"], "--out"),
    (["train", "--reset", "soft"], "reset"),
    (["train", "--backend", "brian", "--device", "tpu"], "unknown device"),
    (["train", "--backend", "brian", "--device", "numpy", "--cuda-compute-capability", "8.0"],
     "needs --device cuda_standalone"),
])
def test_invalid_options_give_one_line_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_info_lists_versions(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "brian2" in out and "digits" in out
    for device in ("numpy", "cpp_standalone", "genn", "cuda_standalone"):
        assert device in out
    # each device line is followed by the options its capabilities refuse, if any
    lines = out.splitlines()
    genn = next(i for i, line in enumerate(lines) if line.split()[:1] == ["genn"])
    assert "refuses:" in lines[genn + 1] and "--membrane volts" in lines[genn + 1]
    assert "--synapse conductance" in lines[genn + 1]
    cpp = next(i for i, line in enumerate(lines) if line.split()[:1] == ["cpp_standalone"])
    # on Brian2 >= 2.6 cpp_standalone has every construct; below, the replay route refuses some
    assert ("refuses:" in lines[cpp + 1]) == bool(refused_options(capabilities("cpp_standalone")))


def test_brian_backend_summary_names_its_device(tmp_path):
    summary = tmp_path / "summary.json"
    assert main(["train", *TINY_BRIAN, "--epochs", "1", "--json", str(summary)]) == 0
    data = json.loads(summary.read_text())
    assert data["device"] == "numpy" and data["backend"] == "brian"


def _without_backend(flags):
    at = flags.index("--backend")
    return flags[:at] + flags[at + 2:]


def test_auto_backend_trains_the_reference_unless_a_brian_flag_is_given(tmp_path, capsys,
                                                                        monkeypatch):
    """``--backend auto`` (the default): the reference (faster on CPU) for a plain run, the
    Brian2 model once one of its flags is given, a resumed run's own backend and device."""
    from spide_brian import training

    plain = tmp_path / "plain.json"
    assert main(["train", *_without_backend(SMALL), "--epochs", "1",
                 "--json", str(plain)]) == 0
    assert json.loads(plain.read_text())["backend"] == "reference"
    assert "--backend auto chose reference" in capsys.readouterr().out

    made = []

    class Recorded(training.ReferenceTrainer):
        """Trains as the reference, and records which trainer the command asked for."""

    def record_make_trainer(backend, config, params, device=None, **options):
        made.append((backend, device))
        trainer = Recorded(config, params)
        trainer.device_name = device
        return trainer

    monkeypatch.setattr(training, "make_trainer", record_make_trainer)
    named = tmp_path / "named.json"
    out = tmp_path / "run"
    assert main(["train", *_without_backend(TINY_BRIAN), "--epochs", "1", "--out", str(out),
                 "--json", str(named)]) == 0
    assert made == [("brian", "numpy")]
    assert "--backend auto chose brian: --device given" in capsys.readouterr().out
    assert load_checkpoint(out)["backend"] == "brian"

    # no Brian2 flag on resume: the checkpoint's backend, on its device (not the default
    # cpp_standalone)
    assert main(["train", "--epochs", "2", "--out", str(out), "--resume", "--quiet"]) == 0
    assert made[1] == ("brian", "numpy")
    assert load_checkpoint(out)["epoch"] == 2


def test_auto_backend_of_a_named_model_is_the_reference():
    """A named (convolutional) model stays on the reference, which trains the full-size
    networks faster than the compiled Brian2 model, with either timing."""
    from spide_brian.cli import _brian_flags_given, build_parser
    from spide_brian.config import SPIDEConfig
    from spide_brian.training import auto_backend

    args = build_parser().parse_args(["train", "--model", "mnist-conv-f-small"])
    assert not _brian_flags_given(args)
    for timing in ("reference", "brian"):
        model = SPIDEConfig(model="mnist-conv-f", timing=timing)
        assert auto_backend([], model)[0] == "reference"
    assert auto_backend([], SPIDEConfig(timing="brian"))[0] == "reference"   # dense
    assert auto_backend(["--device"], SPIDEConfig(model="mnist-conv-f"))[0] == "brian"


def test_auto_backend_refuses_nothing_that_brian_takes():
    """Every Brian2-only flag makes ``auto`` choose the Brian2 model, so none of them is
    refused as 'applies to --backend brian only' under the default."""
    from spide_brian.cli import BRIAN_ONLY_FLAGS, _brian_flags_given, build_parser
    from spide_brian.training import auto_backend

    parser = build_parser()
    assert auto_backend([])[0] == "reference"
    for name in BRIAN_ONLY_FLAGS:
        flag = "--" + name.replace("_", "-")
        value = "8" if name == "samples_per_run" else "x"
        args = parser.parse_args(["train", flag, value])
        assert args.backend == "auto"
        assert auto_backend(_brian_flags_given(args))[0] == "brian"


def test_frame_count_must_equal_the_forward_steps():
    import numpy as np

    from spide_brian.cli import UsageError, _check_frames
    from spide_brian.config import SPIDEConfig
    from spide_brian.datasets import Dataset

    frames = np.zeros((2, 5, 4))
    dataset = Dataset("events", frames, np.zeros(2, int), frames, np.zeros(2, int), 2, (4,))
    with pytest.raises(UsageError, match="use --time-step 5"):
        _check_frames(SPIDEConfig(time_step=30), dataset)
    _check_frames(SPIDEConfig(time_step=5), dataset)


def test_dvs_digits_trains_identically_in_both_backends(tmp_path):
    """The offline event stream (sensor -> tonic transforms -> frames) through the CLI: the
    Brian2 model (frames from a per-step TimedArray) and the reference with its timing give
    the same losses and accuracies."""
    pytest.importorskip("tonic")
    flags = ["--dataset", "dvs-digits", "--limit", "8", "--hidden-sizes", "12",
             "--batch-size", "4", "--time-step", "30", "--time-step-back", "20",
             "--timing", "brian", "--epochs", "1", "--quiet"]
    histories = {}
    for backend, extra in (("reference", []), ("brian", ["--device", "numpy"])):
        summary = tmp_path / f"{backend}.json"
        assert main(["train", *flags, "--backend", backend, *extra,
                     "--json", str(summary)]) == 0
        histories[backend] = json.loads(summary.read_text())["history"]
    reference, brian = histories["reference"][0], histories["brian"][0]
    assert brian["backward_rate"] > 0
    for key in ("loss", "train_accuracy", "test_accuracy", "forward_rate", "backward_rate"):
        assert brian[key] == pytest.approx(reference[key], rel=1e-9), key


def test_genn_without_brian2genn_or_genn_gets_a_clear_error(capsys, monkeypatch):
    monkeypatch.delenv("GENN_PATH", raising=False)
    flags = [flag if flag != "numpy" else "genn" for flag in TINY_BRIAN]
    assert main(["train", *flags, "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "genn" in err.lower() and "Traceback" not in err


def test_cuda_without_brian2cuda_gets_a_clear_error(capsys):
    try:
        import brian2cuda  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("brian2cuda is installed (a cuda_standalone run would build with nvcc)")
    flags = [flag if flag != "numpy" else "cuda_standalone" for flag in TINY_BRIAN]
    assert main(["train", *flags, "--epochs", "1", "--cuda-compute-capability", "8.0"]) == 2
    err = capsys.readouterr().err
    assert "spide-brian[cuda]" in err and "Traceback" not in err


def test_a_save_removes_only_arrays_of_its_own_run(tmp_path):
    """Arrays a killed save renamed into place but never named (the epoch after the named
    checkpoint) and the arrays the previous checkpoint named go; a foreign npz stays."""
    import numpy as np

    from spide_brian.checkpoint import save_checkpoint
    from spide_brian.config import SPIDEConfig

    def save(epoch):
        save_checkpoint(tmp_path, config=SPIDEConfig(), params={"bias_0": np.zeros(3)},
                        optimizer_state={}, epoch=epoch, backend="reference", device="numpy",
                        dataset="digits")

    foreign = tmp_path / "checkpoint-epoch0042.npz"
    foreign.write_bytes(b"arrays of another run")
    save(1)
    orphan = tmp_path / "checkpoint-epoch0002.npz"
    orphan.write_bytes(b"arrays of a save killed before its metadata was renamed")
    save(3)
    assert not orphan.exists() and foreign.exists()
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == [
        "checkpoint-epoch0003.npz", "checkpoint-epoch0042.npz"]
    assert load_checkpoint(tmp_path)["epoch"] == 3
