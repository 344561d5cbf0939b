"""Checkpoints: parameters and optimiser state (npz) with metadata (JSON), written atomically.

A checkpoint in directory ``DIR`` is ``DIR/checkpoint.json`` plus the npz file it names. The JSON
carries a schema version, the package, Brian2, numpy and Python versions, the backend and
device, the configuration, the finished epoch, the log so far and the SHA-256 of the npz. Each
file is written to a temporary name, flushed to disk and renamed over the old one, npz first:
an interrupted write leaves the previous checkpoint intact and readable.
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

__all__ = ["CheckpointError", "SCHEMA_VERSION", "save_checkpoint", "load_checkpoint",
           "Checkpoint", "versions"]

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


def _atomic_write(path: Path, write):
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
    arrays = {f"param/{k}": np.asarray(v, dtype=np.float64) for k, v in params.items()}
    arrays.update({f"momentum/{k}": np.asarray(v, dtype=np.float64)
                   for k, v in optimizer_state.items()})
    npz_path = directory / f"checkpoint-epoch{epoch:04d}.npz"
    _atomic_write(npz_path, lambda stream: np.savez(stream, **arrays))
    metadata = {
        "format": FORMAT_NAME, "schema_version": SCHEMA_VERSION, "epoch": int(epoch),
        "arrays": npz_path.name, "sha256": hashlib.sha256(npz_path.read_bytes()).hexdigest(),
        "backend": backend, "device": device, "dataset": dataset, "versions": versions(),
        "config": config.to_dict(), "history": list(history), **(extra or {}),
    }
    metadata_path = directory / METADATA_NAME
    _atomic_write(metadata_path,
                  lambda stream: stream.write(json.dumps(metadata, indent=2).encode("utf-8")))
    # only now that the metadata names the new arrays may older ones go (including arrays a
    # killed run wrote but never named)
    for stale in directory.glob("checkpoint-epoch*.npz"):
        if stale.name != npz_path.name:
            stale.unlink()
    return metadata_path


def load_checkpoint(path):
    """Read and verify a checkpoint (its directory or its ``checkpoint.json``).

    Raises
    ------
    CheckpointError
        Missing files, a foreign or newer format, a hash mismatch or unreadable arrays.
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
    npz_path = metadata_path.parent / str(metadata.get("arrays"))
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
