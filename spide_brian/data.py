"""Loading a dataset by name: every loader (:mod:`spide_brian.dataset` for the interface and
the embedded digits, :mod:`~spide_brian.mnist`, :mod:`~spide_brian.cifar`,
:mod:`~spide_brian.dvs`) registered in one place."""
from __future__ import annotations

import inspect
from pathlib import Path

# the loaders register themselves on import
from . import cifar, dvs, mnist  # noqa: F401
from .dataset import (DIGITS_TRAIN_SIZE, DataError, Dataset, load_digits,  # noqa: F401
                      register_dataset, registered_loaders)

__all__ = ["Dataset", "DataError", "load_dataset", "register_dataset", "available_datasets"]


def available_datasets():
    """Names of the registered datasets."""
    return sorted(registered_loaders())


def load_dataset(name="digits", data_dir=None, limit=None):
    """Load a registered dataset by name, optionally keeping only ``limit`` samples per split.

    A loader with a ``limit`` keyword makes only those samples (e.g. the simulated event
    sensor records only the digits it needs); the result is the same either way.
    """
    loaders = registered_loaders()
    if name not in loaders:
        raise DataError(f"unknown dataset {name!r}; available: {', '.join(available_datasets())}")
    if limit is not None and limit < 1:
        raise DataError(f"limit must be >= 1, got {limit}")
    if data_dir is not None and not Path(data_dir).is_dir():
        # a mistyped folder is an error, not a place to create and download into
        what = "is not a folder" if Path(data_dir).exists() else "does not exist"
        raise DataError(f"data folder {data_dir} {what}; check --data-dir (create the folder "
                        "first to have the files downloaded into it)")
    loader = loaders[name]
    if limit is not None and "limit" in inspect.signature(loader).parameters:
        return loader(data_dir, limit=limit).limited(limit)
    return loader(data_dir).limited(limit)
