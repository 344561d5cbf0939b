"""Datasets: a small interface the loaders plug into, and the embedded default.

A loader returns a :class:`Dataset` of flat float64 inputs and integer labels. The embedded
default needs no download: scikit-learn's ``load_digits`` (1797 real 8 x 8 handwritten digits),
pixels divided by 16, train = the first 1437 samples in ``load_digits`` order, test = the
last 360.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Dataset", "DataError", "load_dataset", "register_dataset", "available_datasets"]

_LOADERS = {}


class DataError(ValueError):
    """A dataset that cannot be loaded; the message says what is missing and how to fix it."""


@dataclass(frozen=True)
class Dataset:
    """Inputs and labels of a classification task.

    Parameters
    ----------
    name : str
    x_train, x_test : ndarray
        Static inputs ``(n, n_in)`` (a constant current per sample) or event frames
        ``(n, T, n_in)`` (one frame per forward step), float64.
    y_train, y_test : ndarray
        Integer labels in ``[0, n_classes)``.
    n_classes : int
    input_shape : tuple
        Shape of one sample before flattening (for plotting).
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
        return int(np.prod(self.input_shape))

    @property
    def frames(self) -> int:
        """Frames per sample (0 for static inputs)."""
        return self.x_train.shape[1] if self.x_train.ndim == 3 else 0

    def limited(self, limit):
        """The first ``limit`` training and test samples (all of them if ``limit`` is None)."""
        if limit is None:
            return self
        if limit < 1:
            raise DataError(f"limit must be >= 1, got {limit}")
        return Dataset(self.name, self.x_train[:limit], self.y_train[:limit],
                       self.x_test[:limit], self.y_test[:limit], self.n_classes,
                       self.input_shape)


def register_dataset(name):
    """Decorator registering ``loader(data_dir) -> Dataset`` under ``name``."""
    def decorate(loader):
        _LOADERS[name] = loader
        return loader
    return decorate


def available_datasets():
    return sorted(_LOADERS)


def load_dataset(name="digits", data_dir=None, limit=None):
    """Load a registered dataset by name, optionally keeping only ``limit`` samples per split.

    A loader with a ``limit`` keyword makes only those samples (e.g. the simulated event
    sensor records only the digits it needs); the result is the same either way.
    """
    if name not in _LOADERS:
        raise DataError(f"unknown dataset {name!r}; available: {', '.join(available_datasets())}")
    if limit is not None and limit < 1:
        raise DataError(f"limit must be >= 1, got {limit}")
    if data_dir is not None and not Path(data_dir).is_dir():
        # a mistyped folder is an error, not a place to create and download into
        what = "is not a folder" if Path(data_dir).exists() else "does not exist"
        raise DataError(f"data folder {data_dir} {what}; check --data-dir (create the folder "
                        "first to have the files downloaded into it)")
    loader = _LOADERS[name]
    if limit is not None and "limit" in inspect.signature(loader).parameters:
        return loader(data_dir, limit=limit).limited(limit)
    return loader(data_dir).limited(limit)


DIGITS_TRAIN_SIZE = 1437


@register_dataset("digits")
def load_digits(data_dir=None):
    """scikit-learn's embedded 8 x 8 digits, pixels / 16, fixed 1437 / 360 split."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    x = digits.data.astype(np.float64) / 16.0
    y = digits.target.astype(np.int64)
    split = DIGITS_TRAIN_SIZE
    return Dataset("digits", x[:split], y[:split], x[split:], y[split:], 10, (8, 8))


# The loaders of the other datasets register themselves on import.
from . import cifar, dvs, mnist  # noqa: E402,F401
