"""The dataset interface and the registry of loaders.

A loader is a function ``loader(data_dir, ...) -> Dataset`` that registers itself by name with
:func:`register_dataset`; :func:`load_dataset` looks it up by that name. Every loader of the
package is registered when :mod:`spide_brian.datasets` is imported.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Dataset", "DataError", "register_dataset", "registered_loaders",
           "available_datasets", "load_dataset"]

_LOADERS = {}


class DataError(ValueError):
    """A dataset that cannot be loaded; the message says what is missing and how to fix it."""


@dataclass(frozen=True)
class Dataset:
    """Inputs and labels of a classification task.

    Parameters
    ----------
    name : str
        Name of the dataset, used in messages.
    x_train, x_test : ndarray
        Static inputs ``(n, n_in)`` (a constant current per sample) or event frames
        ``(n, T, n_in)`` (one frame per forward step), float64.
    y_train, y_test : ndarray
        Integer labels in ``[0, n_classes)``.
    n_classes : int
        Number of classes.
    input_shape : tuple
        Shape of one sample (of one frame for event data) before flattening, for plotting.

    Raises
    ------
    DataError
        When a split has different numbers of inputs and labels, labels outside
        ``[0, n_classes)`` or inputs that are NaN or infinite.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    input_shape: tuple

    def __post_init__(self):
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if len(x) != len(y):
                raise DataError(f"{self.name}: {len(x)} {split} inputs but {len(y)} labels")
            if len(y) and (y.min() < 0 or y.max() >= self.n_classes):
                raise DataError(f"{self.name}: {split} labels outside [0, {self.n_classes})")
            if not np.all(np.isfinite(x)):
                raise DataError(f"{self.name}: {split} inputs contain NaN or infinite values")

    @property
    def n_inputs(self) -> int:
        """Number of input neurons: the product of :attr:`input_shape`."""
        return int(np.prod(self.input_shape))

    @property
    def frames(self) -> int:
        """Frames per sample (0 for static inputs)."""
        return self.x_train.shape[1] if self.x_train.ndim == 3 else 0

    def limited(self, limit):
        """The first ``limit`` training and test samples.

        Parameters
        ----------
        limit : int or None
            Samples kept per split; None keeps all of them.

        Returns
        -------
        Dataset
            ``self`` when ``limit`` is None, otherwise a new dataset.

        Raises
        ------
        DataError
            When ``limit`` is below 1.
        """
        if limit is None:
            return self
        if limit < 1:
            raise DataError(f"limit must be >= 1, got {limit}")
        return Dataset(self.name, self.x_train[:limit], self.y_train[:limit],
                       self.x_test[:limit], self.y_test[:limit], self.n_classes,
                       self.input_shape)


def register_dataset(name):
    """Decorator registering a loader under ``name``.

    Parameters
    ----------
    name : str
        Name passed to :func:`load_dataset`; a later registration of the same name replaces
        the earlier one.

    Returns
    -------
    callable
        A decorator that records ``loader(data_dir, ...) -> Dataset`` and returns it unchanged.
    """
    def decorate(loader):
        _LOADERS[name] = loader
        return loader
    return decorate


def registered_loaders():
    """The registered loaders.

    Returns
    -------
    dict
        ``{name: loader}``, a copy of the registry.
    """
    return dict(_LOADERS)


def available_datasets():
    """Names of the registered datasets.

    Returns
    -------
    list of str
        Sorted names.
    """
    return sorted(registered_loaders())


def load_dataset(name="digits", data_dir=None, limit=None):
    """Load a registered dataset by name.

    Parameters
    ----------
    name : str
        One of :func:`available_datasets`.
    data_dir : str or Path, optional
        Folder searched first for the dataset's files (and where missing files are downloaded);
        it must exist. Each loader also searches its own default folders.
    limit : int, optional
        Keep only the first ``limit`` samples of each split. A loader that takes a ``limit``
        keyword makes only those samples (the simulated event sensor records only the digits
        it keeps); the result is the same as cutting the full dataset.

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        For an unknown name, a ``limit`` below 1, a ``data_dir`` that does not exist or is not a
        folder, or any error of the loader.
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
