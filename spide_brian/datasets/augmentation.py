"""Training-set augmentation: random translation (pad and crop) and horizontal flips.

:func:`random_crop_flip` works on images ``(n, C, H, W)``; :class:`RandomCropFlip` wraps it as a
callable ``augment(x, rng)`` on the flat inputs of a :class:`~spide_brian.datasets.Dataset`
(static ``(n, C*H*W)`` or frames ``(n, T, C*H*W)``), which the training driver applies to the
shuffled training inputs of each epoch. Three recipes are provided (docs/data.md D1 to D3):

* :data:`CIFAR_AUGMENTATION`: ``RandomCrop(32, padding=4)`` then ``RandomHorizontalFlip`` on
  normalised CIFAR images, with a border that is black before normalisation;
* :func:`frame_augmentation`: ``Padding(4)`` then ``RandomCrop(48)`` on event frames, one crop
  per sample for all its frames, zero border, no flip;
* :func:`idx_augmentation`: ``RandomCrop(28, padding=2)`` on standardised MNIST or
  Fashion-MNIST images with a black border, and a horizontal flip for Fashion-MNIST only
  (garments are left-right symmetric, digits are not).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cifar import CIFAR_MEAN, CIFAR_STD, IMAGE_SHAPE
from .mnist import FASHION_MNIST, MNIST

__all__ = ["random_crop_flip", "RandomCropFlip", "CIFAR_AUGMENTATION", "frame_augmentation",
           "idx_augmentation"]


def random_crop_flip(images, rng, padding=4, flip=True, fill=0.0):
    """Random translation by padding and cropping, and random horizontal flips, per sample.

    Each sample ``i`` is padded by ``padding`` pixels of value ``fill`` on every side, cropped
    back to ``H x W`` at a uniform offset ``(dy_i, dx_i) in [0, 2 padding]^2`` and, if ``flip``,
    mirrored left-right with probability 1/2: ``out[i, c, y, x] = padded[i, c, y + dy_i,
    x' + dx_i]`` with ``x' = W - 1 - x`` for flipped samples. All leading channels (colours,
    or frames x polarities) share one offset and flip.

    Parameters
    ----------
    images : ndarray, shape (n, C, H, W)
    rng : numpy.random.Generator
    padding : int
        Border added on every side before cropping.
    flip : bool
        Mirror each sample left-right with probability 1/2.
    fill : float or array of shape (C,)
        Value of the padded border, per channel.

    Returns
    -------
    ndarray, shape (n, C, H, W)
    """
    n, channels, height, width = images.shape
    fill = np.broadcast_to(np.asarray(fill, dtype=images.dtype), (channels,))
    padded = np.empty((n, channels, height + 2 * padding, width + 2 * padding), images.dtype)
    padded[...] = fill[None, :, None, None]
    padded[:, :, padding:padding + height, padding:padding + width] = images
    dy, dx = rng.integers(0, 2 * padding + 1, (2, n))
    columns = np.arange(width)
    mirrored = rng.random(n) < 0.5 if flip else np.zeros(n, bool)
    columns = np.where(mirrored[:, None], columns[::-1], columns) + dx[:, None]
    rows = np.arange(height) + dy[:, None]
    return padded[np.arange(n)[:, None, None, None], np.arange(channels)[None, :, None, None],
                  rows[:, None, :, None], columns[:, None, None, :]]


@dataclass(frozen=True)
class RandomCropFlip:
    """Per-epoch augmentation of flat inputs: :func:`random_crop_flip` on each sample.

    Parameters
    ----------
    shape : tuple
        ``(C, H, W)`` of one flattened sample (or of one flattened frame when the inputs are
        frames ``(n, T, C*H*W)``; all frames of a sample share the crop).
    padding : int
        Border added on every side before cropping.
    flip : bool
        Mirror each sample left-right with probability 1/2.
    fill : tuple of float
        Border value per channel ``C``, in input units.

    Examples
    --------
    The CIFAR training transform on normalised inputs (black borders), as
    :data:`CIFAR_AUGMENTATION`:

    >>> augment = RandomCropFlip((3, 32, 32), 4, True,
    ...                          tuple(-m / s for m, s in zip(CIFAR_MEAN, CIFAR_STD)))
    >>> x = np.zeros((2, 3072))
    >>> augment(x, np.random.default_rng(0)).shape
    (2, 3072)
    """

    shape: tuple
    padding: int = 4
    flip: bool = True
    fill: tuple = (0.0,)

    def __call__(self, x, rng):
        """Augmented copy of ``x``.

        Parameters
        ----------
        x : ndarray, shape (n, C*H*W) or (n, T, C*H*W)
        rng : numpy.random.Generator

        Returns
        -------
        ndarray
            Same shape as ``x``.
        """
        channels, height, width = self.shape
        frames = x.shape[1] if x.ndim == 3 else 1
        images = x.reshape(len(x), frames * channels, height, width)
        fill = np.tile(np.broadcast_to(self.fill, (channels,)), frames)
        return random_crop_flip(images, rng, self.padding, self.flip, fill).reshape(x.shape)


#: The training augmentation of both CIFAR variants, on normalised inputs: pad by 4 pixels
#: that are black before normalisation, crop 32 x 32, flip with probability 1/2.
CIFAR_AUGMENTATION = RandomCropFlip(IMAGE_SHAPE, 4, True,
                                    tuple(-m / s for m, s in zip(CIFAR_MEAN, CIFAR_STD)))


def frame_augmentation(size=48, padding=4):
    """The event-frame training augmentation: ``Padding(padding)`` then ``RandomCrop(size)``.

    Parameters
    ----------
    size : int
        Frames are ``size x size`` per polarity.
    padding : int
        Border of zeros added on every side before cropping.

    Returns
    -------
    RandomCropFlip
        ``augment(x, rng)`` for frames ``(n, T, 2 size^2)``: one crop per sample shared by
        all its frames, zero border, no flip (docs/data.md D3).
    """
    return RandomCropFlip((2, size, size), padding, False, (0.0,))


def idx_augmentation(source, padding=2):
    """The 28 x 28 grey-scale training augmentation: pad, crop back, and flip garments.

    Each epoch every training image is translated by up to ``padding`` pixels in each
    direction (pad with black, crop 28 x 28 at a uniform offset) and, for Fashion-MNIST only,
    mirrored left-right with probability 1/2. Black is pixel 0, i.e. ``-mean / std`` after the
    standardisation of :mod:`~spide_brian.datasets.mnist`.

    Parameters
    ----------
    source : IdxSource
        :data:`~spide_brian.datasets.mnist.MNIST` or
        :data:`~spide_brian.datasets.mnist.FASHION_MNIST`.
    padding : int
        Largest shift in pixels.

    Returns
    -------
    RandomCropFlip
        ``augment(x, rng)`` for flat inputs ``(n, 784)``.
    """
    return RandomCropFlip((1, 28, 28), padding, source is FASHION_MNIST,
                          (-source.mean / source.std,))


#: Named grey-scale augmentations, by dataset name (``--augment`` on ``mnist`` and
#: ``fashion-mnist``).
IDX_AUGMENTATIONS = {source.name: idx_augmentation(source) for source in (MNIST, FASHION_MNIST)}
