"""Checkpoints: parameters and optimiser state (npz) with metadata (JSON), written atomically.

A checkpoint in directory ``DIR`` is ``DIR/checkpoint.json`` plus the npz file it names. The JSON
carries a schema version, the package, Brian2, numpy and Python versions, the backend and
device, the configuration, the finished epoch, the log so far and the SHA-256 of the npz (and,
for a mid-epoch checkpoint, how far the next epoch got, with its running totals). Each
file is written to a temporary name, flushed to disk and renamed over the old one, npz first:
an interrupted write leaves the previous checkpoint intact and readable, and the next save (or
:func:`clean_interrupted_writes`) removes what it left behind. A save deletes only arrays that
checkpoints of this folder named (or the arrays a killed save renamed into place but never
named, or those of earlier positions it had not deleted yet), never other files.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np

from .config import SPIDEConfig

__all__ = ["CheckpointError", "SCHEMA_VERSION", "PARTIAL_SCHEMA_VERSION", "METADATA_NAME", "save_checkpoint",
           "load_checkpoint", "Checkpoint", "versions", "atomic_write", "arrays_name",
           "clean_interrupted_writes"]

SCHEMA_VERSION = 1
#: The schema of a mid-epoch checkpoint: version 1 plus ``partial`` and ``tally/`` arrays.
PARTIAL_SCHEMA_VERSION = 2
FORMAT_NAME = "spide-brian-checkpoint"
METADATA_NAME = "checkpoint.json"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message says why and what to do."""


class Checkpoint(dict):
    """Loaded checkpoint: ``params``, ``optimizer``, ``config`` and the metadata keys."""


def versions():
    """Versions of the software that produced a result."""
    import brian2

    from . import __version__

    return {"spide_brian": __version__, "brian2": brian2.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def atomic_write(path, write):
    """Write a file so that readers see either its old or its complete new content.

    The content goes to a temporary file ``.NAME.*.tmp`` in the same folder, is flushed to
    disk and renamed over ``path``; on an exception the temporary file is removed (a killed
    process leaves it behind for :func:`clean_interrupted_writes`).

    Parameters
    ----------
    path : str or Path
    write : callable
        ``write(stream)`` writes the content to a binary stream.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def arrays_name(epoch, samples=0):
    """File name of the arrays of the checkpoint after ``epoch`` finished epochs and
    ``samples`` samples of the next (a mid-epoch checkpoint when ``samples`` > 0)."""
    part = f"-sample{int(samples):09d}" if samples else ""
    return f"checkpoint-epoch{int(epoch):04d}{part}.npz"


def _position_of(name):
    """``(epoch, samples)`` of an arrays file name written by :func:`arrays_name`, else None."""
    if not (name.startswith("checkpoint-epoch") and name.endswith(".npz")):
        return None
    epoch, _, samples = name[len("checkpoint-epoch"):-len(".npz")].partition("-sample")
    if not epoch.isdigit() or (samples and not samples.isdigit()) or (_ and not samples):
        return None
    return int(epoch), int(samples or 0)


def _temporary_files(directory, names):
    for name in names:
        yield from directory.glob(f".{name}.*.tmp")


def _named_arrays(directory):
    """``(arrays, position)`` of the checkpoint in ``directory`` as its metadata says, or
    Nones; the position is ``(finished epochs, samples of the next)``."""
    try:
        metadata = json.loads((directory / METADATA_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        return None, None
    arrays, epoch = metadata.get("arrays"), metadata.get("epoch")
    if not isinstance(arrays, str) or Path(arrays).name != arrays:
        arrays = None
    if not _is_int(epoch):
        return arrays, None
    partial = metadata.get("partial")
    samples = partial.get("samples") if isinstance(partial, dict) else 0
    return arrays, (epoch, samples if _is_int(samples) else 0)


def clean_interrupted_writes(directory, extra_names=()):
    """Remove what an interrupted save left in ``directory``; return the removed paths.

    That is the temporary files of :func:`atomic_write` for the checkpoint files (and for
    ``extra_names``, e.g. the run's log); unnamed arrays of the positions the run saves next
    (mid-epoch checkpoints of the epoch in progress and the end of that epoch: a save
    killed between renaming its arrays into place and renaming the metadata leaves them
    unnamed, and the run saves those positions again); and the arrays of earlier positions
    (a save killed after renaming the metadata but before deleting the arrays it replaced
    leaves them behind, superseded).
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    named, position = _named_arrays(directory)
    names = [METADATA_NAME, *extra_names]
    removed = [path for path in directory.glob(".checkpoint-epoch*.npz.*.tmp")]
    removed += list(_temporary_files(directory, names))
    if position is not None:
        next_epoch_end = (position[0] + 1, 0)
        for path in directory.glob("checkpoint-epoch*.npz"):
            other = _position_of(path.name)
            if other is None or path.name == named:
                continue
            if other <= next_epoch_end:   # superseded, or a killed save's unnamed arrays
                removed.append(path)
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def save_checkpoint(directory, *, config, params, optimizer_state, epoch, backend, device,
                    dataset, history=(), extra=None, partial=None):
    """Write the checkpoint of a finished ``epoch`` into ``directory`` (created if needed).

    Parameters
    ----------
    partial : spide_brian.training.EpochProgress, optional
        A mid-epoch checkpoint: ``epoch`` epochs are finished and ``partial`` says how far
        the next one got (its samples, seconds and tally, whose arrays are stored as
        ``tally/...``). Such a checkpoint has schema version :data:`PARTIAL_SCHEMA_VERSION`,
        which readers that cannot continue an epoch refuse.

    Returns
    -------
    Path
        The metadata file.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    clean_interrupted_writes(directory)
    previous, _ = _named_arrays(directory)
    arrays = {f"param/{k}": np.asarray(v, dtype=np.float64) for k, v in params.items()}
    arrays.update({f"momentum/{k}": np.asarray(v, dtype=np.float64)
                   for k, v in optimizer_state.items()})
    if partial is not None:
        if partial.epoch != epoch or partial.samples <= 0:
            raise ValueError(f"a mid-epoch checkpoint after {epoch} epochs continues epoch "
                             f"{epoch} (0 first) after at least one sample, not epoch "
                             f"{partial.epoch} after {partial.samples}")
        arrays.update({f"tally/{k}": v for k, v in partial.tally.state().items()})
    npz_path = directory / arrays_name(epoch, partial.samples if partial is not None else 0)
    atomic_write(npz_path, lambda stream: np.savez(stream, **arrays))
    metadata = {
        "format": FORMAT_NAME,
        "schema_version": SCHEMA_VERSION if partial is None else PARTIAL_SCHEMA_VERSION,
        "epoch": int(epoch),
        "arrays": npz_path.name, "sha256": hashlib.sha256(npz_path.read_bytes()).hexdigest(),
        "backend": backend, "device": device, "dataset": dataset, "versions": versions(),
        "config": config.to_dict(), "history": list(history), **(extra or {}),
    }
    if partial is not None:
        metadata["partial"] = {"samples": int(partial.samples),
                               "seconds": float(partial.seconds),
                               "compile_seconds": float(partial.compile_seconds)}
    metadata_path = directory / METADATA_NAME
    atomic_write(metadata_path,
                 lambda stream: stream.write(json.dumps(metadata, indent=2).encode("utf-8")))
    # only now that the metadata names the new arrays may the old ones go; nothing else in the
    # folder is ours to delete
    if previous is not None and previous != npz_path.name:
        (directory / previous).unlink(missing_ok=True)
    return metadata_path


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


# field -> (check, what it must be); every field a reader of a checkpoint relies on
_FIELDS = {
    "epoch": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "arrays": (lambda v: isinstance(v, str) and v not in ("", ".", "..") and Path(v).name == v,
               "the file name of the npz next to it"),
    "sha256": (lambda v: isinstance(v, str), "a hex string"),
    "backend": (lambda v: v in ("brian", "reference"), "'brian' or 'reference'"),
    "device": (lambda v: v is None or isinstance(v, str), "a device name or null"),
    "dataset": (lambda v: isinstance(v, str) and v != "", "a dataset name"),
    "config": (lambda v: isinstance(v, dict), "an object of configuration fields"),
    "history": (lambda v: isinstance(v, list) and all(isinstance(row, dict) for row in v),
                "a list of per-epoch objects"),
    "versions": (lambda v: isinstance(v, dict), "an object"),
}


def _check_fields(metadata, metadata_path):
    """One-line :class:`CheckpointError` for the first missing or mistyped field."""
    for name, (check, expected) in _FIELDS.items():
        if name not in metadata:
            raise CheckpointError(f"{metadata_path} has no {name!r} field; the checkpoint is "
                                  "corrupt: restore it or start a new run")
        if not check(metadata[name]):
            raise CheckpointError(f"{metadata_path}: {name!r} must be {expected}, got "
                                  f"{metadata[name]!r}; the checkpoint is corrupt: restore it "
                                  "or start a new run")


def load_checkpoint(path):
    """Read and verify a checkpoint (its directory or its ``checkpoint.json``).

    Raises
    ------
    CheckpointError
        Missing files, a foreign or newer format, missing or mistyped fields, a hash mismatch
        or unreadable arrays.
    """
    path = Path(path)
    metadata_path = path / METADATA_NAME if path.is_dir() else path
    if not metadata_path.exists():
        raise CheckpointError(f"no checkpoint at {path}: expected {metadata_path} "
                              f"(written by 'spide-brian train --out DIR')")
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{metadata_path} is not valid JSON ({error}); the checkpoint is "
                              "corrupt: restore it or start a new run") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{metadata_path} is not a spide-brian checkpoint")
    version = metadata.get("schema_version")
    if version not in (SCHEMA_VERSION, PARTIAL_SCHEMA_VERSION):
        raise CheckpointError(f"{metadata_path} has checkpoint schema version {version}; this "
                              f"spide-brian reads versions {SCHEMA_VERSION} and "
                              f"{PARTIAL_SCHEMA_VERSION}")
    _check_fields(metadata, metadata_path)
    if (version == PARTIAL_SCHEMA_VERSION) != ("partial" in metadata):
        rule = "needs" if version == PARTIAL_SCHEMA_VERSION else "cannot have"
        raise CheckpointError(f"{metadata_path}: a checkpoint of schema version {version} "
                              f"{rule} a 'partial' field; the checkpoint is corrupt: restore "
                              "it or start a new run")
    if "partial" in metadata:
        _check_partial(metadata["partial"], metadata_path)
    npz_path = metadata_path.parent / metadata["arrays"]
    if not npz_path.exists():
        raise CheckpointError(f"checkpoint arrays {npz_path} are missing")
    if hashlib.sha256(npz_path.read_bytes()).hexdigest() != metadata.get("sha256"):
        raise CheckpointError(f"{npz_path} does not match the hash in {metadata_path}: "
                              "the checkpoint is corrupt")
    try:
        with np.load(npz_path) as data:
            params = {k[6:]: data[k] for k in data.files if k.startswith("param/")}
            momentum = {k[9:]: data[k] for k in data.files if k.startswith("momentum/")}
            tally = {k[6:]: data[k] for k in data.files if k.startswith("tally/")}
        config = SPIDEConfig.from_dict(metadata["config"])
    except Exception as error:  # any unreadable content is a corrupt checkpoint
        raise CheckpointError(f"cannot read checkpoint {metadata_path}: {error}") from None
    checkpoint = Checkpoint(metadata)
    checkpoint.update(params=params, optimizer=momentum, config=config, path=str(metadata_path))
    if "partial" in metadata:
        if not tally:
            raise CheckpointError(f"{npz_path} holds no tally of the unfinished epoch its "
                                  f"metadata announces; the checkpoint is corrupt: restore it "
                                  "or start a new run")
        checkpoint["partial"] = dict(metadata["partial"], tally=tally)
    return checkpoint


def _check_partial(partial, metadata_path):
    """One-line :class:`CheckpointError` for a malformed ``partial`` field."""
    fine = (isinstance(partial, dict) and _is_int(partial.get("samples"))
            and partial["samples"] > 0
            and all(isinstance(partial.get(k), (int, float)) and not isinstance(partial[k], bool)
                    and partial[k] >= 0 for k in ("seconds", "compile_seconds")))
    if not fine:
        raise CheckpointError(f"{metadata_path}: 'partial' must be an object with 'samples' "
                              "(an integer > 0), 'seconds' and 'compile_seconds' (numbers >= "
                              f"0), got {partial!r}; the checkpoint is corrupt: restore it or "
                              "start a new run")
