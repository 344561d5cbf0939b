"""The embedded default dataset: scikit-learn's 8 x 8 handwritten digits (docs/data.md D4).

No download is needed: scikit-learn ships the 1797 digits. Pixels are divided by 16 (to
``[0, 1]``); the first :data:`DIGITS_TRAIN_SIZE` samples in ``sklearn.datasets.load_digits``
order are the training set, the remaining 360 the test set.
"""
from __future__ import annotations

import numpy as np

from .base import Dataset, register_dataset

__all__ = ["DIGITS_TRAIN_SIZE", "load_digits"]

#: Training samples of the digits split (the first ones in scikit-learn's order).
DIGITS_TRAIN_SIZE = 1437


@register_dataset("digits")
def load_digits(data_dir=None):
    """scikit-learn's embedded 8 x 8 digits with the fixed 1437 / 360 split.

    Parameters
    ----------
    data_dir : str or Path, optional
        Not used (the digits are embedded); accepted as every loader accepts it.

    Returns
    -------
    Dataset
        ``x`` of shape ``(n, 64)``, pixels / 16, float64; 10 classes; ``input_shape`` (8, 8).
    """
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    x = digits.data.astype(np.float64) / 16.0
    y = digits.target.astype(np.int64)
    split = DIGITS_TRAIN_SIZE
    return Dataset("digits", x[:split], y[:split], x[split:], y[split:], 10, (8, 8))
