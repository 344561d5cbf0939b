"""Checkpoints: parameters and optimiser state (npz) with metadata (JSON), written atomically.

A checkpoint in directory ``DIR`` is ``DIR/checkpoint.json`` plus the npz file it names. The JSON
carries a schema version, the package, Brian2, numpy and Python versions, the backend and
device, the configuration, the finished epoch, the log so far and the SHA-256 of the npz. Each
file is written to a temporary name, flushed to disk and renamed over the old one, npz first:
an interrupted write leaves the previous checkpoint intact and readable, and the next save (or
:func:`clean_interrupted_writes`) removes what it left behind. A save deletes only arrays that
checkpoints of this folder named (or the arrays a killed save renamed into place but never
named, or those of earlier epochs it had not deleted yet), never other files.
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

__all__ = ["CheckpointError", "SCHEMA_VERSION", "METADATA_NAME", "save_checkpoint",
           "load_checkpoint", "Checkpoint", "versions", "atomic_write", "arrays_name",
           "clean_interrupted_writes"]

SCHEMA_VERSION = 1
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


def arrays_name(epoch):
    """File name of the arrays of the checkpoint after ``epoch``."""
    return f"checkpoint-epoch{int(epoch):04d}.npz"


def _epoch_of(name):
    """The epoch in an arrays file name written by :func:`arrays_name`, else None."""
    stem = name[len("checkpoint-epoch"):-len(".npz")]
    if name.startswith("checkpoint-epoch") and name.endswith(".npz") and stem.isdigit():
        return int(stem)
    return None


def _temporary_files(directory, names):
    for name in names:
        yield from directory.glob(f".{name}.*.tmp")


def _named_arrays(directory):
    """``(arrays, epoch)`` of the checkpoint in ``directory`` as its metadata says, or Nones."""
    try:
        metadata = json.loads((directory / METADATA_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        return None, None
    arrays, epoch = metadata.get("arrays"), metadata.get("epoch")
    if not isinstance(arrays, str) or Path(arrays).name != arrays:
        arrays = None
    if not isinstance(epoch, int) or isinstance(epoch, bool):
        epoch = None
    return arrays, epoch


def clean_interrupted_writes(directory, extra_names=()):
    """Remove what an interrupted save left in ``directory``; return the removed paths.

    That is the temporary files of :func:`atomic_write` for the checkpoint files (and for
    ``extra_names``, e.g. the run's log); the arrays of the epoch after the named
    checkpoint (a save killed between renaming those arrays into place and renaming the
    metadata leaves them unnamed, and the run writes that same file next anyway); and the
    arrays of earlier epochs (a save killed after renaming the metadata but before deleting
    the arrays it replaced leaves them behind, superseded).
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    named, epoch = _named_arrays(directory)
    names = [METADATA_NAME, *extra_names]
    removed = [path for path in directory.glob(".checkpoint-epoch*.npz.*.tmp")]
    removed += list(_temporary_files(directory, names))
    if epoch is not None:
        successor = directory / arrays_name(epoch + 1)
        if successor.name != named and successor.is_file():
            removed.append(successor)
        removed += [path for path in directory.glob("checkpoint-epoch*.npz")
                    if _epoch_of(path.name) is not None and _epoch_of(path.name) < epoch]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def save_checkpoint(directory, *, config, params, optimizer_state, epoch, backend, device,
                    dataset, history=(), extra=None):
    """Write the checkpoint of a finished ``epoch`` into ``directory`` (created if needed).

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
    npz_path = directory / arrays_name(epoch)
    atomic_write(npz_path, lambda stream: np.savez(stream, **arrays))
    metadata = {
        "format": FORMAT_NAME, "schema_version": SCHEMA_VERSION, "epoch": int(epoch),
        "arrays": npz_path.name, "sha256": hashlib.sha256(npz_path.read_bytes()).hexdigest(),
        "backend": backend, "device": device, "dataset": dataset, "versions": versions(),
        "config": config.to_dict(), "history": list(history), **(extra or {}),
    }
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
    if version != SCHEMA_VERSION:
        raise CheckpointError(f"{metadata_path} has checkpoint schema version {version}; this "
                              f"spide-brian reads version {SCHEMA_VERSION}")
    _check_fields(metadata, metadata_path)
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
        config = SPIDEConfig.from_dict(metadata["config"])
    except Exception as error:  # any unreadable content is a corrupt checkpoint
        raise CheckpointError(f"cannot read checkpoint {metadata_path}: {error}") from None
    checkpoint = Checkpoint(metadata)
    checkpoint.update(params=params, optimizer=momentum, config=config, path=str(metadata_path))
    return checkpoint
