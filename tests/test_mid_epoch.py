"""Mid-epoch checkpoints (``--checkpoint-every N``): an epoch interrupted after a checkpoint
and resumed ends exactly as an uninterrupted one, on both backends, and a partial checkpoint
is validated and cleaned like an epoch's."""
import json
from pathlib import Path

import numpy as np
import pytest

import spide_brian.checkpoint as checkpoint_module
from spide_brian.checkpoint import (CheckpointError, PARTIAL_SCHEMA_VERSION,
                                    clean_interrupted_writes, load_checkpoint, save_checkpoint)
from spide_brian.cli import main
from spide_brian.config import SPIDEConfig
from spide_brian.datasets import load_dataset
from spide_brian.parameters import init_parameters
from spide_brian.tally import EpochTally
from spide_brian.training import EpochProgress, make_trainer, train

# 100 digits, batch 16: 7 mini-batches an epoch, the last one of 4 samples
TINY = ["--backend", "reference", "--limit", "100", "--hidden-sizes", "20", "--batch-size",
        "16", "--time-step", "12", "--time-step-back", "30", "--quiet"]


class Interrupted(Exception):
    """Stands for a kill after a checkpoint was written."""


def _records_without_time(records):
    drop = ("seconds", "samples_per_second", "compile_seconds")
    return [{k: v for k, v in (r if isinstance(r, dict) else r.as_dict()).items()
             if k not in drop} for r in records]


# -- the tally ---------------------------------------------------------------------------------

def test_a_tally_continued_from_its_state_equals_one_fed_every_batch(rng):
    config = SPIDEConfig(hidden_sizes=(6, 5), time_step=8, time_step_back=20)
    params = init_parameters(config, 12, 4)

    def batch(n):
        probabilities = rng.dirichlet(np.ones(4), size=n)
        forward = [rng.integers(0, 9, size=(n, 6)), rng.integers(0, 9, size=(n, 5))]
        backward = [rng.integers(-20, 21, size=(n, 6)), rng.integers(-20, 21, size=(n, 5))]
        return rng.random((n, 12)), rng.integers(0, 4, n), probabilities, forward, backward

    batches = [batch(n) for n in (7, 7, 3)]
    whole = EpochTally(config)
    for b in batches:
        whole.add(params, *b)
    first = EpochTally(config)
    first.add(params, *batches[0])
    state = {k: np.array(v) for k, v in first.state().items()}     # as an npz gives it back
    continued = EpochTally(config)
    continued.load_state(state)
    for b in batches[1:]:
        continued.add(params, *b)
    expected, got = whole.result(), continued.result()
    for key in ("loss_sum", "correct", "samples", "forward_spikes", "backward_spikes"):
        assert got[key] == expected[key], key
    assert got["firing"] == expected["firing"]
    assert got["operations"].per_sample() == expected["operations"].per_sample()


def test_a_tally_state_without_its_totals_is_refused():
    tally = EpochTally(SPIDEConfig(hidden_sizes=(5,)))
    with pytest.raises(ValueError, match="no loss_sum"):
        tally.load_state({"correct": np.array(3)})


# -- the driver, both trainers -------------------------------------------------------------------

def _interrupted_then_resumed(config, dataset, backend, stop_at, tmp_path, **trainer_options):
    """Train ``config.epochs`` epochs twice: uninterrupted, and interrupted at the first
    mid-epoch checkpoint at or after ``stop_at`` = (epoch, samples) then resumed from it."""
    def trainer_for(params, optimizer=None):
        trainer = make_trainer(backend, config, params, n_inputs=dataset.n_inputs,
                               n_classes=dataset.n_classes, **trainer_options)
        if optimizer:
            trainer.load_optimizer_state(optimizer)
        return trainer

    def closed(trainer):
        """The trainer's parameters and momentum, after releasing what it holds."""
        params = {k: np.array(v) for k, v in trainer.params.items()}
        momentum = {k: np.array(v) for k, v in trainer.optimizer_state().items()}
        getattr(trainer, "close", lambda: None)()
        return params, momentum

    initial = init_parameters(config, dataset.n_inputs, dataset.n_classes)
    whole = trainer_for(initial)
    records = train(config, dataset, trainer=whole)
    whole = closed(whole)
    history, parts = [], []

    def on_epoch(record, trainer):
        history.append(record.as_dict())

    def on_part(progress, trainer):
        parts.append(progress.samples)
        save_checkpoint(tmp_path, config=config, params=trainer.params,
                        optimizer_state=trainer.optimizer_state(), epoch=progress.epoch,
                        backend=backend, device="numpy", dataset=dataset.name,
                        history=history, partial=progress)
        if (progress.epoch, progress.samples) >= stop_at:
            raise Interrupted

    first = trainer_for(initial)
    with pytest.raises(Interrupted):
        train(config, dataset, trainer=first, on_epoch=on_epoch, on_part=on_part,
              part_samples=2 * config.batch_size)
    closed(first)
    saved = load_checkpoint(tmp_path)
    partial = saved["partial"]
    tally = EpochTally(config)
    tally.load_state(partial["tally"])
    resume = EpochProgress(saved["epoch"], partial["samples"], tally, partial["seconds"],
                           partial["compile_seconds"])
    second = trainer_for(saved["params"], saved["optimizer"])
    rest = train(config, dataset, trainer=second, start_epoch=saved["epoch"], resume=resume)
    return whole, records, closed(second), history + [r.as_dict() for r in rest], parts, saved


def _assert_same_state(whole, resumed):
    for got, expected in zip(resumed, whole):     # parameters, then momentum buffers
        assert sorted(got) == sorted(expected)
        for name, value in expected.items():
            np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_reference_resumed_mid_epoch_equals_an_uninterrupted_run(tmp_path):
    config = SPIDEConfig(hidden_sizes=(20,), batch_size=16, time_step=12, time_step_back=30,
                         epochs=2, dropout=0.2)
    dataset = load_dataset("digits", limit=100)
    whole, records, resumed, history, parts, saved = _interrupted_then_resumed(
        config, dataset, "reference", (1, 32), tmp_path)
    assert parts == [32, 64, 96, 32]       # every 2 mini-batches, never at an epoch's end
    assert saved["epoch"] == 1 and saved["partial"]["samples"] == 32
    assert saved["schema_version"] == PARTIAL_SCHEMA_VERSION
    _assert_same_state(whole, resumed)
    assert _records_without_time(history) == _records_without_time(records)
    assert history[-1]["seconds"] > 0


@pytest.mark.parametrize("device", [
    "numpy",
    pytest.param("cpp_standalone", marks=[pytest.mark.standalone, pytest.mark.long])])
def test_brian_model_resumed_mid_epoch_equals_an_uninterrupted_run(tmp_path, device):
    """The Brian2 model checkpoints at the end of a run: 48 samples in runs of 16 (two
    mini-batches of 8) stop after the first run and resume with the second; the program of
    cpp_standalone is built once and reused by the later trainers."""
    config = SPIDEConfig(hidden_sizes=(10,), batch_size=8, time_step=10, time_step_back=20,
                         epochs=1, timing="brian")
    dataset = load_dataset("digits", limit=48)
    whole, records, resumed, history, parts, saved = _interrupted_then_resumed(
        config, dataset, "brian", (0, 16), tmp_path / "run", device=device, capacity=16,
        build_dir=str(tmp_path / "build"))
    assert parts == [16] and saved["partial"]["samples"] == 16
    _assert_same_state(whole, resumed)
    assert _records_without_time(history) == _records_without_time(records)


# -- the command -------------------------------------------------------------------------------

def _train_killed_after_a_mid_epoch_save(monkeypatch, out, epochs, every, epoch=None):
    """``train --checkpoint-every every`` interrupted (exit 130) right after its first
    mid-epoch checkpoint (of ``epoch`` finished epochs, if given)."""
    real_save = checkpoint_module.save_checkpoint

    def save_then_die(directory, **fields):
        path = real_save(directory, **fields)
        if fields.get("partial") is not None and epoch in (None, fields["epoch"]):
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(checkpoint_module, "save_checkpoint", save_then_die)
    assert main(["train", *TINY, "--epochs", str(epochs), "--out", str(out),
                 "--checkpoint-every", str(every)]) == 130
    monkeypatch.setattr(checkpoint_module, "save_checkpoint", real_save)


def test_train_killed_mid_epoch_resumes_where_it_stopped(tmp_path, monkeypatch, capsys):
    """``--checkpoint-every 2``: killed after the second epoch's first mid-epoch checkpoint,
    ``--resume`` continues that epoch at sample 32 and ends with the weights and log of an
    uninterrupted run."""
    whole = tmp_path / "whole"
    assert main(["train", *TINY, "--epochs", "3", "--out", str(whole)]) == 0
    out = tmp_path / "run"
    _train_killed_after_a_mid_epoch_save(monkeypatch, out, 3, 2, epoch=1)
    saved = load_checkpoint(out)
    assert saved["epoch"] == 1 and saved["partial"]["samples"] == 32
    assert [p.name for p in out.glob("*.npz")] == ["checkpoint-epoch0001-sample000000032.npz"]
    assert len((out / "log.tsv").read_text().splitlines()) == 2    # header and epoch 1
    capsys.readouterr()
    assert main(["evaluate", str(out), "--limit", "100"]) == 0
    assert "(epoch 1 and 32 samples of epoch 2," in capsys.readouterr().out
    assert main(["train", *TINY, "--epochs", "3", "--out", str(out), "--resume"]) == 0
    assert "resuming epoch 2 at sample 32 of 100" in capsys.readouterr().out
    done, expected = load_checkpoint(out), load_checkpoint(whole)
    assert "partial" not in done and done["schema_version"] == 1
    assert [p.name for p in out.glob("*.npz")] == ["checkpoint-epoch0003.npz"]
    for name, value in expected["params"].items():
        np.testing.assert_array_equal(done["params"][name], value, err_msg=name)
    assert _records_without_time(done["history"]) == _records_without_time(expected["history"])


def test_checkpoint_every_needs_out_and_a_positive_count(tmp_path, capsys):
    assert main(["train", *TINY, "--epochs", "1", "--checkpoint-every", "2"]) == 2
    assert "--checkpoint-every needs --out" in capsys.readouterr().err
    assert main(["train", *TINY, "--epochs", "1", "--out", str(tmp_path / "r"),
                 "--checkpoint-every", "0"]) == 2
    assert "mini-batches >= 1" in capsys.readouterr().err


def test_resume_with_another_limit_is_refused_and_keeps_the_checkpoint(tmp_path, monkeypatch,
                                                                      capsys):
    out = tmp_path / "run"
    _train_killed_after_a_mid_epoch_save(monkeypatch, out, 2, 4)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    argv = [*TINY[:2], "--limit", "60", *TINY[4:]]
    assert main(["train", *argv, "--epochs", "2", "--out", str(out), "--resume"]) == 2
    assert "not a mini-batch boundary inside this dataset's 60" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


# -- the files ---------------------------------------------------------------------------------

def _partial_checkpoint(directory, samples=32, epoch=1):
    config = SPIDEConfig(hidden_sizes=(5,))
    tally = EpochTally(config)
    tally.samples = samples
    save_checkpoint(directory, config=config, params=init_parameters(config, 64, 10),
                    optimizer_state={}, epoch=epoch, backend="reference", device="numpy",
                    dataset="digits", history=[{"epoch": 1}],
                    partial=EpochProgress(epoch, samples, tally, 1.5, 0.0))
    return Path(directory) / "checkpoint.json"


@pytest.mark.parametrize("partial,message", [
    ({"samples": 0, "seconds": 1.0, "compile_seconds": 0.0}, "'partial' must be an object"),
    ({"samples": 32, "seconds": -1.0, "compile_seconds": 0.0}, "'partial' must be an object"),
    ({"samples": "32", "seconds": 1.0, "compile_seconds": 0.0}, "'partial' must be an object"),
    (None, "needs a 'partial' field"),
])
def test_partial_fields_are_validated(tmp_path, partial, message):
    path = _partial_checkpoint(tmp_path)
    metadata = json.loads(path.read_text())
    if partial is None:
        del metadata["partial"]
    else:
        metadata["partial"] = partial
    path.write_text(json.dumps(metadata))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path)


def test_an_epoch_checkpoint_claiming_a_partial_is_refused(tmp_path):
    path = _partial_checkpoint(tmp_path)
    metadata = json.loads(path.read_text())
    metadata["schema_version"] = 1
    path.write_text(json.dumps(metadata))
    with pytest.raises(CheckpointError, match="version 1 cannot have a 'partial' field"):
        load_checkpoint(tmp_path)


def test_leftovers_of_killed_mid_epoch_saves_are_removed_and_nothing_else(tmp_path):
    _partial_checkpoint(tmp_path, samples=32, epoch=1)
    named = "checkpoint-epoch0001-sample000000032.npz"
    leftovers = ["checkpoint-epoch0001-sample000000016.npz",    # superseded
                 "checkpoint-epoch0001-sample000000064.npz",    # a killed save's, unnamed
                 "checkpoint-epoch0002.npz",                    # the epoch end, unnamed
                 "checkpoint-epoch0001.npz"]                    # superseded
    kept = ["checkpoint-epoch0003.npz", "checkpoint-epoch0001-sample-notes.npz", "notes.txt"]
    for name in leftovers + kept:
        (tmp_path / name).write_bytes(b"x")
    removed = clean_interrupted_writes(tmp_path)
    assert sorted(p.name for p in removed) == sorted(leftovers)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + [named, "checkpoint.json"])
    assert load_checkpoint(tmp_path)["partial"]["samples"] == 32
