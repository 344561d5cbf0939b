"""Command-line interface: ``spide-brian train | evaluate | sweep | figures | info``.

Configuration flags map 1:1 to :class:`spide_brian.config.SPIDEConfig` fields with the
reference names (``--time-step``, ``--time-step-back``, ``--vth``, ``--vth-back``, ``--leaky``,
``--scale-factor``, ``--lr``, ``--epochs``, ``--batch-size``, ``--seed`` ...).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

__all__ = ["main", "build_parser"]

#: ``--backend auto``: a resumed run's checkpoint backend, the Brian2 model when a Brian2 flag
#: is given, else the faster one (:func:`spide_brian.training.auto_backend`)
DEFAULT_BACKEND = "auto"


class UsageError(Exception):
    """A user error reported as one line, without a traceback."""


# the files of a run in its --out folder (the checkpoint arrays are checkpoint-epoch*.npz)
LOG_NAME = "log.tsv"
# flags that configure the Brian2 run and mean nothing to the numpy reference (and every
# device adapter's own flags)
BRIAN_ONLY_FLAGS = ("device", "samples_per_run", "build_dir")


def _add_config_flags(parser):
    from .config import SPIDEConfig

    defaults = SPIDEConfig()
    group = parser.add_argument_group("model and training (SPIDEConfig fields)")
    for item in dataclasses.fields(SPIDEConfig):
        flag = "--" + item.name.replace("_", "-")
        default = getattr(defaults, item.name)
        if item.name == "hidden_sizes":
            group.add_argument(flag, type=int, nargs="+", default=None, metavar="N",
                               help=f"spiking layer sizes (default: {' '.join(map(str, default))})")
        elif item.name == "model":
            group.add_argument(flag, default=None, metavar="NAME",
                               help="a named network (see 'spide-brian info --models'); a new "
                                    "run starts from the recipe of its reference script, which "
                                    "the other flags override (default: the dense chain of "
                                    "--hidden-sizes)")
        elif isinstance(default, tuple):
            group.add_argument(flag, type=int, nargs="*", default=None, metavar="EPOCH",
                               help="epochs at which the learning rate is multiplied by "
                                    "--lr-decay (default: none)")
        elif isinstance(default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                               help=f"(default: {default})")
        else:
            group.add_argument(flag, type=type(default), default=None,
                               help=f"(default: {default})")


def _add_device_flags(parser):
    """The options every device adapter declares, one argument group per device."""
    from .devices import device_options

    groups = {}
    for adapter, option in device_options():
        if adapter.name not in groups:
            groups[adapter.name] = parser.add_argument_group(adapter.title)
        option.add_to(groups[adapter.name])


def _add_run_flags(parser):
    parser.add_argument("--samples-per-run", type=int, default=None, metavar="N",
                        help="brian backend: samples simulated per run (rounded up to whole "
                             "mini-batches; default for train: the whole mini-batches, at most "
                             "about 10000, that simulate the fewest slots for an epoch and a "
                             "test pass); longer data runs in chunks, shorter data is padded")


def _check_backend_flags(args, backend):
    """Refuse flags that do not apply to ``backend`` rather than silently ignore them."""
    if backend == "reference":
        for flag in _brian_flags_given(args)[:1]:
            raise UsageError(f"{flag} applies to --backend brian only (the reference runs "
                             "in numpy); drop it or use --backend brian")
        if getattr(args, "float_dtype", None) not in (None, "float64"):
            raise UsageError(f"--float-dtype {args.float_dtype} applies to --backend brian "
                             "only (the reference computes in float64, the oracle); drop it "
                             "or use --backend brian")
    elif getattr(args, "timing", None) == "reference":
        raise UsageError("--timing reference applies to --backend reference only: the Brian2 "
                         "model delays every synaptic hop by one step (timing 'brian'); drop "
                         "--timing or use --backend reference")


def _brian_flags_given(args):
    """The Brian2-only flags given on the command line (``--device``, ``--build-dir`` ...)."""
    from .devices import device_options

    names = BRIAN_ONLY_FLAGS + tuple(option.dest for _, option in device_options())
    return ["--" + name.replace("_", "-") for name in names
            if getattr(args, name, None) not in (None, False)]


def _train_backend(args, checkpoint, config):
    """The backend of a train command: ``--backend``, or for ``auto`` the resumed
    checkpoint's, else :func:`spide_brian.training.auto_backend`'s choice for the run's
    ``config`` (said on stdout)."""
    if args.backend != "auto":
        return args.backend
    if checkpoint is not None:
        return checkpoint["backend"]
    from .training import auto_backend

    backend, reason = auto_backend(_brian_flags_given(args), config)
    print(f"--backend auto chose {backend}: {reason}")
    return backend


def _checkpoint_config(checkpoint):
    """The configuration a checkpoint's parameters were trained with.

    Brian2 runs of earlier versions stored the default timing 'reference', but the Brian2
    model always computes timing 'brian'; a reference evaluation must use that network.
    """
    config = checkpoint["config"]
    if checkpoint["backend"] == "brian" and config.timing != "brian":
        config = config.replace(timing="brian")
    return config


def _brian_config(config, origin):
    """``config`` as the Brian2 model computes it (timing 'brian').

    With one spiking layer both timings are the same network; with more, parameters trained
    with timing 'reference' belong to another network than the Brian2 model's.
    """
    if config.timing != "brian" and config.n_layers > 1 and origin is not None:
        raise UsageError(f"{origin} was trained with the reference backend's timing "
                         f"'reference' ({config.n_layers} layers, feed-forward hops within a "
                         "step), which the Brian2 model cannot compute (every hop one step "
                         "late): use --backend reference")
    return config.replace(timing="brian")


def _shape_runs(args, dataset, config, device_options):
    """Where a compiled program reruns (cpp_standalone), runs shaped for the epoch (the same
    for a resumed run, whose program is then reused) and an evaluation program sized for
    the test set; where the test pass runs on the training program instead (Brian2 < 2.6),
    training runs shaped for the epoch and the test pass together. Elsewhere each run builds
    its objects anew and the trainer's default (one run per epoch) stays."""
    from .brian_backend import run_shapes
    from .devices import DEVICE_ALIASES, capabilities, default_device

    device = DEVICE_ALIASES.get(args.device, args.device) or default_device()
    device_options.update(run_shapes(capabilities(device), len(dataset.y_train),
                                     len(dataset.y_test), config.batch_size))


def _device_options(args, backend):
    options = {}
    if getattr(args, "samples_per_run", None) is not None:
        if backend == "reference":
            raise UsageError("--samples-per-run applies to --backend brian only")
        if args.samples_per_run < 1:
            raise UsageError(f"--samples-per-run must be >= 1, got {args.samples_per_run}")
        options["capacity"] = args.samples_per_run
    from .devices import DEVICE_ALIASES, device_options

    chosen = DEVICE_ALIASES.get(args.device, args.device)
    for adapter, option in device_options():
        given = getattr(args, option.dest, None)
        if given is None or given is False:
            continue
        if chosen != adapter.name:
            raise UsageError(f"{option.flag} needs --device {adapter.name}")
        options[option.keyword] = option.value(given)
    return options


# physical flags of ``train`` (but --dt) -> (their biophysics parameter, the field they set)
UNIT_FLAGS = {"membrane_tau": ("tau_m", "leaky"), "forward_duration": ("forward_duration",
                                                                       "time_step"),
              "backward_duration": ("backward_duration", "time_step_back"),
              "refractory": ("refractory", "refractory_steps"),
              "tau_syn": ("tau_syn", "synapse_leak")}


def _add_unit_flags(parser):
    group = parser.add_argument_group(
        "physical units (docs/biophysics.md): set the leak and the step counts from times")
    group.add_argument("--dt", default=None, metavar="TIME",
                       help="duration of one SPIDE step (default: 1ms)")
    group.add_argument("--membrane-tau", default=None, metavar="TIME",
                       help="membrane time constant: --leaky becomes exp(-dt/tau_m) "
                            "(e.g. 20ms; inf for IF)")
    group.add_argument("--forward-duration", default=None, metavar="TIME",
                       help="forward phase: --time-step becomes its number of steps of dt")
    group.add_argument("--backward-duration", default=None, metavar="TIME",
                       help="backward phase: --time-step-back becomes its number of steps")
    group.add_argument("--refractory", default=None, metavar="TIME",
                       help="absolute refractory period of the forward neurons, as Brian2's "
                            "refractory (the spike's step counts): --refractory-steps becomes "
                            "refractory/dt - 1 held steps (e.g. 3ms)")
    group.add_argument("--tau-syn", default=None, metavar="TIME",
                       help="time constant of exponential synapses (with --synapse "
                            "exponential): --synapse-leak becomes exp(-dt/tau_syn) (e.g. 5ms)")


def _unit_changes(args):
    """The config fields that the physical flags set (none given: nothing)."""
    from .biophysics import (NeuronUnits, UnitError, parse_quantity, refractory_steps,
                             step_decay)

    given = {flag: getattr(args, flag) for flag in UNIT_FLAGS
             if getattr(args, flag, None) is not None}
    if not given:
        if getattr(args, "dt", None) is not None:
            raise UsageError("--dt applies with --membrane-tau, --forward-duration, "
                             "--backward-duration, --refractory or --tau-syn; add one of them "
                             "or drop --dt")
        return {}
    for flag, (_, field) in UNIT_FLAGS.items():
        if flag in given and getattr(args, field, None) is not None:
            raise UsageError(f"--{flag.replace('_', '-')} sets --{field.replace('_', '-')}; "
                             "give one of the two")
    try:
        quantities = {flag: parse_quantity(text, UNIT_FLAGS[flag][0],
                                           "--" + flag.replace("_", "-"))
                      for flag, text in given.items()}
        dt = parse_quantity(args.dt, "dt", "--dt") if args.dt is not None else None
        units = NeuronUnits(**({"dt": dt} if dt is not None else {}),
                            **({"tau_m": quantities["membrane_tau"]}
                               if "membrane_tau" in quantities else {}))
        changes = {}
        if "membrane_tau" in quantities:
            changes["leaky"] = units.leak
        if "tau_syn" in quantities:
            if not 0 < float(quantities["tau_syn"]) < math.inf:
                raise UsageError(f"--tau-syn must be a finite positive time, got "
                                 f"{quantities['tau_syn']}")
            changes["synapse_leak"] = step_decay(quantities["tau_syn"], units.dt)
        for flag, name, field in (("forward_duration", "forward_duration", "time_step"),
                                  ("backward_duration", "backward_duration",
                                   "time_step_back")):
            if flag in quantities:
                changes[field] = units.steps(quantities[flag], name)
        if "refractory" in quantities:
            changes["refractory_steps"] = refractory_steps(quantities["refractory"], units.dt)
    except UnitError as error:
        text = str(error)
        for flag, (name, _) in UNIT_FLAGS.items():
            if text.startswith(name + " "):
                text = "--" + flag.replace("_", "-") + text[len(name):]
        raise UsageError(text) from None
    return changes


def _config_from_args(args, base=None):
    from .config import ConfigError, SPIDEConfig

    changes = {}
    for item in dataclasses.fields(SPIDEConfig):
        value = getattr(args, item.name, None)
        if value is not None:
            changes[item.name] = value
    changes.update(_unit_changes(args))
    base = base or SPIDEConfig()
    try:
        return base.replace(**changes)
    except ConfigError as error:
        # the message starts with the field; on the command line it is a flag
        field, _, rest = str(error).partition(" ")
        if field in changes:
            raise UsageError(f"--{field.replace('_', '-')} {rest}") from None
        raise


def build_parser():
    parser = argparse.ArgumentParser(
        prog="spide-brian",
        description="SPIDE: purely spike-based training of feedback spiking neural networks "
                    "in Brian2.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a network")
    train.add_argument("--recipe", default=None, metavar="NAME",
                       help="start from a named recipe (see 'spide-brian info --recipes'); "
                            "config flags given as well override its single values")
    train.add_argument("--dataset", default=None,
                       help="dataset name (default: the recipe's, else digits; with --resume "
                            "the checkpoint's)")
    train.add_argument("--data-dir", default=None, help="folder with dataset files")
    train.add_argument("--limit", type=int, default=None,
                       help="use only the first N training and test samples")
    train.add_argument("--backend", default=DEFAULT_BACKEND,
                       choices=("auto", "brian", "reference"),
                       help="Brian2 model or numpy reference (default: auto, the checkpoint's "
                            "backend for --resume, the Brian2 model when a Brian2 flag such "
                            "as --device is given, else the faster on this machine: the "
                            "reference on CPU)")
    train.add_argument("--device", default=None,
                       help="Brian2 device for --backend brian (see 'spide-brian info')")
    _add_device_flags(train)
    _add_run_flags(train)
    train.add_argument("--out", default=None,
                       help="folder for checkpoints and the per-epoch log (log.tsv)")
    train.add_argument("--resume", action="store_true",
                       help="continue from the checkpoint in --out (a mid-epoch checkpoint "
                            "continues its epoch where it stopped)")
    train.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                       help="also checkpoint inside an epoch after every N mini-batches (the "
                            "Brian2 model: at the end of the run that reaches them), so that "
                            "a long epoch survives an interruption; needs --out")
    train.add_argument("--overwrite", action="store_true",
                       help="replace the run in --out (its checkpoint and log.tsv) with a new "
                            "one; other files there are kept")
    train.add_argument("--json", default=None, metavar="PATH", help="write a JSON summary")
    train.add_argument("--build-dir", default=None, metavar="DIR",
                       help="folder of the compiled standalone program (default: OUT/build, "
                            "or a temporary folder without --out); a program built there "
                            "for the same model structure is reused, only what changed "
                            "is recompiled")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--augment", action="store_true",
                       help="per-epoch augmentation of the reference recipe (cifar10, cifar100: "
                            "pad-4 crop and flip; cifar10-dvs: pad-4 crop of the frames; "
                            "mnist: pad-2 crop; fashion-mnist: pad-2 crop and flip)")
    _add_config_flags(train)
    _add_unit_flags(train)

    evaluate = commands.add_parser("evaluate", help="evaluate a checkpoint on the test split")
    evaluate.add_argument("checkpoint", help="checkpoint folder or its checkpoint.json")
    evaluate.add_argument("--dataset", default=None, help="default: the checkpoint's dataset")
    evaluate.add_argument("--data-dir", default=None)
    evaluate.add_argument("--limit", type=int, default=None)
    evaluate.add_argument("--backend", default=None, choices=("brian", "reference"))
    evaluate.add_argument("--device", default=None)
    evaluate.add_argument("--json", default=None, metavar="PATH")
    _add_device_flags(evaluate)
    _add_run_flags(evaluate)

    sweep = commands.add_parser("sweep", help="run a parameter study (a TOML grid of training "
                                              "runs) on a Dask cluster")
    sweep.add_argument("study", nargs="?", default=None,
                       help="study file (TOML: [study], [base], [axes])")
    sweep.add_argument("--report", default=None, metavar="STUDY_DIR",
                       help="summarise a study folder instead of running: a table, and "
                            "accuracy against each axis (seeds aggregated) in "
                            "STUDY_DIR/report.png and report.json")
    sweep.add_argument("--out", default=None, metavar="STUDY_DIR",
                       help="folder of the results (results.csv, points/<id>/; default: "
                            "output/studies/<name>)")
    sweep.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="address of a running Dask scheduler (tcp://host:8786); default: "
                            "a local cluster")
    sweep.add_argument("--workers", type=int, default=None, metavar="N",
                       help="worker processes of the local cluster (default: one per CPU core)")
    sweep.add_argument("--retry-failed", action="store_true",
                       help="run the points recorded as failed again")

    figures = commands.add_parser("figures", help="build the paper figures (figures/*.py)")
    figures.add_argument("--out", default="output/figures", help="output folder")
    figures.add_argument("--full", action="store_true",
                         help="full size (minutes) instead of quick (seconds each)")

    bench = commands.add_parser(
        "bench", help="speed and memory of the reference and the Brian2 devices on a workload")
    bench.add_argument("--workload", default="f400-digits",
                       help="f400-digits (default) or f<hidden>-<inputs> with hidden 100, 400, "
                            "1600 or 3200 and inputs 64 or 784 (e.g. f1600-784)")
    bench.add_argument("--devices", nargs="+", default=None, metavar="NAME",
                       help="implementations: 'reference' and Brian2 device names, a "
                            "device optionally with ':float32' for the model in single "
                            "precision, e.g. cpp_standalone:float32 (default: reference and "
                            "the default device)")
    bench.add_argument("--repeats", type=int, default=3, help="epochs per implementation; "
                       "medians are reported (default: 3)")
    bench.add_argument("--samples", type=int, default=None,
                       help="training samples per repeat (default: the workload's)")
    bench.add_argument("--time-step", type=int, default=None, help="T (default: 30)")
    bench.add_argument("--time-step-back", type=int, default=None, help="T_b (default: 100)")
    bench.add_argument("--build-dir", default=None,
                       help="folder for the standalone builds (default: temporary)")
    bench.add_argument("--json", default=None, metavar="PATH", help="write the report as JSON")

    info = commands.add_parser("info", help="versions and devices")
    info.add_argument("--recipes", action="store_true",
                      help="list the named recipes with their values and measured accuracy")
    info.add_argument("--models", action="store_true",
                      help="list the named networks (--model NAME)")
    info.add_argument("--model", default=None, metavar="NAME",
                      help="per layer and in total: neurons, synapses per weight copy, "
                           "parameters and the state memory on each device")
    info.add_argument("--input-side", type=int, default=None, metavar="N",
                      help="with --model: side of the square input (default: the side of "
                           "the model's dataset)")
    info.add_argument("--float-dtype", default="float64", choices=("float64", "float32"),
                      help="with --model: the Brian2 model's floating-point type "
                           "(default: float64)")
    return parser


def _progress_factory(quiet):
    """A tqdm bar per epoch on stderr, only when stderr is a terminal: redirected to a file,
    a bar writes a carriage-return update per refresh (tens of KB per epoch) where the plain
    line per epoch says all."""
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return lambda total, description: tqdm(total=total, desc=description, unit="sample",
                                           leave=False, file=sys.stderr)


def _notify(message):
    """Show a trainer's message on stderr above a progress bar, if one is drawn."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


def _format(record):
    line = (f"epoch {record.epoch:3d}  lr {record.lr:.4g}  loss {record.loss:.4f}"
            f"  train {record.train_accuracy:.4f}"
            f"  test {record.test_accuracy:.4f}  fwd-rate {record.forward_rate:.4f}"
            f"  bwd-rate {record.backward_rate:.4f}  {record.seconds:.2f} s")
    if record.compile_seconds:
        line += f" (+{record.compile_seconds:.1f} s compile)"
    if math.isfinite(record.train_energy_pj):
        line += f"  {record.train_energy_pj / 1e3:.0f} nJ/train sample"
    return line


def _write_json(path, data):
    from .checkpoint import atomic_write

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2) + "\n"
    atomic_write(path, lambda stream: stream.write(text.encode("utf-8")))


def _first_existing(path):
    """``path`` or its nearest existing parent folder (the folder a write would create in)."""
    path = Path(path).absolute()
    return next(p for p in (path, *path.parents) if p.exists())


def _check_writable(path, flag, named):
    """The nearest existing folder of ``path`` must be a folder the user may write in."""
    existing = _first_existing(path)
    if not existing.is_dir():
        raise UsageError(f"{flag} {named}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {named}: no permission to write in {existing}")


def _check_output_folder(path, flag):
    """Refuse, before any work, an output folder that cannot be made or written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path} is a file, not a folder; name a folder")
    _check_writable(path, flag, path)


def _check_output_file(path, flag):
    """Refuse, before any work, an output file that cannot be written (it is written last)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; name a file, e.g. {path / 'summary.json'}")
    _check_writable(path.parent, flag, path)


def _run_files(folder):
    """The files of a run in ``folder`` (its checkpoint, arrays and log), sorted."""
    folder = Path(folder)
    names = [folder / name for name in ("checkpoint.json", LOG_NAME)]
    return sorted([p for p in names if p.exists()] + list(folder.glob("checkpoint-epoch*.npz")))


def _check_out(args):
    """``--out``/``--resume``/``--overwrite``: refuse anything that would lose a saved run."""
    if args.resume and not args.out:
        raise UsageError("--resume needs --out DIR, the folder holding the checkpoint")
    if args.overwrite and not args.out:
        raise UsageError("--overwrite needs --out DIR, the folder whose run it replaces")
    if args.resume and args.overwrite:
        raise UsageError("--resume continues the run in --out and --overwrite replaces it; "
                         "choose one")
    every = getattr(args, "checkpoint_every", None)
    if every is not None and not args.out:
        raise UsageError("--checkpoint-every needs --out DIR, the folder for the checkpoints")
    if every is not None and every < 1:
        raise UsageError(f"--checkpoint-every takes a number of mini-batches >= 1, not {every}")
    if args.json:
        _check_output_file(args.json, "--json")
    if getattr(args, "build_dir", None):
        _check_output_folder(args.build_dir, "--build-dir")
    if not args.out:
        return
    out = Path(args.out)
    _check_output_folder(out, "--out")
    if args.resume:
        if not out.exists():
            raise UsageError(f"--resume: {out} does not exist; check --out, or drop --resume "
                             "to start a new run there")
        if not (out / "checkpoint.json").exists():
            raise UsageError(f"--resume: {out} holds no checkpoint (no checkpoint.json); "
                             "drop --resume to start a new run there")
    elif not args.overwrite:
        existing = _run_files(out)
        if existing:
            raise UsageError(f"--out {out} holds another run ({', '.join(p.name for p in existing[:3])}"
                             f"{' ...' if len(existing) > 3 else ''}); continue it with --resume "
                             "or replace it with --overwrite")


def _command_train(args):
    from .checkpoint import clean_interrupted_writes, load_checkpoint, save_checkpoint
    from .datasets import load_dataset
    from .parameters import init_parameters
    from .training import make_trainer, train

    if args.backend != "auto":
        _check_backend_flags(args, args.backend)
    recipe = _recipe(args)
    _check_out(args)
    checkpoint = load_checkpoint(args.out) if args.resume else None
    if args.dataset is None:
        args.dataset = checkpoint["dataset"] if checkpoint is not None else "digits"
    base = _checkpoint_config(checkpoint) if checkpoint is not None else \
        _base_config(args, recipe)
    config = _config_from_args(args, base=base)
    args.backend = _train_backend(args, checkpoint, config)
    if (checkpoint is not None and args.backend == checkpoint["backend"] == "brian"
            and args.device is None):
        args.device = checkpoint["device"]   # a resumed Brian2 run stays on its device
    _check_backend_flags(args, args.backend)
    device_options = _device_options(args, args.backend)
    dataset = load_dataset(args.dataset, data_dir=args.data_dir, limit=args.limit)
    history, start_epoch, optimizer_state, resume = [], 0, None, None
    origin = None
    if checkpoint is not None:
        if checkpoint["dataset"] != args.dataset:
            raise UsageError(f"the checkpoint in {args.out} was trained on "
                             f"{checkpoint['dataset']!r}, not {args.dataset!r}")
        # a resumed run augments as the run it continues did (the augmentation of epoch e
        # depends only on the seed and e, so the resumed run equals an uninterrupted one)
        if args.augment and not checkpoint.get("augment", False):
            raise UsageError(f"the checkpoint in {args.out} was trained without --augment; a "
                             "resumed run continues as it was started: drop --augment")
        args.augment = checkpoint.get("augment", False)
        params, optimizer_state = checkpoint["params"], checkpoint["optimizer"]
        history, start_epoch = list(checkpoint["history"]), checkpoint["epoch"]
        origin = f"the checkpoint in {args.out}"
        resume = _epoch_progress(checkpoint, config, len(dataset.y_train), args.out)
        if resume is None:
            print(f"resuming from epoch {start_epoch} ({checkpoint['path']})")
        else:
            print(f"resuming epoch {start_epoch + 1} at sample {resume.samples} of "
                  f"{len(dataset.y_train)} ({checkpoint['path']})")
    else:
        params = init_parameters(config, dataset.n_inputs, dataset.n_classes)
    augment = _augmentation(args.dataset) if args.augment else None
    if args.backend == "brian":
        # record the network the Brian2 model computes, so that a reference run of the
        # checkpoint computes the same one
        config = _brian_config(config, origin)
    _check_frames(config, dataset)
    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        clean_interrupted_writes(out, extra_names=(LOG_NAME,))
        if history:
            # a run killed between its checkpoint and its log left the log one epoch short
            _write_log(out / LOG_NAME, history)
    if args.backend == "brian" and "capacity" not in device_options:
        _shape_runs(args, dataset, config, device_options)
    # a standalone program built in DIR/build is reused by a resumed run (nothing to recompile)
    build_dir = args.build_dir or (str(out / "build") if out is not None else None)
    trainer = make_trainer(args.backend, config, params, device=args.device,
                           n_inputs=dataset.n_inputs, n_classes=dataset.n_classes,
                           build_dir=build_dir, **device_options)
    if optimizer_state:
        trainer.load_optimizer_state(optimizer_state)
    device = trainer.device_name if args.backend == "brian" else "numpy"

    def on_epoch(record, trainer):
        history.append(record.as_dict())
        print(_format(record), flush=True)
        if out is not None:
            # checkpoint first: the log never runs ahead of what a resume continues from
            save_checkpoint(out, config=config, params=trainer.params,
                            optimizer_state=trainer.optimizer_state(), epoch=record.epoch,
                            backend=args.backend, device=device, dataset=args.dataset,
                            history=history, extra={"augment": args.augment})
            _write_log(out / LOG_NAME, history)

    def on_part(progress, trainer):
        save_checkpoint(out, config=config, params=trainer.params,
                        optimizer_state=trainer.optimizer_state(), epoch=progress.epoch,
                        backend=args.backend, device=device, dataset=args.dataset,
                        history=history, extra={"augment": args.augment}, partial=progress)

    every = args.checkpoint_every
    network = config.model or config.hidden_sizes
    print(f"training {network} on {dataset.name} ({len(dataset.y_train)} train, "
          f"{len(dataset.y_test)} test) with the {args.backend} backend on {device}")
    started = time.perf_counter()
    try:
        train(config, dataset, trainer=trainer, start_epoch=start_epoch, on_epoch=on_epoch,
              progress_factory=_progress_factory(args.quiet),
              augment=augment, notify=_notify, resume=resume,
              on_part=on_part if every else None,
              part_samples=every * config.batch_size if every else None)
    finally:
        _close(trainer)
    total = time.perf_counter() - started
    if not history:
        raise UsageError(f"nothing to do: the run already finished {start_epoch} epochs "
                         f"(raise --epochs to continue)")
    last = history[-1]
    train_seconds = sum(r["seconds"] for r in history)
    samples = len(dataset.y_train) * len(history)
    print(f"test accuracy {last['test_accuracy']:.4f} after {last['epoch']} epochs "
          f"({total:.1f} s)")
    if args.json:
        from .checkpoint import versions

        _write_json(args.json, {
            "test_accuracy": last["test_accuracy"], "epochs": last["epoch"],
            "train_seconds": train_seconds,
            "samples_per_second": samples / max(train_seconds, 1e-12),
            "forward_rate": last["forward_rate"], "backward_rate": last["backward_rate"],
            "compile_seconds": sum(r.get("compile_seconds", 0.0) for r in history),
            "device": device, "backend": args.backend, "dataset": args.dataset,
            "augment": args.augment, "config": config.to_dict(), "history": history,
            "versions": versions()})
    return 0


def _epoch_progress(checkpoint, config, n_train, out):
    """The unfinished epoch of a mid-epoch checkpoint (None for an end-of-epoch one)."""
    from .training import EpochProgress, EpochTally

    partial = checkpoint.get("partial")
    if partial is None:
        return None
    samples = partial["samples"]
    if samples >= n_train or samples % config.batch_size:
        raise UsageError(f"the checkpoint in {out} stopped epoch {checkpoint['epoch'] + 1} "
                         f"after {samples} samples, which is not a mini-batch boundary inside "
                         f"this dataset's {n_train} training samples: resume with the "
                         "dataset (and --limit) the run was started with")
    tally = EpochTally(config)
    try:
        tally.load_state(partial["tally"])
    except (ValueError, KeyError) as error:
        raise UsageError(f"the checkpoint in {out} has an unreadable tally of its unfinished "
                         f"epoch ({error}); it is corrupt: restore it or start a new "
                         "run") from None
    if tally.samples != samples:
        raise UsageError(f"the checkpoint in {out} says {samples} samples of its unfinished "
                         f"epoch are done, but its tally counts {tally.samples}; it is "
                         "corrupt: restore it or start a new run")
    return EpochProgress(checkpoint["epoch"], samples, tally, partial["seconds"],
                         partial["compile_seconds"])


def _close(trainer):
    """Release what a trainer holds (the Brian2 trainer's build folder and Brian2's device),
    so that the next command in the same process starts clean."""
    close = getattr(trainer, "close", None)
    if close is not None:
        close()


def _augmentation(dataset_name):
    if dataset_name in ("cifar10", "cifar100"):
        from .datasets import CIFAR_AUGMENTATION

        return CIFAR_AUGMENTATION
    if dataset_name == "cifar10-dvs":
        from .datasets import frame_augmentation

        return frame_augmentation()
    from .datasets.augmentation import IDX_AUGMENTATIONS

    if dataset_name in IDX_AUGMENTATIONS:
        return IDX_AUGMENTATIONS[dataset_name]
    raise UsageError(f"--augment has no recipe for {dataset_name!r} (only cifar10, cifar100, "
                     "cifar10-dvs, mnist, fashion-mnist)")


def _check_frames(config, dataset):
    """Event frames drive one forward step each: their number must be ``T``."""
    if dataset.frames and dataset.frames != config.time_step:
        raise UsageError(f"{dataset.name} has {dataset.frames} frames per sample, one per "
                         f"forward step, but the forward stage has --time-step "
                         f"{config.time_step}; use --time-step {dataset.frames}")


def _write_log(path, history):
    from .checkpoint import atomic_write

    columns = list(dict.fromkeys(c for row in history for c in row))   # rows of older runs
    lines = ["\t".join(columns)]                                       # may lack a column
    lines += ["\t".join(f"{row[c]:.6g}" if isinstance(row.get(c), float) else
                        str(row.get(c, "")) for c in columns) for row in history]
    text = "\n".join(lines) + "\n"
    atomic_write(path, lambda stream: stream.write(text.encode("utf-8")))


def _command_evaluate(args):
    from .checkpoint import load_checkpoint
    from .datasets import load_dataset
    from .training import make_trainer, spiking_neurons

    if args.json:
        _check_output_file(args.json, "--json")
    checkpoint = load_checkpoint(args.checkpoint)
    config = _checkpoint_config(checkpoint)
    # the checkpoint's backend unless asked otherwise; its device only on its own backend
    backend = args.backend or checkpoint["backend"]
    _check_backend_flags(args, backend)
    device_options = _device_options(args, backend)
    if backend == "brian":
        config = _brian_config(config, f"the checkpoint {checkpoint['path']}")
    elif config.float_dtype != "float64":
        # float32 weights are exact in float64; the reference evaluates them in float64
        print(f"the reference evaluates the {config.float_dtype} run in float64")
        config = config.replace(float_dtype="float64")
    dataset = load_dataset(args.dataset or checkpoint["dataset"], data_dir=args.data_dir,
                           limit=args.limit)
    _check_frames(config, dataset)
    same_backend = checkpoint["backend"] == "brian"
    trainer = make_trainer(backend, config, checkpoint["params"],
                           device=args.device or (checkpoint["device"]
                                                  if backend == "brian" and same_backend
                                                  else None),
                           n_inputs=dataset.n_inputs, n_classes=dataset.n_classes,
                           **device_options)
    from .parameters import check_parameters

    check_parameters(trainer.params, config, dataset.n_inputs, dataset.n_classes)
    try:
        result = trainer.evaluate(dataset.x_test, dataset.y_test)
    finally:
        _close(trainer)
    accuracy = result["correct"] / max(1, result["samples"])
    neurons = spiking_neurons(config, dataset.n_inputs, dataset.n_classes)
    rate = result["forward_spikes"] / max(1, result["samples"] * neurons * config.time_step)
    where = f"epoch {checkpoint['epoch']}"
    if "partial" in checkpoint:
        where += (f" and {checkpoint['partial']['samples']} samples of epoch "
                  f"{checkpoint['epoch'] + 1}")
    print(f"test accuracy {accuracy:.4f} on {result['samples']} samples of {dataset.name} "
          f"({where}, forward rate {rate:.4f})")
    summary = {"test_accuracy": accuracy, "samples": result["samples"], "forward_rate": rate,
               "epoch": checkpoint["epoch"], "backend": backend}
    if "partial" in checkpoint:
        summary["samples_of_next_epoch"] = checkpoint["partial"]["samples"]
    if "operations" in result:
        per_sample = result["operations"].per_sample()
        summary["energy_pj_per_sample"] = per_sample["energy_pj"]
        print(f"estimated inference energy {per_sample['energy_pj'] / 1e3:.1f} nJ per sample "
              "(spide_brian.energy defaults)")
    if args.json:
        _write_json(args.json, summary)
    return 0


def _command_sweep_report(args):
    from .sweep_report import ReportError, format_report, write_report

    if args.study is not None:
        raise UsageError("--report summarises a study folder: give it alone "
                         "(spide-brian sweep --report STUDY_DIR)")
    try:
        report, png = write_report(args.report)
    except ReportError as error:
        raise UsageError(str(error)) from None
    for line in format_report(report):
        print(line)
    print(f"wrote {png} and {png.with_suffix('.json')}")
    return 0


def _command_sweep(args):
    from .study import StudyError, load_study

    if args.report is not None:
        return _command_sweep_report(args)
    if args.study is None:
        raise UsageError("sweep needs a study file (spide-brian sweep STUDY.toml) or "
                         "--report STUDY_DIR")

    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    if args.workers is not None and args.scheduler:
        raise UsageError("--workers sizes the local cluster; a cluster at --scheduler has its "
                         "own workers: drop one of them")
    try:
        study = load_study(args.study)
    except StudyError as error:
        raise UsageError(f"{args.study}: {error}") from None
    if args.out:
        _check_output_folder(args.out, "--out")
    from importlib.util import find_spec

    if find_spec("distributed") is None:
        raise UsageError("sweep runs on Dask: pip install 'dask[distributed]'")
    from .sweep import run_study

    result = run_study(study, out=args.out, scheduler=args.scheduler, workers=args.workers,
                       retry_failed=args.retry_failed,
                       echo=lambda line: print(line, flush=True))
    print(f"{result['done']} of {result['total']} points done, {result['failed']} failed; "
          f"results in {Path(result['folder']) / 'results.csv'}")
    return 0 if result["failed"] == 0 else 1


def _command_figures(args):
    from .figures import build_all

    try:
        paths = build_all(args.out, quick=not args.full)
    except FileNotFoundError as error:
        raise UsageError(str(error)) from error
    for path in paths:
        print(path)
    return 0


def _recipe(args):
    """The ``--recipe`` of a train command (None without one); fills in its dataset."""
    from .recipes import get_recipe

    recipe = None
    if args.recipe is not None:
        if args.resume:
            raise UsageError("--recipe starts a new run; a resumed run continues with its "
                             "checkpoint's config: drop --recipe")
        try:
            recipe = get_recipe(args.recipe)
        except ValueError as error:
            raise UsageError(f"--{error}") from None
    if args.dataset is None and not args.resume:    # a resumed run: the checkpoint's
        args.dataset = recipe.dataset if recipe else "digits"
    return recipe


def _base_config(args, recipe):
    """The config a new run's flags change: the ``--recipe``'s, else the recipe of the
    ``--model``'s reference script (:attr:`spide_brian.models.NamedModel.recipe`), else the
    defaults (None)."""
    if recipe is not None:
        return recipe.config()
    if not getattr(args, "model", None):
        return None
    from .config import SPIDEConfig
    from .models import ModelError, named_model

    try:
        model = named_model(args.model)
    except ModelError as error:
        raise UsageError(f"--model: {error}") from None
    return SPIDEConfig(model=model.name, **model.recipe)


def _print_recipes():
    from .recipes import RECIPES

    for recipe in RECIPES.values():
        print(f"{recipe.name} (--dataset {recipe.dataset}): {recipe.summary}")
        values = " ".join(f"{key}={value}" for key, value in sorted(recipe.values.items()))
        print(f"  values:    {values or 'the defaults'}")
        print(f"  source:    {recipe.source}")
        print(f"  reached:   {recipe.reached}")
        if recipe.published:
            print(f"  published: {recipe.published}")
    return 0


def _print_models():
    from .config import SPIDEConfig
    from .models import MODELS
    from .topology import Topology

    for model in MODELS.values():
        print(f"{model.name}: {model.description}")
        print(f"  source: {model.source}")
        for side in (8, 28, 32):
            try:
                topology = Topology.from_config(SPIDEConfig(model=model.name),
                                                model.in_channels * side * side, 10)
            except ValueError:
                continue
            neurons = sum(layer.size for layer in topology.layers)
            parameters = sum(math.prod(s) for s in topology.parameter_shapes().values())
            print(f"  on {side}x{side} inputs: {neurons} spiking neurons, {parameters} "
                  "parameters")
        recipe = " ".join(f"{k}={v}" for k, v in model.recipe.items())
        print(f"  recipe: {recipe}")
    print("use: spide-brian train --model NAME (the Brian2 model on numpy, cython or "
          "cpp_standalone: kernels held once, spide_brian.sharing; --backend reference for "
          "the numpy implementation)")
    return 0


def _size(count):
    """Bytes as B, KiB, MiB or GiB with 3 significant figures."""
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count} B"


def _print_model_sizes(name, side, float_dtype="float64"):
    from .config import SPIDEConfig
    from .footprint import footprint
    from .models import named_model
    from .topology import Topology

    model = named_model(name)
    side = model.input_side if side is None else side
    if side < 1:
        raise UsageError(f"--input-side must be >= 1; got {side}")
    topology = Topology.from_config(SPIDEConfig(model=name), model.in_channels * side * side,
                                    10)
    sizes = footprint(topology, float_dtype=float_dtype)
    print(f"{name} on {model.in_channels}x{side}x{side} inputs, 10 classes: {model.description}"
          f" (state in {float_dtype})")
    header = ["layer", "from", "neurons", "synapses/copy", "parameters", *sizes.devices]
    table = [[row.name, "+".join(row.kinds), f"{row.neurons:,}", f"{row.synapses:,}",
              f"{row.parameters:,}", *(_size(row.memory[d]) for d in sizes.devices)]
             for row in sizes.rows]
    table.append(["total", "", f"{sizes.neurons:,}", f"{sizes.synapses:,}",
                  f"{sizes.parameters:,}", *(_size(sizes.memory(d)) for d in sizes.devices)])
    widths = [max(len(str(line[k])) for line in [header] + table) for k in range(len(header))]
    for line in [header] + table:
        print("  ".join(str(cell).rjust(width) if k >= 2 else str(cell).ljust(width)
                        for k, (cell, width) in enumerate(zip(line, widths))))
    print("neurons: spiking neurons (each with its ternary couple; the total leaves out the "
          "readout's); synapses/copy: the "
          "synapses of one weight copy of the connections into the layer; memory: the state "
          "arrays of the Brian2 model (every weight copy, or the weight held once and its "
          "views, "
          "bytes per neuron and synapse measured on each device's construction; monitors, "
          "input tables and code not counted)")
    return 0


def _command_info(args):
    from .checkpoint import versions
    from .datasets import available_datasets

    if getattr(args, "recipes", False):
        return _print_recipes()
    if getattr(args, "models", False):
        return _print_models()
    if getattr(args, "model", None):
        return _print_model_sizes(args.model, args.input_side, args.float_dtype)
    for name, version in versions().items():
        print(f"{name:12s} {version}")
    try:
        import tonic

        print(f"{'tonic':12s} {tonic.__version__}")
    except ImportError:
        print(f"{'tonic':12s} not installed (pip install 'spide-brian[dvs]')")
    print(f"datasets     {', '.join(available_datasets())}")
    from .devices import capabilities, default_device, device_status, refused_options

    print(f"devices (--backend brian --device NAME; default {default_device()}):")
    for name, usable, reason in device_status():
        print(f"  {name:16s} {'usable' if usable else 'not usable'}: {reason}")
        refused = refused_options(capabilities(name))
        if refused:
            print(f"  {'':16s} refuses: {'; '.join(refused)}")
    print(f"  {'reference':16s} usable: --backend reference, the numpy implementation")
    return 0


def _command_bench(args):
    from .bench import WORKLOADS, format_table, run_bench
    from .devices import default_device

    if args.workload not in WORKLOADS:
        raise UsageError(f"--workload must be one of {', '.join(WORKLOADS)}; "
                         f"got {args.workload!r}")
    if args.repeats < 1 or (args.samples is not None and args.samples < 1):
        raise UsageError("--repeats and --samples must be >= 1")
    if args.json:
        _check_output_file(args.json, "--json")
    changes = {name: value for name, value in (("time_step", args.time_step),
                                               ("time_step_back", args.time_step_back))
               if value is not None}
    implementations = args.devices or ["reference", default_device()]
    report = run_bench(WORKLOADS[args.workload], implementations, repeats=args.repeats,
                       samples=args.samples, config_changes=changes, build_dir=args.build_dir)
    for line in format_table(report):
        print(line)
    if args.json:
        _write_json(args.json, report)
    return 0


def _keep_interrupts_ignored():
    """Leave SIGINT ignored in a process started with it ignored.

    A shell starts background jobs (``command &`` in a script, ``nohup``) with SIGINT
    ignored, so that Ctrl+C at the terminal does not reach them. Importing Brian2 installs
    its own SIGINT handler over that, which passes the signal on to the replaced one and
    fails with a ``TypeError`` traceback when that one is "ignore". Such a run keeps
    ignoring SIGINT; SIGTERM stops it (checkpoints are written atomically, so the last one
    is intact either way). A process with Python's usual Ctrl+C handling keeps Brian2's
    handler: Ctrl+C interrupts the command with exit status 130.
    """
    handler = signal.getsignal(signal.SIGINT)
    replaced = getattr(handler, "previous_handler", None)
    if replaced in (signal.SIG_IGN, signal.SIG_DFL) and \
            threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, replaced)


def main(argv=None):
    """Entry point of the ``spide-brian`` console script."""
    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .datasets import DataError
    from .devices import DEVICE_ERRORS
    from .training import DivergenceError

    args = build_parser().parse_args(argv)
    _keep_interrupts_ignored()
    commands = {"train": _command_train, "evaluate": _command_evaluate,
                "sweep": _command_sweep, "figures": _command_figures, "info": _command_info,
                "bench": _command_bench}
    try:
        return commands[args.command](args)
    except (UsageError, ConfigError, DataError, CheckpointError, ValueError,
            NotImplementedError) + DEVICE_ERRORS as error:
        print(f"spide-brian {args.command}: error: {error}", file=sys.stderr)
        return 2
    except DivergenceError as error:
        out = getattr(args, "out", None)
        kept = (f"; the checkpoint of epoch {error.epoch - 1} in {out} is kept"
                if out and (Path(out) / "checkpoint.json").exists() else "")
        print(f"spide-brian {args.command}: error: {error}{kept}", file=sys.stderr)
        return 1
    except OSError as error:
        # a failed read or write (disk full, permissions ...): one line, not a traceback
        print(f"spide-brian {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; the last checkpoint (if any) is intact", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
