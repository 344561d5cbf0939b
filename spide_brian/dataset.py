"""The dataset interface the loaders plug into, and the embedded default.

A loader returns a :class:`Dataset` of flat float64 inputs and integer labels and registers
itself by name with :func:`register_dataset`; :func:`spide_brian.data.load_dataset` looks it
up. The embedded default needs no download: scikit-learn's ``load_digits`` (1797 real 8 x 8
handwritten digits), pixels divided by 16, train = the first 1437 samples in ``load_digits``
order, test = the last 360.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Dataset", "DataError", "register_dataset", "registered_loaders", "load_digits",
           "DIGITS_TRAIN_SIZE"]

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


def registered_loaders():
    """``{name: loader}`` of every registered dataset (a copy)."""
    return dict(_LOADERS)


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
